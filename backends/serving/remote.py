"""A remote generation engine: any OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp's server,
`transformers serve`, OpenAI, or this app's own `make serve`) through the official `openai` client.

    engine = RemoteEngine("http://localhost:8000/v1", "smollm2-135m-instruct", api_key=None)
    for step in engine.stream_chat([{"role": "user", "content": "Hi"}], max_tokens=32, top_logprobs=5):
        step.text, step.tokens          # text piece; per-token logprobs and alternatives when sent
    step.finish_reason                  # on the last step: "stop" | "length" | ...

`stream_config(prompt, config, chat=...)` takes a decoding page's `DecodingConfig` as is: greedy is
temperature 0, sampling maps temperature / top_p / seed; what the API cannot express (beam search,
contrastive search, typical-p, n-gram bans) raises `Unsupported` with the reason, which a page shows
next to the disabled option (`unsupported_reason(config)` asks without raising). top-k, min-p and
repetition penalty are not OpenAI parameters; vLLM (and our server) take them in the body, so they
are sent only with `extensions=True`.

The key goes only into the client's Authorization header: it is not in repr(), and any error text
that echoes it is redacted. Nothing here imports another topic, so any page may import it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

EXTENSION_KNOBS = ("top_k", "min_p", "repetition_penalty")
LEGACY_BYTES = "bytes:"  # how OpenAI's completions API writes a token that is not whole UTF-8
OFF = {"top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0}


class RemoteError(RuntimeError):
    """The remote server failed or refused; the message says why and what to check (never the key)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class Unsupported(ValueError):
    """A decoding setting the OpenAI API cannot express."""


@dataclass(frozen=True)
class RemoteToken:
    """One sent token. `token` is labelled as the in-app loop labels it (a token that holds only part
    of a UTF-8 character shows U+FFFD, as decoding it alone does), read from its bytes when the server
    sends them; `raw` keeps those bytes (None when the server sends none)."""

    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)  # (token, logprob), likeliest first
    raw: bytes | None = None

    @property
    def prob(self) -> float:
        return math.exp(self.logprob)


@dataclass(frozen=True)
class RemoteStep:
    text: str  # what this event adds to the answer
    tokens: list[RemoteToken] = field(default_factory=list)  # empty when the server sends no logprobs
    finish_reason: str | None = None


REASONS = {
    "beam": "beam search keeps several sequences; the OpenAI API returns one sampled or greedy sequence",
    "contrastive": "contrastive search needs the model's hidden states, which the OpenAI API does not expose",
    "strategy": "strategy {strategy!r} has no OpenAI API equivalent",
    "typical_p": "typical-p is not an OpenAI API parameter",
    "ngram": "n-gram bans are not an OpenAI API parameter",
    "extension": (
        "{knob} is not an OpenAI API parameter (vLLM and this app's server accept it: turn on the extensions)"
    ),
}


def unsupported_code(config, extensions: bool = False) -> tuple[str, dict] | None:
    """Why `config` cannot run remotely, as (a key of REASONS, its fields), or None when it can."""
    strategy = getattr(config, "strategy", "greedy")
    if strategy in ("beam", "contrastive"):
        return strategy, {}
    if strategy not in ("greedy", "sample"):
        return "strategy", {"strategy": strategy}
    if getattr(config, "typical_p", 1.0) != 1.0:
        return "typical_p", {}
    if getattr(config, "no_repeat_ngram_size", 0):
        return "ngram", {}
    if not extensions:
        for knob in EXTENSION_KNOBS:
            if knob == "top_k" and strategy == "greedy":
                continue
            if getattr(config, knob, OFF[knob]) != OFF[knob]:
                return "extension", {"knob": knob}
    return None


def unsupported_reason(config, extensions: bool = False) -> str | None:
    """Why `config` (a DecodingConfig or anything with its fields) cannot run remotely, or None."""
    found = unsupported_code(config, extensions)
    return None if found is None else REASONS[found[0]].format(**found[1])


