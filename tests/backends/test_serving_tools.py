"""Tools and JSON output on the live server, through the official `openai` SDK and raw HTTP.

Expected values come from independent references: the request's own JSON Schemas checked with
`jsonschema`, and OpenAI's documented shapes (a call's id, type, name and arguments string; the
first streamed delta of a call carries index, id, type, name and arguments ""; later ones only
index and an arguments fragment; finish_reason "tool_calls"; 400 errors as
{"error": {"message", "type": "invalid_request_error", "param", "code"}})."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest

from backends.serving.app import ServerSettings
from backends.serving.local import ServerThread

LM = "smollm2-135m-instruct"
WEATHER = {
    "type": "object",
    "properties": {"location": {"type": "string", "maxLength": 40}},
    "required": ["location"],
}
MAGIC = {"type": "object", "properties": {"input": {"type": "integer"}}, "required": ["input"]}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "The weather in a city", "parameters": WEATHER},
    },
    {"type": "function", "function": {"name": "magic_function", "description": "A magic number", "parameters": MAGIC}},
]
PARAMS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def base_url():
    with ServerThread(ServerSettings(gradio=False, max_tokens=64)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url):
    return openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=300)


def check_call(call, names):
    """One call in OpenAI's documented shape, its arguments valid against its tool's parameters."""
    assert call.type == "function" and call.id.startswith("call_") and len(call.id) > len("call_")
    assert call.function.name in names
    jsonschema.validate(json.loads(call.function.arguments), PARAMS[call.function.name])


def test_json_schema_strict_output_validates_against_the_schema(client):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model=LM,
        messages=[{"role": "user", "content": "What is the capital of France and its population? Answer in JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}},
        temperature=0,
        max_tokens=48,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    jsonschema.validate(json.loads(choice.message.content), schema)


def test_json_object_output_is_a_json_object(client):
    reply = client.chat.completions.create(
        model=LM,
        messages=[{"role": "user", "content": "What is the capital of France and its population? Answer in JSON."}],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=48,
    )
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_required_and_named_tool_choice_return_a_valid_call(client):
    reply = client.chat.completions.create(
        model=LM, messages=ASK, tools=TOOLS, tool_choice="required", temperature=0, max_tokens=48
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None and len(choice.message.tool_calls) == 1
    check_call(choice.message.tool_calls[0], set(PARAMS))

    named = {"type": "function", "function": {"name": "magic_function"}}
    reply = client.chat.completions.create(
        model=LM, messages=ASK, tools=TOOLS, tool_choice=named, temperature=0, max_tokens=48
    )
    assert reply.choices[0].finish_reason == "tool_calls"
    (call,) = reply.choices[0].message.tool_calls
    check_call(call, {"magic_function"})


def test_tool_choice_none_returns_text(client):
    reply = client.chat.completions.create(
        model=LM, messages=ASK, tools=TOOLS, tool_choice="none", temperature=0, max_tokens=12
    )
    message = reply.choices[0].message
    assert message.tool_calls is None and isinstance(message.content, str) and message.content
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_streamed_call_deltas_reassemble_into_the_non_streamed_call(client):
    kwargs = dict(model=LM, messages=ASK, tools=TOOLS, tool_choice="required", temperature=0, max_tokens=48)
    whole = client.chat.completions.create(**kwargs).choices[0].message.tool_calls[0]
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    first, rest = deltas[0][0], [d[0] for d in deltas[1:]]
    assert first.index == 0 and first.id.startswith("call_") and first.type == "function"
    assert first.function.name == whole.function.name and first.function.arguments == ""
    assert rest and all(d.index == 0 and d.id is None and d.function.name is None for d in rest)
    assert "".join(d.function.arguments for d in rest) == whole.function.arguments
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_plain_text_under_tool_choice_auto_streams_token_by_token(client):
    stream = client.chat.completions.create(
        model=LM,
        messages=[{"role": "user", "content": "Hello! How are you?"}],
        tools=TOOLS,
        tool_choice="none",
        temperature=0,
        max_tokens=8,
        stream=True,
    )
    contents = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    auto = client.chat.completions.create(
        model=LM,
        messages=[{"role": "user", "content": "Hello! How are you?"}],
        tools=TOOLS,
        temperature=0,
        max_tokens=8,
        stream=True,
    )
    chunks = list(auto)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    calls = [c for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert contents and (calls or len(texts) > 1)  # text comes in several deltas, not held to the end


def test_a_tool_result_round_trip_is_accepted(client):
    messages = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc123",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc123", "content": "Sunny, 24 C"},
    ]
    reply = client.chat.completions.create(model=LM, messages=messages, tools=TOOLS, temperature=0, max_tokens=16)
    message = reply.choices[0].message
    assert message.content or message.tool_calls


BAD = [
    ("tool_choice", {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}),
    ("tool_choice", {"tool_choice": "required"}),
    ("tool_choice", {"tools": TOOLS, "tool_choice": "any"}),
    ("parallel_tool_calls", {"parallel_tool_calls": True}),
    (
        "response_format.json_schema.schema",
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}},
    ),
    ("response_format.json_schema.name", {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}),
    ("response_format", {"response_format": {"type": "json_schema"}}),
    ("response_format.type", {"response_format": {"type": "xml"}}),
    ("response_format", {"tools": TOOLS, "response_format": {"type": "json_object"}}),
    (
        "tools.[0].function.parameters",
        {
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": 3}}}
            ]
        },
    ),
    (
        "tools.[0].function.parameters",
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]},
    ),
    ("tools", {"tools": [TOOLS[0], TOOLS[0]]}),
    ("tools.[0].type", {"tools": [{"type": "retrieval", "function": TOOLS[0]["function"]}]}),
    ("messages.[1]", {"messages": [*ASK, {"role": "tool", "content": "24 C"}]}),
]


@pytest.mark.parametrize(("param", "extra"), BAD, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BAD)])
def test_bad_tool_and_format_requests_answer_400_in_openais_shape(base_url, param, extra):
    body = {"model": LM, "messages": ASK, "max_tokens": 4} | extra
    response = httpx.post(base_url + "/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error


def test_the_sdk_raises_bad_request_error(client):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=LM, messages=ASK, tool_choice="required", max_tokens=4)
