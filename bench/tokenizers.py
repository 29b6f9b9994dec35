"""Tokens per second of each offline tokenizer: our backend's `tokenize()` vs. the library called directly.

Text: the shipped sample corpus (English, Chinese, code) repeated to 1 MB. "Direct" is the
engine underneath on the same text: tiktoken's `Encoding.encode` for the tiktoken-based
tokenizers, a separate `tokenizers.Tokenizer` (same tokenizer.json) for the HF ones. Each
run times both paths back to back (alternating which goes first); tokens/s are medians,
ours/direct is the median of the runs' ratios.

Usage: .venv/bin/python bench/tokenizers.py [--mb 1] [--runs 9]
Last line: {"worst_ratio": <lowest ours/direct throughput>, "worst": "<its tokenizer>"}  (target >= 0.9)
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
# Run as a script, this file's folder comes first on sys.path, and this file's name would
# hide the `tokenizers` library: replace the folder with the repository root.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from tokenizers import Tokenizer

from backends.tokenizers.engines import HFTok, TiktokenTok
from backends.tokenizers.tokenization import tokenize
from backends.tokenizers.training import sample_text
from backends.tokenizers.zoo import TOKENIZERS, get_tokenizer


def direct_call(tok):
    """The library call our backend wraps, on an object of its own."""
    if isinstance(tok, TiktokenTok):
        enc = tok.encoding
        return lambda text: enc.encode(text, allowed_special="all")
    if isinstance(tok, HFTok):
        raw = Tokenizer.from_str(tok.backend.to_str())
        return lambda text: raw.encode(text, add_special_tokens=False).ids
    raise TypeError(f"no direct path for {tok!r}")


def timed(fn, text: str) -> tuple[float, int]:
    gc.collect()
    started = time.perf_counter()
    result = fn(text)
    elapsed = time.perf_counter() - started
    n = result.n_tokens if hasattr(result, "n_tokens") else len(result)
    return elapsed, n


def bench_one(key: str, text: str, runs: int) -> dict:
    tok = get_tokenizer(key)

    def ours(t):  # the page's path: registry lookup + encode + counts
        return tokenize(key, t)

    direct = direct_call(tok)
    timed(ours, text), timed(direct, text)  # warm-up (lazy regex compilation, caches)
    times, counts = {"ours": [], "direct": []}, {}
    for run in range(runs):
        order = ("ours", "direct") if run % 2 == 0 else ("direct", "ours")  # neither path always goes first
        for name in order:
            elapsed, counts[name] = timed(ours if name == "ours" else direct, text)
            times[name].append(elapsed)
    ours_s, direct_s, n_ours, n_direct = times["ours"], times["direct"], counts["ours"], counts["direct"]
    if n_ours != n_direct:
        raise AssertionError(f"{key}: ours gave {n_ours} tokens, the library {n_direct}")
    # The ratio is the median of per-run ratios: each run times both paths back to back, so
    # a slow moment of the machine (other processes, frequency changes) hits both alike.
    ratio = statistics.median(d / o for o, d in zip(ours_s, direct_s))
    return {
        "key": key,
        "tokens": n_ours,
        "ours": n_ours / statistics.median(ours_s),
        "direct": n_direct / statistics.median(direct_s),
        "ratio": ratio,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()

    text = sample_text(int(args.mb * 2**20))
    print(f"text: {len(text.encode()):,} bytes, {len(text):,} characters; median of {args.runs} runs each")
    print(f"{'tokenizer':16} {'tokens':>9} {'ours tok/s':>12} {'direct tok/s':>13} {'ours/direct':>12}")
    rows = []
    for spec in TOKENIZERS:
        row = bench_one(spec.key, text, args.runs)
        rows.append(row)
        print(
            f"{row['key']:16} {row['tokens']:>9,} {row['ours']:>12,.0f} {row['direct']:>13,.0f} {row['ratio']:>12.3f}"
        )
    worst = min(rows, key=lambda r: r["ratio"])
    print(f"worst: {worst['key']} at {worst['ratio']:.3f}x the direct call (target >= 0.9)")
    print(json.dumps({"worst_ratio": round(worst["ratio"], 3), "worst": worst["key"]}))


if __name__ == "__main__":
    main()
