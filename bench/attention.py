"""Attention page: time from a new text to a ready page (what it draws by default), vs. the same forward pass alone.

The page is driven through Streamlit's AppTest in this process, so the time is one whole script
run after the text changes, as a user waits for it: app.py (sidebar, navigation), tokenizing,
the page's forward pass, stacking the maps, the token chips, the layer/head controls, and the
default tab only, "Head view" (layer 0, head 0: its seq x seq heatmap with the causal mask shown
for a decoder, and the "who looks at whom" lines figure with its focus picker), plus the "Try
this" expander (its picker; nothing measured), each turned into Streamlit's messages. Tabs are
lazy, so the other tabs (model view, head summary, rollout, by hand, positions, export) are not
in it: `tab_switch_s` times opening each of them after that first render. The browser's
rendering is not measured.

The baseline is the page's forward pass written out, on the same tokens and this same process's
torch threads (the thread count is read inside the page's run and in the baseline, shown, and
the bench stops if they differ): `model.base_model(**inputs, output_attentions=True,
output_hidden_states=True, use_cache=False)` under inference_mode: the base model (for a decoder
no 49k-wide output head), no KV cache, attentions and hidden states (the page keeps them for its
"by hand" tab), as backends/attention/forward.forward_pass runs it.

s_512 is the decoder (SmolLM2-135M-Instruct) at 512 tokens; ratio_512 = s_512 / its baseline.

Usage: .venv/bin/python bench/attention.py [--runs 3] [--threads N]
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

import backends.attention
from backends.attention import tokenize
from backends.attention.forward import base_model
from backends.models.cache import shared_cache

PARAGRAPH = (
    "Attention lets every token gather information from the others. In an encoder each token sees the whole "
    "sentence, while a decoder only looks back at what came before, which is what makes it able to generate "
    "text one token at a time. Heads specialise: some follow the previous token, some park their weight on "
    "the first token, and some spread it broadly across the input. "
)
MODELS = {"encoder": "all-minilm-l6-v2", "decoder": "smollm2-135m-instruct"}
LENGTHS = (32, 128, 512)


THREADS: dict[str, set[int]] = {"page": set(), "baseline": set()}  # torch threads each side ran on
page_forward_pass = backends.attention.forward_pass


def counted_forward_pass(*args, **kwargs):
    """The page's forward_pass, noting the torch thread count of the thread AppTest runs the page on."""
    THREADS["page"].add(torch.get_num_threads())
    return page_forward_pass(*args, **kwargs)


backends.attention.forward_pass = counted_forward_pass  # the page calls att.forward_pass at run time


def bare_forward_s(loaded, text: str, n: int, runs: int) -> float:
    """The page's forward pass alone (see the module doc), on the texts page_s used."""
    model = loaded.model.base_model
    assert model is base_model(loaded), "not the module the page runs"
    times = []
    THREADS["baseline"].add(torch.get_num_threads())
    with torch.inference_mode():
        warm, _, _ = tokenize(loaded, text, None, n)
        model(**warm, output_attentions=True, output_hidden_states=True, use_cache=False)  # as page_s's first run
        for i in range(runs):
            inputs, _, _ = tokenize(loaded, f"Run {i}. {text}", None, n)
            assert inputs["input_ids"].shape[1] == n, inputs["input_ids"].shape
            started = time.perf_counter()
            model(**inputs, output_attentions=True, output_hidden_states=True, use_cache=False)
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
        charts = at.get("plotly_chart")
        assert len(charts) == 2, f"the default tab should draw the heatmap and the lines, got {len(charts)} charts"
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
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads for both sides (default: torch's own); 1 is steady on a shared machine",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # before any other thread starts: AppTest's script threads inherit it
    text = PARAGRAPH * 12
    rows, ratios = [], {}
    for role, model in MODELS.items():
        loaded = shared_cache().get(model, variant="eager")
        for n in LENGTHS:
            page = page_s(model, text, n, args.runs)
            bare = bare_forward_s(loaded, text, n, args.runs)
            ratios[f"{role}_{n}"] = round(page / bare, 2)
            rows.append((role, model, n, page, bare, page / bare))
    print(
        f"{'model':10} {'tokens':>6} {'page s':>8} {'forward s':>10} {'ratio':>6}   (median of {args.runs}; page = "
        "a new text to the default tab drawn, forward = the page's base-model pass alone)"
    )
    for role, _model, n, page, bare, ratio in rows:
        print(f"{role:10} {n:>6} {page:>8.3f} {bare:>10.3f} {ratio:>6.2f}")
    first, again = tab_switch_s(MODELS["decoder"], text, 512, args.runs)
    print("\ndecoder, 512 tokens: opening a tab (s)     first   again")
    for label in TABS:
        print(f"  {label:38} {first[label]:>6.3f}  {again[label]:>6.3f}")
    if len(THREADS["page"]) != 1 or THREADS["page"] != THREADS["baseline"]:
        raise SystemExit(
            f"torch threads differ: the page ran on {sorted(THREADS['page'])}, "
            f"the baseline on {sorted(THREADS['baseline'])}."
        )
    print(f"torch threads: page {THREADS['page'].pop()}, baseline {THREADS['baseline'].pop()}")
    s_512, bare_512 = next((p, b) for r, _, n, p, b, _ in rows if r == "decoder" and n == 512)
    print("targets: decoder 512 tokens < 3 s end to end, ratio_512 <= 3")
    print(json.dumps({"s_512": round(s_512, 3), "ratio_512": round(s_512 / bare_512, 2), "ratios": ratios}))


if __name__ == "__main__":
    main()
