"""The agent on a remote engine. Our own server stands in for a remote one (a real HTTP server on a
free port, the same model, the tool grammar applied server-side, greedy): its first call equals the
in-app run's, which is the independent reference. Replies our server can never send (a tool we do
not have, arguments that are not JSON) come from a tiny stand-in HTTP server (the outside world,
mocked); an address where nothing listens gives a clear RemoteError."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from backends import agents as A
from backends.models.cache import shared_cache
from backends.serving import RemoteEngine, RemoteError
from backends.serving.app import ServerSettings
from backends.serving.local import ServerThread

MODEL = "smollm2-135m-instruct"
QUESTION = "What is 17 times 23?"
ONE_STEP = A.AgentConfig(tools=("calculator", "lookup_fact"), tool_choice="required", max_steps=1)


def test_a_remote_run_makes_the_same_first_call_as_the_in_app_run():
    local = A.run_agent(shared_cache().get(MODEL), QUESTION, ONE_STEP)
    with ServerThread(ServerSettings(gradio=False)) as url:
        remote = A.run_agent(None, QUESTION, ONE_STEP, engine=RemoteEngine(url + "/v1", MODEL))
    here, there = local.steps[0], remote.steps[0]
    assert there.code == "call" and remote.stopped == "step_limit"
    assert (there.name, there.arguments) == (here.name, here.arguments)
    assert there.result == here.result and there.error is None
    sent = json.loads(there.raw)  # the trace shows what came back: OpenAI's tool_calls, arguments as a string
    assert sent["finish_reason"] == "tool_calls" and sent["content"] == ""
    assert [(c["name"], json.loads(c["arguments"])) for c in sent["tool_calls"]] == [(here.name, here.arguments)]
    assert there.messages == [{"role": "user", "content": QUESTION}]
    assert there.prompt_tokens == here.prompt_tokens  # the server rendered the same prompt, tools included


class StandIn(BaseHTTPRequestHandler):
    """An OpenAI-style server that answers every chat request with the reply it was given."""

    reply: ClassVar[dict] = {}
    received: ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append(body)
        data = json.dumps(self.reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def completion(name: str, arguments: str) -> dict:
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "stand-in",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
            }
        ],
        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
    }


@pytest.fixture
def stand_in():
    StandIn.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_a_tool_the_agent_does_not_have_stops_the_run(stand_in):
    StandIn.reply = completion("delete_everything", '{"path": "/"}')
    trace = A.run_agent(None, "q", ONE_STEP, engine=RemoteEngine(stand_in, "stand-in"))
    step = trace.steps[0]
    assert trace.stopped == "unknown_tool" and step.code == "unknown_tool" and step.result is None
    assert step.name == "delete_everything" and step.arguments == {"path": "/"}
    assert step.error == "Unknown tool 'delete_everything'; the tools are: calculator, lookup_fact."
    assert step.error_code == "tool.unknown" and step.error_values["name"] == "delete_everything"
    assert json.loads(step.raw)["tool_calls"] == [{"name": "delete_everything", "arguments": '{"path": "/"}'}]
    assert step.prompt_tokens == 42
    # What was sent: the chosen tools' schemas, a required first call, greedy, the step's token budget.
    sent = StandIn.received[0]
    assert [t["function"]["name"] for t in sent["tools"]] == ["calculator", "lookup_fact"]
    assert sent["tools"][0] == A.TOOLS["calculator"].openai()
    assert sent["tool_choice"] == "required" and sent["temperature"] == 0
    assert sent["max_tokens"] == ONE_STEP.max_new_tokens and sent["messages"] == [{"role": "user", "content": "q"}]


def test_arguments_that_are_not_json_stop_the_run_with_the_parsers_message(stand_in):
    StandIn.reply = completion("calculator", '{"expression": "2+2"')
    trace = A.run_agent(None, "q", ONE_STEP, engine=RemoteEngine(stand_in, "stand-in"))
    step = trace.steps[0]
    assert trace.stopped == "bad_arguments" and step.code == "bad_arguments" and step.result is None
    with pytest.raises(json.JSONDecodeError) as parsed:  # the independent reference: Python's own parser
        json.loads('{"expression": "2+2"')
    assert str(parsed.value) in step.error and step.error.startswith("The arguments for calculator are not valid JSON")
    assert step.error_code == "loop.bad_json" and step.error_values["tool"] == "calculator"
    StandIn.reply = completion("calculator", "[1, 2]")
    trace = A.run_agent(None, "q", ONE_STEP, engine=RemoteEngine(stand_in, "stand-in"))
    assert trace.stopped == "bad_arguments" and trace.steps[0].error == "Arguments must be a JSON object, not [1, 2]."


def test_a_second_step_is_sent_the_call_and_its_result_and_auto_after_the_first(stand_in):
    StandIn.reply = completion("calculator", '{"expression": "6*7"}')
    config = A.AgentConfig(tools=("calculator",), tool_choice="required", max_steps=2)
    trace = A.run_agent(None, "q", config, engine=RemoteEngine(stand_in, "stand-in"))
    assert [s.code for s in trace.steps] == ["call", "repeated"] and trace.steps[0].result == "42"
    first, second = StandIn.received
    assert first["tool_choice"] == "required" and second["tool_choice"] == "auto"
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_0", "content": "42"}
    assert second["messages"][-2]["tool_calls"][0]["function"] == {
        "name": "calculator",
        "arguments": '{"expression": "6*7"}',
    }


def test_an_address_where_nothing_listens_is_a_clear_error():
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RemoteError, match=rf"Could not connect to http://127.0.0.1:{port}/v1: is the server running"):
        A.run_agent(None, "q", ONE_STEP, engine=RemoteEngine(f"http://127.0.0.1:{port}/v1", MODEL, timeout=5))
