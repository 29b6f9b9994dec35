"""GET /metrics of the live server: Prometheus' own text parser reads it, vLLM's names and types are
there, and real requests (chat and text completions, streamed and not, at once) move every series by
what the replies say (usage from the replies, prompt lengths from transformers' chat template,
latencies bounded by the client's own clock); the gauges come back to 0."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from backends.core.scheduler import ComputeScheduler
from backends.models.cache import shared_cache
from backends.serving.app import ServerSettings
from backends.serving.local import ServerThread

LM = "smollm2-135m-instruct"
TYPES = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:request_success": "counter",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
}
# Typed from vLLM's vllm/v1/metrics/loggers.py (PrometheusStatLogger).
VLLM_ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0]
VLLM_ITL_BUCKETS += [40.0, 80.0]
VLLM_E2E_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0]
VLLM_E2E_BUCKETS += [480.0, 960.0, 1920.0, 7680.0]


@pytest.fixture(scope="module")
def base_url():
    # One compute slot of its own: four requests at once must queue, so "waiting" is seen above 0.
    settings = ServerSettings(gradio=False, max_tokens=64, scheduler=ComputeScheduler(slots=1))
    with ServerThread(settings) as url:
        yield url


def scrape(base_url: str) -> dict:
    """{family name: (type, {(sample name, sorted labels): value})} as prometheus_client parses it."""
    response = httpx.get(base_url + "/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        out[family.name] = (family.type, {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples})
    return out


def value(families: dict, family: str, sample: str, **labels) -> float:
    """The sum over series of `sample` whose labels include `labels` (model_name=LM by default)."""
    want = {"model_name": LM} | labels
    _, samples = families[family]
    return sum(v for (name, lab), v in samples.items() if name == sample and want.items() <= dict(lab).items())


def test_metrics_parse_with_vllm_names_and_types(base_url):
    families = scrape(base_url)
    for name, kind in TYPES.items():
        assert families[name][0] == kind, name
        assert families[name][1], f"{name} has no series before any request"
    reasons = {dict(lab)["finished_reason"] for (_, lab) in families["vllm:request_success"][1]}
    assert {"stop", "length", "abort"} <= reasons
    for family, buckets in (
        ("vllm:inter_token_latency_seconds", VLLM_ITL_BUCKETS),
        ("vllm:e2e_request_latency_seconds", VLLM_E2E_BUCKETS),
    ):
        bounds = sorted(
            float(dict(lab)["le"])
            for (name, lab), _ in families[family][1].items()
            if name.endswith("_bucket") and dict(lab)["model_name"] == LM
        )
        assert bounds == [*buckets, float("inf")]
    assert value(families, "vllm:num_requests_running", "vllm:num_requests_running") == 0


def _chat(client, stream: bool, max_tokens: int, prompt: str) -> tuple[dict, str, float]:
    started = time.perf_counter()
    messages = [{"role": "user", "content": prompt}]
    if not stream:
        reply = client.chat.completions.create(model=LM, messages=messages, max_tokens=max_tokens, temperature=0)
        return reply.usage.model_dump(), reply.choices[0].finish_reason, time.perf_counter() - started
    usage, finish = None, None
    for chunk in client.chat.completions.create(
        model=LM,
        messages=messages,
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
    return usage, finish, time.perf_counter() - started


def _completion(client, stream: bool, max_tokens: int, prompt: str) -> tuple[dict, str, float]:
    started = time.perf_counter()
    if not stream:
        reply = client.completions.create(model=LM, prompt=prompt, max_tokens=max_tokens, temperature=0)
        return reply.usage.model_dump(), reply.choices[0].finish_reason, time.perf_counter() - started
    usage, finish = None, None
    for chunk in client.completions.create(
        model=LM,
        prompt=prompt,
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
    return usage, finish, time.perf_counter() - started


def test_counters_move_by_what_the_replies_say(base_url):
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=300)
    jobs = [
        (_chat, True, 9, "Name a colour."),
        (_chat, False, 7, "What is the capital of France?"),
        (_chat, True, 30, "Say hi."),
        (_completion, False, 6, "The quick brown fox"),
        (_completion, True, 8, "Once upon a time"),
    ]
    before = scrape(base_url)
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            now = scrape(base_url)
            seen.append(
                (
                    value(now, "vllm:num_requests_running", "vllm:num_requests_running"),
                    value(now, "vllm:num_requests_waiting", "vllm:num_requests_waiting"),
                )
            )
            time.sleep(0.05)

    results: list = [None] * len(jobs)

    def one(i, fn, stream, n, prompt):
        results[i] = fn(client, stream, n, prompt)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    threads = [threading.Thread(target=one, args=(i, *job)) for i, job in enumerate(jobs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    stop.set()
    watcher.join(30)
    after = scrape(base_url)

    assert all(r is not None and r[0] is not None for r in results), results
    usages = [r[0] for r in results]
    # The prompt lengths the replies report are transformers' own tokenization of the same prompts.
    tok = shared_cache().get(LM).tokenizer
    for (fn, _, _, prompt), u in zip(jobs, usages, strict=True):
        if fn is _chat:
            ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
            ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        else:
            ids = tok(prompt)["input_ids"]
        assert u["prompt_tokens"] == len(ids), (prompt, u)

    def moved(family, sample, **labels):
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    n = len(jobs)
    assert moved("vllm:prompt_tokens", "vllm:prompt_tokens_total") == sum(u["prompt_tokens"] for u in usages)
    generated = sum(u["completion_tokens"] for u in usages)
    assert moved("vllm:generation_tokens", "vllm:generation_tokens_total") == generated
    assert moved("vllm:request_success", "vllm:request_success_total") == n
    for reason in ("stop", "length"):
        expected = sum(1 for r in results if r[1] == reason)
        assert moved("vllm:request_success", "vllm:request_success_total", finished_reason=reason) == expected
    assert moved("vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_count") == n
    assert moved("vllm:e2e_request_latency_seconds", "vllm:e2e_request_latency_seconds_count") == n
    # One interval between each two consecutive tokens of a request.
    itl = moved("vllm:inter_token_latency_seconds", "vllm:inter_token_latency_seconds_count")
    assert itl == generated - n
    # Server-side latencies fit inside what the clients measured around their own requests.
    e2e_sum = moved("vllm:e2e_request_latency_seconds", "vllm:e2e_request_latency_seconds_sum")
    ttft_sum = moved("vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_sum")
    itl_sum = moved("vllm:inter_token_latency_seconds", "vllm:inter_token_latency_seconds_sum")
    assert 0 < ttft_sum < e2e_sum <= sum(r[2] for r in results)
    assert ttft_sum + itl_sum == pytest.approx(e2e_sum, rel=1e-6)
    # The +Inf bucket holds every observation.
    inf = moved("vllm:e2e_request_latency_seconds", "vllm:e2e_request_latency_seconds_bucket", le="+Inf")
    assert inf == n
    # Five requests on one compute slot: some were seen queued; never more than five in flight.
    assert max(w for _, w in seen) >= 1
    assert max(r + w for r, w in seen) <= n
    assert value(after, "vllm:num_requests_running", "vllm:num_requests_running") == 0
    assert value(after, "vllm:num_requests_waiting", "vllm:num_requests_waiting") == 0


def test_a_client_that_leaves_mid_stream_is_an_abort(base_url):
    before = scrape(base_url)
    body = {"model": LM, "messages": [{"role": "user", "content": "Tell me a long story."}], "max_tokens": 60}
    url = base_url + "/v1/chat/completions"
    with httpx.Client(timeout=120) as http, http.stream("POST", url, json=body | {"stream": True}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if '"content": "' in line and '"content": ""' not in line:
                break  # the first text arrived: hang up
    deadline = time.monotonic() + 30
    while True:
        after = scrape(base_url)
        aborted = value(after, "vllm:request_success", "vllm:request_success_total", finished_reason="abort")
        aborted -= value(before, "vllm:request_success", "vllm:request_success_total", finished_reason="abort")
        if aborted == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert aborted == 1
    # It stopped early: fewer tokens than asked, and it is neither running nor waiting any more.
    generated = value(after, "vllm:generation_tokens", "vllm:generation_tokens_total")
    generated -= value(before, "vllm:generation_tokens", "vllm:generation_tokens_total")
    assert 1 <= generated < 60
    assert value(after, "vllm:num_requests_running", "vllm:num_requests_running") == 0
    assert value(after, "vllm:num_requests_waiting", "vllm:num_requests_waiting") == 0
