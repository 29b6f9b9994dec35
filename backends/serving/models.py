"""What the server serves: registry models (from the shared cache) and LoRA adapters saved on disk.

Model ids are the registry keys (`smollm2-135m-instruct`, `all-minilm-l6-v2`); hub ids and labels of
the same models are accepted as aliases. An adapter is served as `<base key>+<adapter name>` from
`<cache_dir>/adapters/<adapter name>/` (or LLMPG_ADAPTERS_DIR): peft's standard folder, the one the
LoRA page's "download adapter" zip unpacks to (adapter_config.json + adapter_model.safetensors;
the base model is read from `base_model_name_or_path`). The LoRA page's "publish" writes a trained
adapter there; an adapter zip unpacked there by hand is served the same way.

An adapter runs on a `frozen_view` of the cached base model (its own modules and LoRA layers over
the cached weights' storage: the shared model is never touched and its weights are not copied),
kept in a small LRU of its own. Only safetensors are
read: a folder with a pickled adapter_model.bin alone is skipped.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from backends.core.memo import SingleFlightLRU
from backends.core.paths import cache_dir
from backends.core.shared import process_wide
from backends.models.cache import canonical_name, shared_cache
from backends.models.loaders import frozen_view
from backends.models.registry import (
    KNOWN,
    ModelNotAvailable,
    find_spec,
    is_online,
    package_folder,
)
from backends.serving.openai_schema import ApiError

ADAPTERS_ENV = "LLMPG_ADAPTERS_DIR"
ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
SEPARATOR = "+"
MAX_ADAPTER_COPIES = 2
KIND_ENDPOINTS = {"causal-lm": "chat", "embedding": "embeddings"}


@dataclass(frozen=True)
class ServedModel:
    id: str
    kind: str  # "causal-lm" | "embedding"
    owned_by: str
    base: str  # registry key of the model whose weights serve it
    adapter: Path | None = None
    created: int = 0
    license: str = ""


def adapters_dir() -> Path:
    explicit = os.environ.get(ADAPTERS_ENV)
    return Path(explicit) if explicit else cache_dir() / "adapters"


def _available(spec) -> bool:
    return package_folder(spec) is not None or is_online()


def saved_adapters(folder: Path | None = None) -> list[ServedModel]:
    """LoRA adapters in peft's format under the adapters folder whose base model is served."""
    folder = folder or adapters_dir()
    found = []
    if not folder.is_dir():
        return found
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        config_path, weights = sub / ADAPTER_CONFIG, sub / ADAPTER_WEIGHTS
        if not (config_path.is_file() and weights.is_file()) or SEPARATOR in sub.name:
            continue
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        spec = find_spec(str(config.get("base_model_name_or_path") or ""))
        if config.get("peft_type") != "LORA" or spec is None or spec.kind != "causal-lm":
            continue
        found.append(
            ServedModel(
                f"{spec.key}{SEPARATOR}{sub.name}",
                "causal-lm",
                "lora-page",
                spec.key,
                sub,
                int(weights.stat().st_mtime),
                spec.license,
            )
        )
    return found


def list_models() -> list[ServedModel]:
    models = [
        ServedModel(spec.key, spec.kind, spec.hub_id.split("/")[0], spec.key, license=spec.license)
        for spec in KNOWN
        if spec.kind in KIND_ENDPOINTS and _available(spec)
    ]
    return models + saved_adapters()


def find_model(model_id: str, kind: str) -> ServedModel:
    """The served model for an id, or an ApiError: 404 unknown, 400 a model of the other kind."""
    wanted = (model_id or "").strip()
    served = list_models()
    match = next((m for m in served if m.id == wanted), None)
    if match is None and SEPARATOR not in wanted:
        spec = find_spec(wanted)
        match = next((m for m in served if spec and m.id == spec.key), None)
    if match is None:
        ids = ", ".join(m.id for m in served) or "none"
        raise ApiError(
            404,
            f"The model {model_id!r} does not exist on this server. Served models: {ids}.",
            code="model_not_found",
            param="model",
        )
    if match.kind != kind:
        endpoint = "/v1/embeddings" if match.kind == "embedding" else "/v1/chat/completions or /v1/completions"
        article = "an" if match.kind[0] in "aeiou" else "a"
        raise ApiError(
            400,
            f"{match.id!r} is {article} {match.kind} model: use it with {endpoint}.",
            code="wrong_model_kind",
            param="model",
        )
    return match


def _load_adapter(key: tuple[str, str, float, str]):
    """A LoadedModel-like object: the base's tokenizer, a frozen view of its weights with the adapter on."""
    base_key, folder, _mtime, device = key
    from peft import PeftModel

    started = time.perf_counter()
    base = shared_cache().get(base_key, device=device)
    files = {p.name for p in Path(folder).iterdir()}
    if ADAPTER_WEIGHTS not in files:
        raise ApiError(404, f"Adapter folder {folder!r} has no {ADAPTER_WEIGHTS}.", code="model_not_found")
    model = PeftModel.from_pretrained(frozen_view(base.model), folder, is_trainable=False)
    model.eval()
    return replace(
        base, model=model, source="lora-adapter", location=str(folder), load_s=time.perf_counter() - started
    )


adapter_copies = process_wide(lambda: SingleFlightLRU(_load_adapter, budget=lambda group: MAX_ADAPTER_COPIES))


def load_served(served: ServedModel, device: str = "cpu", variant: str = "default"):
    """The model behind a served id, through the shared cache (an adapter: on its own copy)."""
    try:
        if served.adapter is None:
            return shared_cache().get(served.base, device=device, variant=variant)
        mtime = (served.adapter / ADAPTER_WEIGHTS).stat().st_mtime
        return adapter_copies().get((canonical_name(served.base), str(served.adapter), mtime, device))
    except ModelNotAvailable as exc:
        raise ApiError(404, str(exc), code="model_not_found", param="model") from None
    except FileNotFoundError as exc:
        raise ApiError(404, f"{served.id!r} is no longer on disk: {exc}", code="model_not_found") from None
