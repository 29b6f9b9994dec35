"""Tools and JSON output on /v1/chat/completions: OpenAI's fields in, a grammar, `tool_calls` out.

`plan(req)` reads `response_format`, `tools`, `tool_choice` and `parallel_tool_calls` (a bad
combination, an unknown tool, a schema that is not one: a 400 `ApiError` naming the field) and
says which `backends.structured.Constraint` the reply is decoded under and which tools the prompt
lists; `prompt_messages` renders the conversation (assistant `tool_calls`, `tool` results and the
tools' system prompt) in SmolLM2's trained format (backends/structured/tools.py); `check_compiles`
compiles the grammar for the model before the first token, so a schema xgrammar cannot take is a
400 too. A reply is read back with `parse_tool_output`: `reply_message` builds OpenAI's message
(`content: null`, `tool_calls` with `call_<random>` ids, arguments as a JSON string) and
`ToolStream` turns a streamed reply into OpenAI's deltas: text streams token by token as content;
a reply that opens with `<tool_call>` is held until each call's JSON object is complete, then
sent as a delta with index, id, type, name and `arguments: ""`, followed by the arguments in
fragments, so concatenating the fragments gives exactly the non-streamed arguments.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from backends.serving.openai_schema import ApiError, ChatCompletionRequest
from backends.structured import (
    OPEN,
    Constraint,
    ConstraintError,
    ToolSpec,
    compile_constraint,
    parse_tool_output,
    pick_tools,
    render_messages,
    tool_constraint,
    tool_specs,
)

FRAGMENT_CHARS = 16  # streamed arguments come in pieces of this many characters at most


@dataclass
class Plan:
    constraint: Constraint | None = None  # None: free decoding
    specs: list[ToolSpec] = field(default_factory=list)  # the tools the prompt lists
    tools: bool = False  # the reply may hold calls: read it back with parse_tool_output
    param: str | None = None  # the field a compile error is blamed on


def _schema_problem(schema) -> str | None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return exc.message
    return None


def _json_constraint(req: ChatCompletionRequest) -> Constraint | None:
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object" or fmt.json_schema.schema_ is None:
        return Constraint("json_object", None)
    schema = fmt.json_schema.schema_
    param = "response_format.json_schema.schema"
    problem = _schema_problem(schema)
    if problem is not None:
        raise ApiError(400, f"Invalid schema for response_format {fmt.json_schema.name!r}: {problem}", param=param)
    try:
        return Constraint("json_schema", schema).validate()
    except ConstraintError as exc:
        raise ApiError(400, f"Invalid schema for response_format: {exc}", param=param) from None


def _specs(req: ChatCompletionRequest) -> list[ToolSpec]:
    for i, tool in enumerate(req.tools):
        params = tool.function.parameters
        if params is None:
            continue
        where = f"tools.[{i}].function.parameters"
        if params.get("type", "object") != "object":
            message = f"Invalid schema for function {tool.function.name!r}: the parameters must be an object schema."
            raise ApiError(400, message, param=where)
        problem = _schema_problem(params)
        if problem is not None:
            raise ApiError(400, f"Invalid schema for function {tool.function.name!r}: {problem}", param=where)
    try:
        return tool_specs([t.model_dump(exclude_none=True) for t in req.tools])
    except ConstraintError as exc:
        raise ApiError(400, str(exc), param="tools") from None


def plan(req: ChatCompletionRequest) -> Plan:
    """The grammar and the prompt's tools for this request (400 for what cannot be honoured)."""
    if not req.tools:
        for name in ("tool_choice", "parallel_tool_calls"):
            if getattr(req, name) is not None:
                raise ApiError(400, f"{name} is only allowed when tools are specified.", param=name)
    as_json = _json_constraint(req)
    if not req.tools:
        return Plan(as_json, param="response_format")
    specs = _specs(req)
    choice = req.tool_choice
    choice = choice.model_dump() if hasattr(choice, "model_dump") else choice
    try:
        allowed, required = pick_tools(specs, choice)
    except ConstraintError as exc:
        raise ApiError(400, str(exc), param="tool_choice") from None
    if not allowed:  # tool_choice "none": no tools in the prompt, no calls
        return Plan(as_json, param="response_format")
    if as_json is not None:
        raise ApiError(
            400,
            "response_format json_object/json_schema together with tools is not supported here: "
            'set tool_choice to "none" for a JSON answer, or leave response_format out for a call.',
            param="response_format",
        )
    constraint = tool_constraint(allowed, required, parallel=bool(req.parallel_tool_calls))
    return Plan(constraint, allowed, True, param="tools")


