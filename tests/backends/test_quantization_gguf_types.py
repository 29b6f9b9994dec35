"""GGUF rows are what `llama-quantize` writes: per-tensor types by llama.cpp's rules, our Q6_K encoder
read back by the gguf package, and the bits per weight of the whole file counted by hand."""

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, quants

from backends.models.cache import shared_cache
from backends.quantization import gguf_variant as G
from backends.quantization import kquants as K
from backends.quantization import llama_types as L
from backends.quantization import spec

# llama-quant.cpp's use_more_bits(i, 30) by hand: i < 30/8 = 3, i >= 7*30/8 = 26, or (i - 3) % 3 == 2
MORE_BITS_30 = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29}


@pytest.fixture(scope="module")
def smollm2():
    return shared_cache().get("smollm2-135m-instruct").model


def expected_type(name: str, file_type: str) -> str:
    """What llama-quantize writes for each SmolLM2-135M tensor (hidden 576, MLP 1536, 30 layers, tied
    embedding), worked out from llama-quant.cpp by hand for this model."""
    if not name.endswith(".weight") or "norm" in name:
        return "F32"
    if name == "model.embed_tokens.weight":  # tied output: rows of 576 -> Q6_K wanted, 576 % 256 -> Q8_0
        return "Q8_0"
    if file_type != "Q4_K_M":
        return file_type
    layer = int(name.split(".")[2])
    if name.endswith("v_proj.weight"):  # Q6_K in the use-more-bits layers, else Q4_K; rows of 576 fall back
        return "Q8_0" if layer in MORE_BITS_30 else "Q5_0"
    if name.endswith("down_proj.weight"):  # rows of 1536 = 6 x 256: K-quants fit
        return "Q6_K" if layer in MORE_BITS_30 else "Q4_K"
    return "Q5_0"  # q, k, o, gate, up: Q4_K on rows of 576 -> Q5_0


@pytest.mark.parametrize("file_type", ["Q8_0", "Q5_1", "Q5_0", "Q4_0", "Q4_K_M"])
def test_every_smollm2_tensor_gets_llama_quantizes_type(smollm2, file_type):
    plan = G.plan(smollm2, file_type)
    names = [n for n, _ in smollm2.named_parameters()]  # tied lm_head once, as the embedding
    assert set(plan) == set(names) and len(names) == 272
    assert plan == {n: expected_type(n, file_type) for n in names}


def test_use_more_bits_is_llama_cpps():
    assert {i for i in range(30) if L.use_more_bits(i, 30)} == MORE_BITS_30
    assert {i for i in range(8) if L.use_more_bits(i, 8)} == {0, 7, 3, 6}  # 8/8 = 1, 7*8/8 = 7, (i - 1) % 3 == 2


def test_an_untied_output_and_gpt_names():
    tensors = [
        L.Tensor("gpt_neox.embed_in.weight", 256, 2),
        L.Tensor("embed_out.weight", 256, 2),
        L.Tensor("gpt_neox.layers.0.attention.query_key_value.weight", 256, 2),
        L.Tensor("gpt_neox.layers.0.mlp.dense_4h_to_h.weight", 1024, 2),
        L.Tensor("gpt_neox.layers.0.input_layernorm.weight", 256, 1),
        L.Tensor("transformer.wpe.weight", 256, 2),
    ]
    types = L.tensor_types(tensors, "Q4_K_M")
    # untied: the output (rows of 256 fit Q4_K's block) gets Q6_K; the input table keeps the default Q4_K;
    # one layer of one: use_more_bits(0, 1) -> Q6_K for the QKV and the down-projection
    assert types == {
        "gpt_neox.embed_in.weight": "Q4_K",
        "embed_out.weight": "Q6_K",
        "gpt_neox.layers.0.attention.query_key_value.weight": "Q6_K",
        "gpt_neox.layers.0.mlp.dense_4h_to_h.weight": "Q6_K",
        "gpt_neox.layers.0.input_layernorm.weight": "F32",
        "transformer.wpe.weight": "F32",  # learned positions are not quantized
    }
    assert L.tensor_types([L.Tensor("lm_head.weight", 512, 2)], "Q4_0") == {"lm_head.weight": "Q6_K"}
    assert L.tensor_types([L.Tensor("lm_head.weight", 64, 2)], "Q4_0") == {"lm_head.weight": "Q8_0"}  # 64 % 256
    assert L.tensor_types([L.Tensor("x.weight", 48, 2)], "Q4_0") == {"x.weight": "F16"}  # 48 % 32: no block fits
    with pytest.raises(ValueError, match="Q4_K_M"):
        L.tensor_types(tensors, "Q3_K")


