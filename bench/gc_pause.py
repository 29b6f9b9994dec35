"""How long a full garbage-collection pass holds the GIL in the app's process, with and without
`freeze_long_lived()` (backends/core/memory.py).

Every session's script run, the warm-up thread and the training jobs share one process; a full
cyclic-GC pass walks every tracked object with the GIL held, so for its duration no session moves.
After the app's imports (warm_imports + every module of backends/ and components/, as
scripts/launch.py does) this times `gc.collect()` (a full pass) --repeats times with everything
tracked (`gc.unfreeze()`), then after `freeze_long_lived()`, in the same process, and reports the
medians. Then it times SmolLM2's cold GGUF conversion (the warm-up's longest step, into a temporary
cache folder) with the objects frozen and counts the full passes and their longest pause.

Prints a table, then as its last line one JSON object: tracked_objects, frozen_objects,
full_gc_ms_tracked, full_gc_ms_frozen, load_max_pause_ms_frozen.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path, where bench/tokenizers.py would shadow the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))


def full_pass_ms(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="llmpg-gc-")
    os.environ["LLMPG_CACHE_DIR"] = cache
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from backends.core.memory import freeze_long_lived
    from backends.core.warmup import warm_imports
    from scripts.launch import import_app_modules

    warm_imports()
    import_app_modules()
    gc.unfreeze()
    tracked = len(gc.get_objects())
    tracked_ms = full_pass_ms(args.repeats)
    frozen = freeze_long_lived()
    frozen_ms = full_pass_ms(args.repeats)

    pauses: list[float] = []
    started = [0.0]

    def timer(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif info["generation"] == 2:
            pauses.append((time.perf_counter() - started[0]) * 1000)

    from backends.models.cache import shared_cache

    gc.callbacks.append(timer)
    load_started = time.perf_counter()
    shared_cache().get("smollm2-135m-instruct", device="cpu", variant="default")
    load_s = time.perf_counter() - load_started
    gc.callbacks.remove(timer)

    rows = [
        ("objects the collector tracks", f"{tracked:,}", f"{len(gc.get_objects()):,} (+{frozen:,} frozen)"),
        (f"full gc.collect(), median of {args.repeats}", f"{tracked_ms:.0f} ms", f"{frozen_ms:.0f} ms"),
    ]
    print(f"{'':42s} {'all tracked':>14s} {'after freeze':>26s}")
    for name, a, b in rows:
        print(f"{name:42s} {a:>14s} {b:>26s}")
    print(
        f"SmolLM2 cold conversion with objects frozen: {load_s:.1f} s, {len(pauses)} full passes, "
        f"longest {max(pauses, default=0):.0f} ms"
    )
    print(
        json.dumps(
            {
                "tracked_objects": tracked,
                "frozen_objects": frozen,
                "full_gc_ms_tracked": round(tracked_ms, 1),
                "full_gc_ms_frozen": round(frozen_ms, 1),
                "load_max_pause_ms_frozen": round(max(pauses, default=0.0), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
