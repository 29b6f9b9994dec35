"""A small load generator against an OpenAI-compatible server, and the server's /metrics read back live.

`load_job(ctx, config)` (a background job) runs `config.clients` clients at once for
`config.seconds` seconds, each sending streamed chat completions one after another (after one 1-token
warm-up answer, so the model is in memory before the clock starts), while it scrapes
GET /metrics about once a second and reports each scrape as a `Point` (`ctx.report(..., point=,
table=)`). With no `config.url` it starts the playground's own server (backends.serving, vLLM's metric
names) in this process on a free localhost port and stops it at the end; any server that exports
vLLM's names works (a real vLLM included).

What a point holds, all read from the scrape, none from the clients:
  running, waiting        vllm:num_requests_running / _waiting as scraped
  tokens_per_s            the rise of vllm:generation_tokens_total since the previous scrape, per second
  ttft_p*, itl_p*         percentiles of vllm:time_to_first_token_seconds / vllm:inter_token_latency_seconds
                          over everything observed since the load started (bucket counts minus those of
                          the first scrape), as Prometheus' histogram_quantile computes them: linear
                          inside the bucket the rank falls in, so a value is only as fine as vLLM's buckets
The clients keep their own account (`ClientRecord`: status, client-side time to first chunk, usage),
so the page can set what the server counted beside what the clients received.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from backends.serving import api_server

PROMPTS = (
    "Name three colours.",
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "Give me a tip for learning to cook.",
    "What does a cat like to do?",
    "Say hello in a friendly way.",
)
QUANTILES = (0.5, 0.9, 0.99)
RUNNING, WAITING = "vllm:num_requests_running", "vllm:num_requests_waiting"
GENERATED, PROMPTED, SUCCESS = "vllm:generation_tokens", "vllm:prompt_tokens", "vllm:request_success"
TTFT, ITL = "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds"
DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class LoadConfig:
    clients: int = 4
    seconds: float = 20.0
    max_tokens: int = 24
    url: str | None = None  # None: start our own server in this process
    model: str | None = None  # None: DEFAULT_MODEL on our server, else the server's first listed model
    api_key: str | None = None
    scrape_every_s: float = 1.0
    prompts: tuple[str, ...] = PROMPTS


@dataclass(frozen=True)
class Histo:
    """One histogram as scraped: cumulative counts per upper bound (+inf last), sum and count."""

    buckets: tuple[tuple[float, float], ...]
    sum: float
    count: float

    def minus(self, earlier: Histo | None) -> Histo:
        """What was observed after `earlier` (same buckets)."""
        if earlier is None:
            return self
        before = dict(earlier.buckets)
        return Histo(
            tuple((le, c - before.get(le, 0.0)) for le, c in self.buckets),
            self.sum - earlier.sum,
            self.count - earlier.count,
        )


@dataclass(frozen=True)
class Scrape:
    """The series the page charts, summed over label sets (one model, or several)."""

    at: float  # time.perf_counter() when the answer arrived
    values: dict[str, float]  # sample name -> value: gauges and counters (_total)
    histograms: dict[str, Histo]  # family name -> histogram


@dataclass(frozen=True)
class Point:
    t: float  # seconds since the load started
    running: float
    waiting: float
    tokens_per_s: float | None
    prompt_tokens: float  # since the load started
    generation_tokens: float
    requests: float  # vllm:request_success_total since the load started
    quantiles: dict[str, float | None]  # "ttft_p50", "itl_p99", ... (seconds; None: nothing observed yet)


@dataclass
class ClientRecord:
    client: int
    started: float  # seconds since the load started
    status: int | None = None
    ttft_s: float | None = None  # first chunk with text, client side
    elapsed_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None


@dataclass
class LoadResult:
    url: str
    model: str
    points: list[Point] = field(default_factory=list)
    records: list[ClientRecord] = field(default_factory=list)
    table: list[dict] = field(default_factory=list)  # the last scrape's families (metric_table)
    raw: str = ""  # the last scrape's text, as the server sent it
    own_server: bool = False


def parse_scrape(text: str, at: float | None = None, model: str | None = None) -> Scrape:
    """Prometheus text -> summed samples and histograms (only series with model_name=model, if given)."""
    values: dict[str, float] = {}
    raw: dict[str, dict] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if model is not None and s.labels.get("model_name", model) != model:
                continue
            if family.type == "histogram":
                h = raw.setdefault(family.name, {"buckets": {}, "sum": 0.0, "count": 0.0})
                if s.name.endswith("_bucket"):
                    le = float(s.labels["le"])
                    h["buckets"][le] = h["buckets"].get(le, 0.0) + s.value
                elif s.name.endswith("_sum"):
                    h["sum"] += s.value
                elif s.name.endswith("_count"):
                    h["count"] += s.value
            elif not s.name.endswith("_created"):
                values[s.name] = values.get(s.name, 0.0) + s.value
    histograms = {name: Histo(tuple(sorted(h["buckets"].items())), h["sum"], h["count"]) for name, h in raw.items()}
    return Scrape(time.perf_counter() if at is None else at, values, histograms)


def histogram_quantile(q: float, histo: Histo) -> float | None:
    """Prometheus' histogram_quantile: the rank q*count found in its bucket, linear inside it (the first
    bucket starts at 0); past the last finite bound, that bound. None with no observations."""
    buckets = [(le, c) for le, c in histo.buckets]
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            in_bucket = count - prev_count
            if in_bucket <= 0:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / in_bucket
        prev_le, prev_count = le, count
    return prev_le


def point(scrape: Scrape, first: Scrape, previous: Scrape | None) -> Point:
    """One chart point: this scrape against the first (since the load started) and the previous one."""

    def since(name: str, base: Scrape) -> float:
        return scrape.values.get(name, 0.0) - base.values.get(name, 0.0)

    rate = None
    if previous is not None and scrape.at > previous.at:
        rate = since(GENERATED + "_total", previous) / (scrape.at - previous.at)
    quantiles = {}
    for key, family in (("ttft", TTFT), ("itl", ITL)):
        now = scrape.histograms.get(family)
        seen = now.minus(first.histograms.get(family)) if now is not None else None
        for q in QUANTILES:
            quantiles[f"{key}_p{round(q * 100)}"] = histogram_quantile(q, seen) if seen is not None else None
    return Point(
        t=scrape.at - first.at,
        running=scrape.values.get(RUNNING, 0.0),
        waiting=scrape.values.get(WAITING, 0.0),
        tokens_per_s=rate,
        prompt_tokens=since(PROMPTED + "_total", first),
        generation_tokens=since(GENERATED + "_total", first),
        requests=since(SUCCESS + "_total", first),
        quantiles=quantiles,
    )


def metric_table(text: str) -> list[dict]:
    """Every family of a scrape: name, type, help, and its samples as 'name{labels} value' lines."""
    rows = []
    for family in text_string_to_metric_families(text):
        samples = [
            f"{s.name}{{{','.join(f'{k}={v!r}' for k, v in sorted(s.labels.items()))}}} {s.value:g}"
            for s in family.samples
        ]
        rows.append({"name": family.name, "type": family.type, "help": family.documentation, "samples": samples})
    return rows


def fetch_metrics(client: httpx.Client, url: str) -> str:
    response = client.get(url.rstrip("/") + "/metrics")
    response.raise_for_status()
    return response.text


def _stream_chat(http: httpx.Client, url: str, model: str, prompt: str, config: LoadConfig, rec: ClientRecord) -> None:
    """One streamed chat completion; the record gets the status, time to first text and usage."""
    t0 = time.perf_counter()
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": config.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    try:
        with http.stream("POST", url.rstrip("/") + "/v1/chat/completions", json=body, headers=headers) as response:
            rec.status = response.status_code
            if response.status_code != 200:
                rec.error = response.read().decode("utf-8", "replace")[:300]
                return
            for line in response.iter_lines():
                if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                    continue
                event = json.loads(line[5:])
                if "error" in event:
                    rec.error = str(event["error"].get("message"))[:300]
                for choice in event.get("choices") or []:
                    if (choice.get("delta") or {}).get("content") and rec.ttft_s is None:
                        rec.ttft_s = time.perf_counter() - t0
                if event.get("usage"):
                    rec.prompt_tokens = event["usage"]["prompt_tokens"]
                    rec.completion_tokens = event["usage"]["completion_tokens"]
    except httpx.HTTPError as exc:
        rec.error = f"{type(exc).__name__}: {exc}"
    finally:
        rec.elapsed_s = time.perf_counter() - t0


def _clients(url: str, model: str, config: LoadConfig, started: float, stop: threading.Event, records: list) -> list:
    prompts = itertools.cycle(config.prompts)
    lock = threading.Lock()
    deadline = started + config.seconds

    def client(i: int) -> None:
        with httpx.Client(timeout=httpx.Timeout(300, connect=10)) as http:
            while time.perf_counter() < deadline and not stop.is_set():
                with lock:
                    prompt = next(prompts)
                    rec = ClientRecord(i, time.perf_counter() - started)
                    records.append(rec)
                _stream_chat(http, url, model, prompt, config, rec)
                if rec.status is not None and rec.status >= 400:
                    time.sleep(0.5)  # refused (429, 5xx): do not hammer

    threads = [
        threading.Thread(target=client, args=(i,), name=f"load-client-{i}", daemon=True) for i in range(config.clients)
    ]
    for th in threads:
        th.start()
    return threads


def served_model(http: httpx.Client, url: str, config: LoadConfig) -> str:
    if config.model:
        return config.model
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    data = http.get(url.rstrip("/") + "/v1/models", headers=headers).json().get("data") or []
    ids = [m["id"] for m in data]
    if DEFAULT_MODEL in ids:
        return DEFAULT_MODEL
    if not ids:
        raise RuntimeError(f"{url}/v1/models lists no model.")
    return ids[0]


def warm_up(url: str, model: str, config: LoadConfig) -> None:
    """One 1-token answer, so the load's clock does not include loading the model."""
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    body = {"model": model, "messages": [{"role": "user", "content": config.prompts[0]}], "max_tokens": 1}
    with httpx.Client(timeout=httpx.Timeout(600, connect=10)) as http:
        http.post(url.rstrip("/") + "/v1/chat/completions", json=body, headers=headers).raise_for_status()


