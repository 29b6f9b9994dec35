"""The Inference page's load run: Prometheus' histogram_quantile by hand, and a real run (two streaming
clients against the playground's own server, started in this process by the job) whose scraped totals
equal what the clients themselves received."""

from __future__ import annotations

import pytest

from backends.core.jobs import DONE, shared_runner
from backends.inference import Histo, LoadConfig, histogram_quantile, load_job, parse_scrape

INF = float("inf")


def test_histogram_quantile_by_hand():
    # 2 observations in (0, 1], 4 in (1, 2], 2 in (2, 4], none past 4.
    histo = Histo(((1.0, 2.0), (2.0, 6.0), (4.0, 8.0), (INF, 8.0)), sum=15.0, count=8.0)
    assert histogram_quantile(0.5, histo) == pytest.approx(1.0 + (4 - 2) / 4)  # rank 4 in (1, 2]
    assert histogram_quantile(0.99, histo) == pytest.approx(2.0 + 2.0 * (7.92 - 6) / 2)
    assert histogram_quantile(0.1, histo) == pytest.approx(0.8 / 2)  # the first bucket starts at 0
    # A rank in the +Inf bucket: Prometheus answers the largest finite bound.
    assert histogram_quantile(0.9, Histo(((1.0, 1.0), (INF, 4.0)), 9.0, 4.0)) == 1.0
    assert histogram_quantile(0.5, Histo(((1.0, 0.0), (INF, 0.0)), 0.0, 0.0)) is None


def test_parse_scrape_sums_series_and_keeps_buckets():
    text = (
        "# TYPE vllm:generation_tokens counter\n"
        'vllm:generation_tokens_total{model_name="a"} 5\n'
        'vllm:generation_tokens_total{model_name="b"} 7\n'
        "# TYPE vllm:inter_token_latency_seconds histogram\n"
        'vllm:inter_token_latency_seconds_bucket{le="0.1",model_name="a"} 3\n'
        'vllm:inter_token_latency_seconds_bucket{le="+Inf",model_name="a"} 4\n'
        'vllm:inter_token_latency_seconds_sum{model_name="a"} 0.5\n'
        'vllm:inter_token_latency_seconds_count{model_name="a"} 4\n'
    )
    both = parse_scrape(text, at=0.0)
    assert both.values["vllm:generation_tokens_total"] == 12
    only_a = parse_scrape(text, at=0.0, model="a")
    assert only_a.values["vllm:generation_tokens_total"] == 5
    assert only_a.histograms["vllm:inter_token_latency_seconds"] == Histo(((0.1, 3.0), (INF, 4.0)), 0.5, 4.0)


def test_load_run_against_our_own_server():
    config = LoadConfig(clients=2, seconds=3.0, max_tokens=6, scrape_every_s=0.5)
    job = shared_runner().submit("inference.server.test", load_job, config)
    assert job.wait(600)
    assert job.status == DONE, job.error
    result = job.result
    assert result.own_server and result.model == "smollm2-135m-instruct"
    answered = [r for r in result.records if r.status == 200 and r.completion_tokens is not None]
    assert answered and len(answered) == len(result.records), result.records
    last = result.points[-1]
    # What the server counted since the load began equals what the clients received.
    assert last.requests == len(answered)
    assert last.generation_tokens == sum(r.completion_tokens for r in answered)
    assert last.prompt_tokens == sum(r.prompt_tokens for r in answered)
    assert last.running == 0 and last.waiting == 0
    assert all(p.running + p.waiting <= config.clients for p in result.points)
    assert any(p.tokens_per_s for p in result.points)
    assert last.quantiles["ttft_p50"] is not None and last.quantiles["itl_p99"] is not None
    names = {row["name"] for row in result.table}
    assert {"vllm:num_requests_running", "vllm:time_to_first_token_seconds"} <= names
    events = job.events_since(0)
    assert [e.data["point"] for e in events if "point" in e.data] == result.points
