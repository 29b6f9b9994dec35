"""Trained adapters: save in peft's standard format, zip, load back (checked), compare, merge.

Only safetensors are ever read: an uploaded zip must hold adapter_config.json and
adapter_model.safetensors; a pickled adapter_model.bin is refused, never unpickled.
"""

from __future__ import annotations

import copy
import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file

from backends.core.build_lock import MODEL_BUILD
from backends.lora.train import generate
from backends.models.cache import canonical_name
from backends.models.loaders import frozen_view
from backends.models.registry import find_spec

CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
MAX_UNZIPPED = 512 * 2**20


class AdapterError(ValueError):
    """An adapter that cannot be used with this base model; the message says why and what to do."""


def hub_name(name: str) -> str:
    """The name written into adapter_config.json: the hub id for known models, so others can load it."""
    spec = find_spec(name)
    return spec.hub_id if spec else name


def save_adapter(model: PeftModel, folder: str | Path, base_name: str) -> Path:
    folder = Path(folder)
    config = model.peft_config["default"]
    previous = config.base_model_name_or_path
    config.base_model_name_or_path = hub_name(base_name)  # not the local cache folder it was loaded from
    try:
        # No embedding-layer check: it would look the base model up on the hub.
        model.save_pretrained(folder, safe_serialization=True, save_embedding_layers=False)
    finally:
        config.base_model_name_or_path = previous
    return folder


def adapter_zip(model: PeftModel, base_name: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_adapter(model, Path(tmp) / "adapter", base_name)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def loading_snippet(base_name: str, folder: str = "lora-adapter") -> str:
    """How to use a downloaded adapter outside this app."""
    return (
        f"from peft import PeftModel\nfrom transformers import AutoModelForCausalLM\n\n"
        f"base = AutoModelForCausalLM.from_pretrained({hub_name(base_name)!r})\n"
        f"model = PeftModel.from_pretrained(base, {folder!r})  # the unzipped folder\n"
        f"merged = model.merge_and_unload()  # optional: fold B·A into the weights\n"
    )


def _read_zip(data: bytes) -> tuple[dict, bytes]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise AdapterError(
            "The upload is not a zip file: zip the adapter folder (adapter_config.json + "
            "adapter_model.safetensors) and upload that."
        ) from exc
    by_name = {Path(info.filename).name: info for info in zf.infolist() if not info.is_dir()}
    if WEIGHTS not in by_name:
        found = ", ".join(sorted(by_name)) or "nothing"
        hint = (
            " adapter_model.bin is a pickle, which this app never loads: re-save it with "
            "save_pretrained(..., safe_serialization=True)."
            if "adapter_model.bin" in by_name
            else ""
        )
        raise AdapterError(f"The zip has no {WEIGHTS} (found: {found}).{hint}")
    if CONFIG not in by_name:
        raise AdapterError(f"The zip has no {CONFIG}: it must come from peft's save_pretrained.")
    if sum(by_name[n].file_size for n in (CONFIG, WEIGHTS)) > MAX_UNZIPPED:
        raise AdapterError(f"The adapter unpacks to more than {MAX_UNZIPPED // 2**20} MB; LoRA adapters are small.")
    try:
        config = json.loads(zf.read(by_name[CONFIG]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"{CONFIG} is not valid JSON: {exc}") from exc
    return config, zf.read(by_name[WEIGHTS])


def load_adapter_zip(data: bytes, base_model: torch.nn.Module, base_name: str) -> tuple[PeftModel, dict]:
    """A new LoRA model (on a copy of `base_model`) from an uploaded zip, after checking it fits this base."""
    config, weights = _read_zip(data)
    if config.get("peft_type") != "LORA":
        raise AdapterError(f"This is a {config.get('peft_type')!r} adapter; only LoRA adapters can be loaded here.")
    trained_on = config.get("base_model_name_or_path")
    if trained_on and canonical_name(trained_on) != canonical_name(base_name):
        raise AdapterError(
            f"This adapter was trained on {trained_on!r}, but the base model here is "
            f"{hub_name(base_name)!r}: pick {trained_on!r} as the base model, or upload an adapter "
            f"made for {hub_name(base_name)!r}."
        )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / CONFIG).write_text(json.dumps(config), encoding="utf-8")
        try:
            lora = LoraConfig.from_pretrained(tmp)
        except (TypeError, ValueError) as exc:
            raise AdapterError(f"{CONFIG} is not a LoRA config this peft version reads: {exc}") from exc
        (Path(tmp) / WEIGHTS).write_bytes(weights)
        try:
            tensors = load_file(str(Path(tmp) / WEIGHTS))
        except Exception as exc:  # safetensors raises its own error types for a damaged file
            raise AdapterError(f"{WEIGHTS} could not be read as safetensors: {exc}") from exc
    lora.inference_mode = False
    try:
        with MODEL_BUILD:
            model = get_peft_model(frozen_view(base_model), lora)
    except ValueError as exc:  # e.g. target modules this model lacks
        raise AdapterError(f"This adapter does not fit {hub_name(base_name)!r}: {exc}") from exc
    expected = {k: tuple(v.shape) for k, v in get_peft_model_state_dict(model).items()}
    given = {k: tuple(v.shape) for k, v in tensors.items()}
    missing = sorted(set(expected) - set(given))
    wrong = [(k, given[k], expected[k]) for k in sorted(set(expected) & set(given)) if given[k] != expected[k]]
    if missing or wrong or set(given) - set(expected):
        detail = (
            f"tensor {wrong[0][0]} has shape {wrong[0][1]} where this base model needs {wrong[0][2]}"
            if wrong
            else f"{len(missing)} expected tensors are missing (e.g. {missing[0]})"
            if missing
            else f"unexpected tensors such as {sorted(set(given) - set(expected))[0]}"
        )
        raise AdapterError(
            f"The adapter's weights do not match {hub_name(base_name)!r}: {detail}. Was it trained on another model?"
        )
    set_peft_model_state_dict(model, tensors)
    model.eval()
    return model, config


@dataclass(frozen=True)
class Answer:
    prompt: str
    base: str
    lora: str


def compare_answers(model: PeftModel, tokenizer, prompts: list[str], max_new_tokens: int = 60) -> list[Answer]:
    """Each prompt answered with the adapter off (the base model's own weights) and on."""
    answers = []
    for prompt in prompts:
        with model.disable_adapter():
            base = generate(model, tokenizer, prompt, max_new_tokens)
        answers.append(Answer(prompt, base, generate(model, tokenizer, prompt, max_new_tokens)))
    return answers


def merged_copy(model: PeftModel) -> torch.nn.Module:
    """W + (alpha/r)·B·A folded into a copy's weights: a plain model, no adapter, same outputs."""
    with MODEL_BUILD:
        return copy.deepcopy(model).merge_and_unload()


@torch.no_grad()
def max_logit_difference(a: torch.nn.Module, b: torch.nn.Module, input_ids: list[int]) -> float:
    ids = torch.tensor([input_ids])
    a.eval(), b.eval()
    return float((a(input_ids=ids).logits - b(input_ids=ids).logits).abs().max())
