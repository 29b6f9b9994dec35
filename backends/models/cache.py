"""The one model cache every page goes through.

Keyed by (model, device, dtype, variant). Thread-safe and single-flight: when
several sessions ask for the same key at once, one thread loads and the others
wait for its result. A per-device memory budget evicts the least recently used
entries. Models are shared by all sessions: callers must never modify them
(training, adapters and quantization work on a copy).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from backends.core.device import device_memory_bytes
from backends.core.memo import SingleFlightLRU
from backends.core.shared import process_wide
from backends.models.loaders import CacheKey, LoadedModel, load_model, shared_variant, unique_nbytes
from backends.models.open_clip_loader import is_open_clip_name, load_open_clip
from backends.models.registry import find_spec

BUDGET_ENV = "LLMPG_CACHE_BUDGET_MB"
# variant -> kinds of default entry it can be built over without a second copy of the weights
SHARED_VARIANTS = {"eager": ("causal-lm", "encoder", "embedding"), "sentence": ("encoder", "embedding")}


def default_budget(device: str) -> int:
    explicit = os.environ.get(BUDGET_ENV)
    if explicit:
        return int(float(explicit) * 2**20)
    return device_memory_bytes(device) // 2


def canonical_name(name: str) -> str:
    """Aliases of a known model (hub id, short key) share one cache entry."""
    spec = find_spec(name)
    return spec.key if spec else name.strip()


@dataclass(frozen=True)
class EntryInfo:
    key: CacheKey
    nbytes: int
    load_s: float
    source: str
    shares_weights_with: CacheKey | None = None


class ModelCache:
    def __init__(
        self,
        loader: Callable[[CacheKey], LoadedModel] = load_model,
        budget: Callable[[str], int] = default_budget,
    ):
        self._loader = loader
        self._memo: SingleFlightLRU[CacheKey, LoadedModel] = SingleFlightLRU(
            self._load,
            cost=lambda entry: entry.nbytes,
            group=lambda key: key.device,
            budget=budget,
            total=lambda entries: unique_nbytes(e.model for e in entries),
        )

    def _load(self, key: CacheKey) -> LoadedModel:
        """Variants of one model share one copy of its weights: the eager-attention and the
        sentence-transformers variants are built over the default entry's tensors."""
        if key.variant in SHARED_VARIANTS:
            base = self._memo.get(replace(key, variant="default"))
            if base.kind in SHARED_VARIANTS[key.variant]:
                return shared_variant(base, key)
        if is_open_clip_name(key.model):  # `open_clip:` names: open_clip's own layout, not a transformers folder
            return load_open_clip(key)
        return self._loader(key)

    hits = property(lambda self: self._memo.hits)
    loads = property(lambda self: self._memo.loads)
    evictions = property(lambda self: self._memo.evictions)

    def get(self, model: str, device: str = "cpu", dtype: str = "float32", variant: str = "default") -> LoadedModel:
        return self._memo.get(CacheKey(canonical_name(model), device, dtype, variant))

    def unload(self, key: CacheKey) -> int:
        """Drop an entry; returns the bytes it held. Memory is freed once no caller still holds the model."""
        entry = self._memo.pop(key)
        if entry is None:
            return 0
        freed = entry.nbytes
        device = key.device
        del entry
        gc.collect()
        if device == "cuda":
            import torch

            torch.cuda.empty_cache()
        return freed

    def clear(self) -> None:
        for key in self.keys():
            self.unload(key)

    def keys(self) -> list[CacheKey]:
        return self._memo.keys()

    def entries(self) -> list[EntryInfo]:
        return [EntryInfo(k, e.nbytes, e.load_s, e.source, e.shares_weights_with) for k, e in self._memo.items()]

    def used_bytes(self, device: str) -> int:
        """Memory the entries on `device` hold together: weights shared by variants count once."""
        return unique_nbytes(e.model for k, e in self._memo.items() if k.device == device)


shared_cache = process_wide(ModelCache)
