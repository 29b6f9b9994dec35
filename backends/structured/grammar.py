"""What a constraint is, and its compiled form for one model's vocabulary (xgrammar does the work).

A `Constraint` names one of five kinds, with its source as the user typed it:
  json_schema  a JSON Schema (a dict or its JSON text): the output is one JSON value valid against it
  json_object  any JSON object (OpenAI's `response_format={"type": "json_object"}`)
  regex        a regular expression the whole output must match
  choice       one of a list of strings, exactly
  ebnf         a grammar in xgrammar's EBNF (GBNF-like: `root ::= ...`)
  tool_call    a tool call in tools.py's format (source: {"schema": one call's schema, "required": bool})

Why xgrammar (Apache-2.0): it precomputes, per grammar state, which of the vocabulary's tokens are
allowed, so the per-token cost is a bitmask fill of a few microseconds to a millisecond on a CPU
(bench/agents.py measures the whole decode at >= 0.8 of the unconstrained speed); it takes JSON
Schema, regex and EBNF through one API, is what vLLM, SGLang and TensorRT-LLM use by default, and
installs as one wheel with no compiler. outlines (Apache-2.0) builds an index per schema up front,
slower to compile here for nested schemas, and its regex-only core leaves EBNF to a separate path.

Whitespace runaway: JSON lets any amount of whitespace sit between tokens; a small model under a
JSON grammar often finds " " or "\\n" more likely than the next key, and the grammar allows it
forever, so the output never ends. `whitespace="limited"` (the default here) allows whitespace
where JSON does but at most `MAX_WHITESPACE` characters in a row (room for a newline and an
indent, which SmolLM2 writes by habit); `"compact"` compiles fixed separators (", " and ": "), no
free whitespace at all, which is safe but fights the model's habit (its first "\\n  " after "{" is
removed with nearly all its probability); `"any"` is the runaway-prone setting, kept so the page
can show the failure.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field

from backends.core.coded import CodedError

KINDS = ("json_schema", "json_object", "regex", "choice", "ebnf", "tool_call")
WHITESPACE = ("limited", "compact", "any")
MAX_WHITESPACE = 8
MAX_SOURCE_CHARS = 20_000
MAX_CHOICES = 200
OPEN, CLOSE = "<tool_call>", "</tool_call>"  # a tool call's tags (tools.py)


class ConstraintError(CodedError, ValueError):
    """A constraint that cannot be compiled (code: "kind", "empty", "json", "schema", "regex",
    "ebnf", "choice", "too_long", "whitespace"), said in English; a page words the code."""


@dataclass(frozen=True)
class Constraint:
    kind: str
    source: object  # a dict (json_schema), a list of strings (choice), or text
    whitespace: str = "limited"
    label: str = field(default="", compare=False)

    def validate(self) -> Constraint:
        if self.kind not in KINDS:
            raise ConstraintError(f"Unknown constraint kind {self.kind!r}; pick one of {', '.join(KINDS)}.", "kind")
        if self.whitespace not in WHITESPACE:
            raise ConstraintError(
                f"Unknown whitespace setting {self.whitespace!r}; pick one of {', '.join(WHITESPACE)}.", "whitespace"
            )
        if self.kind in ("json_object", "tool_call"):
            return self
        if self.source is None or (isinstance(self.source, (str, list, dict)) and not self.source):
            raise ConstraintError(f"The {self.kind} is empty: write one.", "empty", kind=self.kind)
        if len(self.text()) > MAX_SOURCE_CHARS:
            raise ConstraintError(
                f"The {self.kind} is {len(self.text())} characters; the playground takes up to {MAX_SOURCE_CHARS}.",
                "too_long",
                n=len(self.text()),
                limit=MAX_SOURCE_CHARS,
            )
        if self.kind == "json_schema":
            schema = self.schema()
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import SchemaError

            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise ConstraintError(f"Not a valid JSON Schema: {exc.message}", "schema", detail=exc.message) from exc
        elif self.kind == "regex":
            try:
                re.compile(str(self.source))
            except re.error as exc:
                raise ConstraintError(f"Not a valid regular expression: {exc}", "regex", detail=str(exc)) from exc
        elif self.kind == "choice":
            choices = self.choices()
            if not choices or any(not c for c in choices):
                raise ConstraintError("A choice list needs at least one non-empty option.", "choice")
            if len(choices) > MAX_CHOICES:
                raise ConstraintError(
                    f"{len(choices)} options; the playground takes up to {MAX_CHOICES}.",
                    "too_long",
                    n=len(choices),
                    limit=MAX_CHOICES,
                )
        return self

    def text(self) -> str:
        """The source as text (a schema as JSON, choices one per line)."""
        if isinstance(self.source, dict):
            return json.dumps(self.source, ensure_ascii=False, indent=1)
        if isinstance(self.source, (list, tuple)):
            return "\n".join(str(c) for c in self.source)
        return "" if self.source is None else str(self.source)

    def schema(self) -> dict | bool:
        if isinstance(self.source, (dict, bool)):
            return self.source
        try:
            schema = json.loads(str(self.source))
        except json.JSONDecodeError as exc:
            raise ConstraintError(f"The schema is not JSON: {exc}", "json", detail=str(exc)) from exc
        if not isinstance(schema, (dict, bool)):
            kind = type(schema).__name__
            raise ConstraintError("A JSON Schema is an object (or true/false).", "schema", detail=kind)
        return schema

    def choices(self) -> list[str]:
        if isinstance(self.source, (list, tuple)):
            return [str(c) for c in self.source]
        return [line.strip() for line in str(self.source).splitlines() if line.strip()]


def choice_grammar(choices: list[str]) -> str:
    """EBNF for exactly one of `choices` (each a quoted literal)."""
    return "root ::= " + " | ".join(json.dumps(c, ensure_ascii=False) for c in choices)


def compile_tool_grammar(compiler, source: dict, spacing: dict):
    """OPEN + a JSON list of calls valid against `source["schema"]` + CLOSE; unless a call is
    `required`, or instead plain text that does not start with "<" (see tools.py)."""
    import xgrammar as xgr

    call = xgr.Grammar.concat(
        xgr.Grammar.from_ebnf(f"root ::= {json.dumps(OPEN)}"),
        xgr.Grammar.from_json_schema(json.dumps(source["schema"]), strict_mode=True, **spacing),
        xgr.Grammar.from_ebnf(f"root ::= {json.dumps(CLOSE)}"),
    )
    if not source["required"]:
        call = xgr.Grammar.union(call, xgr.Grammar.from_regex(r"[^<\s][\s\S]*"))
    return compiler.compile_grammar(call)


_compilers: dict[tuple, object] = {}
_lock = threading.Lock()


def vocab_size(loaded) -> int:
    """Rows of the model's output layer: the bitmask covers every id the model can score."""
    return int(loaded.model.get_output_embeddings().weight.shape[0])


