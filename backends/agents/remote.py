"""The agent's model step on a remote OpenAI-compatible server (the sidebar's remote engine).

The loop (loop.py) is the same for both engines; only the step differs. In-app, the reply is
decoded under the tool grammar and parsed from SmolLM2's `<tool_call>` text. Remotely, the server
gets the OpenAI-style messages and the tools' schemas (`tool_choice` "required" on the first step
when chosen, else "auto"; temperature 0; one call per step) and answers with `tool_calls` whose
arguments are a JSON **string**: nothing guarantees that string parses or names a tool we have,
so a bad one ends the run with "bad_arguments" (or "unknown_tool", from the toolbox) and its
message, never a crash. `Reply.raw` is what came back, as JSON, so the trace shows it.

`engine` is duck-typed: anything with `chat_tools(messages, tools, tool_choice, max_tokens) ->
(content, [(name, arguments string)], finish_reason, prompt tokens)`, i.e. `backends.serving.RemoteEngine`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from backends.agents.toolbox import TOOLS


@dataclass
class Reply:
    """One model step, whichever engine took it."""

    raw: str  # what the model (or server) sent back, exactly
    content: str = ""  # plain text outside any call
    name: str | None = None  # the first call, when there is one
    arguments: dict | None = None
    finished: bool = True  # False: the token budget ran out
    unfinished_call: bool = False  # the budget ran out inside a call
    prompt_tokens: int = 0
    error: str | None = None  # the call's arguments could not be read (English, for the model)
    error_code: str | None = None
    error_values: dict = field(default_factory=dict)


def is_engine(obj) -> bool:
    return callable(getattr(obj, "chat_tools", None))


def remote_reply(engine, messages: list[dict], config, first: bool = True) -> Reply:
    """One step on `engine`: the first of the server's calls (one call per step), read back."""
    tools = [TOOLS[n].openai() for n in config.tools]
    choice = "required" if config.tool_choice == "required" and first else "auto"
    content, calls, finish_reason, prompt_tokens = engine.chat_tools(messages, tools, choice, config.max_new_tokens)
    sent = {
        "content": content,
        "tool_calls": [{"name": n, "arguments": a} for n, a in calls],
        "finish_reason": finish_reason,
    }
    reply = Reply(json.dumps(sent, ensure_ascii=False), content, prompt_tokens=prompt_tokens)
    reply.finished = finish_reason != "length"
    if not calls:
        cut = not reply.finished and (content.lstrip().startswith("<tool_call>") or not content.strip())
        reply.unfinished_call = cut
        return reply
    name, text = calls[0]
    reply.name, reply.arguments = name, {}
    try:
        arguments = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        reply.error = f"The arguments for {name} are not valid JSON ({exc}): {text[:200]!r}."
        reply.error_code, reply.error_values = "loop.bad_json", {"tool": name, "detail": f"{exc}: {text[:200]}"}
        return reply
    if not isinstance(arguments, dict):
        reply.error = f"Arguments must be a JSON object, not {arguments!r}."
        reply.error_code, reply.error_values = "loop.not_object", {"detail": repr(arguments)[:200]}
        return reply
    reply.arguments = arguments
    return reply
