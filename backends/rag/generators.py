"""Where answers come from: the local model, or any OpenAI-compatible server.

Both speak one interface, `stream(messages, max_new_tokens, temperature) -> Iterator[str]`,
yielding pieces of text as they are produced; stop early by closing the iterator (or
just no longer reading it). `LocalGenerator` runs the cached model with the decoding
page's own token loop (KV cache, greedy at temperature 0, stops at end-of-sequence) and
never modifies the shared model. `OpenAICompatibleGenerator` posts to
`<base_url>/chat/completions` with `stream: true` and reads the server-sent events, so
Ollama, vLLM, TGI, llama.cpp's server or OpenAI itself can answer.

The API key is only ever put into the Authorization header: it is not in repr/str, not
in any error message (a server that echoes it back gets it redacted), and nothing here
logs or saves it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Protocol

import httpx

from backends.decoding import MAX_NEW_TOKENS, DecodingConfig, eos_ids, generate_stream
from backends.rag.prompting import check_messages, render_prompt, rewrite_messages


class GeneratorError(RuntimeError):
    """Generation failed: unreachable server, rejected request, broken stream, prompt too long."""

    def __init__(self, message: str, url: str | None = None, status: int | None = None):
        super().__init__(message)
        self.url, self.status = url, status


class Generator(Protocol):
    name: str

    can_prefill: bool  # whether `prefix` may be non-empty

    def stream(
        self, messages: list[dict], max_new_tokens: int = 256, temperature: float = 0.0, prefix: str = ""
    ) -> Iterator[str]: ...


def _check_options(max_new_tokens, temperature) -> None:
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or not 1 <= max_new_tokens <= MAX_NEW_TOKENS
    ):
        raise ValueError(
            f"max_new_tokens={max_new_tokens!r} is invalid: use a whole number from 1 to {MAX_NEW_TOKENS}."
        )
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or not 0 <= temperature <= 2
    ):
        raise ValueError(f"temperature={temperature!r} is invalid: use 0 (always the likeliest token) up to 2.")


def generate(generator: Generator, messages: list[dict], max_new_tokens: int = 256, temperature: float = 0.0) -> str:
    """The whole answer at once."""
    return "".join(generator.stream(messages, max_new_tokens=max_new_tokens, temperature=temperature))


class LocalGenerator:
    """A model from the shared cache (read only). Temperature 0 is greedy and deterministic."""

    def __init__(self, loaded, seed: int = 0):
        if not getattr(loaded.tokenizer, "chat_template", None):
            raise GeneratorError(
                f"{loaded.key.model!r} has no chat template, so it cannot hold a conversation: "
                "pick an instruction-tuned (chat) model."
            )
        self.loaded, self.seed = loaded, seed
        self.name = loaded.key.model

    def __repr__(self) -> str:
        return f"LocalGenerator({self.name!r})"

    def render(self, messages: list[dict]) -> str:
        return render_prompt(messages, self.loaded.tokenizer)

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        # The rendered template already holds every special token; adding more would double the BOS.
        return list(self.loaded.tokenizer(self.render(messages), add_special_tokens=False)["input_ids"])

    can_prefill = True  # `stream(..., prefix=)` starts the answer with given text (citation forcing)

    def stream(
        self, messages: list[dict], max_new_tokens: int = 256, temperature: float = 0.0, prefix: str = ""
    ) -> Iterator[str]:
        """The answer's pieces; `prefix` is put in the model's mouth (yielded first, then continued)."""
        check_messages(messages)
        _check_options(max_new_tokens, temperature)
        ids = self.prompt_ids(messages)
        if prefix:
            ids += list(self.loaded.tokenizer(prefix, add_special_tokens=False)["input_ids"])
        window = getattr(self.loaded.model.config, "max_position_embeddings", None)
        if window and len(ids) + max_new_tokens > window:
            raise GeneratorError(
                f"The prompt has {len(ids)} tokens; with {max_new_tokens} new ones it exceeds "
                f"{self.name}'s context of {window} tokens: retrieve fewer or shorter chunks."
            )
        if temperature == 0:
            config = DecodingConfig(strategy="greedy", max_new_tokens=max_new_tokens)
        else:  # plain temperature sampling: no top-k/top-p the caller did not ask for
            config = DecodingConfig(
                strategy="sample",
                max_new_tokens=max_new_tokens,
                temperature=float(temperature),
                top_k=0,
                top_p=1.0,
                seed=self.seed,
            )
        stop = eos_ids(self.loaded)
        if prefix:
            yield prefix
        for step in generate_stream(self.loaded, ids, config, top_n=0):
            if step.token_id in stop:
                return
            if step.piece:
                yield step.piece


class _Secret:
    """Holds the key so that repr(), vars() dumps and pretty-printers show only ***."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        return text.replace(self._value, "***")