def test_our_q6_k_blocks_are_read_back_by_the_gguf_package():
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((8, 512)) * 0.02).astype(np.float32)
    w[2, 100], w[5, 7] = 0.4, -0.3  # outliers
    raw = K.quantize_q6_k(w)
    assert raw.dtype == np.uint8 and raw.shape == (8, 2 * 210)
    back = quants.dequantize(raw, GGMLQuantizationType.Q6_K).reshape(w.shape)
    # each sub-block of 16: d * scale (from the stored bytes) is the step; a weight decodes to a whole
    # number of steps in -32..31, within half a step of itself plus what rounding the block's scale to
    # a whole multiple of d costs at the largest code (32 x d / 2) and where the block's extreme clamps
    blocks = raw.reshape(-1, 210)
    d = blocks[:, 208:210].copy().view(np.float16).astype(np.float32)
    signed = (d * blocks[:, 192:208].copy().view(np.int8).astype(np.float32)).reshape(-1)
    step = np.abs(signed)
    codes = back.reshape(-1, 16) / np.where(signed != 0, signed, 1)[:, None]
    assert np.allclose(codes, codes.round(), atol=1e-3) and codes.min() >= -32.001 and codes.max() <= 31.001
    err = np.abs(back - w).reshape(-1, 16).max(-1)
    bound = step / 2 + 32 * np.repeat(np.abs(d), 16) / 2 + step / 2
    assert (err <= bound * 1.001 + 1e-7).all()
    assert (err <= step / 2 * 1.001 + 1e-7).mean() > 0.85
    rmse = {
        f: np.sqrt(
            (
                (
                    quants.dequantize(quants.quantize(w, GGMLQuantizationType[f]), GGMLQuantizationType[f]).reshape(
                        w.shape
                    )
                    - w
                )
                ** 2
            ).mean()
        )
        for f in ("Q5_1", "Q8_0")
    }
    ours = np.sqrt(((back - w) ** 2).mean())
    assert rmse["Q8_0"] < ours < rmse["Q5_1"]  # 6.56 bits sits between 6 and 8.5
    with pytest.raises(ValueError, match="multiple of 256"):
        K.quantize_q6_k(w[:, :320])


def hand_bytes(model, types: dict[str, str]) -> int:
    sizes = {"Q8_0": (32, 34), "Q5_1": (32, 24), "Q5_0": (32, 22), "Q4_0": (32, 18), "Q4_K": (256, 144)}
    sizes["Q6_K"] = (256, 210)
    total = 0
    for name, p in model.named_parameters():
        kind = types[name]
        total += p.numel() * 4 if kind == "F32" else p.numel() // sizes[kind][0] * sizes[kind][1]
    return total


@pytest.mark.parametrize("file_type", ["Q4_0", "Q4_K_M"])
def test_the_row_is_the_file_its_bits_and_its_bytes(smollm2, file_type, tmp_path):
    built = spec(f"gguf-{file_type.lower()}").build(smollm2, "cpu", tmp_path)
    types = built.details["types"]
    weights = sum(p.numel() for p in smollm2.parameters())
    assert weights == 134_515_008
    assert built.disk_bytes == hand_bytes(smollm2, types)
    assert built.bits == pytest.approx(8 * built.disk_bytes / weights)
    assert built.bits == pytest.approx(G.file_bits(smollm2, file_type))
    # the nominal 4.5 bits are not the file's: the Q8_0 embedding (28.3M weights) and float32 norms cost more
    assert built.bits > 5.3
    counts = {"Q4_0": {"Q4_0": 210, "Q8_0": 1}, "Q4_K_M": {"Q5_0": 166, "Q4_K": 16, "Q8_0": 15, "Q6_K": 14}}
    assert built.details["formats"] == counts[file_type]
    # every matrix of the copy holds exactly what its GGUF type decodes to (checked on two of them)
    copy = dict(built.model.named_parameters())
    for name in ("model.layers.5.self_attn.v_proj.weight", "model.layers.4.mlp.down_proj.weight"):
        kind = types[name]
        w = dict(smollm2.named_parameters())[name].detach().numpy()
        encode = {"Q4_K": K.quantize_q4_k, "Q6_K": K.quantize_q6_k}.get(kind)
        raw = encode(w) if encode else quants.quantize(w, GGMLQuantizationType[kind])
        want = quants.dequantize(raw, GGMLQuantizationType[kind]).reshape(w.shape)
        assert torch.equal(copy[name].detach(), torch.from_numpy(want))
    assert f"{built.bits:.2f} bits/weight" in built.note
    built.runner.close()