def api_params(config, extensions: bool = False) -> dict:
    """The request parameters for `config`; raises Unsupported with the reason when there are none."""
    reason = unsupported_reason(config, extensions)
    if reason:
        raise Unsupported(reason)
    params = {"max_tokens": int(config.max_new_tokens)}
    extra = {}
    if config.strategy == "greedy":
        params["temperature"] = 0.0
    else:
        params.update(temperature=float(config.temperature), top_p=float(config.top_p), seed=int(config.seed))
        if extensions:
            extra.update({k: getattr(config, k) for k in ("top_k", "min_p") if getattr(config, k) != OFF[k]})
    if extensions and config.repetition_penalty != 1.0:
        extra["repetition_penalty"] = float(config.repetition_penalty)
    if extra:
        params["extra_body"] = extra
    return params


class RemoteEngine:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 60):
        url = str(base_url or "").strip().rstrip("/")
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(
                f"base_url={base_url!r} is not an http(s) URL: use e.g. http://localhost:8000/v1 "
                "(make serve), http://localhost:11434/v1 (Ollama) or https://api.openai.com/v1."
            )
        if parsed.username or parsed.password:
            raise ValueError("base_url must not hold a user name or password: give the key as api_key.")
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model={model!r} is empty: give a model id the server lists at /v1/models.")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout={timeout!r} is invalid: use a number of seconds above 0.")
        self.base_url, self.model, self.timeout = url, model.strip(), float(timeout)
        self._key = api_key.strip() if isinstance(api_key, str) and api_key.strip() else None
        self._client = None

    def __repr__(self) -> str:
        return f"RemoteEngine({self.base_url!r}, {self.model!r}, api_key={'set' if self._key else 'none'})"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("RemoteEngine holds an API key and is never pickled or saved; build a new one.")

    @property
    def client(self):
        if self._client is None:
            from openai import OpenAI

            # A server without keys still needs a non-empty string here; retries are the caller's choice.
            self._client = OpenAI(
                base_url=self.base_url, api_key=self._key or "none", timeout=self.timeout, max_retries=0
            )
        return self._client

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _error(self, exc: Exception) -> RemoteError:
        import openai

        status = getattr(exc, "status_code", None)
        if isinstance(exc, openai.APITimeoutError):
            return RemoteError(
                f"{self.base_url} did not answer within {self.timeout:g} s: the server is busy or "
                "still loading the model; try again or raise the timeout."
            )
        if isinstance(exc, openai.APIConnectionError):
            return RemoteError(
                f"Could not connect to {self.base_url}: is the server running, and is the base URL "
                "right (it usually ends with /v1)?"
            )
        hint = {
            401: "the server rejected the API key: check it (or give one if the server needs it)",
            403: "the API key may not use this model",
            404: f"no such endpoint or model: check that the base URL ends with /v1 and that {self.model!r} "
            "is in the server's /v1/models",
            422: "the server refused a parameter",
            400: "the server refused the request",
            429: "the server's queue is full or you are rate limited: wait and try again",
        }
        detail = " ".join(str(getattr(exc, "message", exc)).split())[:400]
        return RemoteError(
            self._redact(
                f"{self.base_url} answered HTTP {status}: "
                f"{hint.get(status, 'the request failed')}. Server said: {detail}"
            ),
            status,
        )

    def models(self) -> list[str]:
        import openai

        try:
            return [m.id for m in self.client.models.list()]
        except openai.OpenAIError as exc:
            raise self._error(exc) from None

    def _stream(self, create, kwargs: dict, chat: bool) -> Iterator[RemoteStep]:
        import openai

        try:
            stream = create(model=self.model, stream=True, **kwargs)
            with stream:
                for chunk in stream:
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    text = (choice.delta.content if chat else choice.text) or ""
                    tokens = _tokens(choice.logprobs, chat)
                    if text or tokens or choice.finish_reason:
                        yield RemoteStep(text, tokens, choice.finish_reason)
        except openai.OpenAIError as exc:
            raise self._error(exc) from None

    def stream_chat(
        self,
        messages: list[dict],
        max_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        top_logprobs: int = 0,
        extra_body: dict | None = None,
    ) -> Iterator[RemoteStep]:
        kwargs = _common(max_tokens, temperature, top_p, seed, stop, extra_body)
        if top_logprobs:
            kwargs.update(logprobs=True, top_logprobs=int(top_logprobs))
        return self._stream(self.client.chat.completions.create, dict(kwargs, messages=list(messages)), chat=True)

    def stream_completion(
        self,
        prompt: str,
        max_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        top_logprobs: int = 0,
        extra_body: dict | None = None,
    ) -> Iterator[RemoteStep]:
        kwargs = _common(max_tokens, temperature, top_p, seed, stop, extra_body)
        if top_logprobs:
            kwargs["logprobs"] = int(top_logprobs)
        return self._stream(self.client.completions.create, dict(kwargs, prompt=prompt), chat=False)

    def stream_config(
        self, prompt: str, config, chat: bool = True, top_logprobs: int = 5, extensions: bool = False
    ) -> Iterator[RemoteStep]:
        """A decoding page's run, remotely: one user message (chat) or a raw prompt, under `config`."""
        params = api_params(config, extensions)
        if chat:
            return self.stream_chat([{"role": "user", "content": prompt}], top_logprobs=top_logprobs, **params)
        return self.stream_completion(prompt, top_logprobs=min(top_logprobs, 5), **params)

    def chat(self, messages: list[dict], **kwargs) -> str:
        return "".join(step.text for step in self.stream_chat(messages, **kwargs))

    def chat_tools(
        self, messages: list[dict], tools: list[dict], tool_choice="auto", max_tokens: int = 256
    ) -> tuple[str, list[tuple[str, str]], str | None, int]:
        """One greedy, non-streamed chat step with `tools` (the agent's model step): (content,
        [(name, arguments as the JSON string sent)], finish_reason, prompt tokens or 0)."""
        import openai

        try:
            reply = self.client.chat.completions.create(
                model=self.model,
                messages=list(messages),
                tools=list(tools),
                tool_choice=tool_choice,
                parallel_tool_calls=False,
                temperature=0.0,
                max_tokens=int(max_tokens),
            )
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        if not getattr(reply, "choices", None):
            raise RemoteError(f"{self.base_url} answered without a choice: is it an OpenAI-compatible chat server?")
        choice = reply.choices[0]
        message = choice.message
        calls = [
            (str(c.function.name or ""), str(c.function.arguments or ""))
            for c in (message.tool_calls or [])
            if getattr(c, "function", None) is not None
        ]
        usage = getattr(reply, "usage", None)
        return message.content or "", calls, choice.finish_reason, int(getattr(usage, "prompt_tokens", 0) or 0)