def compiler_for(loaded):
    """One xgrammar compiler per tokenizer and vocabulary, shared by every session (it caches grammars)."""
    import xgrammar as xgr

    from backends.decoding import eos_ids

    key = (getattr(loaded.key, "model", str(loaded.key)), type(loaded.tokenizer).__name__, vocab_size(loaded))
    with _lock:
        if key not in _compilers:
            info = xgr.TokenizerInfo.from_huggingface(
                loaded.tokenizer, vocab_size=vocab_size(loaded), stop_token_ids=sorted(eos_ids(loaded)) or None
            )
            _compilers[key] = xgr.GrammarCompiler(info, max_threads=1)
        return _compilers[key]


def compile_constraint(loaded, constraint: Constraint):
    """The xgrammar `CompiledGrammar` of `constraint` for this model's vocabulary."""
    constraint.validate()
    compiler = compiler_for(loaded)
    spacing = {
        "compact": dict(any_whitespace=False),
        "limited": dict(any_whitespace=True, max_whitespace_cnt=MAX_WHITESPACE),
        "any": dict(any_whitespace=True),
    }[constraint.whitespace]
    try:
        if constraint.kind == "json_schema":
            return compiler.compile_json_schema(json.dumps(constraint.schema()), strict_mode=True, **spacing)
        if constraint.kind == "json_object":
            return compiler.compile_json_schema(json.dumps({"type": "object"}), strict_mode=False, **spacing)
        if constraint.kind == "regex":
            return compiler.compile_regex(str(constraint.source))
        if constraint.kind == "choice":
            return compiler.compile_grammar(choice_grammar(constraint.choices()))
        if constraint.kind == "tool_call":
            return compile_tool_grammar(compiler, constraint.source, spacing)
        return compiler.compile_grammar(str(constraint.source))
    except (RuntimeError, ValueError) as exc:  # xgrammar's parse errors
        code = "ebnf" if constraint.kind == "ebnf" else "regex" if constraint.kind == "regex" else "schema"
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        message = f"xgrammar could not compile this {constraint.kind}: {detail}"
        raise ConstraintError(message, code, detail=detail) from exc
