"""Turning a resolved model into a ready (model, tokenizer) pair on a device.

Called only by the model cache; pages never load models themselves.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from backends.core.paths import models_dir
from backends.models.registry import ModelNotAvailable, ModelSpec, Resolved, resolve

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# "sentence": a sentence-transformers model (embedding + pooling + normalisation) for retrieval;
# "cross-encoder": a sentence-transformers CrossEncoder (question, passage) -> relevance, for re-ranking.
VARIANTS = ("default", "eager", "sentence", "cross-encoder")
_DONE_MARKER = "CONVERTED.json"
# Bumped when the conversion changes, so copies made by an older version are redone.
# 2: SmolLM2's tokenizer gets its official digit-splitting pre-tokenizer back.
CONVERSION_VERSION = 2


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


def model_nbytes(model: torch.nn.Module) -> int:
    tensors = list(model.parameters()) + list(model.buffers())
    seen, total = set(), 0
    for t in tensors:  # tied weights (embeddings = lm_head) count once
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


def smollm2_pre_tokenizer():
    """SmolLM2's official tokenizer splits digits one by one before GPT-2's byte-level regex.

    GGUF files do not store pre-tokenizers, so the tokenizer transformers rebuilds from one
    lacks this step and gives other ids for text with digits (" 4 ½" for instance).
    """
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])


# What a GGUF file leaves out of a model's tokenizer, per known model.
GGUF_PRE_TOKENIZERS = {"smollm2-135m-instruct": smollm2_pre_tokenizer}


def convert_gguf(folder: Path, gguf_file: str, out_dir: Path, pre_tokenizer=None):
    """Dequantize a GGUF checkpoint with transformers and save it as float32 safetensors.

    `pre_tokenizer` restores what the GGUF file does not store. Returns the GGUF-loaded
    model so a caller can compare it with the saved copy.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file, dtype=torch.float32)
    # The tensors are already dequantized to float32; transformers only keeps the
    # GGUF quantizer as bookkeeping, which blocks save_pretrained.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
    if pre_tokenizer is not None:
        tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizer
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        source = folder / gguf_file
        marker = {"from": str(source), "bytes": source.stat().st_size, "version": CONVERSION_VERSION,
                  "seconds": time.perf_counter() - started}
        (tmp / _DONE_MARKER).write_text(json.dumps(marker, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.chmod(0o755)
        tmp.rename(out_dir)  # atomic on one filesystem: readers never see half a folder
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return model


def converted_folder(spec: ModelSpec) -> Path:
    return models_dir() / spec.key


def is_converted(spec: ModelSpec) -> bool:
    marker = converted_folder(spec) / _DONE_MARKER
    try:
        return json.loads(marker.read_text()).get("version") == CONVERSION_VERSION
    except (OSError, ValueError):
        return False


def ensure_converted(spec: ModelSpec, package_dir: Path) -> Path:
    """The safetensors copy of a GGUF package, made once (about 24 s) and reused (under a second)."""
    from filelock import FileLock

    target = converted_folder(spec)
    if is_converted(spec):
        return target
    with FileLock(str(target) + ".lock"):  # two processes must not convert at once
        if not is_converted(spec):
            fix = GGUF_PRE_TOKENIZERS.get(spec.key)
            convert_gguf(package_dir, spec.gguf_file, target, fix() if fix else None)
    return target


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
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    resolved = resolve(key.model)
    location = _weights_location(resolved)
    local_only = resolved.source != "hub"
    common = dict(trust_remote_code=False, local_files_only=local_only)
    if key.variant in ("sentence", "cross-encoder"):
        return _load_sentence_model(key, resolved, location, local_only, started)
    try:
        config = AutoConfig.from_pretrained(location, **common)
        kind = resolved.spec.kind if resolved.spec else infer_kind(config)
        cls = AutoModelForCausalLM if kind == "causal-lm" else AutoModel
        extra = {"attn_implementation": "eager"} if key.variant == "eager" else {}
        model = cls.from_pretrained(
            location, dtype=DTYPES[key.dtype], use_safetensors=True, **extra, **common
        )
        tokenizer = AutoTokenizer.from_pretrained(location, **common)
    except OSError as exc:
        raise ModelNotAvailable(
            f"Could not load {key.model!r} from {location}: {exc}. Only safetensors weights are loaded "
            "(no pickle files)."
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

        archs = AutoConfig.from_pretrained(location, trust_remote_code=False, local_files_only=local_only).architectures
        if not any(a.endswith("ForSequenceClassification") for a in archs or []):
            raise ModelNotAvailable(f"{key.model!r} is not a cross-encoder (its architectures are {archs}): pick a "
                                    "re-ranking model such as cross-encoder/ms-marco-MiniLM-L-6-v2.")
    try:
        model = cls(
            location, device=key.device, trust_remote_code=False, local_files_only=local_only,
            model_kwargs={"dtype": DTYPES[key.dtype], "use_safetensors": True},
        )
    except (OSError, ValueError) as exc:
        raise ModelNotAvailable(
            f"Could not load {key.model!r} as a sentence-transformers model from {location}: {exc}. "
            "Pick an embedding model (for instance all-minilm-l6-v2); only safetensors weights are loaded."
        ) from exc
    model.eval().requires_grad_(False)
    return LoadedModel(
        key=key, model=model, tokenizer=model.tokenizer, source=resolved.source, location=location,
        kind="embedding" if key.variant == "sentence" else "cross-encoder",
        nbytes=model_nbytes(model), load_s=time.perf_counter() - started,
    )


def prepare_job(ctx, spec: ModelSpec, package_dir: Path) -> str:
    """Background-job form of ensure_converted, so Home can prepare a model without blocking."""
    ctx.report(0.05, "converting")
    folder = ensure_converted(spec, package_dir)
    ctx.report(1.0, "done")
    return str(folder)
