"""Serving overhead: a streamed chat completion through our server vs the same tokens generated in-process.

- stream_ratio: tokens/s of a greedy chat completion streamed through the live server (official
  `openai` client, SSE, uvicorn in this process so both sides share the one model cache) divided by
  tokens/s of `generate_stream` on the same prompt and settings in-process, interleaved runs,
  medians. 1.0 means HTTP, JSON and SSE cost nothing.
- ttft_p50_ms_1: time to the first content token, one client at a time.
- ttft_p95_ms_8: the same with eight clients starting together (they take turns on the compute
  scheduler token by token, so a late arrival waits for the others' steps).

Usage: .venv/bin/python bench/serving.py [--reps 5] [--tokens 48]
The last line is one JSON object: {"stream_ratio", "ttft_p50_ms_1", "ttft_p95_ms_8"}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path, where bench/tokenizers.py would shadow the
# `tokenizers` package that transformers imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import openai

from backends.decoding import DecodingConfig, encode_prompt, generate_stream
from backends.models.cache import shared_cache
from backends.serving.app import ServerSettings
from backends.serving.local import ServerThread

MODEL = "smollm2-135m-instruct"
PROMPT = "Explain in a few sentences why the sky is blue."


def in_process(n: int) -> tuple[int, float, float]:
    """(tokens, seconds, seconds to the first token) of the decoding page's own loop."""
    loaded = shared_cache().get(MODEL)
    started, first, count = time.perf_counter(), None, 0
    ids = encode_prompt(loaded, PROMPT, chat=True)
    for _ in generate_stream(loaded, ids, DecodingConfig(strategy="greedy", max_new_tokens=n), top_n=0):
        first = first if first is not None else time.perf_counter() - started
        count += 1
    return count, time.perf_counter() - started, first


def served(client: openai.OpenAI, n: int, prompt: str = PROMPT) -> tuple[int, float, float]:
    """(completion tokens, seconds to [DONE], seconds to the first content)."""
    started, first, count = time.perf_counter(), None, 0
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=n,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
        if chunk.usage is not None:
            count = chunk.usage.completion_tokens
    return count, time.perf_counter() - started, first


def concurrent_ttft(client: openai.OpenAI, clients: int, n: int) -> list[float]:
    results, barrier = [], threading.Barrier(clients)

    def one(i):
        barrier.wait()
        results.append(served(client, n, f"{PROMPT} (student {i})")[2])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=48)
    args = parser.parse_args()
    shared_cache().get(MODEL)
    with ServerThread(ServerSettings(gradio=False)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="bench", max_retries=0, timeout=600)
        served(client, 4)  # warm-up: first request, thread pool, tokenizer
        in_process(4)
        local_rates, server_rates, ttft_1, local_first = [], [], [], []
        for _ in range(args.reps):  # interleaved, so load from other work hits both sides alike
            count, seconds, first = in_process(args.tokens)
            local_rates.append(count / seconds)
            local_first.append(first)
            count, seconds, first = served(client, args.tokens)
            server_rates.append(count / seconds)
            ttft_1.append(first)
        ttft_1 += [served(client, 1)[2] for _ in range(args.reps)]
        ttft_8 = [t for _ in range(max(2, args.reps // 2)) for t in concurrent_ttft(client, 8, 8)]
    ratio = statistics.median(server_rates) / statistics.median(local_rates)
    print(f"{'measure':<40} {'median':>10}")
    print(f"{'in-process greedy tokens/s':<40} {statistics.median(local_rates):10.1f}")
    print(f"{'served (openai SDK, SSE) tokens/s':<40} {statistics.median(server_rates):10.1f}")
    print(f"{'stream ratio (served / in-process)':<40} {ratio:10.3f}")
    print(f"{'first token in-process, p50 (ms)':<40} {1000 * statistics.median(local_first):10.0f}")
    print(f"{'TTFT, 1 client, p50 (ms)':<40} {1000 * statistics.median(ttft_1):10.0f}")
    print(f"{'TTFT, 8 clients at once, p50 (ms)':<40} {1000 * statistics.median(ttft_8):10.0f}")
    print(f"{'TTFT, 8 clients at once, p95 (ms)':<40} {1000 * percentile(ttft_8, 0.95):10.0f}")
    print(
        f"({args.reps} interleaved runs of {args.tokens} tokens; {len(ttft_8)} concurrent samples; "
        f"{os.cpu_count()} cores)"
    )
    print(
        json.dumps(
            {
                "stream_ratio": round(ratio, 3),
                "ttft_p50_ms_1": round(1000 * statistics.median(ttft_1), 1),
                "ttft_p95_ms_8": round(1000 * percentile(ttft_8, 0.95), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