class OpenAICompatibleGenerator:
    """A chat-completions server: `base_url` is the part before `/chat/completions` (e.g. http://localhost:11434/v1)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 60):
        url = httpx.URL(str(base_url).strip()) if isinstance(base_url, str) and base_url.strip() else None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise ValueError(
                f"base_url={base_url!r} is not an http(s) URL: use e.g. http://localhost:11434/v1 "
                "(Ollama) or https://api.openai.com/v1."
            )
        if url.userinfo:
            raise ValueError("base_url must not hold a user name or password: give the key as api_key.")
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model={model!r} is empty: give the model name the server knows (e.g. 'llama3.2').")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout={timeout!r} is invalid: use a number of seconds above 0.")
        self.base_url = str(url).rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model, self.timeout = model.strip(), float(timeout)
        self.name = f"{self.model} @ {self.base_url}"
        self._key = _Secret(api_key.strip()) if isinstance(api_key, str) and api_key.strip() else None

    @property
    def has_key(self) -> bool:
        return self._key is not None

    def __repr__(self) -> str:
        key = "set" if self._key else "none"
        return f"OpenAICompatibleGenerator(base_url={self.base_url!r}, model={self.model!r}, api_key={key})"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("OpenAICompatibleGenerator holds an API key and is never pickled or saved; build a new one.")

    def render(self, messages: list[dict]) -> str:
        return render_prompt(messages, None)

    def _fail(self, message: str, status: int | None = None) -> GeneratorError:
        return GeneratorError(self._key.redact(message) if self._key else message, url=self.url, status=status)

    def _http_error(self, response: httpx.Response) -> GeneratorError:
        body = response.read().decode("utf-8", "replace")
        try:
            detail = json.loads(body).get("error", body)
            detail = detail.get("message", detail) if isinstance(detail, dict) else detail
        except (ValueError, AttributeError):
            detail = body
        detail = " ".join(str(detail).split())[:300]
        status = response.status_code
        hint = {
            401: "the server rejected the API key: check it (or give one if the server needs it)",
            403: "the API key is not allowed to use this model",
            404: (
                "no such endpoint or model: check that the base URL ends with /v1 "
                f"and that model {self.model!r} exists"
            ),
            429: "rate limited or out of quota: wait and try again",
        }.get(status, "the server refused the request")
        return self._fail(f"{self.url} answered HTTP {status}: {hint}. Server said: {detail or '(nothing)'}", status)

    can_prefill = False  # the OpenAI API cannot be handed the start of the answer

    def stream(
        self, messages: list[dict], max_new_tokens: int = 256, temperature: float = 0.0, prefix: str = ""
    ) -> Iterator[str]:
        check_messages(messages)
        _check_options(max_new_tokens, temperature)
        if prefix:
            raise GeneratorError("An OpenAI-compatible server cannot be handed the start of its answer (prefix).")
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        body = {
            "model": self.model,
            "messages": list(messages),
            "stream": True,
            "max_tokens": max_new_tokens,
            "temperature": float(temperature),
        }
        try:
            with (
                httpx.Client(timeout=self.timeout) as client,
                client.stream("POST", self.url, headers=headers, json=body) as response,
            ):
                if response.status_code >= 400:
                    raise self._http_error(response)
                if response.headers.get("content-type", "").startswith("application/json"):
                    yield from self._whole(response)  # a server that ignores stream=true
                else:
                    yield from self._events(response)
        except httpx.ConnectError as exc:
            raise self._fail(
                f"Could not connect to {self.url} ({exc}): is the server running, and is the base URL right?"
            ) from None
        except httpx.TimeoutException:
            raise self._fail(
                f"{self.url} did not answer within {self.timeout:g} s: the server is busy or "
                "the model is still loading; try again or raise the timeout."
            ) from None
        except httpx.HTTPError as exc:
            raise self._fail(f"The connection to {self.url} failed: {type(exc).__name__}: {exc}") from None

    def _whole(self, response: httpx.Response) -> Iterator[str]:
        try:
            data = json.loads(response.read())
            text = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise self._fail(
                f"{self.url} sent JSON without choices[0].message.content: {response.text[:200]!r}",
                response.status_code,
            ) from None
        if text:
            yield text

    def _events(self, response: httpx.Response) -> Iterator[str]:
        finished = events = False
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, ': keep-alive' comments, 'event:' and 'id:' fields
            events = True
            payload = line[5:].strip()
            if payload == "[DONE]":
                return
            try:
                event = json.loads(payload)
            except ValueError:
                raise self._fail(f"{self.url} sent a malformed stream event (not JSON): {payload[:200]!r}") from None
            if not isinstance(event, dict):
                raise self._fail(f"{self.url} sent a stream event that is not an object: {payload[:200]!r}")
            if "error" in event:
                err = event["error"]
                raise self._fail(
                    f"{self.url} reported an error mid-stream: "
                    f"{(err.get('message') if isinstance(err, dict) else err)!s:.300}"
                )
            for choice in event.get("choices") or []:
                if not isinstance(choice, dict):
                    raise self._fail(f"{self.url} sent a malformed choice: {payload[:200]!r}")
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece
                finished = finished or bool(choice.get("finish_reason"))
        if not events:
            kind = response.headers.get("content-type", "no content type")
            raise self._fail(
                f"{self.url} answered with {kind!r} but no chat-completions events: it is not an "
                "OpenAI-compatible endpoint; check the base URL (it usually ends with /v1).",
                response.status_code,
            )
        if not finished:
            raise self._fail(
                f"The stream from {self.url} ended before the answer was complete "
                "(no finish_reason and no [DONE]): the server may have crashed or cut the connection."
            )


def rewrite_question(generator: Generator, history: list[dict] | None, question: str, max_new_tokens: int = 48) -> str:
    """A follow-up turned into a standalone question; the question itself when there is no history
    or the reply is not usable: empty, too long, or not a question (SmolLM2-135M tends to answer
    the follow-up or repeat the last answer instead of rewriting it, with or without a worked example)."""
    if not history:
        return question.strip()
    reply = generate(generator, rewrite_messages(history, question), max_new_tokens=max_new_tokens)
    lines = [ln.strip() for ln in reply.strip().splitlines() if ln.strip()]
    if not lines:
        return question.strip()
    candidate = lines[0]
    for prefix in ("standalone question:", "question:", "rewritten question:"):
        if candidate.lower().startswith(prefix):
            candidate = candidate[len(prefix) :].strip()
    candidate = candidate.strip("\"'“”` ").strip()
    if len(candidate) < 3 or len(candidate) > max(300, 3 * len(question)) or not candidate.endswith(("?", "？")):
        return question.strip()
    return candidate