def prompt_messages(req: ChatCompletionRequest, p: Plan) -> list[dict]:
    """role + content messages a plain chat template renders (calls, results, the tools' prompt)."""
    messages = []
    for i, m in enumerate(req.messages):
        try:
            messages.append(m.as_dict())
        except ValueError as exc:
            raise ApiError(400, str(exc), param=f"messages.[{i}].content") from None
    return render_messages(messages, p.specs)


def check_compiles(loaded, p: Plan) -> None:
    if p.constraint is None:
        return
    try:
        compile_constraint(loaded, p.constraint)
    except ConstraintError as exc:
        raise ApiError(400, f"The grammar could not be built: {exc}", param=p.param) from None


def call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def arguments_text(arguments: dict) -> str:
    return json.dumps(arguments, ensure_ascii=False)


def reply_message(text: str, tools: bool, finish_reason: str | None) -> tuple[dict, str | None]:
    """OpenAI's assistant message for a whole reply, and its finish_reason ("tool_calls" for calls)."""
    message = {"role": "assistant", "content": text, "refusal": None}
    if not tools:
        return message, finish_reason
    content, calls = parse_tool_output(text)
    if not calls:
        return message, finish_reason
    message["content"] = content or None
    message["tool_calls"] = [
        {"id": call_id(), "type": "function", "function": {"name": c.name, "arguments": arguments_text(c.arguments)}}
        for c in calls
    ]
    return message, "tool_calls"


class ToolStream:
    """A streamed reply as OpenAI's chat deltas: text as content, each finished call as tool_calls."""

    def __init__(self):
        self.mode: str | None = None  # None: undecided, "text" or "calls"
        self.buffer, self.pos, self.calls = "", 0, 0
        self.decoder = json.JSONDecoder()

    def feed(self, text: str) -> list[dict]:
        if self.mode == "text":
            return [{"content": text}] if text else []
        self.buffer += text
        if self.mode is None:
            if OPEN.startswith(self.buffer):  # may still become a call
                return []
            if not self.buffer.startswith(OPEN):
                self.mode, held, self.buffer = "text", self.buffer, ""
                return [{"content": held}]
            self.mode, self.pos = "calls", len(OPEN)
        return self._finished_calls()

    def _finished_calls(self) -> list[dict]:
        out = []
        while True:
            pos = self.pos
            while pos < len(self.buffer) and self.buffer[pos] in " \t\r\n[,":
                pos += 1
            if pos >= len(self.buffer) or self.buffer[pos] != "{":
                return out
            try:
                call, end = self.decoder.raw_decode(self.buffer, pos)
            except json.JSONDecodeError:  # the object is not complete yet
                return out
            self.pos = end
            if not (isinstance(call, dict) and isinstance(call.get("name"), str)):
                continue
            out.extend(self._deltas(call["name"], call.get("arguments") or {}))

    def _deltas(self, name: str, arguments: dict) -> list[dict]:
        index, self.calls = self.calls, self.calls + 1
        head = {"index": index, "id": call_id(), "type": "function", "function": {"name": name, "arguments": ""}}
        args = arguments_text(arguments)
        pieces = [args[i : i + FRAGMENT_CHARS] for i in range(0, len(args), FRAGMENT_CHARS)]
        return [{"tool_calls": [head]}] + [
            {"tool_calls": [{"index": index, "function": {"arguments": p}}]} for p in pieces
        ]

    def finish(self, finish_reason: str | None) -> tuple[list[dict], str | None]:
        """The deltas still held (a reply that never became a call is sent as content), and the
        finish_reason ("tool_calls" when calls were sent and the reply ended on its own)."""
        if self.calls:
            return [], "tool_calls" if finish_reason == "stop" else finish_reason
        held, self.buffer = self.buffer, ""
        return ([{"content": held}] if held else []), finish_reason
