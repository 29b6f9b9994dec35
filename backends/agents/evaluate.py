"""The agent's two measurements, plain dicts of float rates (bench/agents.py prints them).

- `tool_choice_accuracy(loaded, items)`: single-step tool requests (assets/datasets/
  agent_tool_requests.json) under tool_choice="required" with every tool offered but send_message:
  the share of calls that name the right tool, that have schema-valid arguments, and whose tool
  result equals the expected one (numbers within 0.1%).
  With `route_k` (1 or 2), MiniLM's tool retrieval (router.py) offers only the k best-ranked tools.
- `injection_rates(loaded, items)`: attack success rate undefended, with each defence, and with all
  of them (see injection.py for what each defence does and how "confirm" reuses the undefended step).
"""

from __future__ import annotations

import json
import time
from functools import cache

from backends.agents.documents import Passage, fixed_search
from backends.agents.injection import DEFENCES, as_confirmed, run_injection, shipped_injections
from backends.agents.loop import AgentConfig, Step, execute, model_step
from backends.agents.router import routed_tools
from backends.agents.toolbox import TOOLS, Context, validate_arguments
from backends.core.paths import ASSETS
from backends.structured import parse_tool_output

REQUESTS_FILE = ASSETS / "datasets" / "agent_tool_requests.json"
HELDOUT_FILE = ASSETS / "datasets" / "agent_tool_requests_heldout.json"
REQUEST_TOOLS = tuple(n for n in TOOLS if n != "send_message")


@cache
def shipped_requests() -> list[dict]:
    return json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))["items"]


@cache
def heldout_requests() -> list[dict]:
    """30 more requests, written after the router's examples were fixed (never used to tune them)."""
    return json.loads(HELDOUT_FILE.read_text(encoding="utf-8"))["items"]


def result_matches(result: str | None, expected) -> bool:
    if expected is None:
        return result is not None
    if result is None:
        return False
    if isinstance(expected, (int, float)):
        try:
            got = float(result)
        except ValueError:
            return False
        return abs(got - expected) <= 1e-3 * max(1.0, abs(expected))
    return result.strip().lower() == str(expected).strip().lower()


def score_request(
    loaded, item: dict, search=None, max_new_tokens: int = 96, route_k: int = 0, route_source: str = "examples"
) -> dict:
    """One request: the model's call under the grammar, checked, run and compared. `route_k` > 0
    offers only the k tools MiniLM ranks first for the request (router.py); 0 offers all."""
    offered = routed_tools(item["question"], REQUEST_TOOLS, route_k, route_source)
    config = AgentConfig(tools=offered, tool_choice="required", max_steps=1, max_new_tokens=max_new_tokens)
    started = time.perf_counter()
    raw, finished, _ = model_step(loaded, [{"role": "user", "content": item["question"]}], config)
    _, calls = parse_tool_output(raw)
    call = calls[0] if calls else None
    valid = call is not None and call.name in TOOLS and validate_arguments(TOOLS[call.name], call.arguments) is None
    result = None
    if valid:
        step = Step(0, [], raw, name=call.name, arguments=call.arguments, code="call")
        step = execute(step, Context(search), config)
        result = step.result if step.code == "call" else None
    right_tool = call is not None and call.name == item["tool"]
    return {
        "question": item["question"],
        "expected_tool": item["tool"],
        "offered": offered,
        "routed_right": item["tool"] in offered,
        "tool": call.name if call else None,
        "arguments": call.arguments if call else None,
        "raw": raw,
        "parsed": call is not None,
        "finished": finished,
        "right_tool": right_tool,
        "valid": valid,
        "result": result,
        "correct": right_tool and valid and result_matches(result, item.get("expected")),
        "seconds": time.perf_counter() - started,
    }


def tool_choice_accuracy(
    loaded, items: list[dict] | None = None, search=None, route_k: int = 0, route_source: str = "examples"
) -> dict:
    """Rates over `items` (default: the shipped 32) and the per-item rows; `route_k` as in
    `score_request` (0: every tool offered, the model alone chooses)."""
    items = shipped_requests() if items is None else items
    if search is None:  # the set checks the call, not retrieval: any passage back counts
        search = fixed_search([Passage("none", "No documents are open in this measurement.")])
    rows = [score_request(loaded, item, search, route_k=route_k, route_source=route_source) for item in items]
    n = max(len(rows), 1)
    share = lambda key: sum(bool(r[key]) for r in rows) / n  # noqa: E731
    return {
        "n": len(rows),
        "route_k": route_k,
        "routed_right": share("routed_right"),
        "parsed": share("parsed"),
        "right_tool": share("right_tool"),
        "valid": share("valid"),
        "right_tool_and_valid": sum(r["right_tool"] and r["valid"] for r in rows) / n,
        "correct": share("correct"),
        "rows": rows,
    }


def injection_rates(loaded, items: list[dict] | None = None, needed: tuple[str, ...] | None = None) -> dict:
    """Attack success rates: undefended, per defence, all defences; with per-item rows."""
    items = shipped_injections()["items"] if items is None else items
    rows = []
    for item in items:
        base = run_injection(loaded, item, (), needed)
        runs = {"undefended": base}
        for defence in DEFENCES:  # confirm changes no generation: the undefended step, declined
            alone = run_injection(loaded, item, (defence,), needed) if defence != "confirm" else None
            runs[defence] = as_confirmed(base, item) if alone is None else alone
        runs["defended"] = run_injection(loaded, item, DEFENCES, needed)
        rows.append(
            {
                "id": item["id"],
                "style": item.get("style", ""),
                "target_tool": item["target_tool"],
                **{f"{k}_call": (r.next_step.name if r.next_step else None) for k, r in runs.items()},
                **{f"{k}_how": r.how for k, r in runs.items()},
                **{f"{k}_text": (r.next_step.content if r.next_step else None) for k, r in runs.items()},
                **{k: r.success for k, r in runs.items()},
            }
        )
    n = max(len(rows), 1)
    rate = lambda key: sum(r[key] for r in rows) / n  # noqa: E731
    return {
        "n": len(rows),
        "undefended": rate("undefended"),
        "defended": rate("defended"),
        "per_defence": {d: rate(d) for d in DEFENCES},
        "by_style": {
            style: {
                k: sum(r[k] for r in rows if r["style"] == style) / sum(r["style"] == style for r in rows)
                for k in ("undefended", *DEFENCES, "defended")
            }
            for style in sorted({r["style"] for r in rows})
        },
        "rows": rows,
    }
