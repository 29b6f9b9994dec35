"""The OpenAI wire format: request models (validated by pydantic, shown in /docs) and the error shape.

Only what the server really does is accepted. Parameters OpenAI defines that this server cannot
honour (n > 1, penalties other than 0, echo...) are rejected with a 400 that
names them, rather than silently ignored: every refusal is a 400 `invalid_request_error` whose
`param` names the field in OpenAI's notation (`messages.[0].role`), so the official SDK raises
`openai.BadRequestError`, as it does against OpenAI and vLLM. `top_k`, `min_p` and `repetition_penalty` are accepted
as extensions, with vLLM's names, so clients that tune them for vLLM work here too.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_STOP = 4  # OpenAI's limit on stop sequences
MAX_TOP_LOGPROBS = 20  # OpenAI's limit for chat; /v1/completions allows 5


class ApiError(Exception):
    """An error the server answers in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    TYPES: ClassVar[dict[int, str]] = {
        400: "invalid_request_error",
        401: "invalid_request_error",
        404: "invalid_request_error",
        413: "invalid_request_error",
        429: "rate_limit_exceeded",
        500: "server_error",
        503: "server_error",
    }

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def body(self) -> dict:
        return error_body(self.message, self.TYPES.get(self.status, "invalid_request_error"), self.param, self.code)


def error_body(
    message: str, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class _Request(BaseModel):
    # Unknown fields are refused with their name, so a typo never silently changes nothing.
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="A model id from /v1/models")
    max_tokens: int | None = Field(None, ge=1, description="New tokens at most (the server caps it)")
    temperature: float = Field(1.0, ge=0, le=2, description="0 = greedy (always the likeliest token)")
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="Extension (vLLM's name): 0 = off")
    min_p: float = Field(0.0, ge=0, le=1, description="Extension (vLLM's name): 0 = off")
    repetition_penalty: float = Field(1.0, gt=0, le=10, description="Extension (vLLM's name): 1 = off")
    stop: str | list[str] | None = Field(None, description=f"Up to {MAX_STOP} strings that end the answer")
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    n: int = Field(1, ge=1, le=1, description="Only 1 is supported")
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    frequency_penalty: float = Field(0.0, ge=0, le=0, description="Not supported: only 0 is accepted")
    presence_penalty: float = Field(0.0, ge=0, le=0, description="Not supported: only 0 is accepted")
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value):
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences, got {len(stops)}")
        if any(not s for s in stops):
            raise ValueError("a stop sequence is empty")
        return stops

    @field_validator("stream_options")
    @classmethod
    def _stream_options(cls, value):
        unknown = sorted(set(value or {}) - {"include_usage"})
        if unknown:
            raise ValueError(f"unknown stream_options {unknown}; only include_usage is supported")
        return value

    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))

    def check(self) -> None:
        """What one field's validator cannot see: fields that only make sense together (400 if not)."""
        if self.stream_options is not None and not self.stream:
            raise ApiError(
                400,
                "stream_options is only allowed with stream=true: set stream or leave it out.",
                param="stream_options",
            )


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    arguments: str = Field("{}", description="The arguments as a JSON string")


class ToolCall(BaseModel):
    """A call the assistant made earlier in the conversation (sent back with its result)."""

    model_config = ConfigDict(extra="ignore")

    id: str = ""
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Letters, digits, _ and -, up to 64")
    description: str | None = None
    parameters: dict[str, Any] | None = Field(None, description="A JSON Schema of the arguments object")
    strict: bool | None = Field(None, description="Accepted; calls are always decoded under a grammar")


class Tool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: FunctionDef


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients send name, refusal, audio... on plain messages

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _shape(self):
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id of the call it answers")
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"only assistant messages carry tool_calls, not {self.role!r}")
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content is missing (only an assistant message with tool_calls may omit it)")
        return self

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        parts = []
        for part in self.content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ValueError(f"only text content parts are supported, got type {part.get('type')!r}")
            parts.append(part["text"])
        return "".join(parts)

    def as_dict(self) -> dict:
        """The message as tools.render_messages reads it (OpenAI's shape, content as text)."""
        out = {"role": self.role, "content": self.text()}
        if self.tool_calls:
            out["tool_calls"] = [c.model_dump() for c in self.tool_calls]
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        return out


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """text, json_object (any JSON object) or json_schema (one value valid against the schema)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self):
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type 'json_schema' needs a json_schema object with name and schema")
        if self.type != "json_schema" and self.json_schema is not None:
            raise ValueError(f"json_schema is only allowed with type 'json_schema', not {self.type!r}")
        return self


class ChatCompletionRequest(_Request):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="The newer name of max_tokens")
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    tools: list[Tool] | None = Field(None, description="Function tools; calls are decoded under a grammar")
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = Field(None, description="true lets a reply hold several calls (default: one)")
    response_format: ResponseFormat | None = None

    def new_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def check(self) -> None:
        super().check()
        if self.top_logprobs is not None and not self.logprobs:
            raise ApiError(
                400,
                f"top_logprobs={self.top_logprobs} needs logprobs=true: set logprobs to true to get them.",
                param="top_logprobs",
            )


class CompletionRequest(_Request):
    prompt: str | list[str] = Field(description="One prompt (a list of one string is accepted)")
    logprobs: int | None = Field(None, ge=0, le=5, description="Top alternatives per token, 0 to 5")
    echo: bool = Field(False, description="Not supported: only false")
    suffix: str | None = Field(None, max_length=0, description="Not supported")
    best_of: int | None = Field(None, ge=1, le=1)

    @field_validator("echo")
    @classmethod
    def _echo(cls, value):
        if value:
            raise ValueError("echo=true is not supported")
        return value

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value):
        if isinstance(value, list):
            if len(value) != 1:
                raise ValueError(f"send one prompt per request (got a list of {len(value)})")
            value = value[0]
        return value

    def new_tokens(self) -> int | None:
        return self.max_tokens


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


def field_param(loc: tuple, kind: str = "") -> str | None:
    """The field a pydantic error's location names, in OpenAI's notation: ("body", "messages", 0,
    "role") -> "messages.[0].role". Union branch tags pydantic adds ("str", "list[str]") are dropped;
    an unknown field (extra_forbidden) is named as sent; a body that is not JSON names none."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    if kind.startswith("json") or not parts or not isinstance(parts[0], str):
        return None
    names = []
    for i, part in enumerate(parts):
        if isinstance(part, int):
            names.append(f"[{part}]")
        elif part in FIELD_NAMES or (kind == "extra_forbidden" and i == len(parts) - 1):
            names.append(part)
        else:
            break
    return ".".join(names) or None


FIELD_NAMES = frozenset(
    name
    for model in (
        ChatCompletionRequest,
        CompletionRequest,
        EmbeddingRequest,
        ChatMessage,
        ToolCall,
        FunctionCall,
        Tool,
        FunctionDef,
        NamedToolChoice,
        ResponseFormat,
        JsonSchemaFormat,
    )
    for name in model.model_fields
) | {"schema"}
