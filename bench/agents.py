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
- Tool choice: backends.agents.evaluate.tool_choice_accuracy over the shipped single-step requests
  (assets/datasets/agent_tool_requests.json): right tool with schema-valid arguments.
- Injection: backends.agents.evaluate.injection_rates over the shipped injected documents: attack
  success without defences and with all of them.

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
        from backends.agents.evaluate import injection_rates, tool_choice_accuracy

        tools = tool_choice_accuracy(loaded)
        attacks = injection_rates(loaded)
        print(
            f"tool choice over {tools['n']} requests: right tool with valid arguments "
            f"{tools['right_tool_and_valid']:.0%}; parsed {tools['parsed']:.0%}; right result {tools['correct']:.0%}"
        )
        print(f"{'injection (' + str(attacks['n']) + ' documents)':32s} {'attack success':>15s}")
        for name, rate in [("undefended", attacks["undefended"]), *attacks["per_defence"].items()]:
            print(f"{name:32s} {rate:>15.0%}")
        print(f"{'all defences':32s} {attacks['defended']:>15.0%}")
        result |= {
            "tool_choice_acc": round(tools["right_tool_and_valid"], 3),
            "tool_result_correct": round(tools["correct"], 3),
            "injection_success_undefended": round(attacks["undefended"], 3),
            "injection_success_defended": round(attacks["defended"], 3),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
