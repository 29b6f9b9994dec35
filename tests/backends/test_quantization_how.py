"""The "how it works" tab's claims, measured on real-valued weights: all-MiniLM-L6-v2's layer-3 FFN output
matrix (`output.dense`, 384 x 1536, fp32 as shipped), against the `gguf` package and hand computations;
and, for contrast, the distortion the tab warns about on the shipped SmolLM2's values (a Q4_1 grid)."""

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, quants
from gguf.constants import GGML_QUANT_SIZES

from backends.models.cache import shared_cache
from backends.models.registry import MINILM, package_folder
from backends.quantization import describe
from backends.quantization import kquants as K
from backends.quantization import teaching as Q

LEGACY = ("Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0")


@pytest.fixture(scope="module")
def minilm():
    return shared_cache().get(MINILM.key)


@pytest.fixture(scope="module")
def real(minilm):
    layers = Q.layer_stack(minilm.model)
    return Q.matrix(layers[3], Q.default_matrix(layers[3]))


@pytest.fixture(scope="module")
def grid():
    model = shared_cache().get("smollm2-135m-instruct").model
    return model.model.layers[3].mlp.down_proj.weight.detach().float().clone()  # 576 x 1536


def gguf_back(w: torch.Tensor, kind: str) -> np.ndarray:
    """The values gguf reads back: its own encoder for the 32-weight formats; for Q4_K (gguf 0.19 has no
    K-quant encoder) our bytes, decoded by gguf."""
    x = w.numpy()
    qtype = GGMLQuantizationType[kind]
    raw = K.quantize_q4_k(x) if kind == "Q4_K" else quants.quantize(x, qtype)
    return quants.dequantize(raw, qtype).reshape(x.shape)


def gguf_rmse(w: torch.Tensor, kind: str) -> float:
    return float(np.sqrt(((gguf_back(w, kind).astype(np.float64) - w.numpy()) ** 2).mean()))


def test_the_default_matrix_is_minilm_s_own_fp32_ffn_output(minilm, real):
    assert describe(minilm).form == "native", "the tab calls it: real-valued, the checkpoint's own fp32 weights"
    from safetensors import safe_open

    with safe_open(str(package_folder(MINILM) / "model.safetensors"), "pt") as f:
        stored = f.get_tensor("encoder.layer.3.output.dense.weight")
    assert stored.dtype == torch.float32 and torch.equal(real, stored), "the very numbers of the file"
    assert real.shape == (384, 1536) and K.supports(real.shape[1]), "rows hold six Q4_K super-blocks"


def test_real_weights_sit_on_no_grid_and_smollm2_s_sit_on_q4_1(real, grid):
    """The warning: SmolLM2's "fp32" values are Q4_1 blocks read back, so Q4_1 reproduces them exactly."""
    assert gguf_rmse(grid, "Q4_1") == 0.0
    assert max(len(np.unique(b)) for b in grid.numpy().reshape(-1, 32)) <= 16, "at most 16 levels per block"
    distinct = [len(np.unique(b)) for b in real.numpy().reshape(-1, 32)]
    assert np.median(distinct) == 32 and gguf_rmse(real, "Q4_1") > 1e-3


@pytest.mark.parametrize("kind", LEGACY)
def test_every_block_format_reads_back_like_the_gguf_package(real, kind):
    rng = np.random.default_rng(0)
    tricky = rng.standard_normal((8, 128)).astype(np.float32)
    tricky[0] = 0.0
    tricky[1, :32] = 3.0
    tricky[2] = np.arange(128, dtype=np.float32) - 63.5  # halves everywhere
    for x in (real, torch.from_numpy(tricky)):
        assert np.array_equal(Q.round_trip(kind, x.numpy()), gguf_back(x, kind)), kind


def test_the_format_table_against_gguf(real):
    rows = {r["format"]: r for r in Q.format_table(real)}
    assert list(rows) == ["Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_K", "Q4_0"]
    for kind, r in rows.items():
        weights, nbytes = GGML_QUANT_SIZES[GGMLQuantizationType[kind]]
        assert r["bits_per_weight"] == 8 * nbytes / weights
        assert r["rmse"] == pytest.approx(gguf_rmse(real, kind), rel=1e-9)
        assert r["max_error"] == pytest.approx(float(np.abs(gguf_back(real, kind) - real.numpy()).max()))
        assert r["vs_q4_0"] == pytest.approx(gguf_rmse(real, kind) / gguf_rmse(real, "Q4_0"), rel=1e-9)
    with pytest.raises(ValueError, match="multiple of 32 weights; these rows have 100"):
        Q.format_table(torch.zeros(4, 100))
    assert "Q4_K" not in {r["format"] for r in Q.format_table(torch.randn(4, 96))}, "no whole super-block"


def test_q4_k_spends_its_half_bit_of_scales_differently_from_q4_0():
    """kblock: the same 4.5 bits, 0.5 of them on scales: Q4_0 a float16 per 32, Q4_K 6+6 bits per 32 + d, dmin."""
    q4_0, q4_k = (GGML_QUANT_SIZES[GGMLQuantizationType[k]] for k in ("Q4_0", "Q4_K"))
    assert 8 * q4_0[1] / q4_0[0] == 8 * q4_k[1] / q4_k[0] == 4.5
    assert (q4_0[1] * 8 - 4 * q4_0[0]) / q4_0[0] == 16 / 32 == 0.5
    assert (q4_k[1] * 8 - 4 * q4_k[0]) / q4_k[0] == ((6 + 6) * 8 + 2 * 16) / 256 == 0.5


