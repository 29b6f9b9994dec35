"""Send one request to an OpenAI-compatible server and keep everything it answered, raw.

What the serving page shows under "try it": the status line, the raw JSON body, or for a stream
every `data:` event as it arrived (with the time since the request), the text the events add up
to, and time to the first token. Plain httpx, no SDK, so nothing is hidden.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import httpx

from backends.serving.snippets import PATHS

MAX_EVENTS = 2000


@dataclass
class Trial:
    url: str
    status: int | None = None
    elapsed_s: float = 0.0
    ttft_s: float | None = None  # streams: time to the first event that carries text
    body: object | None = None  # a whole JSON answer (or an error body)
    events: list[tuple[float, str]] = field(default_factory=list)  # (seconds since the request, raw data)
    text: str = ""  # what a stream's events add up to
    error: str | None = None  # the request never got an HTTP answer


def _piece(event: dict) -> str:
    pieces = []
    for choice in event.get("choices") or []:
        delta = choice.get("delta") or {}
        pieces.append(delta.get("content") or choice.get("text") or "")
    return "".join(pieces)


def send(base_url: str, endpoint: str, body: dict | None, api_key: str | None = None, timeout: float = 120) -> Trial:
    url = base_url.rstrip("/") + PATHS[endpoint]
    trial = Trial(url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=timeout) as client:
            if body is None:
                response = client.get(url, headers=headers)
                trial.status, trial.body = response.status_code, _json(response.text)
            else:
                with client.stream("POST", url, json=body, headers=headers) as response:
                    trial.status = response.status_code
                    if response.headers.get("content-type", "").startswith("text/event-stream"):
                        _read_events(response, trial, started)
                    else:
                        trial.body = _json(response.read().decode("utf-8", "replace"))
    except httpx.HTTPError as exc:
        trial.error = (
            f"{type(exc).__name__}: could not get an answer from {url} ({exc}). Is the server running on that address?"
        )
    trial.elapsed_s = time.perf_counter() - started
    if isinstance(trial.body, dict) and trial.ttft_s is None and trial.status == 200:
        trial.ttft_s = trial.elapsed_s  # a whole answer: its first token arrives with the last
    return trial


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _read_events(response: httpx.Response, trial: Trial, started: float) -> None:
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        trial.events.append((time.perf_counter() - started, payload))
        if len(trial.events) >= MAX_EVENTS:
            break
        if payload == "[DONE]":
            continue
        event = _json(payload)
        piece = _piece(event) if isinstance(event, dict) else ""
        if piece and trial.ttft_s is None:
            trial.ttft_s = trial.events[-1][0]
        trial.text += piece
