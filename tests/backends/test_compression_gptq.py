"""Calibrated 4-bit on the GPT trained here (real float32 weights, GPT-NeoX), against references written
out in this file or a library:

- GPTQ by hand (Cholesky factor of H^-1, lazy blocks) equals Frantar et al.'s Algorithm 1 written out
  below in its Optimal Brain Surgeon form: no blocks, no Cholesky, the inverse Hessian updated explicitly
  after every column (H^-1 <- H^-1 - H^-1[:, j] H^-1[j, :] / H^-1[j, j]), in float64: the same weights.
  auto-round 0.16.1 has no GPTQ of its own (its quantizers are RTN, SignRound and Adam-round), so the
  library reference is for round-to-nearest: auto-round's iters=0 equals our RTN to the bit.
- GPTQ's layer output error ||XW^T - XQ^T|| is below RTN's in the same format, on the calibration inputs
  (what it minimises) and on held-out inputs it never saw.
- The AutoRound row builds on the demo GPT: 4-bit groups (at most 16 values per group of 64), the
  format's size counted by hand.
"""

import copy

import pytest
import torch

from backends import compression as cp
from backends import quantization as q
from backends.core.jobs import shared_runner
from backends.models.cache import shared_cache

LAYER = "gpt_neox.layers.0.mlp.dense_h_to_4h"  # 1024 x 256
BITS, GROUP = 4, 64


@pytest.fixture(scope="module", autouse=True)
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def gpt():
    return shared_cache().get(str(q.train_demo_gpt()))


@pytest.fixture(scope="module")
def calib(gpt):
    ids = cp.calibration_for(gpt.model)
    assert tuple(ids.shape) == (32, 64)  # the demo GPT has 64 positions
    return ids


def inputs_of(model, name, ids):
    """The (tokens, in_features) inputs of layer `name` over `ids`, by a hook of this test."""
    seen = []
    layer = model.get_submodule(name)
    handle = layer.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().reshape(-1, m.in_features)))
    with torch.no_grad():
        model(input_ids=ids, use_cache=False)
    handle.remove()
    return torch.cat(seen).double()


def quantize_group(w, bits):
    """Min/max asymmetric parameters of each row of `w` (rows, group), scale rounded to float16."""
    maxq = 2**bits - 1
    lo, hi = w.min(1).values.clamp(max=0), w.max(1).values.clamp(min=0)
    scale = ((hi - lo) / maxq).half().double().clamp(min=1e-5)
    return scale, torch.round(-lo / scale)


def algorithm_1(W, H, bits, group, damp):
    """GPTQ as Optimal Brain Surgeon column by column: explicit H^-1, downdated after each column."""
    W, H = W.double().clone(), H.double().clone()
    cols, maxq = W.shape[1], 2**bits - 1
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * torch.diag(H).mean() * torch.eye(cols, dtype=torch.float64)
    Hinv = torch.linalg.inv(H)
    Q = torch.zeros_like(W)
    for j in range(cols):
        if j % group == 0:
            scale, zero = quantize_group(W[:, j : j + group], bits)
        Q[:, j] = scale * (torch.clamp(torch.round(W[:, j] / scale) + zero, 0, maxq) - zero)
        d = Hinv[j, j]
        W[:, j:] -= torch.outer((W[:, j] - Q[:, j]) / d, Hinv[j, j:])
        Hinv = Hinv - torch.outer(Hinv[:, j], Hinv[j, :]) / d  # remove column j from the free set
    return Q


def test_gptq_layer_equals_algorithm_1_written_out(gpt, calib):
    X = inputs_of(gpt.model, LAYER, calib)
    H = 2.0 / X.shape[0] * X.T @ X
    W = gpt.model.get_submodule(LAYER).weight.detach()
    ours = cp.gptq_linear(W, H, BITS, GROUP, damp=0.1, dtype=torch.float64).weight
    ref = algorithm_1(W, H, BITS, GROUP, damp=0.1)
    assert ours.dtype == W.dtype
    assert torch.allclose(ours.double(), ref, rtol=0, atol=1e-6)  # float64 inside, float32 out
    assert torch.equal(ours, ref.float())
    # every row is on its own with the same H: two halves quantized apart give the same matrix
    halves = [cp.gptq_linear(w, H, BITS, GROUP, damp=0.1, dtype=torch.float64).weight for w in W.split(512)]
    assert torch.equal(torch.cat(halves), ours)
    # and cp.hessian is this test's H
    assert torch.allclose(cp.hessian(X), H, rtol=1e-12, atol=0)