def test_the_tab_s_comparisons_hold_on_real_weights(real):
    """Measured on MiniLM (RMSE): Q8_0 2.63e-4, Q5_1 1.76e-3, Q5_0 2.07e-3, Q4_1 3.63e-3, Q4_K 3.39e-3,
    Q4_0 4.13e-3."""
    r = {kind: gguf_rmse(real, kind) for kind in (*LEGACY, "Q4_K")}
    assert min(r, key=r.get) == "Q8_0"
    assert 1.1 < r["Q4_0"] / r["Q4_K"] < 1.5, "Q4_K below Q4_0 at the same bits, but not far below: 1.22x"
    assert r["Q4_1"] < r["Q4_0"] and r["Q5_1"] < r["Q5_0"], "a minimum per block helps: 1.14x, 1.18x"
    assert 1.8 < r["Q4_0"] / r["Q5_0"] < 2.2, "one more bit per code halves the error: 2.00x"
    assert r["Q4_K"] > 1.5 * r["Q5_0"], "Q4_K is not closer than its 5.5-bit fallback: 1.64x higher"


def test_on_smollm2_s_grid_the_same_comparison_is_distorted(grid):
    """What the warning says, measured: on Q4_1-grid values the ranking changes."""
    r = {kind: gguf_rmse(grid, kind) for kind in (*LEGACY, "Q4_K")}
    assert r["Q4_1"] == 0 and r["Q5_1"] > r["Q5_0"], "a minimum per block looks worthless past Q4_1 itself"
    assert r["Q4_0"] / r["Q4_K"] > 4 and r["Q4_K"] < r["Q5_0"], "Q4_K looks far better than on real weights"


def test_int8_granularity_on_real_weights_by_hand(real):
    """granularity: a smaller group has a smaller (or equal) largest |weight|, so a finer step, more scales."""
    x = real.numpy().astype(np.float64)
    table = {r["granularity"]: r for r in Q.granularity_table(real) if r["symmetric"]}
    groups = {"tensor": x.reshape(1, -1), "channel": x, **{f"group{n}": x.reshape(-1, n) for n in (128, 64, 32)}}
    rmse = {}
    for g, rows in groups.items():
        scale = np.abs(rows).max(axis=1, keepdims=True) / 127
        back = np.clip(np.round(rows / scale), -127, 127) * scale
        rmse[g] = float(np.sqrt(((back - rows) ** 2).mean()))
        assert table[g]["rmse"] == pytest.approx(rmse[g], rel=1e-4), g
        assert table[g]["scales"] == rows.shape[0] and table[g]["bits_per_weight"] == 8 + 16 * rows.shape[0] / x.size
    order = ["tensor", "channel", "group128", "group64", "group32"]
    assert [rmse[g] for g in order] == sorted(rmse.values(), reverse=True), "finer scales, smaller error"
    top = {g: np.abs(rows).max(axis=1) for g, rows in groups.items()}
    assert (top["group32"].reshape(384, -1).max(axis=1) == top["channel"]).all()
    assert (top["group32"] <= np.repeat(top["group64"], 2)).all() and (top["channel"] <= top["tensor"]).all()
    assert 20 < rmse["tensor"] / rmse["group32"] < 40, "30.0x on this matrix"


def test_weight_stats_and_error_grid_by_hand(real):
    x = real.numpy().astype(np.float64)
    stats = Q.weight_stats(real)
    std = x.std(ddof=1)
    assert stats["std"] == pytest.approx(std, rel=1e-5) and stats["absmax"] == pytest.approx(np.abs(x).max())
    assert stats["outliers"] == int((np.abs(x) > 6 * std).sum()) > 0
    err = Q.quantize_int8(real, "tensor").error(real).abs().numpy()
    grid = Q.error_grid(torch.from_numpy(err))
    patches = err.reshape(48, 8, 48, 32).mean(axis=(1, 3))  # each cell: the mean |error| of an 8 x 32 patch
    assert grid.shape == (48, 48) and np.allclose(grid, patches, rtol=1e-5)


def test_matrices_of_three_architectures():
    from transformers import GPT2Config, GPT2LMHeadModel

    bert = Q.layer_stack(shared_cache().get(MINILM.key).model)
    assert len(bert) == 6 and Q.matrix_names(bert[0])[-2:] == ["intermediate.dense", "output.dense"]
    llama = Q.layer_stack(shared_cache().get("smollm2-135m-instruct").model)
    assert len(llama) == 30 and Q.default_matrix(llama[0]) == "mlp.down_proj"
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=50, n_positions=32))
    blocks = Q.layer_stack(gpt2)
    assert blocks is gpt2.transformer.h and "attn.c_attn" in Q.matrix_names(blocks[0])
    assert Q.default_matrix(blocks[0]) == "mlp.c_proj"
    w = Q.matrix(blocks[0], "attn.c_attn")
    layer = blocks[0].attn.c_attn  # GPT-2's Conv1D computes x @ weight: weight is (in, out)
    x = torch.randn(3, 64)
    assert w.shape == (192, 64) and torch.allclose(x @ w.T + layer.bias, layer(x), atol=1e-6)
    w.zero_()
    assert layer.weight.abs().sum() > 0, "a copy: the model is never touched"
    assert Q.layer_stack(torch.nn.Linear(4, 4)) is None
