"""Batching simulation against hand-worked runs, the paged cache's block counts by hand, the tiled
online softmax against PyTorch's own attention, and step costs measured on the real model."""

import math

import pytest
import torch
import torch.nn.functional as F

from backends import inference as inf

# decode(b) = b seconds, prefill 0.5 s per prompt token: easy to follow by hand.
COSTS = inf.StepCosts(decode_base=0.0, decode_per_row=1.0, prefill_per_token=0.5)
A = inf.Request(0, 0.0, prompt=2, output=3)
B = inf.Request(1, 0.5, prompt=2, output=1)


def test_continuous_batching_lets_a_newcomer_join_the_running_batch():
    # t=0 A joins: prefill 1 s -> t=1, A's first token. B (arrived 0.5) joins: prefill 1 s + decode A 1 s -> t=3,
    # B's only token (done), A's second. Then decode A alone: t=4, A done.
    r = inf.simulate([A, B], COSTS, "continuous", max_batch=2)
    a, b = r.done
    assert (a.first_token, a.finish) == (1.0, 4.0)
    assert (b.first_token, b.finish) == (3.0, 3.0)
    assert r.tokens_out == 4 and r.end == 4.0 and r.throughput == 1.0
    assert b.ttft == 2.5 and a.latency == 4.0


def test_static_batching_makes_the_newcomer_wait_for_the_whole_batch():
    # A runs alone until done (t=1, 2, 3); only then B is prefilled: t=4.
    r = inf.simulate([A, B], COSTS, "static", max_batch=2)
    a, b = r.done
    assert (a.first_token, a.finish) == (1.0, 3.0)
    assert (b.first_token, b.finish) == (4.0, 4.0)
    assert b.latency == 3.5


def test_a_static_batch_pays_for_its_finished_rows_until_the_longest_is_done():
    short, long = inf.Request(0, 0.0, 1, 1), inf.Request(1, 0.0, 1, 3)
    r = inf.simulate([short, long], COSTS, "static", max_batch=2)
    # prefill 2 tokens = 1 s (both first tokens), then two steps of the full batch of 2 (short rides along): 2 s each.
    assert [d.finish for d in r.done] == [1.0, 5.0]
    assert r.tokens_out == 4
    c = inf.simulate([short, long], COSTS, "continuous", max_batch=2)
    assert [d.finish for d in c.done] == [1.0, 3.0]  # the short one leaves: decode(1) = 1 s per step


def test_the_batch_limit_holds_and_every_request_finishes():
    requests = inf.make_requests(30, rate=20.0, prompt=(4, 40), output=(1, 30), seed=3)
    for policy in ("static", "continuous"):
        r = inf.simulate(requests, COSTS, policy, max_batch=4)
        assert sorted(d.rid for d in r.done) == list(range(30))
        assert max(row["slots"] for row in r.timeline) <= 4
        assert r.tokens_out == sum(q.output for q in requests)
        assert all(d.first_token > d.arrival and d.finish >= d.first_token for d in r.done)


def test_paged_blocks_are_ceil_of_tokens_over_block_size_and_are_reused():
    r = inf.simulate([inf.Request(0, 0.0, 17, 3)], COSTS, "continuous", max_batch=1, block_size=16)
    # tokens held after each step: 18, 19, 20 -> 2 blocks each time
    assert [len(s[0]) for s in r.snapshots] == [math.ceil(n / 16) for n in (18, 19, 20)]
    one, two = inf.Request(0, 0.0, 15, 1), inf.Request(1, 10.0, 15, 1)
    r = inf.simulate([one, two], COSTS, "continuous", max_batch=1, block_size=16)
    assert r.snapshots[0] == {0: [0]} and r.snapshots[-1] == {1: [0]}  # block 0 given back, taken again
    assert inf.contiguous_reserved([one, two], [0, 1], max_output=10) == 2 * (15 + 10)


def test_fit_costs_is_the_least_squares_line():
    c = inf.fit_costs([(1, 0.03), (2, 0.04), (4, 0.06), (8, 0.10)], 0.001)
    assert c.decode_per_row == pytest.approx(0.01) and c.decode_base == pytest.approx(0.02)


@pytest.mark.parametrize("tile", [7, 16, 64, 500])
def test_tiled_online_softmax_equals_pytorch_attention(tile):
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 100, 16, generator=gen) for _ in range(3))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out, held = inf.tiled_attention(q, k, v, tile=tile)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(inf.naive_attention(q, k, v), ref, atol=1e-5, rtol=1e-5)
    assert held == {"score_elements": 100 * min(tile, 100), "full_elements": 100 * 100}


def test_traffic_by_hand():
    # 1 head, 4 tokens, dim 2, tile 2, fp32: plain = 4*(4*2*4) + 4*16*4 = 128 + 256; tiled = 2*32 + 2 tiles*2*32
    assert inf.traffic_bytes(4, 1, 2, 2) == {"naive": 384, "tiled": 64 + 128}


def test_measured_kernels_agree_with_plain_attention_and_the_math_kernel_runs():
    assert inf.available_backends()["MATH"]
    rows = inf.measure_kernels((64,), heads=2, dim=16, repeats=1)
    assert rows[0]["math_max_diff"] < 1e-5 and rows[0]["naive_ms"] > 0


def test_step_costs_measured_on_the_real_model():
    from backends.models.cache import shared_cache

    costs = inf.measure_step_costs(shared_cache().get("smollm2-135m-instruct"), batches=(1, 4), repeats=2)
    assert [b for b, _ in costs.measured] == [1, 4]
    assert all(s > 0 for _, s in costs.measured) and costs.prefill_per_token > 0