def test_gptq_output_error_is_below_rtn_on_calibration_and_held_out_inputs(gpt, calib):
    X = inputs_of(gpt.model, LAYER, calib)
    held_out = inputs_of(gpt.model, LAYER, q.token_slice(gpt.tokenizer, 2048).view(32, 64))
    W = gpt.model.get_submodule(LAYER).weight.detach()
    gptq = cp.gptq_linear(W, cp.hessian(X), BITS, GROUP).weight
    rtn = cp.rtn_linear(W, BITS, GROUP)

    def err(Q, X):  # relative output error, written out
        return float(torch.linalg.norm(X @ (W.double() - Q.double()).T) / torch.linalg.norm(X @ W.double().T))

    assert err(gptq, X) < 0.5 * err(rtn, X)
    assert err(gptq, held_out) < err(rtn, held_out)
    assert cp.output_error(W, gptq, X) == pytest.approx(err(gptq, X), rel=1e-9)
    # GPTQ moves weights further from W than rounding does: it trades weight error for output error
    assert torch.linalg.norm(W - gptq) > torch.linalg.norm(W - rtn)
    # act-order (largest H[j, j] first, groups fixed beforehand) is also below RTN
    ordered = cp.gptq_linear(W, cp.hessian(X), BITS, GROUP, act_order=True).weight
    assert err(ordered, X) < 0.5 * err(rtn, X)


def test_gptq_model_quantizes_every_block_layer_and_beats_rtn_on_each(gpt, calib):
    model, stats = cp.gptq_model(gpt.model, calib, BITS, GROUP, layer_errors=True)
    names = cp.quantized_names(gpt.model)
    assert len(names) == 8 and set(stats["layers"]) == set(names)
    for name in names:
        assert stats["layers"][name]["gptq"] < stats["layers"][name]["rtn"], name
        w = model.get_submodule(name).weight.detach().reshape(-1, GROUP)
        assert max(len(torch.unique(row)) for row in w[:256]) <= 2**BITS  # on a 4-bit grid per group
    before = dict(gpt.model.named_parameters())
    for name, p in model.named_parameters():  # the embedding, norms, biases and head are untouched
        if not any(name == f"{n}.weight" for n in names):
            assert torch.equal(p, before[name]), name
    assert not torch.equal(model.get_submodule(LAYER).weight, gpt.model.get_submodule(LAYER).weight)


def test_rtn_by_hand_equals_auto_round_iters_0(gpt):
    AutoRound = pytest.importorskip("auto_round").AutoRound
    model = copy.deepcopy(gpt.model)
    ids = cp.calibration_for(gpt.model)
    rounder = AutoRound(
        model,
        gpt.tokenizer,
        bits=BITS,
        group_size=GROUP,
        sym=False,
        iters=0,
        nsamples=2,
        seqlen=64,
        dataset=[ids[0:1], ids[1:2]],
        device_map="cpu",
        amp=False,
        low_cpu_mem_usage=False,
    )
    model, _ = rounder.quantize()
    names = cp.quantized_names(gpt.model)
    for name in names:
        ours = cp.rtn_linear(gpt.model.get_submodule(name).weight.detach(), BITS, GROUP)
        assert torch.equal(model.get_submodule(name).weight.detach(), ours), name


def test_autoround_row_builds_on_the_demo_gpt(gpt):
    pytest.importorskip("auto_round")
    before = gpt.model.get_submodule(LAYER).weight.detach().clone()
    built = cp.build_autoround(gpt.model, "cpu", None)  # 10 steps per block
    model, names = built.model, cp.quantized_names(gpt.model)
    for name in names:
        w = model.get_submodule(name).weight.detach().reshape(-1, GROUP)
        assert max(len(torch.unique(row)) for row in w) <= 2**BITS, name
    rtn = {n: cp.rtn_linear(gpt.model.get_submodule(n).weight.detach(), BITS, GROUP) for n in names}
    tuned = [n for n in names if not torch.equal(model.get_submodule(n).weight.detach(), rtn[n])]
    assert tuned, "SignRound moved some roundings or ranges away from plain RTN"
    # the format's size by hand: 4-bit codes + a float16 scale and a 4-bit zero per 64 weights, the rest float32
    quantized = sum(gpt.model.get_submodule(n).weight.numel() for n in names)
    rest = sum(p.numel() for p in gpt.model.parameters()) - quantized
    assert built.disk_bytes == quantized // 2 + quantized // 64 * 20 // 8 + 4 * rest
    assert not built.measures_speed and built.mem_bytes == built.disk_bytes
    logits = built.runner.logits(q.token_slice(gpt.tokenizer, 32))
    assert torch.isfinite(logits).all()
    assert torch.equal(gpt.model.get_submodule(LAYER).weight, before)  # the shared model is untouched


def test_the_table_rows_gptq_below_rtn_in_kld(gpt):
    config = q.BenchConfig(variants=("fp32", "rtn-w4g64", "gptq-w4g64"), ppl_tokens=2048, runs=1, new_tokens=4)
    job = shared_runner().submit("gptq-test", q.run_job, gpt.model, gpt.tokenizer, config, "gpt", "cpu")
    assert job.wait(600) and job.status == "done", job.error
    rows = {r.key: r for r in job.result.rows}
    assert all(r.status == q.OK for r in rows.values()), [(r.key, r.error) for r in rows.values()]
    assert 0 < rows["gptq-w4g64"].kld < rows["rtn-w4g64"].kld
    assert rows["gptq-w4g64"].perplexity < rows["rtn-w4g64"].perplexity
    assert rows["gptq-w4g64"].decode_tps is None  # fake-quant: no speed of its own
