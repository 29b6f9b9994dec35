"""Process-wide objects that every browser session shares (the model cache, the job runner)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def process_wide(factory: Callable[[], T]) -> Callable[[], T]:
    """A getter that builds `factory()` once, even when many sessions ask at the same moment."""
    lock = threading.Lock()
    made: list[T] = []

    def get() -> T:
        with lock:
            if not made:
                made.append(factory())
            return made[0]

    get.__doc__ = f"The one {factory.__name__} of this process, shared by every session."
    return get
