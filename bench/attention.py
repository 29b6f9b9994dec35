"""Attention page: time from text to a ready page (all figures), vs. the bare forward pass.

The page is driven through Streamlit's AppTest, so the time includes everything a
user waits for: the forward pass, every tab's figures and their serialization.
The baseline is `model(**inputs, output_attentions=True)` on the same tokens.

Usage: .venv/bin/python bench/attention.py [--runs 3]
Last line: {"s_512": ..., "ratio_512": ..., "ratios": {...}}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
# As a script, bench/ comes first on sys.path, where bench/tokenizers.py would shadow the
# `tokenizers` package that transformers imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import torch
from streamlit.testing.v1 import AppTest

from backends.attention import tokenize
from backends.models.cache import shared_cache

PARAGRAPH = (
    "Attention lets every token gather information from the others. In an encoder each token sees the whole "
    "sentence, while a decoder only looks back at what came before, which is what makes it able to generate "
    "text one token at a time. Heads specialise: some follow the previous token, some park their weight on "
    "the first token, and some spread it broadly across the input. "
)
MODELS = {"encoder": "all-minilm-l6-v2", "decoder": "smollm2-135m-instruct"}
LENGTHS = (32, 128, 512)


def bare_forward_s(loaded, text: str, n: int, runs: int) -> float:
    inputs, _, _ = tokenize(loaded, text, None, n)
    assert inputs["input_ids"].shape[1] == n, inputs["input_ids"].shape
    times = []
    with torch.inference_mode():
        for _ in range(runs):
            started = time.perf_counter()
            loaded.model(**inputs, output_attentions=True)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def page_s(model: str, text: str, n: int, runs: int) -> float:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at.switch_page("app_pages/attention.py").run()
    at.selectbox(key="attention.model").set_value(model).run()
    at.number_input(key="attention.max_tokens").set_value(n).run()
    times = []
    for i in range(runs):
        # A new text each run, so the page really recomputes (it keeps one result per input).
        at.text_area(key="attention.text").set_value(f"Run {i}. {text}")
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
        assert not at.exception, at.exception
        assert any(f"{n} tokens ·" in c.value for c in at.caption), [c.value for c in at.caption][:2]
    return statistics.median(times)


TABS = ("Model view", "Head summary", "Rollout", "Compute it by hand", "Head view")


def tab_switch_s(model: str, text: str, n: int, runs: int) -> dict[str, float]:
    """After the first render, opening each tab (first time computes its per-input data, then cached)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at.switch_page("app_pages/attention.py").run()
    at.selectbox(key="attention.model").set_value(model).run()
    at.number_input(key="attention.max_tokens").set_value(n).run()
    at.text_area(key="attention.text").set_value(text).run()
    first, again = {}, {}
    for label in TABS:
        at.session_state["attention.tab"] = label
        started = time.perf_counter()
        at.run()
        first[label] = time.perf_counter() - started
        assert not at.exception, at.exception
    for label in TABS:
        times = []
        for _ in range(runs):
            at.session_state["attention.tab"] = label
            started = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - started)
        again[label] = statistics.median(times)
    return first, again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    text = PARAGRAPH * 12
    rows, ratios = [], {}
    for role, model in MODELS.items():
        loaded = shared_cache().get(model, variant="eager")
        for n in LENGTHS:
            page = page_s(model, text, n, args.runs)
            bare = bare_forward_s(loaded, f"Run 0. {text}", n, args.runs)
            ratios[f"{role}_{n}"] = round(page / bare, 2)
            rows.append((role, model, n, page, bare, page / bare))
    print(f"{'model':10} {'tokens':>6} {'page s':>8} {'forward s':>10} {'ratio':>6}   (median of {args.runs})")
    for role, _model, n, page, bare, ratio in rows:
        print(f"{role:10} {n:>6} {page:>8.3f} {bare:>10.3f} {ratio:>6.2f}")
    first, again = tab_switch_s(MODELS["decoder"], text, 512, args.runs)
    print("\ndecoder, 512 tokens: opening a tab (s)     first   again")
    for label in TABS:
        print(f"  {label:38} {first[label]:>6.3f}  {again[label]:>6.3f}")
    s_512, bare_512 = next((p, b) for r, _, n, p, b, _ in rows if r == "decoder" and n == 512)
    print("targets: decoder 512 tokens < 3 s end to end, ratio_512 <= 3")
    print(json.dumps({"s_512": round(s_512, 3), "ratio_512": round(s_512 / bare_512, 2), "ratios": ratios}))


if __name__ == "__main__":
    main()
