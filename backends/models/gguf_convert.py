"""GGUF packages turned once into float32 safetensors folders the loaders read (SmolLM2's offline copy)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from backends.core.paths import models_dir
from backends.models.registry import ModelSpec

_DONE_MARKER = "CONVERTED.json"
# Bumped when the conversion changes, so copies made by an older version are redone.
# 2: SmolLM2's tokenizer gets its official digit-splitting pre-tokenizer back.
CONVERSION_VERSION = 2


def smollm2_pre_tokenizer():
    """SmolLM2's official tokenizer splits digits one by one before GPT-2's byte-level regex.

    GGUF files do not store pre-tokenizers, so the tokenizer transformers rebuilds from one
    lacks this step and gives other ids for text with digits (" 4 ½" for instance).
    """
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )


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
        marker = {
            "from": str(source),
            "bytes": source.stat().st_size,
            "version": CONVERSION_VERSION,
            "seconds": time.perf_counter() - started,
        }
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


def ensure_gguf_file(spec: ModelSpec, package_dir: Path) -> Path:
    """The package's GGUF file. A package that ships it in chunks (Gemma 3 270M: four packages of
    ~60 MB) writes it whole into `package_dir` once with its own `assemble()`, which checks the
    file's SHA-256; under a lock, so two processes never write it at once."""
    import importlib

    from filelock import FileLock

    path = Path(package_dir) / spec.gguf_file
    if not spec.gguf_in_chunks or path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            partial = path.with_name(path.name + ".partial")
            importlib.import_module(spec.offline_package).assemble(partial, overwrite=True)
            partial.rename(path)  # atomic: a reader never sees half a file
    return path


def ensure_converted(spec: ModelSpec, package_dir: Path) -> Path:
    """The safetensors copy of a GGUF package, made once (SmolLM2 about 24 s, Gemma 3 270M about
    70 s on two cores) and reused (under a second)."""
    from filelock import FileLock

    target = converted_folder(spec)
    if is_converted(spec):
        return target
    ensure_gguf_file(spec, package_dir)
    with FileLock(str(target) + ".lock"):  # two processes must not convert at once
        if not is_converted(spec):
            fix = GGUF_PRE_TOKENIZERS.get(spec.key)
            convert_gguf(package_dir, spec.gguf_file, target, fix() if fix else None)
    return target


def prepare_job(ctx, spec: ModelSpec, package_dir: Path) -> str:
    """Background-job form of ensure_converted, so Home can prepare a model without blocking."""
    ctx.report(0.05, "converting")
    folder = ensure_converted(spec, package_dir)
    ctx.report(1.0, "done")
    return str(folder)
