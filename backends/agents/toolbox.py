"""The agent's tools: each an OpenAI function schema beside the Python function that runs it.

None reaches the shell, the network or the disk. `send_message` is the one tool with a side
effect, and it is simulated: the message goes into the run's outbox in memory, shown in the trace.
`run_tool` checks the arguments against the schema with `jsonschema` first, and turns any
exception into an error message: a tool never raises out of the agent loop. The message is English
(the model reads it back); `error_code` and `error_values` carry the same for the page's own
words (agents.err.<code>): a library's text (jsonschema's message, a Python exception's) stays
as it is, in `error_values["detail"]`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import jsonschema

from backends.agents import facts, units
from backends.agents.calculator import calculate
from backends.agents.documents import Search, format_passages
from backends.core.coded import CodedError


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict  # JSON Schema of the arguments object
    fn: Callable[..., object]
    side_effect: bool = False  # changes something outside the run (asks the user first when that defence is on)

    def openai(self) -> dict:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass
class ToolOutcome:
    result: str | None  # the text the model reads back (None on error)
    error: str | None = None
    code: str = "ok"  # ok | unknown_tool | bad_arguments | tool_error | declined
    error_code: str | None = None  # the error's own code (agents.err.<error_code>), None when there is none
    error_values: dict = field(default_factory=dict)  # its values; "detail": a library's text, untranslated


class ToolError(CodedError, RuntimeError):
    """A tool that cannot run here (no collection open): the message, `code` and `values`."""


@dataclass
class Context:
    """Per-run state a tool may touch: the simulated outbox, and where documents are searched."""

    search: Search | None = None
    delimit: bool = False  # wrap retrieved text in <document> tags
    outbox: list[dict] = field(default_factory=list)


def _obj(props: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _str(description: str, max_len: int = 80, **extra) -> dict:
    return {"type": "string", "description": description, "maxLength": max_len, **extra}


def _send(ctx: Context, to: str, text: str) -> str:
    ctx.outbox.append({"to": to, "text": text})
    return f"Message to {to} queued (simulated: nothing leaves the app)."


def _search(ctx: Context, query: str) -> str:
    if ctx.search is None:
        raise ToolError("No document collection is open.", "search.no_collection")
    return format_passages(ctx.search(query), ctx.delimit)


def _format_number(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def build_tools() -> dict[str, Tool]:
    """name -> Tool, in the order the page lists them. Functions take (ctx, **arguments)."""
    date = {"type": "string", "description": "a date as YYYY-MM-DD", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
    tools = [
        Tool(
            "calculator",
            "Evaluate an arithmetic expression (numbers, + - * / // % **, parentheses, sqrt, round, abs).",
            _obj({"expression": _str("the arithmetic expression, e.g. 12*(3+4)", 60)}, ["expression"]),
            lambda ctx, expression: _format_number(calculate(expression)),
        ),
        Tool(
            "convert_units",
            "Convert a quantity between units of length, mass, temperature, time or volume.",
            _obj(
                {
                    "value": {"type": "number"},
                    "from_unit": _str("unit to convert from, e.g. km, lb, c", 12),
                    "to_unit": _str("unit to convert to, e.g. mi, kg, f", 12),
                },
                ["value", "from_unit", "to_unit"],
            ),
            lambda ctx, value, from_unit, to_unit: _format_number(round(units.convert(value, from_unit, to_unit), 6)),
        ),
        Tool(
            "date_diff",
            "Number of days (or weeks) from the start date to the end date.",
            _obj(
                {"start": date, "end": date, "unit": {"type": "string", "enum": list(facts.DATE_UNITS)}},
                ["start", "end"],
            ),
            lambda ctx, start, end, unit="days": _format_number(facts.date_diff(start, end, unit)),
        ),
        Tool(
            "date_add",
            "The date a number of days after (or before, if negative) a given date.",
            _obj({"date": date, "days": {"type": "integer"}}, ["date", "days"]),
            lambda ctx, date, days: facts.date_add(date, days),
        ),
        Tool(
            "lookup_fact",
            "Look up a fact about a country: capital, population_millions, area_km2, currency or continent.",
            _obj(
                {
                    "country": {"type": "string", "enum": facts.countries()},
                    "field": {"type": "string", "enum": facts.fields()},
                },
                ["country", "field"],
            ),
            lambda ctx, country, field: _format_number(facts.lookup_fact(country, field)),
        ),
        Tool(
            "search_documents",
            "Search the user's documents and return the most relevant passages.",
            _obj({"query": _str("what to search for", 100)}, ["query"]),
            lambda ctx, query: _search(ctx, query),
        ),
        Tool(
            "send_message",
            "Send a short message to a contact (has a side effect).",
            _obj({"to": _str("the recipient", 40), "text": _str("the message", 160)}, ["to", "text"]),
            lambda ctx, to, text: _send(ctx, to, text),
            side_effect=True,
        ),
    ]
    return {tool.name: tool for tool in tools}


TOOLS = build_tools()
TOOL_NAMES = tuple(TOOLS)


def schema_problem(tool: Tool, arguments) -> tuple[str, str, dict] | None:
    """None when `arguments` fit the tool's schema, else (message, code, values): jsonschema's
    message with the path, and the same as a code ("tool.schema" / "tool.schema_at")."""
    try:
        jsonschema.validate(arguments, tool.parameters)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        message = f"Arguments for {tool.name} do not fit its schema{f' at {where}' if where else ''}: {exc.message}"
        values = {"tool": tool.name, "detail": exc.message} | ({"where": where} if where else {})
        return message, "tool.schema_at" if where else "tool.schema", values
    return None


def validate_arguments(tool: Tool, arguments) -> str | None:
    """None when `arguments` fit the tool's schema, else jsonschema's message with the path."""
    problem = schema_problem(tool, arguments)
    return None if problem is None else problem[0]


def run_tool(name: str, arguments, ctx: Context, allowed: dict[str, Tool] | None = None) -> ToolOutcome:
    """Check, then run, one call; every failure comes back as an outcome with its message."""
    tools = TOOLS if allowed is None else allowed
    tool = tools.get(name)
    if tool is None:
        names = ", ".join(tools)
        message = f"Unknown tool {name!r}; the tools are: {names}."
        return ToolOutcome(None, message, "unknown_tool", "tool.unknown", {"name": str(name), "tools": names})
    problem = schema_problem(tool, arguments)
    if problem:
        return ToolOutcome(None, problem[0], "bad_arguments", problem[1], problem[2])
    try:
        return ToolOutcome(str(tool.fn(ctx, **arguments)))
    except Exception as exc:  # noqa: BLE001 -- a tool that raises ends the step with its message, never the loop
        message = f"{tool.name} failed: {type(exc).__name__}: {exc}"
        if isinstance(exc, CodedError) and exc.code:  # our own tools' refusals: worded by the page
            return ToolOutcome(None, message, "tool_error", exc.code, {"tool": tool.name, **exc.values})
        values = {"tool": tool.name, "detail": f"{type(exc).__name__}: {exc}"}
        return ToolOutcome(None, message, "tool_error", "tool.failed", values)


def describe_call(name: str, arguments) -> str:
    return f"{name}({json.dumps(arguments, ensure_ascii=False)})"
