"""The hand-written quantizers against the libraries, on a SmolLM2 weight matrix (dequantized Q4_1 values) and
tricky values; the "how it works" tab's claims on real-valued weights are in test_quantization_how.py."""

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, quants

from backends.models.cache import shared_cache
from backends.quantization import teaching as Q


@pytest.fixture(scope="module")
def weight():
    model = shared_cache().get("smollm2-135m-instruct").model
    return model.model.layers[3].mlp.down_proj.weight.detach().clone()  # 576 x 1536


def tricky_values():
    """Ties at .5 after scaling, zeros, a block of one repeated value, negative and positive maxima."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(32 * 64).astype(np.float32)
    x[:32] = 0.0
    x[32:64] = 3.0
    x[64:96] = np.linspace(-127, 127, 32, dtype=np.float32) / 127 * 2.5  # exact multiples of d -> ties
    x[96:128] = -x[96:128]
    x[128:160] = np.arange(32, dtype=np.float32) - 15.5  # halves everywhere
    return x


@pytest.mark.parametrize("fmt", ["Q8_0", "Q4_0"])
def test_our_gguf_blocks_equal_the_gguf_package_bytes(weight, fmt):
    ours = {"Q8_0": Q.q8_0, "Q4_0": Q.q4_0}[fmt]
    qtype = GGMLQuantizationType[fmt]
    for values in (weight.numpy(), tricky_values()):
        expected = quants.quantize(values.reshape(-1, 32 * 4), qtype).reshape(-1)
        got = ours(values).reshape(-1)
        assert got.dtype == np.uint8 and got.shape == expected.shape
        assert np.array_equal(got, expected), f"{(got != expected).sum()} bytes differ"


@pytest.mark.parametrize("fmt", ["Q8_0", "Q4_0"])
def test_our_block_reader_decodes_like_the_gguf_package(weight, fmt):
    raw = {"Q8_0": Q.q8_0, "Q4_0": Q.q4_0}[fmt](weight.numpy())
    ours = Q.dequantize_blocks(fmt, raw)
    theirs = quants.dequantize(raw.reshape(-1), GGMLQuantizationType[fmt]).reshape(-1)
    assert np.array_equal(ours, theirs)
    block = Q.decode_block(fmt, raw[5], weight.numpy().reshape(-1)[160:192])
    assert block.nbytes == (34 if fmt == "Q8_0" else 18)
    assert np.allclose(block.values, theirs[160:192])
    assert (
        max(abs(a - b) for a, b in zip(block.values, block.original))
        <= abs(block.scale) * (0.5 if fmt == "Q8_0" else 1.0) + 1e-6
    )


def test_int8_per_channel_matches_torchao(weight):
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    layer = torch.nn.Sequential(torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False))
    layer[0].weight.data.copy_(weight)
    quantize_(layer, Int8WeightOnlyConfig())
    theirs = layer[0].weight
    ours = Q.quantize_int8(weight, "channel", symmetric=True, half_range=127.5)
    assert torch.allclose(ours.scale, theirs.scale.flatten(), rtol=1e-6)
    differ = (ours.q.int() - theirs.qdata.int()).abs()
    assert differ.max() <= 1 and differ.float().mean() < 1e-3, "equal up to rounding at exact ties"


def test_finer_granularity_has_smaller_error_and_costs_more_scales(weight):
    table = {(r["granularity"], r["symmetric"]): r for r in Q.granularity_table(weight)}
    rmse = [table[(g, True)]["rmse"] for g in ("tensor", "channel", "group128", "group64", "group32")]
    assert rmse == sorted(rmse, reverse=True) and rmse[0] > 1.5 * rmse[-1]
    assert table[("group32", True)]["scales"] == weight.numel() // 32
    assert table[("group32", True)]["bits_per_weight"] == pytest.approx(8.5)
    assert table[("tensor", True)]["scales"] == 1


def test_symmetric_and_zero_point_round_trip_within_half_a_step():
    w = torch.tensor([[0.0, 0.1, 0.2, 1.0], [-3.0, 0.5, 0.25, 2.0]])
    for symmetric in (True, False):
        q = Q.quantize_int8(w, "channel", symmetric)
        assert (q.error(w).abs() <= q.scale[:, None] / 2 + 1e-7).all()
    lopsided = torch.rand(8, 64) + 1.0  # all positive: absmax wastes the negative half of the codes
    assert Q.quantize_int8(lopsided, "tensor", False).rmse(lopsided) < Q.quantize_int8(lopsided, "tensor", True).rmse(
        lopsided
    )


def test_outliers_and_bad_shapes(weight):
    stats = Q.weight_stats(weight)
    assert stats["numel"] == weight.numel() and stats["absmax_over_std"] > 6 and stats["outliers"] > 0
    with pytest.raises(ValueError, match="not a whole number of 32-value blocks"):
        Q.q8_0(np.zeros(33, dtype=np.float32))
    with pytest.raises(ValueError, match="group size 128 does not divide the row length 100"):
        Q.quantize_int8(torch.zeros(4, 100), "group128")
    with pytest.raises(ValueError, match="Unknown granularity 'row'"):
        Q.quantize_int8(torch.zeros(4, 32), "row")
    grid = Q.error_grid(Q.quantize_int8(weight, "tensor").error(weight))
    assert grid.shape == (48, 48) and (grid >= 0).all()


def test_our_q4_k_blocks_are_read_back_by_the_gguf_package(weight):
    """gguf 0.19 has no K-quant encoder: ours writes the bytes, gguf's own dequantizer reads them. The
    error claims are measured on real-valued weights (MiniLM's FFN output, fp32), not on SmolLM2's
    matrix, whose values already sit on a Q4_1 grid."""
    from backends.quantization import kquants as K

    w = weight.float().numpy()
    raw = K.quantize_q4_k(w)
    assert raw.dtype == np.uint8 and raw.shape == (576, 1536 // 256 * 144), "144 bytes per 256 weights"
    theirs = quants.dequantize(raw, GGMLQuantizationType.Q4_K).reshape(w.shape)
    assert np.array_equal(K.dequantize_q4_k(raw, w.shape[1]), theirs)
    real = shared_cache().get("all-minilm-l6-v2").model.encoder.layer[3].output.dense.weight.detach().numpy()

    def mse(kind, x):
        blocks = K.quantize_q4_k(x) if kind == "Q4_K" else quants.quantize(x, GGMLQuantizationType[kind])
        back = quants.dequantize(blocks, GGMLQuantizationType[kind]).reshape(x.shape)
        return float(((back - x) ** 2).mean())

    err = {k: mse(k, real) for k in ("Q4_K", "Q4_0", "Q5_0")}
    assert err["Q4_K"] < err["Q4_0"], "same 4.5 bits per weight, a scale and a minimum per 32: closer"
    assert err["Q5_0"] < err["Q4_K"], "but one more bit per weight (Q5_0, 5.5 bits) is closer still"
    rng = np.random.default_rng(1)
    odd = (rng.standard_normal((4, 512)) * np.array([1e-3, 1.0, 50.0, 0.0])[:, None]).astype(np.float32)
    back = quants.dequantize(K.quantize_q4_k(odd), GGMLQuantizationType.Q4_K).reshape(odd.shape)
    assert np.all(np.isfinite(back)) and np.all(back[3] == 0), "an all-zero row stays zero"
    for row in range(3):
        assert np.abs(back[row] - odd[row]).max() <= np.abs(odd[row]).max() / 7, "within a few steps at any scale"
    with pytest.raises(ValueError, match="multiple of 256 weights; this tensor's rows have 576"):
        K.quantize_q4_k(np.zeros((2, 576), np.float32))
