"""The hand-written Llama decode pass (backends/decoding/fast_step.py) against transformers itself, the
token loop on it against model.generate, the roofline's arithmetic against a hand computation, and the
cached model untouched."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from backends import decoding as D
from backends.inference.fast_decode import decode_paths
from backends.inference.roofline import (
    machine_bandwidth,
    machine_flops,
    matmul_params,
    roofline,
    weight_bytes_per_token,
)
from backends.models.cache import shared_cache

PROMPTS = [
    "The history of the printing press began",
    "def fibonacci(n):",
    "Paris is the capital of",
]


def lm():
    return shared_cache().get("smollm2-135m-instruct")


def snapshot(model):
    return {n: (p.data_ptr(), p.detach().clone()) for n, p in model.named_parameters()}


@pytest.mark.parametrize("split", [False, True], ids=["one-thread-products", "split-products"])
def test_fast_logits_equal_transformers_over_40_steps(split):
    # split: the app loop's pass, large products as two halves (sums in another order: not bit-equal)
    loaded = lm()
    model = loaded.model
    before = snapshot(model)
    assert D.supports_fast(model)
    worst = 0.0
    with torch.inference_mode():
        for text in PROMPTS:
            ids = torch.tensor([loaded.tokenizer(text)["input_ids"]])
            ref_cache, fast = DynamicCache(config=model.config), D.FastCache(model, capacity=16, split=split)
            new, length = ids, 0
            for _ in range(42):
                length += new.shape[1]
                ref = model(
                    input_ids=new, attention_mask=torch.ones(1, length, dtype=torch.long), past_key_values=ref_cache
                ).logits[0, -1]
                mine = D.fast_logits(fast, new)[0]
                assert torch.allclose(mine, ref, atol=1e-4, rtol=1e-4), float((mine - ref).abs().max())
                assert int(mine.argmax()) == int(ref.argmax())
                worst = max(worst, float((mine - ref).abs().max()))
                new = torch.tensor([[int(ref.argmax())]])
            assert fast.length == ref_cache.get_seq_length() == length
    assert worst < 1e-4
    after = snapshot(model)
    assert all(after[n][0] == before[n][0] and torch.equal(after[n][1], before[n][1]) for n in before)
    assert not model.training


def test_a_chunk_after_the_cache_equals_transformers():
    """Several new positions after a filled cache (the mask is not the top-left causal one)."""
    loaded = lm()
    model = loaded.model
    ids = loaded.tokenizer(PROMPTS[0] + " in the fifteenth century when")["input_ids"]
    with torch.inference_mode():
        ref = model(input_ids=torch.tensor([ids])).logits[0, -1]
        fast = D.FastCache(model)
        D.fast_logits(fast, torch.tensor([ids[:5]]))
        mine = D.fast_logits(fast, torch.tensor([ids[5:]]))[0]
    assert torch.allclose(mine, ref, atol=1e-4, rtol=1e-4)


def test_greedy_loop_equals_generate_and_uses_the_fast_cache():
    loaded = lm()
    model = loaded.model
    config = D.DecodingConfig(strategy="greedy", max_new_tokens=40)
    assert isinstance(D.new_cache(loaded, logits_only=True), D.FastCache)
    with D.fast_decode_off():
        assert not isinstance(D.new_cache(loaded, logits_only=True), D.FastCache)
    assert not isinstance(D.new_cache(loaded), D.FastCache)  # beam search, contrastive, metrics
    for text in PROMPTS:
        ids = D.encode_prompt(loaded, text, chat=True)
        ours = [s.token_id for s in D.generate_stream(loaded, ids, config)]
        with torch.inference_mode():
            x = torch.tensor([ids])
            out = model.generate(x, attention_mask=torch.ones_like(x), **config.to_generate_kwargs())
        assert ours == out[0, len(ids) :].tolist()


def test_sampling_loop_equals_generate():
    loaded = lm()
    config = D.DecodingConfig(strategy="sample", temperature=0.9, top_k=50, top_p=0.95, seed=7, max_new_tokens=30)
    ids = D.encode_prompt(loaded, PROMPTS[0], chat=True)
    ours = [s.token_id for s in D.generate_stream(loaded, ids, config)]
    torch.manual_seed(config.seed)
    with torch.inference_mode():
        x = torch.tensor([ids])
        out = loaded.model.generate(x, attention_mask=torch.ones_like(x), **config.to_generate_kwargs())
    assert ours == out[0, len(ids) :].tolist()


def test_decode_paths_give_the_baselines_tokens():
    rows = decode_paths(lm(), PROMPTS[1], n_tokens=6, repeats=1, bound=100.0)
    assert {r["path"] for r in rows} >= {"transformers · DynamicCache", "hand-written (fast_step)"}
    for r in rows:
        assert r["same_tokens"], r
        assert r["max_logit_diff"] < 1e-3
        assert abs(r["bound_share"] - r["tokens_per_s"] / 100.0) < 1e-12


def test_roofline_arithmetic_by_hand():
    model = lm().model
    cfg = model.config
    h, inter, layers, vocab = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.vocab_size
    kv = cfg.num_key_value_heads * cfg.head_dim
    per_layer_linear = h * h * 2 + h * kv * 2 + 3 * h * inter  # q, o; k, v; gate, up, down
    linear = layers * per_layer_linear + vocab * h  # the tied head, once
    params = linear + layers * 2 * h + h  # the norms' scales
    assert matmul_params(model) == linear
    assert weight_bytes_per_token(model) == 4 * params == sum(p.numel() * 4 for p in model.parameters())
    roof = roofline(model, bandwidth=20e9, flops=100e9)
    assert roof.decode_bound == 20e9 / (4 * params)
    assert roof.prefill_bound == 100e9 / (2 * linear)
    assert roof.ridge == 5.0
    assert abs(roof.decode_intensity - 2 * linear / (4 * params)) < 1e-12
    assert roof.prefill_intensity(64) == 64 * roof.decode_intensity
    assert roof.attainable(1.0) == 20e9 and roof.attainable(10.0) == 100e9


def test_machine_measurements_are_plausible():
    assert 1e8 < machine_bandwidth(mb=64, runs=3) < 1e13
    assert 1e7 < machine_flops(n=256, runs=3) < 1e14
