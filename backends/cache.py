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
import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable

from backends.device import device_memory_bytes
from backends.loaders import CacheKey, LoadedModel, load_model
from backends.registry import find_spec
from backends.shared import process_wide

BUDGET_ENV = "LLMPG_CACHE_BUDGET_MB"


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


class ModelCache:
    def __init__(
        self,
        loader: Callable[[CacheKey], LoadedModel] = load_model,
        budget: Callable[[str], int] = default_budget,
    ):
        self._loader = loader
        self._budget = budget
        self._lock = threading.Lock()
        self._entries: OrderedDict[CacheKey, LoadedModel] = OrderedDict()
        self._inflight: dict[CacheKey, Future] = {}
        self.hits = 0
        self.loads = 0
        self.evictions = 0

    def get(self, model: str, device: str = "cpu", dtype: str = "float32", variant: str = "default") -> LoadedModel:
        key = CacheKey(canonical_name(model), device, dtype, variant)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
            future = self._inflight.get(key)
            owner = future is None
            if owner:
                future = self._inflight[key] = Future()
        if not owner:
            return future.result()
        try:
            entry = self._loader(key)
        except BaseException as exc:
            with self._lock:
                del self._inflight[key]
            future.set_exception(exc)
            raise
        with self._lock:
            self._entries[key] = entry
            del self._inflight[key]
            self.loads += 1
            self._evict_over_budget(key)
        future.set_result(entry)
        return entry

    def _evict_over_budget(self, keep: CacheKey) -> None:
        device = keep.device
        budget = self._budget(device)
        on_device = [k for k in self._entries if k.device == device]
        used = sum(self._entries[k].nbytes for k in on_device)
        for k in on_device:  # OrderedDict order: least recently used first
            if used <= budget:
                break
            if k == keep:
                continue
            used -= self._entries.pop(k).nbytes
            self.evictions += 1

    def unload(self, key: CacheKey) -> int:
        """Drop an entry; returns the bytes it held. Memory is freed once no caller still holds the model."""
        with self._lock:
            entry = self._entries.pop(key, None)
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
        with self._lock:
            return list(self._entries)

    def entries(self) -> list[EntryInfo]:
        with self._lock:
            return [EntryInfo(k, e.nbytes, e.load_s, e.source) for k, e in self._entries.items()]

    def used_bytes(self, device: str) -> int:
        with self._lock:
            return sum(e.nbytes for k, e in self._entries.items() if k.device == device)


shared_cache = process_wide(ModelCache)
