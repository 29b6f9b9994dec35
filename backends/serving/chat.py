"""Chat and text completions on the decoding page's own token loop, one scheduler turn per token.

`chat_prompt_ids` / `completion_prompt_ids` and `token_budget` check a request against the model
(chat template, context window, token cap; a refusal is a 400 `ApiError`), then a `Run` is built;
iterating it yields `Delta`s (text released so far, and the `TokenStep`s behind it), and afterwards
it knows its `finish_reason` and token counts. Text that could be the start of a stop sequence is
held back until it is clearly not one, so a stop string never reaches the client, streamed or not.
A token that holds only part of a UTF-8 character adds no text until the character is whole, and
its step travels with the token that completes it (a run cut by max_tokens inside a character has
those last bytes in its logprobs only: the text holds whole characters).

With a `constraint` (response_format JSON, tool calls: see tools_api.py) the tokens come from
`backends.structured.guided_stream` instead, the same loop with the grammar's mask applied: the
same `TokenStep`s, so stop sequences, logprobs and usage work unchanged.

A `RunObserver` (metrics.RequestMetrics on the server) hears each token queue for its turn, start,
end, and how the run finished (`stop`, `length`, `abort` when closed early, `error`): GET /metrics.

Every token is one `shared_scheduler().turn("serve")`: requests from the server, the Streamlit
pages and the Gradio demo take turns token by token, and a full queue raises `QueueFull`
(the server answers 429). Temperature 0 is greedy, so a served answer equals the decoding page's
greedy column for the same prompt (tested).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

from backends.core.scheduler import shared_scheduler
from backends.decoding import (
    MAX_NEW_TOKENS,
    DecodingConfig,
    TokenStep,
    encode_prompt,
    eos_ids,
    generate_stream,
)
from backends.serving.openai_schema import ApiError

TURN_LABEL = "serve"
ROLE_FOR_TEMPLATE = {"developer": "system"}


class RunObserver:
    """What a `Run` tells about itself as it goes (metrics.RequestMetrics counts it); this one ignores it."""

    def queued(self) -> None:  # the next token asks for a compute turn
        pass

    def computing(self) -> None:  # the turn is granted
        pass

    def token(self, prompt_tokens: int) -> None:  # a token was made
        pass

    def finished(self, reason: str) -> None:  # stop, length, abort (closed early) or error
        pass


@dataclass
class Delta:
    text: str
    steps: list[TokenStep] = field(default_factory=list)


def context_window(loaded) -> int | None:
    return getattr(loaded.model.config, "max_position_embeddings", None)


def decoding_config(
    temperature: float,
    top_p: float,
    top_k: int,
    min_p: float,
    repetition_penalty: float,
    seed: int | None,
    max_new_tokens: int,
) -> DecodingConfig:
    """The request's sampling settings as our `DecodingConfig`: temperature 0 is greedy search."""
    if temperature == 0:
        config = DecodingConfig(
            strategy="greedy", max_new_tokens=max_new_tokens, repetition_penalty=repetition_penalty
        )
    else:
        config = DecodingConfig(
            strategy="sample",
            max_new_tokens=max_new_tokens,
            temperature=float(temperature),
            top_k=top_k,
            top_p=float(top_p),
            min_p=float(min_p),
            repetition_penalty=repetition_penalty,
            seed=secrets.randbelow(2**31) if seed is None else seed,
        )
    try:
        return config.validate()
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def chat_prompt_ids(loaded, messages: list[dict]) -> list[int]:
    """The chat template with the assistant's turn opened; one user message gives `encode_prompt`'s ids."""
    tok = loaded.tokenizer
    if not getattr(tok, "chat_template", None):
        raise ApiError(
            400, f"{loaded.key.model!r} has no chat template: use /v1/completions with a raw prompt.", param="messages"
        )
    if not messages[-1]["content"].strip():
        raise ApiError(400, "The last message is empty: send some text for the model to answer.", param="messages")
    if len(messages) == 1 and messages[0]["role"] == "user":
        return encode_prompt(loaded, messages[0]["content"], chat=True)
    turns = [{"role": ROLE_FOR_TEMPLATE.get(m["role"], m["role"]), "content": m["content"]} for m in messages]
    ids = tok.apply_chat_template(turns, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def completion_prompt_ids(loaded, prompt: str) -> list[int]:
    if not prompt.strip():
        raise ApiError(
            400, f"The prompt is empty ({prompt!r}): send some text for the model to continue.", param="prompt"
        )
    return encode_prompt(loaded, prompt, chat=False)


def token_budget(loaded, prompt_len: int, asked: int | None, cap: int, prompt_param: str = "messages") -> int:
    """New tokens for this request: what was asked (or as many as fit), within the cap and the context
    (past it: 400 `context_length_exceeded`, naming `prompt_param`)."""
    cap = min(cap, MAX_NEW_TOKENS)
    if asked is not None and asked > cap:
        raise ApiError(
            400,
            f"max_tokens={asked} is above this server's limit of {cap}: ask for {cap} or fewer.",
            param="max_tokens",
        )
    window = context_window(loaded)
    room = window - prompt_len if window else cap
    if room < 1 or (asked is not None and asked > room):
        what = "conversation" if prompt_param == "messages" else "prompt"
        raise ApiError(
            400,
            f"The prompt has {prompt_len} tokens; with max_tokens={asked or 1} it exceeds the "
            f"model's context of {window} tokens: shorten the {what} or ask for fewer tokens.",
            code="context_length_exceeded",
            param=prompt_param,
        )
    return asked if asked is not None else min(cap, room)


def _held_back(text: str, stops: list[str]) -> int:
    """Length of the longest end of `text` that is the start of a stop sequence (it may still become one)."""
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest


class Run:
    """One generation. Iterate it for `Delta`s; then read finish_reason, prompt_tokens, completion_tokens."""

    def __init__(
        self,
        loaded,
        prompt_ids: list[int],
        config: DecodingConfig,
        stops: list[str] | None = None,
        top_n: int = 0,
        scheduler=None,
        constraint=None,
        observer: RunObserver | None = None,
    ):
        self.loaded, self.prompt_ids, self.config = loaded, list(prompt_ids), config
        self.observer = observer or RunObserver()
        self.constraint = constraint  # a backends.structured.Constraint, or None: free decoding
        self.stops, self.top_n = list(stops or []), top_n
        self.scheduler = scheduler or shared_scheduler()
        self.finish_reason: str | None = None
        self.completion_tokens = 0

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    def __iter__(self) -> Iterator[Delta]:
        stop_ids = eos_ids(self.loaded)
        tokens = self._tokens()
        full, sent, pending = "", 0, []  # all text; chars released; (step, offset of its text) not released
        seen = self.observer
        ended = "error"  # what the observer hears if an exception ends the run
        try:
            while True:
                seen.queued()
                with self.scheduler.turn(TURN_LABEL):
                    seen.computing()
                    step = next(tokens, None)
                if step is None:
                    self.finish_reason = "length"
                    break
                self.completion_tokens += 1
                seen.token(self.prompt_tokens)
                if step.token_id in stop_ids:
                    self.finish_reason = "stop"
                    break
                pending.append((step, len(full)))
                full += step.piece
                hits = [i for i in (full.find(s, max(0, sent - len(s) + 1)) for s in self.stops) if i >= 0]
                if hits:
                    end = min(hits)
                    self.finish_reason = "stop"
                    yield Delta(full[sent:end], [s for s, at in pending if at < end])
                    return
                safe = len(full) - _held_back(full, self.stops)
                if safe > sent:
                    released = [s for s, at in pending if at < safe]
                    pending = [(s, at) for s, at in pending if at >= safe]
                    yield Delta(full[sent:safe], released)
                    sent = safe
        except GeneratorExit:
            ended = "abort"  # closed before its end: the client went away
            raise
        finally:
            tokens.close()
            seen.finished(self.finish_reason or ended)
        if len(full) > sent or pending:
            yield Delta(full[sent:], [s for s, _ in pending])

    def _tokens(self) -> Iterator[TokenStep]:
        if self.constraint is None:
            return generate_stream(self.loaded, self.prompt_ids, self.config, top_n=self.top_n)
        return _guided_steps(self.loaded, self.prompt_ids, self.config, self.constraint, self.top_n)

    def text(self) -> tuple[str, list[TokenStep]]:
        """The whole answer at once."""
        deltas = list(self)
        return "".join(d.text for d in deltas), [s for d in deltas for s in d.steps]


def _guided_steps(loaded, prompt_ids, config, constraint, top_n) -> Iterator[TokenStep]:
    """guided_stream's `TokenStep`s (closing it when this generator is closed)."""
    from backends.structured import guided_stream

    guided = guided_stream(loaded, prompt_ids, config, constraint, top_n=top_n)
    try:
        for g in guided:
            yield g.step
    finally:
        guided.close()