def load_job(ctx, config: LoadConfig) -> LoadResult:
    """The background job: start the server if needed, run the clients, scrape until they are all done."""
    server = None
    if config.url is None:
        server = api_server(max_tokens=max(config.max_tokens, 1))
        url = server.start()
    else:
        url = config.url
    try:
        with httpx.Client(timeout=30) as http:
            model = served_model(http, url, config)
            result = LoadResult(url, model, own_server=server is not None)
            ctx.report(0.0, "warm-up")
            warm_up(url, model, config)  # loads the model if it is not in memory; before the first scrape
            first = previous = parse_scrape(fetch_metrics(http, url), model=model)
            started, stop = first.at, threading.Event()
            threads = _clients(url, model, config, started, stop, result.records)
            while True:
                time.sleep(max(0.05, config.scrape_every_s - (time.perf_counter() - previous.at)))
                if ctx.stopped:
                    stop.set()
                text = fetch_metrics(http, url)
                scrape = parse_scrape(text, model=model)
                result.points.append(point(scrape, first, previous))
                result.table, result.raw = metric_table(text), text
                previous = scrape
                alive = any(th.is_alive() for th in threads)
                elapsed = scrape.at - started
                ctx.report(
                    min(elapsed / config.seconds, 1.0), f"{elapsed:.0f} s", point=result.points[-1], table=result.table
                )
                if not alive:
                    break
            for th in threads:
                th.join(5)
            return result
    finally:
        if server is not None:
            server.stop()
