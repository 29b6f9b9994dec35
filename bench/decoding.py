"""Decoding: tokens/s through our streaming backend vs. plain `model.generate`, and KV cache on/off.

Same model (SmolLM2-135M-Instruct, offline), prompt and config on both sides: greedy, and
top-p 0.9 sampling with one seed (both sides draw the same tokens, see the tests). Runs are
interleaved (ours, plain, ours, plain, ...) so that background load hits both alike; each
figure is the median of --runs runs after one warm-up. Ours includes everything the page
gets per token: raw and filtered probabilities, the top-5 alternatives with their text and
the streamed text piece.

Usage: .venv/bin/python bench/decoding.py [--runs 5] [--tokens 48]
Last line: {"greedy_ratio": ..., "top_p_ratio": ..., "kv_cache_speedup": ...}
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path, where bench/tokenizers.py would shadow the
# `tokenizers` package that transformers imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from backends.models.cache import shared_cache  # noqa: E402
from backends.decoding import PRESETS, encode_prompt, generate_stream  # noqa: E402
from backends.decoding.metrics import kv_cache_comparison  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."


def ours(loaded, ids, config) -> tuple[float, list[int]]:
    started = time.perf_counter()
    tokens = [step.token_id for step in generate_stream(loaded, ids, config)]
    return time.perf_counter() - started, tokens


def plain(loaded, ids, config) -> tuple[float, list[int]]:
    x = torch.tensor([ids])
    started = time.perf_counter()
    if config.strategy == "sample":
        torch.manual_seed(config.seed)
    with torch.inference_mode():
        out = loaded.model.generate(x, attention_mask=torch.ones_like(x), **config.to_generate_kwargs())
    return time.perf_counter() - started, out[0, len(ids):].tolist()


def compare(loaded, ids, config, runs) -> dict:
    ours(loaded, ids, config), plain(loaded, ids, config)  # warm-up
    rates = {"ours": [], "plain": []}
    same = True
    for _ in range(runs):
        results = {}
        for name, fn in (("ours", ours), ("plain", plain)):
            seconds, tokens = fn(loaded, ids, config)
            rates[name].append(len(tokens) / seconds)
            results[name] = tokens
        same = same and results["ours"] == results["plain"]
    o, p = statistics.median(rates["ours"]), statistics.median(rates["plain"])
    return {"ours": o, "plain": p, "ratio": o / p, "tokens": len(results["ours"]), "same": same}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=48)
    args = parser.parse_args()
    loaded = shared_cache().get("smollm2-135m-instruct")
    ids = encode_prompt(loaded, PROMPT, chat=True)
    configs = {
        "greedy": dataclasses.replace(PRESETS["greedy"], max_new_tokens=args.tokens),
        "top-p 0.9": dataclasses.replace(PRESETS["nucleus top-p 0.9"], max_new_tokens=args.tokens, seed=1),
    }
    rows = {name: compare(loaded, ids, config, args.runs) for name, config in configs.items()}
    kv_cache_comparison(loaded, ids, 4)  # warm-up
    kv = [kv_cache_comparison(loaded, ids, args.tokens) for _ in range(max(1, args.runs // 2))]
    kv_speedup = statistics.median(r.speedup for r in kv)

    print(f"SmolLM2-135M-Instruct, {len(ids)}-token prompt, {torch.get_num_threads()} threads, "
          f"median of {args.runs} interleaved runs")
    print(f"{'config':<12}{'tokens':>8}{'ours tok/s':>12}{'plain tok/s':>13}{'ratio':>8}  same tokens")
    for name, r in rows.items():
        print(f"{name:<12}{r['tokens']:>8}{r['ours']:>12.1f}{r['plain']:>13.1f}{r['ratio']:>8.3f}  {r['same']}")
    with_ms = statistics.median(r.with_cache_s_per_token for r in kv) * 1000
    without_ms = statistics.median(r.without_cache_s_per_token for r in kv) * 1000
    print(f"KV cache, {args.tokens} greedy tokens: {with_ms:.1f} ms/token with, {without_ms:.1f} ms/token without, "
          f"speedup {kv_speedup:.2f}x, same tokens {all(r.same_tokens for r in kv)}")
    print(json.dumps({"greedy_ratio": round(rows["greedy"]["ratio"], 3),
                      "top_p_ratio": round(rows["top-p 0.9"]["ratio"], 3),
                      "kv_cache_speedup": round(kv_speedup, 2)}))


if __name__ == "__main__":
    main()
