"""Structured output, tool calls and agents (issue 27), on the offline SmolLM2-135M-Instruct.

- Extraction set (assets/datasets/extraction_prompts.json, 24 texts, 4 schemas): each text asked
  for as JSON, greedy, 100 new tokens at most, free (the decoding page's loop) and under the
  schema's grammar (backends/structured, xgrammar, whitespace "limited"). valid = json.loads parses
  it (a ```json fence stripped) and jsonschema validates it. valid_free / valid_constrained are the
  shares; fields_right_* the mean share of fields equal to the expected ones.
- Speed: tokens/s of each run (its tokens / its seconds, prompt included), median over the set per
  mode; constrained_speed_ratio = constrained median / free median. Same prompts, same thread, same
  process; the four schemas are compiled once before timing (compile_ms, median, is reported).
- Whitespace: the constrained set again with whitespace "any" (valid_constrained_any_ws, and how
  many runs hit the token budget: the runaway).
- Tool choice: backends.agents.evaluate.tool_choice_accuracy (right tool with schema-valid
  arguments; right result) over the 30 held-out requests (agent_tool_requests_heldout.json, written
  after the router's examples were fixed) with the page's default, tool retrieval top 1
  (tool_choice_acc), top 2, and all tools offered (the model alone: tool_choice_acc_model_alone),
  and over the 32 shipped requests (top 1; optimistic: the examples were written after them).
- Injection: backends.agents.evaluate.injection_rates over the 24 shipped injected documents
  (instruction, format, role styles): attack success (a call to the injected tool that runs, or a
  text answer carrying the injected payload) without defences, with each, and with all of them.

Usage: .venv/bin/python bench/agents.py [--threads 1] [--skip-agents]
Last line: {"valid_free", "valid_constrained", "constrained_speed_ratio", "tool_choice_acc",
            "injection_success_undefended", "injection_success_defended", ...}
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
# Run as a script, bench/ is first on sys.path, where bench/tokenizers.py would shadow the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import torch

from backends.core.warmup import warm_imports
from backends.models.cache import shared_cache
from backends.structured import Constraint, compile_constraint
from backends.structured.extraction import compare_set, extraction_set, run_item, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-agents", action="store_true", help="only the extraction set and speed")
    args = parser.parse_args()
    warm_imports()
    torch.set_num_threads(args.threads)
    loaded = shared_cache().get("smollm2-135m-instruct")
    data = extraction_set()

    compile_ms = []
    for kind in data["schemas"]:
        started = time.perf_counter()
        compile_constraint(loaded, Constraint("json_schema", data["schemas"][kind]["schema"]))
        compile_ms.append((time.perf_counter() - started) * 1000)

    runs = list(compare_set(loaded))
    stats = summary(runs)
    free, guided = stats["free"], stats["constrained"]
    any_ws = [run_item(loaded, item, "constrained", whitespace="any") for item in data["items"]]
    any_valid = sum(r.verdict.valid for r in any_ws) / len(any_ws)
    any_cut = sum(not r.result.finished for r in any_ws)

    print(f"extraction set: {len(data['items'])} texts, greedy, SmolLM2-135M-Instruct, {args.threads} thread(s)")
    print(f"{'':28s} {'free':>8s} {'constrained':>12s}")
    for name, key, fmt in (
        ("parses", "parses", "{:.0%}"),
        ("valid against the schema", "valid", "{:.0%}"),
        ("fields right", "correct", "{:.0%}"),
        ("tokens/s (median)", "tokens_per_s", "{:.2f}"),
    ):
        print(f"{name:28s} {fmt.format(free[key]):>8s} {fmt.format(guided[key]):>12s}")
    ratio = guided["tokens_per_s"] / free["tokens_per_s"]
    print(f"constrained / free speed: {ratio:.2f}; grammar compile {statistics.median(compile_ms):.0f} ms (median)")
    print(f"whitespace 'any': {any_valid:.0%} valid, {any_cut} of {len(any_ws)} cut by the token budget")

    result = {
        "valid_free": round(free["valid"], 3),
        "valid_constrained": round(guided["valid"], 3),
        "constrained_speed_ratio": round(ratio, 3),
        "fields_right_free": round(free["correct"], 3),
        "fields_right_constrained": round(guided["correct"], 3),
        "tokens_per_s_free": round(free["tokens_per_s"], 2),
        "tokens_per_s_constrained": round(guided["tokens_per_s"], 2),
        "compile_ms": round(statistics.median(compile_ms), 1),
        "valid_constrained_any_ws": round(any_valid, 3),
        "cut_any_ws": any_cut,
    }
    if not args.skip_agents:
        from backends.agents import heldout_requests, injection_rates, shipped_requests, tool_choice_accuracy
        from backends.agents.evaluate import REQUEST_TOOLS
        from backends.agents.router import rank_tools

        held, shipped = heldout_requests(), shipped_requests()
        runs = {
            "held-out, tool retrieval top 1 (the page's default)": tool_choice_accuracy(loaded, held, route_k=1),
            "held-out, tool retrieval top 2": tool_choice_accuracy(loaded, held, route_k=2),
            "held-out, all tools offered (the model alone)": tool_choice_accuracy(loaded, held, route_k=0),
            "shipped 32, tool retrieval top 1": tool_choice_accuracy(loaded, shipped, route_k=1),
        }
        # retrieval by the tools' descriptions only (no examples): the router's top 1 is the call's tool
        by_description = {
            name: sum(rank_tools(i["question"], REQUEST_TOOLS, "description")[0].name == i["tool"] for i in items)
            / len(items)
            for name, items in (("held-out", held), ("shipped", shipped))
        }
        print(f"{'tool choice':52s} {'n':>3s} {'right tool+valid':>17s} {'right result':>13s} {'s/request':>10s}")
        for name, r in runs.items():
            secs = statistics.median(row["seconds"] for row in r["rows"])
            print(f"{name:52s} {r['n']:3d} {r['right_tool_and_valid']:>17.0%} {r['correct']:>13.0%} {secs:>10.1f}")
        print(
            "tool retrieval by descriptions only (no examples), top 1 right: "
            f"held-out {by_description['held-out']:.0%}, shipped {by_description['shipped']:.0%}"
        )
        attacks = injection_rates(loaded)
        columns = ("undefended", *attacks["per_defence"], "defended")
        print(f"{'injection: attack success':26s} " + " ".join(f"{c:>11s}" for c in columns))
        overall = {"undefended": attacks["undefended"], **attacks["per_defence"], "defended": attacks["defended"]}
        for style, rates in [*attacks["by_style"].items(), ("all " + str(attacks["n"]), overall)]:
            print(f"{style:26s} " + " ".join(f"{rates[c]:>11.0%}" for c in columns))
        top1 = runs["held-out, tool retrieval top 1 (the page's default)"]
        alone = runs["held-out, all tools offered (the model alone)"]
        result |= {
            "tool_choice_acc": round(top1["right_tool_and_valid"], 3),
            "tool_result_correct": round(top1["correct"], 3),
            "tool_choice_acc_top2": round(runs["held-out, tool retrieval top 2"]["right_tool_and_valid"], 3),
            "tool_choice_acc_model_alone": round(alone["right_tool_and_valid"], 3),
            "tool_result_correct_model_alone": round(alone["correct"], 3),
            "tool_choice_acc_shipped": round(runs["shipped 32, tool retrieval top 1"]["right_tool_and_valid"], 3),
            "route_by_description_acc": round(by_description["held-out"], 3),
            "injection_success_undefended": round(attacks["undefended"], 3),
            "injection_success_defended": round(attacks["defended"], 3),
            **{f"injection_success_{d}": round(r, 3) for d, r in attacks["per_defence"].items()},
            **{f"injection_success_{s}_undefended": round(r["undefended"], 3) for s, r in attacks["by_style"].items()},
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
