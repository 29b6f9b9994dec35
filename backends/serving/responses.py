"""OpenAI response bodies for chat and text completions, whole or as server-sent events.

A stream is `data: {json}` events ending with `data: [DONE]`: for chat the first chunk carries the
role, then content chunks, then one with `finish_reason`; with `stream_options.include_usage` every
one of them carries `"usage": null` and a last chunk with no choices carries the usage. An error
after the first byte (the queue filled up mid-answer) arrives as a `data: {"error": ...}` event,
then `[DONE]`. With tools, chat replies go through tools_api (`tool_calls` whole or as deltas).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

from backends.core.scheduler import Cancelled, QueueFull
from backends.serving.chat import Delta, Run
from backends.serving.logprobs import chat_logprobs, completion_logprobs
from backends.serving.openai_schema import error_body
from backends.serving.tools_api import ToolStream, reply_message


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(run: Run) -> dict:
    return {
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "total_tokens": run.prompt_tokens + run.completion_tokens,
    }


def sse(data) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def chat_completion(run: Run, model_id: str, logprobs: bool, top_n: int, tools: bool = False) -> dict:
    text, steps = run.text()
    message, finish_reason = reply_message(text, tools, run.finish_reason)
    return {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": chat_logprobs(run.loaded.tokenizer, steps, top_n) if logprobs else None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage(run),
    }


def text_completion(run: Run, model_id: str, logprobs: int | None) -> dict:
    text, steps = run.text()
    return {
        "id": new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "text": text,
                "finish_reason": run.finish_reason,
                "logprobs": (
                    completion_logprobs(run.loaded.tokenizer, steps, logprobs) if logprobs is not None else None
                ),
            }
        ],
        "usage": usage(run),
    }


def _events(
    run: Run, deltas: Iterator[Delta], first: Delta | None, chunk, include_usage: bool, head: dict | None = None
) -> Iterator[str]:
    """SSE lines for a run whose first delta was already computed (so errors before it became HTTP errors).

    `chunk` returns one body, or a list of bodies (none: nothing to send yet). With include_usage
    every chunk says `"usage": null` and one last chunk, with no choices, carries
    the usage, as OpenAI documents."""

    def send(body: dict | list[dict]) -> Iterator[str]:
        for one in body if isinstance(body, list) else [body]:
            yield sse(one | {"usage": None} if include_usage else one)

    try:
        if head is not None:
            yield from send(head)
        if first is not None:
            yield from send(chunk(first, None))
            for delta in deltas:
                yield from send(chunk(delta, None))
        yield from send(chunk(Delta(""), run.finish_reason))
        if include_usage:
            yield sse(chunk(None, None) | {"choices": [], "usage": usage(run)})
    except (QueueFull, Cancelled) as exc:
        yield sse(error_body(f"Generation stopped: {exc}", "rate_limit_exceeded", code="queue_full"))
    except Exception as exc:  # the status line is sent: the client learns of it in the stream
        yield sse(error_body(f"Generation failed: {type(exc).__name__}: {exc}", "server_error"))
    yield sse("[DONE]")


def start(run: Run) -> tuple[Iterator[Delta], Delta | None]:
    """Compute the first delta now, in the request's thread, so 429 and model errors are real HTTP errors."""
    deltas = iter(run)
    return deltas, next(deltas, None)


def chat_stream(
    run: Run, model_id: str, logprobs: bool, top_n: int, include_usage: bool, tools: bool = False
) -> Iterator[str]:
    deltas, first = start(run)
    ident, created = new_id("chatcmpl"), int(time.time())
    streamer, held = (ToolStream() if tools else None), []  # held: steps whose logprobs are not sent yet

    def body(delta: dict, finish: str | None, steps: list) -> dict:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        if logprobs and steps:
            choice["logprobs"] = chat_logprobs(run.loaded.tokenizer, steps, top_n)
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_id,
            "choices": [choice],
        }

    def chunk(delta: Delta | None, finish: str | None) -> dict | list[dict]:
        if delta is None:
            return body({}, None, [])
        if streamer is None:
            return body({} if finish else {"content": delta.text}, finish, [] if finish else delta.steps)
        held.extend(delta.steps)
        if finish is None:
            pieces = streamer.feed(delta.text)
        else:
            pieces, finish = streamer.finish(finish)
        out = []
        for piece in pieces:
            out.append(body(piece, None, held[:]))
            held.clear()
        if finish is not None:
            out.append(body({}, finish, held[:]))
        return out

    role = body({"role": "assistant", "content": ""}, None, [])
    return _events(run, deltas, first, chunk, include_usage, head=role)


def completion_stream(run: Run, model_id: str, logprobs: int | None, include_usage: bool) -> Iterator[str]:
    deltas, first = start(run)
    ident, created, offset = new_id("cmpl"), int(time.time()), [0]

    def chunk(delta: Delta | None, finish: str | None) -> dict:
        choice = {"index": 0, "text": "", "logprobs": None, "finish_reason": finish}
        if delta is not None and finish is None:
            choice["text"] = delta.text
            if logprobs is not None:
                choice["logprobs"] = completion_logprobs(run.loaded.tokenizer, delta.steps, logprobs, offset[0])
            offset[0] += len(delta.text)
        return {"id": ident, "object": "text_completion", "created": created, "model": model_id, "choices": [choice]}

    return _events(run, deltas, first, chunk, include_usage)