def _common(max_tokens, temperature, top_p, seed, stop, extra_body) -> dict:
    kwargs = {"max_tokens": int(max_tokens), "temperature": float(temperature)}
    if top_p is not None:
        kwargs["top_p"] = float(top_p)
    if seed is not None:
        kwargs["seed"] = int(seed)
    if stop:
        kwargs["stop"] = list(stop)
    if extra_body:
        kwargs["extra_body"] = dict(extra_body)
    return kwargs


def _raw(token: str, sent: list[int] | None) -> bytes | None:
    """A token's bytes: chat's `bytes` field, or a legacy completions token written `bytes:\\xNN...`."""
    if sent is not None:
        return bytes(sent)
    escaped = token[len(LEGACY_BYTES) :] if token.startswith(LEGACY_BYTES) else ""
    if escaped and len(escaped) % 4 == 0 and all(escaped[i : i + 2] == "\\x" for i in range(0, len(escaped), 4)):
        try:
            return bytes.fromhex(escaped.replace("\\x", ""))
        except ValueError:
            return None
    return None


def _label(token: str, raw: bytes | None) -> str:
    return token if raw is None else raw.decode("utf-8", errors="replace")


def _tokens(logprobs, chat: bool) -> list[RemoteToken]:
    if logprobs is None:
        return []
    if chat:
        found = []
        for t in logprobs.content or []:
            raw = _raw(t.token, t.bytes)
            top = [(_label(a.token, _raw(a.token, a.bytes)), a.logprob) for a in (t.top_logprobs or [])]
            found.append(RemoteToken(_label(t.token, raw), t.logprob, top, raw))
        return found
    tops = logprobs.top_logprobs or [None] * len(logprobs.tokens or [])
    found = []
    for tok, lp, top in zip(logprobs.tokens or [], logprobs.token_logprobs or [], tops):
        raw = _raw(tok, None)
        alternatives = sorted(((_label(a, _raw(a, None)), v) for a, v in (top or {}).items()), key=lambda kv: -kv[1])
        found.append(RemoteToken(_label(tok, raw), lp if lp is not None else float("nan"), alternatives, raw))
    return found
