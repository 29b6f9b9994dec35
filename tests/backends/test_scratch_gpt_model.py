"""Parity of the hand-written GPT with PyTorch's and transformers' own modules, and its save/export round trips."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from backends.models.cache import shared_cache
from backends.scratch_gpt import GPT, CharTokenizer, GPTConfig, export_hf, load, save
from backends.scratch_gpt.attention import CausalSelfAttention
from backends.scratch_gpt.block import Block
from backends.scratch_gpt.positions import Rotary, sinusoid_table

CFG = GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=4, n_embd=32)
TOK = CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz ,.;:!?'\nXYZ")


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial weights everywhere (biases and norms included), so no term can hide behind a zero or a one."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3 + (1.0 if p.dim() == 1 else 0.0) * 0.1)
    return module.eval()


@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_attention_equals_scaled_dot_product_attention(positions):
    cfg = GPTConfig(vocab_size=40, block_size=16, n_head=4, n_embd=32, positions=positions)
    attn = randomize(CausalSelfAttention(cfg))
    x = torch.randn(3, 11, 32, generator=torch.Generator().manual_seed(1))
    ours, weights = attn(x, return_weights=True)
    # the reference: q, k, v from the same weights by F.linear, PyTorch's attention with an explicit causal mask
    q, k, v = F.linear(x, attn.c_attn.weight, attn.c_attn.bias).split(32, dim=-1)
    q, k, v = (z.view(3, 11, 4, 8).transpose(1, 2) for z in (q, k, v))
    if positions == "rope":
        q, k = attn.rotary(q, k)
    mask = torch.ones(11, 11, dtype=torch.bool).tril()
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    reference = F.linear(y.transpose(1, 2).reshape(3, 11, 32), attn.c_proj.weight, attn.c_proj.bias)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 4, 11)) and weights.triu(1).abs().max() == 0


def test_block_equals_pytorch_pre_norm_encoder_layer_with_a_causal_mask():
    block = randomize(Block(CFG))
    ref = nn.TransformerEncoderLayer(
        32, 4, dim_feedforward=128, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    ).eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(block.attn.c_attn.weight)
        ref.self_attn.in_proj_bias.copy_(block.attn.c_attn.bias)
        ref.self_attn.out_proj.weight.copy_(block.attn.c_proj.weight)
        ref.self_attn.out_proj.bias.copy_(block.attn.c_proj.bias)
        for mine, theirs in (
            (block.ln_1, ref.norm1),
            (block.ln_2, ref.norm2),
            (block.mlp.c_fc, ref.linear1),
            (block.mlp.c_proj, ref.linear2),
        ):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
    x = torch.randn(2, 13, 32, generator=torch.Generator().manual_seed(2))
    causal = nn.Transformer.generate_square_subsequent_mask(13)
    torch.testing.assert_close(block(x), ref(x, src_mask=causal, is_causal=True), rtol=1e-5, atol=1e-5)


def test_sinusoids_follow_the_paper_formula():
    table = sinusoid_table(10, 6)
    for pos in range(10):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert math.isclose(table[pos, 2 * i].item(), math.sin(angle), abs_tol=1e-6)
            assert math.isclose(table[pos, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-6)


def test_rope_is_a_complex_rotation_and_keeps_only_relative_positions():
    rot = Rotary(8, 16)
    q = torch.randn(1, 1, 16, 8, generator=torch.Generator().manual_seed(3))
    rq, _ = rot(q, q)
    # the same rotation with complex numbers: pair (x_i, x_{i+4}) times e^{i * pos * theta_i}
    z = torch.complex(q[..., :4], q[..., 4:])
    freqs = 1.0 / 10000 ** (torch.arange(0, 8, 2) / 8)
    turned = z * torch.polar(torch.ones(16, 4), torch.arange(16.0)[:, None] * freqs)
    torch.testing.assert_close(rq, torch.cat((turned.real, turned.imag), dim=-1), rtol=1e-5, atol=1e-5)
    # the same query/key pair two positions apart scores the same wherever it sits
    a, b = torch.randn(8), torch.randn(8)
    seq = torch.zeros(1, 1, 16, 8)
    seq[0, 0, 3], seq[0, 0, 5], seq[0, 0, 10], seq[0, 0, 12] = a, b, a, b
    rq, rk = rot(seq, seq)
    assert torch.allclose(rq[0, 0, 5] @ rk[0, 0, 3], rq[0, 0, 12] @ rk[0, 0, 10], atol=1e-5)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rope"])
def test_save_and_load_give_identical_logits(tmp_path, positions):
    from dataclasses import replace

    model = randomize(GPT(replace(CFG, positions=positions, vocab_size=TOK.vocab_size)))
    save(model, TOK, tmp_path / "run")
    again, tok, meta = load(tmp_path / "run")
    x = torch.tensor([TOK.encode("hello, world")])
    assert torch.equal(model(x)[0], again(x)[0])
    assert tok.itos == TOK.itos and meta["config"]["positions"] == positions


def test_load_names_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="not a saved scratch GPT"):
        load(tmp_path)
    (tmp_path / "scratch_gpt.json").write_text("{not json")
    (tmp_path / "scratch_gpt.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="not valid JSON"):
        load(tmp_path)


@pytest.mark.parametrize(
    "positions,arch",
    [("learned", "GPT2LMHeadModel"), ("sinusoidal", "GPT2LMHeadModel"), ("rope", "GPTNeoXForCausalLM")],
)
def test_export_loads_with_transformers_and_in_the_model_picker_cache(tmp_path, positions, arch):
    from dataclasses import replace

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = randomize(GPT(replace(CFG, positions=positions, vocab_size=TOK.vocab_size)), seed=5)
    folder = export_hf(model, TOK, tmp_path / f"export-{positions}")
    text = "to be, or not."
    hf = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    hf_tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert type(hf).__name__ == arch
    ids = hf_tok(text)["input_ids"]
    assert ids == TOK.encode(text) and hf_tok.decode(ids) == text
    x = torch.tensor([ids])
    torch.testing.assert_close(hf(x).logits, model(x)[0], rtol=1e-4, atol=1e-5)
    # what the attention and decoding pages get when this folder is typed into their picker
    loaded = shared_cache().get(str(folder), variant="eager")
    try:
        assert loaded.kind == "causal-lm" and loaded.source == "local-path"
        out = loaded.model(x, output_attentions=True)
        torch.testing.assert_close(out.logits, model(x)[0], rtol=1e-4, atol=1e-5)
        ours = model.inspect(x)
        for layer, maps in enumerate(ours.attentions):
            torch.testing.assert_close(out.attentions[layer][0], maps, rtol=1e-4, atol=1e-5)
    finally:
        shared_cache().unload(loaded.key)
