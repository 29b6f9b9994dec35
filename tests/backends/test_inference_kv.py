"""The KV cache formula against the bytes transformers' DynamicCache really holds (SmolLM2-135M and a tiny
random GQA Llama built by transformers), the known configs' parameter counts against transformers' own count
on the meta device, and the calculator's numbers for Llama-3.1-70B against a hand computation."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import (
    DynamicCache,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from backends import inference as inf
from backends.inference import model_configs as mc
from backends.models.cache import shared_cache


@pytest.fixture(scope="module")
def loaded():
    return shared_cache().get("smollm2-135m-instruct")


def held_bytes(cache) -> int:
    return sum(t.nbytes for layer in cache.layers for t in (layer.keys, layer.values))


@pytest.mark.parametrize("n", [1, 37, 200])
def test_smollm2_formula_equals_measured_bytes(loaded, n):
    hand = 30 * 2 * 3 * 64 * 4 * n  # layers x (K, V) x KV heads x head dim x float32 x tokens
    assert inf.kv_formula_bytes(loaded.model.config, n, 4) == hand
    assert inf.measured_cache_bytes(loaded, n) == hand
    ids = loaded.tokenizer("The lighthouse keeper wrote numbers.", return_tensors="pt").input_ids
    cache = DynamicCache(config=loaded.model.config)
    with torch.inference_mode():
        loaded.model(ids, past_key_values=cache, use_cache=True)
    assert held_bytes(cache) == inf.kv_formula_bytes(loaded.model.config, ids.shape[1], 4)


def test_smollm2_formula_error_is_zero_and_growth_is_linear(loaded):
    assert inf.kv_formula_error(loaded, 64) == 0.0
    rows = inf.cache_growth(loaded, max_tokens=96, step=32)
    assert [r["tokens"] for r in rows] == [32, 64, 96]
    assert all(r["measured"] == r["formula"] == 30 * 2 * 3 * 64 * 4 * r["tokens"] for r in rows)


@pytest.mark.parametrize(
    ("dtype", "head_dim"),
    [(torch.float32, None), (torch.bfloat16, None), (torch.float16, 24)],
)
def test_tiny_random_gqa_llama_formula_equals_measured(dtype, head_dim):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=head_dim,
        max_position_embeddings=128,
    )
    model = LlamaForCausalLM(config).to(dtype).eval()
    ids = torch.randint(0, 97, (2, 19))
    cache = DynamicCache(config=config)
    with torch.inference_mode():
        model(ids, past_key_values=cache, use_cache=True)
    per = 2 if dtype != torch.float32 else 4
    hd = head_dim or 64 // 8
    assert held_bytes(cache) == 3 * 2 * 2 * hd * per * 19 * 2
    assert inf.kv_formula_bytes(config, 19, per, batch=2) == held_bytes(cache)


BUILD = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}
BUILD["mistral"] = (MistralConfig, MistralForCausalLM)


@pytest.mark.parametrize("shape", mc.KNOWN_MODELS, ids=lambda m: m.name)
def test_known_params_equal_transformers_count(shape):
    cls, model_cls = BUILD[shape.model_type]
    fields = {
        k: getattr(shape, k)
        for k in (
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "head_dim",
            "hidden_size",
            "intermediate_size",
            "vocab_size",
            "tie_word_embeddings",
            "max_position_embeddings",
        )
    }
    if shape.model_type == "llama":
        fields["attention_bias"] = shape.attention_bias
    with torch.device("meta"):
        model = model_cls(cls(**fields))
    counted = sum(p.numel() for p in model.parameters())  # tied embeddings are one Parameter
    assert shape.params == counted
    assert inf.kv_shape(shape) == inf.kv_shape(model.config)


def test_llama_70b_calculator_against_hand_computation():
    m = mc.KNOWN_BY_NAME["meta-llama/Llama-3.1-70B"]
    per_token = 80 * 2 * 8 * 128 * 2  # bf16: 327,680 bytes = 320 KiB a token
    assert per_token == 327_680
    assert inf.kv_formula_bytes(m, 1, 2) == per_token
    assert inf.kv_formula_bytes(m, 131_072, 2) == 42_949_672_960  # 40 GiB at the full 128k context
    assert inf.kv_formula_bytes(m, 4096, 2, batch=8) == per_token * 4096 * 8
    # its published size: 70.6B parameters
    assert m.params == 70_553_706_496
    hand = -(-70_553_706_496 * 2 // per_token)  # ceil(weights bytes / bytes a token)
    assert inf.crossover_tokens(m, m.params, 2, 2) == hand == 430_626
    # without GQA (64 KV heads) the cache would be 8x larger
    assert inf.kv_formula_bytes(m, 1, 2) * 8 == 80 * 2 * 64 * 128 * 2


def test_hub_config_reads_local_cache_offline_and_says_when_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = tmp_path / "hub"
    with pytest.raises(mc.ConfigUnavailable, match="offline"):
        mc.hub_config("nobody/no-such-model-xyz", cache_dir=str(hub))
    repo = hub / "models--someone--tiny-gqa"
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    config = {"model_type": "llama", "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2}
    (snap / "config.json").write_text(json.dumps({**config, "hidden_size": 256, "vocab_size": 100}))
    got = mc.hub_config("someone/tiny-gqa", cache_dir=str(hub))
    assert inf.kv_formula_bytes(got, 10, 2) == 4 * 2 * 2 * 32 * 2 * 10
