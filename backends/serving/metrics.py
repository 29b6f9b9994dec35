"""Prometheus metrics of the API server, under vLLM's names, served at GET /metrics.

Each app (`create_app`) owns one `ServerMetrics` with its own `CollectorRegistry` (never
prometheus_client's global one), so several servers in one process, tests included, keep separate
counts. Every chat or text completion, streamed or not, is one `RequestMetrics` that `chat.Run`
tells what happens to it (a `RunObserver`): queued for a compute turn, computing, a token made, finished.

What each metric counts here (labels as vLLM's: `model_name` the served model id; vLLM's `engine`
label is left out, this server has one engine):
  vllm:num_requests_running       gauge: requests generating that are not queued for a compute turn
                                  (computing a token, or handing text to the client between tokens)
  vllm:num_requests_waiting       gauge: requests whose next token is queued for a compute turn
                                  (backends.core.scheduler: one turn per token, shared with the app's
                                  pages, so a Streamlit session decoding makes these wait too)
  vllm:prompt_tokens_total        counter: prompt tokens, added when the prompt's forward pass is done
  vllm:generation_tokens_total    counter: generated tokens (end-of-sequence included, as usage's
                                  completion_tokens), one by one as they are made
  vllm:request_success_total      counter, + finished_reason: stop, length, abort (the client went
                                  away mid-answer), error (a failure or a full queue mid-answer)
  vllm:time_to_first_token_seconds histogram: from the request's arrival (validated, prompt tokenized,
                                  model in memory) to its first token computed, streamed or not
  vllm:inter_token_latency_seconds histogram: between two consecutive tokens of one request (vLLM
                                  0.9-0.10 exported the same series as vllm:time_per_output_token_seconds)
  vllm:e2e_request_latency_seconds histogram: from arrival to the last token
Buckets are vLLM's (vllm/v1/metrics/loggers.py). Embeddings are not counted (vLLM's pooling models
have no token timings either).
"""

from __future__ import annotations

import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

RUNNING, WAITING = "vllm:num_requests_running", "vllm:num_requests_waiting"
PROMPT_TOKENS, GENERATION_TOKENS = "vllm:prompt_tokens", "vllm:generation_tokens"  # exposed with _total
REQUEST_SUCCESS = "vllm:request_success"
TTFT, ITL, E2E = (
    "vllm:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds",
    "vllm:e2e_request_latency_seconds",
)
FINISHED_REASONS = ("stop", "length", "abort", "error")
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0)
TTFT_BUCKETS += (40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0)
ITL_BUCKETS += (40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0)
E2E_BUCKETS += (480.0, 960.0, 1920.0, 7680.0)


class ServerMetrics:
    """One app's metrics: `request(model_name)` for each generation, `exposition()` for GET /metrics."""

    def __init__(self, model_names: tuple[str, ...] | list[str] = ()):
        self.registry = CollectorRegistry(auto_describe=True)
        labels, reg = ["model_name"], self.registry
        self.running = Gauge(RUNNING, "Number of requests in model execution batches.", labels, registry=reg)
        self.waiting = Gauge(WAITING, "Number of requests waiting to be processed.", labels, registry=reg)
        self.prompt_tokens = Counter(PROMPT_TOKENS, "Number of prefill tokens processed.", labels, registry=reg)
        self.generation_tokens = Counter(
            GENERATION_TOKENS, "Number of generation tokens processed.", labels, registry=reg
        )
        self.success = Counter(
            REQUEST_SUCCESS, "Count of successfully processed requests.", [*labels, "finished_reason"], registry=reg
        )
        self.ttft = Histogram(
            TTFT, "Histogram of time to first token in seconds.", labels, registry=reg, buckets=TTFT_BUCKETS
        )
        self.itl = Histogram(
            ITL, "Histogram of inter-token latency in seconds.", labels, registry=reg, buckets=ITL_BUCKETS
        )
        self.e2e = Histogram(
            E2E, "Histogram of e2e request latency in seconds.", labels, registry=reg, buckets=E2E_BUCKETS
        )
        self._known: set[str] = set()
        self._lock = threading.Lock()
        for name in model_names:
            self._children(name)

    def _children(self, model_name: str) -> None:
        """Every series of a model at 0, so a scrape lists them before its first request (as vLLM does)."""
        with self._lock:
            if model_name in self._known:
                return
            self._known.add(model_name)
        for metric in (self.running, self.waiting, self.prompt_tokens, self.generation_tokens, self.ttft):
            metric.labels(model_name)
        self.itl.labels(model_name), self.e2e.labels(model_name)
        for reason in FINISHED_REASONS:
            self.success.labels(model_name, reason)

    def request(self, model_name: str) -> RequestMetrics:
        """A new request has arrived (its clock starts now)."""
        self._children(model_name)
        return RequestMetrics(self, model_name)

    def exposition(self) -> tuple[bytes, str]:
        """The text format Prometheus scrapes, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestMetrics:
    """One request's life, as chat.Run reports it (the chat.RunObserver methods)."""

    def __init__(self, metrics: ServerMetrics, model_name: str):
        self.model_name, self.arrived = model_name, time.perf_counter()
        self._running = metrics.running.labels(model_name)
        self._waiting = metrics.waiting.labels(model_name)
        self._prompt = metrics.prompt_tokens.labels(model_name)
        self._generated = metrics.generation_tokens.labels(model_name)
        self._ttft, self._itl = metrics.ttft.labels(model_name), metrics.itl.labels(model_name)
        self._e2e, self._success = metrics.e2e.labels(model_name), metrics.success
        self.state: str | None = None  # None (not started or finished), "waiting", "running"
        self.last_token: float | None = None
        self.tokens, self.done = 0, False

    def _move(self, state: str | None) -> None:
        if state == self.state:
            return
        if self.state is not None:
            (self._running if self.state == "running" else self._waiting).dec()
        if state is not None:
            (self._running if state == "running" else self._waiting).inc()
        self.state = state

    def queued(self) -> None:
        """The next token asks for a compute turn."""
        self._move("waiting")

    def computing(self) -> None:
        """The turn is granted: the token is being computed."""
        self._move("running")

    def token(self, prompt_tokens: int) -> None:
        """A token was made (the first one also ends the prompt's forward pass)."""
        now = time.perf_counter()
        if self.last_token is None:
            self._prompt.inc(prompt_tokens)
            self._ttft.observe(now - self.arrived)
        else:
            self._itl.observe(now - self.last_token)
        self._generated.inc()
        self.last_token, self.tokens = now, self.tokens + 1

    def finished(self, reason: str) -> None:
        """The generation ended: stop, length, abort or error (later calls do nothing).

        A request that failed before its first token (a full queue: the client got a 429) was never
        admitted, as vLLM would not admit it: it leaves the gauges and is counted nowhere else."""
        if self.done:
            return
        self.done = True
        self._move(None)
        if reason == "error" and self.last_token is None:
            return
        self._success.labels(self.model_name, reason if reason in FINISHED_REASONS else "error").inc()
        self._e2e.observe((self.last_token or time.perf_counter()) - self.arrived)
