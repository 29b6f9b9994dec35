"""The guarded copy of the chat route: POST /guarded/v1/chat/completions and GET /guarded/v1/models.

An OpenAI client pointed at `f"{server}/guarded/v1"` talks to the same models through the
guardrails of backends.trust (`check`):

- input: the text of the request's user and tool messages is checked before the model runs;
  blocked -> an OpenAI-shaped reply whose message is a refusal, finish_reason "content_filter",
  usage all zeros, and no model call;
- output: the answer is generated in full (the model's own run, as the plain route makes it),
  then checked (the leak check reads the request's system and developer messages); blocked -> the
  answer is replaced by the refusal, finish_reason "content_filter", logprobs dropped;
- streaming: the answer is generated and checked first, then sent as the plain route's SSE chunks
  (the same deltas, logprobs and usage replayed), or as a refusal's chunks.

When nothing is flagged the body is exactly what the plain route gives (ids and timestamps aside).
Every reply carries an `x-guardrail` header: `pass`, or `<stage>:<check>` for the check that blocked
(e.g. `input:patterns`, `output:leak`). Request validation, errors and the API key are the plain
route's own: `add_guarded_routes` is called by create_app with its `run_for` and key check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, StreamingResponse

from backends import trust
from backends.serving import chat as C
from backends.serving import responses as R
from backends.serving import tools_api as T
from backends.serving.models import find_model
from backends.serving.openai_schema import ChatCompletionRequest

PREFIX = "/guarded"
HEADER = "x-guardrail"
FILTERED = "content_filter"
INPUT_ROLES, SYSTEM_ROLES = ("user", "tool"), ("system", "developer")
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def request_texts(req: ChatCompletionRequest) -> tuple[str, str]:
    """(what the input check reads: user and tool messages; the system prompt the leak check looks for)."""
    checked = "\n\n".join(m.text() for m in req.messages if m.role in INPUT_ROLES)
    system = "\n\n".join(m.text() for m in req.messages if m.role in SYSTEM_ROLES)
    return checked, system


class Replay:
    """A finished `chat.Run` whose deltas are iterated again: responses.py builds the plain route's
    bodies from it, as if the run were happening now."""

    def __init__(self, run: C.Run):
        self.run, self.deltas = run, list(run)

    def __iter__(self) -> Iterator[C.Delta]:
        return iter(self.deltas)

    def __getattr__(self, name):
        return getattr(self.run, name)

    def text(self):
        return "".join(d.text for d in self.deltas), [s for d in self.deltas for s in d.steps]


def refusal_body(model_id: str, usage: dict | None = None) -> dict:
    return {
        "id": R.new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": trust.REFUSAL, "refusal": trust.REFUSAL},
                "logprobs": None,
                "finish_reason": FILTERED,
            }
        ],
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def refusal_stream(body: dict, include_usage: bool) -> Iterator[str]:
    """A refusal as OpenAI's chunks: the role, the refusal text, the finish, the usage when asked."""
    head = {k: body[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

    def chunk(delta: dict, finish: str | None) -> dict:
        one = head | {"choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return one | {"usage": None} if include_usage else one

    yield R.sse(chunk({"role": "assistant", "content": ""}, None))
    yield R.sse(chunk({"content": trust.REFUSAL}, None))
    yield R.sse(chunk({}, FILTERED))
    if include_usage:
        yield R.sse(head | {"choices": [], "usage": body["usage"]})
    yield R.sse("[DONE]")


def _reply(body: dict, stream: bool, include_usage: bool, verdict: str):
    headers = {HEADER: verdict}
    if stream:
        return StreamingResponse(
            refusal_stream(body, include_usage), media_type="text/event-stream", headers=STREAM_HEADERS | headers
        )
    return JSONResponse(body, headers=headers)


def add_guarded_routes(app: FastAPI, run_for: Callable, check_key: Callable, models: Callable) -> None:
    """The guarded routes on `app`, built from create_app's own `run_for` (request -> Run), key check
    and model list."""

    @app.get(PREFIX + "/v1/models", tags=["guarded"], dependencies=[Depends(check_key)])
    def guarded_models() -> dict:
        return models()

    @app.post(PREFIX + "/v1/chat/completions", tags=["guarded"], dependencies=[Depends(check_key)])
    def guarded_chat(req: ChatCompletionRequest):
        plan = T.plan(req)
        messages = T.prompt_messages(req, plan)  # validates the messages as the plain route does
        checked, system = request_texts(req)
        first = trust.check(checked, "input")
        if first.blocked:
            req.check()
            served = find_model(req.model, "causal-lm")  # 404 for an unknown model, without loading it
            return _reply(refusal_body(served.id), req.stream, req.include_usage(), "input:" + first.blocked_by)
        top_n = (req.top_logprobs or 0) if req.logprobs else 0
        run, model_id = run_for(req, lambda loaded: C.chat_prompt_ids(loaded, messages), top_n, "messages", plan)
        replay = Replay(run)
        answer, _ = replay.text()
        second = trust.check(answer, "output", system_prompt=system or None, prompt=checked)
        if second.blocked:
            body = refusal_body(model_id, R.usage(run))
            return _reply(body, req.stream, req.include_usage(), "output:" + second.blocked_by)
        headers = {HEADER: "pass"}
        if req.stream:
            events = R.chat_stream(replay, model_id, req.logprobs, top_n, req.include_usage(), plan.tools)
            return StreamingResponse(events, media_type="text/event-stream", headers=STREAM_HEADERS | headers)
        body = R.chat_completion(replay, model_id, req.logprobs, top_n, plan.tools)
        return JSONResponse(body, headers=headers)
