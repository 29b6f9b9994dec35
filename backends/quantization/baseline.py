"""What the fp32 baseline row really is, decided from where the loaded model's weights came from.

The embedded SmolLM2 ships as a Q4_1 GGUF (backends/models/gguf_convert.py dequantizes it once into
float32 safetensors): its "fp32" model is those 4-bit blocks dequantized, so every KLD, top-token
share and speed-up of the table is against a copy of the shipped Q4_1 weights, not the original bf16
model. A model from a folder, the Hugging Face cache or the hub is its checkpoint's own weights:
float32, or bf16 / fp16 cast exactly to float32 (read from the safetensors headers).
"""

from __future__ import annotations

import functools
import json
import math
import re
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from backends.models.gguf_convert import ensure_gguf_file
from backends.models.registry import find_spec, package_folder

GGUF, CHECKPOINT, UNKNOWN = "gguf", "checkpoint", "unknown"
SAFETENSORS_DTYPES = {"F64": "fp64", "F32": "fp32", "BF16": "bf16", "F16": "fp16"}
_GGUF_TYPE = re.compile(r"[.-]((?:I?Q\d\w*)|F16|BF16|F32)\.gguf$", re.IGNORECASE)


@dataclass(frozen=True)
class Baseline:
    kind: str = UNKNOWN  # GGUF (dequantized from a GGUF package) | CHECKPOINT (a transformers folder) | UNKNOWN
    weights: str = ""  # GGUF: its blocks' type ("Q4_1"); CHECKPOINT: the stored dtype ("bf16", "fp32"), "" unread
    mix: str = ""  # GGUF: the types of its matrices ("210 × Q4_1, 1 × Q8_0")
    location: str = ""  # the folder or hub id the weights came from

    @property
    def form(self) -> str:
        """Which wording names it (the i18n keys `quantization.baseline.label.<form>` and `.note.<form>`)."""
        if self.kind == CHECKPOINT:
            return "native" if self.weights == "fp32" else "cast" if self.weights else "checkpoint"
        return GGUF if self.kind == GGUF else UNKNOWN

    @property
    def text(self) -> str:
        """In English, for the exported JSON and the benchmark's last line."""
        return {
            GGUF: f"fp32 copy of the shipped {self.weights} weights",
            "native": "the checkpoint's own fp32 weights",
            "cast": f"fp32 copy of the checkpoint's {self.weights} weights",
            "checkpoint": "fp32 copy of the checkpoint's weights",
            UNKNOWN: "fp32",
        }[self.form]

    @property
    def label(self) -> str:
        """The English label of the fp32 row."""
        return f"{self.text} (baseline)"

    def to_dict(self) -> dict:
        return {"text": self.text, "kind": self.kind, "weights": self.weights, "mix": self.mix}


def describe(loaded) -> Baseline:
    """The baseline of a model handed out by the cache (a LoadedModel: its source, location and name)."""
    return from_origin(loaded.source, loaded.location, loaded.key.model)


@functools.lru_cache(maxsize=32)
def from_origin(source: str, location: str, name: str) -> Baseline:
    """source and location as `backends.models.registry.resolve` gives them (location: the folder
    the weights were read from, or the hub id); name: the model's registry name or id."""
    spec = find_spec(name)
    if source == "package" and spec is not None and spec.gguf_file:
        weights, mix = gguf_types(spec)
        return Baseline(GGUF, weights, mix, location)
    folder = Path(location)
    if not folder.is_dir():
        folder = hub_snapshot(location)
    return Baseline(CHECKPOINT, checkpoint_dtype(folder) if folder else "", "", location)


def gguf_types(spec) -> tuple[str, str]:
    """(the file's type as llama.cpp names it, e.g. "Q4_1" or "Q4_K_M", every matrix type with its
    count), read from the file's header (`general.file_type`; else the most common matrix type); the
    file name's type when the file cannot be read. A mixed file is named by its type, not its
    commonest block: Gemma 3 270M's Q4_K_M holds 81 x Q5_0, 27 x Q4_K, 10 x Q8_0, 9 x Q6_K (its rows of
    640 are not a multiple of 256, so most of its Q4_K fall back to Q5_0, as llama.cpp does)."""
    named = _GGUF_TYPE.search(spec.gguf_file)
    fallback = named.group(1).upper() if named else "GGUF"
    folder = package_folder(spec)
    try:
        from gguf import GGUFReader, LlamaFileType

        reader = GGUFReader(str(ensure_gguf_file(spec, folder)))
        counts = Counter(t.tensor_type.name for t in reader.tensors if len(t.shape) > 1)
        field = reader.fields.get("general.file_type")
        file_type = LlamaFileType(int(field.parts[field.data[0]][0])).name.removeprefix("MOSTLY_") if field else ""
    except (ImportError, OSError, ValueError, TypeError):
        return fallback, ""
    if not counts:
        return fallback, ""
    mix = ", ".join(f"{n} × {kind}" for kind, n in counts.most_common())
    return file_type or counts.most_common(1)[0][0], mix


def checkpoint_dtype(folder: Path) -> str:
    """The floating dtype holding most of the checkpoint's weights, from its safetensors headers
    ("bf16", "fp16", "fp32"); "" when there is none to read."""
    counts = Counter()
    for path in sorted(Path(folder).glob("*.safetensors")):
        try:
            with path.open("rb") as f:
                size = struct.unpack("<Q", f.read(8))[0]
                header = json.loads(f.read(size))
        except (OSError, ValueError, struct.error):
            continue
        for key, info in header.items():
            if key != "__metadata__" and info.get("dtype") in SAFETENSORS_DTYPES:
                counts[SAFETENSORS_DTYPES[info["dtype"]]] += math.prod(info.get("shape") or [1])
    return counts.most_common(1)[0][0] if counts else ""


def hub_snapshot(hub_id: str) -> Path | None:
    """The local copy of a model loaded from the hub (the Hugging Face cache), without the network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(hub_id, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):  # not cached, not a hub id: the dtype stays unread
        return None
