"""The memory calculator against real models: parameter counts of transformers' Llama models built
on the meta device, our GPT's parameter shapes and the bytes autograd saves for its backward pass
(counted here with saved_tensors_hooks), FSDP's uneven split (torch.chunk), and hand computation."""

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from backends.distributed import (
    PRESETS,
    activation_bytes,
    gpt_shape,
    memory_per_rank,
    param_count,
    param_shapes,
    shard_rows,
)
from backends.scratch_gpt import GPT, GPTConfig


def llama_config(key: str) -> LlamaConfig:
    m = PRESETS[key]
    return LlamaConfig(
        vocab_size=m.vocab,
        hidden_size=m.hidden,
        intermediate_size=m.intermediate,
        num_hidden_layers=m.n_layer,
        num_attention_heads=m.n_head,
        num_key_value_heads=m.n_kv_head,
        tie_word_embeddings=m.tied,
    )


@pytest.mark.parametrize("key", ["smollm2-135m", "llama2-7b", "llama3-8b"])
def test_param_count_equals_transformers_llama_on_meta(key):
    with torch.device("meta"):
        model = LlamaForCausalLM(llama_config(key))
    assert param_count(PRESETS[key]) == sum(p.numel() for p in model.parameters())


def test_published_sizes():
    # SmolLM2-135M: 134,515,008 parameters (tied head); Llama-2-7B: 6,738,415,616 (Touvron et al.: "7B")
    assert param_count(PRESETS["smollm2-135m"]) == 134_515_008
    assert param_count(PRESETS["llama2-7b"]) == 6_738_415_616


@pytest.mark.parametrize("bias", [True, False])
def test_gpt_shapes_equal_the_model(bias):
    config = GPTConfig(vocab_size=77, block_size=16, n_layer=3, n_head=2, n_embd=32, bias=bias)
    model = GPT(config)
    assert param_shapes(gpt_shape(config)) == [tuple(p.shape) for p in model.parameters()]
    assert param_count(gpt_shape(config)) == model.num_params()


@pytest.mark.parametrize(("layers", "batch", "seq"), [(1, 3, 16), (2, 2, 8), (4, 6, 64)])
def test_gpt_activation_formula_equals_saved_tensors(layers, batch, seq):
    config = GPTConfig(vocab_size=65, block_size=64, n_layer=layers, n_head=4, n_embd=64)
    model = GPT(config, torch.Generator().manual_seed(0))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    x, y = torch.randint(65, (2, batch, seq))  # cloned: inputs and targets in storages of their own
    x, y = x.clone(), y.clone()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x, y)
    assert activation_bytes(gpt_shape(config), batch, seq) == sum(storages.values())


def test_shard_rows_follow_torch_chunk():
    for rows in (1, 7, 65, 128, 129):
        for world in (1, 2, 3, 4, 8):
            sizes = [c.shape[0] for c in torch.arange(rows).chunk(world)]
            sizes += [0] * (world - len(sizes))
            assert [shard_rows(rows, world, r) for r in range(world)] == sizes


def test_hand_computed_llama2_7b():
    p = 6_738_415_616
    ddp = memory_per_rank(PRESETS["llama2-7b"], 8, "ddp", "fp32", micro_batch=1, seq=4096)
    assert (ddp.params, ddp.grads, ddp.optimizer) == (4 * p, 4 * p, 8 * p)  # 16 bytes a parameter, everywhere
    z1 = memory_per_rank(PRESETS["llama2-7b"], 8, "zero1", "bf16")
    assert (z1.params, z1.grads, z1.optimizer) == (2 * p, 2 * p, round(12 * p / 8))
    z2 = memory_per_rank(PRESETS["llama2-7b"], 8, "zero2", "bf16")
    assert (z2.params, z2.grads) == (2 * p, round(2 * p / 8))
    z3 = memory_per_rank(PRESETS["llama2-7b"], 8, "zero3", "bf16")
    assert z3.params + z3.grads + z3.optimizer == 2 * p  # 16 bytes / 8 ranks
    # Korthikanti et al.: 34 s b h + 5 a s^2 b bytes a layer in 16-bit, s=4096, b=1, h=4096, a=32
    layer = 34 * 4096 * 4096 + 5 * 32 * 4096**2
    assert z3.activations == 32 * layer + 4 * 4096 * 32000


def test_hand_computed_tiny_gpt():
    # 1 layer, h=4, 1 head, vocab 3, block 2, biases: embeddings 12 + 8, block 8+48+12+20+8+64+16+20+4, ln_f 8
    config = GPTConfig(vocab_size=3, block_size=2, n_layer=1, n_head=1, n_embd=4)
    assert param_count(gpt_shape(config)) == 12 + 8 + 8 + (48 + 12) + (16 + 4) + 8 + (64 + 16) + (64 + 4) + 8
    # b=1, s=2: layer 4*2*(64+4) + 4*1*4 + 4 = 564; head 4*2*(8+2+3) + 32 + 4 = 140
    assert activation_bytes(gpt_shape(config), 1, 2) == 564 + 140


def test_even_split_is_close_to_the_real_split():
    config = GPTConfig(vocab_size=65)
    shape = gpt_shape(config)
    even = memory_per_rank(shape, 2, "zero3", micro_batch=6)
    exact = [memory_per_rank(shape, 2, "zero3", micro_batch=6, rank=r) for r in range(2)]
    assert sum(e.params for e in exact) == 4 * param_count(shape)
    assert all(math.isclose(e.total, even.total, rel_tol=1e-3) for e in exact)


def test_rejects_unknown_settings():
    with pytest.raises(ValueError, match="strategy"):
        memory_per_rank(PRESETS["llama2-7b"], 2, "zero4")
    with pytest.raises(ValueError, match="dtype"):
        memory_per_rank(PRESETS["llama2-7b"], 2, "ddp", "fp8")
