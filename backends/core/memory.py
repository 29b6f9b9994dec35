"""The C allocator's settings for a long-lived server process (glibc on Linux; elsewhere nothing).

A classroom server runs dozens of threads (one per session's script run, training jobs, the REST
server), and torch's CPU tensors come from malloc. glibc gives each thread that contends an arena
of its own (up to 8 per core) and raises its mmap threshold as large blocks are freed, so
activations of a training step or an attention run end up inside arenas that rarely shrink: the
process's RSS keeps the high-water mark of every burst. Two settings bound that:

- M_ARENA_MAX: a few arenas shared by all threads (the GIL serialises most Python work anyway);
- M_MMAP_THRESHOLD: a fixed threshold (which also turns off the dynamic raise), so blocks above it
  (activations, KV caches, attention maps) are mmapped and go back to the system when freed.

Neither returns the small blocks (under the threshold) a training step's backward pass frees:
they stay in the heap, and each LoRA run kept ~480 MB more than before its first step (measured:
6 steps of SmolLM2 at batch 4, RSS +480 MB; after `malloc_trim(0)`, +2 MB). `release_free_memory()`
hands free heap pages back; the compute scheduler calls it after every step that ran longer than
`TRIM_AFTER_S` (attention runs, embedding batches), never after a token's step, and a background
job (training) calls it once when it ends: after each of its steps the next step would only fault
the same pages in again (measured, bench/lora.py: a trim after every LoRA step cost 6% of the
trainer's speed, 0.94 of a plain loop; once at the end, 1.00).

bench/classroom.py measures the effect (rss_mb_per_session). Call `tune_allocator()` once, early,
before the threads start (app.py, the REST server's entry point).

Python's cyclic garbage collector is the other process-wide pause: once torch, transformers and the
rest are imported the process tracks ~940,000 objects, and every full collection walks all of them
holding the GIL, ~0.5 s during which no session's script run moves (measured: 11 such pauses while
SmolLM2's GGUF converted on a fresh server, the first pages' titles sent 4-5 s late).
`freeze_long_lived()` moves what exists after the imports into the collector's permanent generation
(`gc.freeze()`): those modules, classes and functions live as long as the process anyway; full
collections then walk only what was made since (max pause 0.1 s, the same load 20% faster).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
M_ARENA_MAX = -8
TRIM_AFTER_S = 0.2  # a step this long allocated enough to be worth a trim (a trim costs about a millisecond)
_done = False
_libc = None


def _glibc():
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            lib.mallopt.argtypes, lib.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            lib.malloc_trim.argtypes, lib.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
            _libc = lib
        except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
            _libc = False
    return _libc


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim); elsewhere nothing."""
    lib = _glibc() if sys.platform.startswith("linux") else False
    if lib:
        lib.malloc_trim(0)


def tune_allocator(arenas: int = 2, mmap_threshold: int = 1 << 20) -> bool:
    """Apply the settings once per process; True when glibc accepted them."""
    global _done
    if _done:
        return True
    lib = _glibc() if sys.platform.startswith("linux") else False
    if not lib:
        return False
    _done = bool(lib.mallopt(M_ARENA_MAX, int(arenas))) and bool(lib.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)))
    return _done


def freeze_long_lived() -> int:
    """Collect once, then move every object the collector tracks into its permanent generation
    (never scanned again); returns how many are frozen. Call after the imports (warm_imports, the
    launcher once the app's modules are in): not after loading models, whose objects can be freed."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
