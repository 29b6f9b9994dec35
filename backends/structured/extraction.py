"""The shipped extraction set: short texts to turn into JSON, free vs under the schema's grammar.

assets/datasets/extraction_prompts.json holds four schemas (person, book, product, meeting) and 24
texts with what a careful reader extracts. Each text is asked for as JSON in a chat message; the
free run is the decoding page's own loop, the constrained run the same loop under the schema's
grammar. An output counts as valid when `json.loads` parses it (after stripping a ```json fence,
which a free run often writes) and `jsonschema` validates it: the library's verdict, not ours.
`correct` compares the parsed fields with the expected ones (strings case-insensitively), so a
learner sees that the grammar guarantees the shape, not the content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

from backends.core.paths import ASSETS
from backends.decoding import DecodingConfig, encode_prompt
from backends.structured.grammar import Constraint
from backends.structured.guided import GuidedResult, run_guided

SET_PATH = ASSETS / "datasets" / "extraction_prompts.json"
MAX_NEW = 100  # every constrained answer of the set ends well within it (the longest: ~60 tokens)
FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


@cache
def extraction_set() -> dict:
    return json.loads(SET_PATH.read_text(encoding="utf-8"))


def schema_of(kind: str) -> dict:
    return extraction_set()["schemas"][kind]["schema"]


def prompt_text(item: dict) -> str:
    schema = schema_of(item["kind"])
    keys = ", ".join(schema["properties"])
    return f"Extract the {item['kind']} from this text as JSON with the keys {keys}.\nText: {item['text']}"


@dataclass(frozen=True)
class Verdict:
    parses: bool
    valid: bool
    error: str  # why not valid ("" when valid)
    value: object = None


def check_json(text: str, schema: dict | None) -> Verdict:
    """Parse (a ```json fence stripped) and validate against `schema` (None: any JSON object)."""
    from jsonschema import Draft202012Validator

    fenced = FENCE.match(text)
    body = fenced.group(1) if fenced else text.strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        return Verdict(False, False, f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    if schema is None:
        ok = isinstance(value, dict)
        return Verdict(True, ok, "" if ok else "not a JSON object", value)
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(top)"
        return Verdict(True, False, f"{where}: {errors[0].message}", value)
    return Verdict(True, True, "", value)


def same(a, b) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) < 1e-9
    return a == b


def fields_correct(value, expected: dict) -> float:
    """Share of the expected fields the output got right (0 when it is not an object)."""
    if not isinstance(value, dict):
        return 0.0
    return sum(same(value.get(k), v) for k, v in expected.items()) / len(expected)


@dataclass(frozen=True)
class ItemRun:
    item: dict
    mode: str  # "free" or "constrained"
    result: GuidedResult
    verdict: Verdict
    correct: float

    @property
    def tokens_per_s(self) -> float:
        return len(self.result.token_ids) / self.result.seconds if self.result.seconds > 0 else 0.0


def run_item(loaded, item: dict, mode: str, max_new: int = MAX_NEW, whitespace: str = "limited") -> ItemRun:
    ids = encode_prompt(loaded, prompt_text(item), chat=True)
    schema = schema_of(item["kind"])
    constraint = Constraint("json_schema", schema, whitespace=whitespace) if mode == "constrained" else None
    result = run_guided(loaded, ids, DecodingConfig(max_new_tokens=max_new), constraint)
    verdict = check_json(result.text, schema)
    return ItemRun(item, mode, result, verdict, fields_correct(verdict.value, item["expected"]))


def compare_set(
    loaded,
    items: list[dict] | None = None,
    max_new: int = MAX_NEW,
    whitespace: str = "limited",
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[ItemRun]:
    """Free then constrained on every item, as each finishes (greedy: the same output every time)."""
    for item in extraction_set()["items"] if items is None else items:
        for mode in ("free", "constrained"):
            if should_stop is not None and should_stop():
                return
            yield run_item(loaded, item, mode, max_new, whitespace)


def summary(runs: list[ItemRun]) -> dict:
    """Per mode: the share that parse, that validate, the mean field accuracy, tokens/s (median)."""
    import statistics

    out = {}
    for mode in ("free", "constrained"):
        rows = [r for r in runs if r.mode == mode]
        if not rows:
            continue
        out[mode] = {
            "n": len(rows),
            "parses": sum(r.verdict.parses for r in rows) / len(rows),
            "valid": sum(r.verdict.valid for r in rows) / len(rows),
            "correct": sum(r.correct for r in rows) / len(rows),
            "tokens_per_s": statistics.median(r.tokens_per_s for r in rows),
        }
    return out
