"""Tool calling with a grammar: OpenAI-style tool definitions in, calls that always parse out.

SmolLM2's chat template renders only role + content, but SmolLM2-Instruct was trained on function
calling in one format (its model card's): the tools listed in the system message inside <tools>,
and a reply that is a JSON list of calls inside <tool_call> tags,

    <tool_call>[{"name": "calculator", "arguments": {"expression": "2+2"}}]</tool_call>

That is the format used here (`tools_prompt` writes the model card's system text). The grammar
(`tool_constraint`) makes that shape the only one possible where a call is required: a list of
one or more calls, each `name` one of the tools' names and its `arguments` valid against that
tool's JSON Schema (one `anyOf` branch per tool). With `tool_choice="auto"` the grammar is "calls,
or plain text that does not start with `<`", so the model's own first token decides whether it
calls; `"none"` is no grammar and no tools in the prompt; a named function allows only that one.
`parse_tool_output` reads a reply back into (text, calls); the server and the agent page share both.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

from backends.structured.grammar import CLOSE, OPEN, Constraint, ConstraintError

CHOICES = ("auto", "none", "required")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict  # a JSON Schema for the arguments object


def tool_specs(tools: list[dict]) -> list[ToolSpec]:
    """OpenAI's `tools` list (`{"type": "function", "function": {name, description, parameters}}`),
    or bare function dicts, checked."""
    specs, seen = [], set()
    for i, tool in enumerate(tools or []):
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ConstraintError(f"Tool {i + 1} has no function name.", "tool", index=i + 1)
        if fn["name"] in seen:
            raise ConstraintError(f"Two tools are named {fn['name']!r}.", "tool", index=i + 1)
        seen.add(fn["name"])
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            message = f"Tool {fn['name']!r}: parameters must be a JSON Schema object."
            raise ConstraintError(message, "tool", index=i + 1)
        specs.append(ToolSpec(fn["name"], str(fn.get("description") or ""), params))
    return specs


def call_schema(specs: list[ToolSpec], parallel: bool = False) -> dict:
    """The JSON Schema of a reply's calls: a list of {"name": <a tool>, "arguments": <its parameters>},
    one call long unless `parallel` (OpenAI's `parallel_tool_calls`: a 135M model, let go on, keeps
    appending calls nobody asked for)."""
    branches = [
        {
            "type": "object",
            "properties": {"name": {"const": s.name}, "arguments": s.parameters},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for s in specs
    ]
    items = branches[0] if len(branches) == 1 else {"anyOf": branches}
    return {"type": "array", "items": items, "minItems": 1, **({} if parallel else {"maxItems": 1})}


def pick_tools(specs: list[ToolSpec], choice) -> tuple[list[ToolSpec], bool]:
    """(the tools a call may use, whether a call is required) for OpenAI's `tool_choice`."""
    if choice is None or choice == "auto":
        return specs, False
    if choice == "required":
        return specs, True
    if choice == "none":
        return [], False
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if not name:
        raise ConstraintError(f"tool_choice {choice!r} is not auto, none, required or a named function.", "choice_bad")
    named = [s for s in specs if s.name == name]
    if not named:
        message = f"tool_choice names {name!r}, which is not among the tools."
        raise ConstraintError(message, "choice_unknown", name=name)
    return named, True


def tool_constraint(specs: list[ToolSpec], required: bool, parallel: bool = False) -> Constraint:
    """The grammar for a reply: calls when `required`, else calls or plain text (see `call_schema`)."""
    if not specs:
        raise ConstraintError("A tool call grammar needs at least one tool.", "no_tools")
    return Constraint("tool_call", {"schema": call_schema(specs, parallel), "required": bool(required)})


SYSTEM = """You are an expert in composing functions. You are given a question and a set of possible functions.
Based on the question, you will need to make one or more function/tool calls to achieve the purpose.
If none of the functions can be used, point it out and refuse to answer.
If the given question lacks the parameters required by the function, also point it out.

You have access to the following tools:
<tools>{tools}</tools>

The output MUST strictly adhere to the following format, and NO other text MUST be included.
The example format is as follows. Please make sure the parameter type is correct. \
If no function call is needed, please make the tool calls an empty list '[]'.
<tool_call>[
{{"name": "func_name1", "arguments": {{"argument1": "value1", "argument2": "value2"}}}},
... (more tool calls as required)
]</tool_call>"""


def tools_prompt(specs: list[ToolSpec]) -> str:
    """The system-message text that tells the model its tools and the call format (SmolLM2's)."""
    listed = [{"name": s.name, "description": s.description, "parameters": s.parameters} for s in specs]
    return SYSTEM.format(tools=json.dumps(listed, ensure_ascii=False))


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict


def parse_tool_output(text: str) -> tuple[str, list[ToolCall]]:
    """(plain text, calls) of a reply; text outside the call tags is kept as content."""
    calls, rest, pos = [], [], 0
    while True:
        start = text.find(OPEN, pos)
        if start < 0:
            rest.append(text[pos:])
            break
        end = text.find(CLOSE, start)
        if end < 0:
            rest.append(text[pos:])
            break
        rest.append(text[pos:start])
        try:
            body = json.loads(text[start + len(OPEN) : end])
        except json.JSONDecodeError:
            body = None
        items = body if isinstance(body, list) else [body]
        good = [
            b
            for b in items
            if isinstance(b, dict) and isinstance(b.get("name"), str) and isinstance(b.get("arguments"), dict)
        ]
        if body is not None and len(good) == len(items):
            calls.extend(ToolCall(b["name"], b["arguments"]) for b in good)
        else:
            rest.append(text[start : end + len(CLOSE)])
        pos = end + len(CLOSE)
    return "".join(rest).strip(), calls


def render_messages(messages: list[dict], specs: list[ToolSpec]) -> list[dict]:
    """OpenAI-style messages (assistant `tool_calls`, `tool` results) as role + content messages a
    plain chat template renders: the tools go into the system message, a call into the assistant's
    content in the call format, a tool result into a `tool` turn wrapped in <tool_response>."""
    out: list[dict] = []
    for m in messages:
        role, content = m.get("role"), m.get("content") or ""
        if isinstance(content, list):  # OpenAI content parts: keep the text parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if role == "developer":
            role = "system"
        if role == "assistant" and m.get("tool_calls"):
            calls = []
            for call in m["tool_calls"]:
                fn = call.get("function", {})
                args = fn.get("arguments") or "{}"
                with contextlib.suppress(json.JSONDecodeError):
                    args = json.loads(args) if isinstance(args, str) else args
                calls.append({"name": fn.get("name"), "arguments": args})
            block = OPEN + json.dumps(calls, ensure_ascii=False) + CLOSE
            content = f"{content}\n{block}" if content else block
        elif role == "tool":
            content = f"<tool_response>{content}</tool_response>"
        out.append({"role": role, "content": content})
    if specs:
        block = tools_prompt(specs)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + block}
        else:
            out.insert(0, {"role": "system", "content": block})
    return out
