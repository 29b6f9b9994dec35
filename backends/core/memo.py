"""The one single-flight, least-recently-used memo (models, tokenizers, anything costly to load).

- Keyed and thread-safe: any number of threads may ask for any keys at once.
- Single-flight: when several callers ask for the same missing key, one of them
  runs `load(key)` and the others wait for its result (or its exception, which is
  not remembered: the next caller tries again).
- Budgeted: every key belongs to a group (a device, say); when a load puts a
  group over its budget, the least recently used entries of that group go first.
  The entry just loaded is never evicted by its own arrival.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
UNLIMITED = float("inf")


class SingleFlightLRU(Generic[K, V]):
    def __init__(
        self,
        load: Callable[[K], V],
        *,
        cost: Callable[[V], float] = lambda value: 1,
        group: Callable[[K], Hashable] = lambda key: None,
        budget: Callable[[Hashable], float] = lambda group: UNLIMITED,
        total: Callable[[list[V]], float] | None = None,
    ):
        self._load = load
        self._cost = cost
        # What a group of entries costs together (default: the sum of their costs); entries that
        # share memory (model variants over one set of weights) say so here.
        self._total = total or (lambda values: sum(cost(v) for v in values))
        self._group = group
        self._budget = budget
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._inflight: dict[K, Future] = {}
        self.hits = 0
        self.loads = 0
        self.evictions = 0

    def get(self, key: K) -> V:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
            future = self._inflight.get(key)
            owner = future is None
            if owner:
                future = self._inflight[key] = Future()
        if not owner:
            return future.result()
        try:
            value = self._load(key)
        except BaseException as exc:
            with self._lock:
                del self._inflight[key]
            future.set_exception(exc)
            raise
        with self._lock:
            self._entries[key] = value
            del self._inflight[key]
            self.loads += 1
            self._evict_over_budget(key)
        future.set_result(value)
        return value

    def _evict_over_budget(self, keep: K) -> None:
        group = self._group(keep)
        budget = self._budget(group)
        members = [k for k in self._entries if self._group(k) == group]  # least recently used first
        for k in members:
            if self._total([self._entries[m] for m in self._entries if self._group(m) == group]) <= budget:
                break
            if k == keep:
                continue
            del self._entries[k]
            self.evictions += 1

    def pop(self, key: K) -> V | None:
        """Forget one entry (the next get loads it again); returns it, or None if it was not held."""
        with self._lock:
            return self._entries.pop(key, None)

    def keys(self) -> list[K]:
        with self._lock:
            return list(self._entries)

    def items(self) -> list[tuple[K, V]]:
        with self._lock:
            return list(self._entries.items())

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
