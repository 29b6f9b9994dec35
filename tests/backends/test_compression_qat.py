"""QAT and static int8 (backends/compression/qat.py, static_int8.py) on the demo GPT (real fp32 weights):
torchao's fake quantizer against an int4 group round trip written out here, a short QAT run whose
converted weights sit on the int4 grid (checked by hand), the QAT job's rows and events, and the static
int8 ONNX file: QuantizeLinear nodes with fixed scales equal to the calibration ranges computed here
with torch hooks, logits close to fp32, and the row in the same table as the dynamic "onnx-int8"."""

import copy
import math

import numpy as np
import pytest
import torch

from backends import compression as cp
from backends import quantization as q
from backends.core.jobs import shared_runner
from backends.models.cache import shared_cache


@pytest.fixture(scope="module")
def gpt():
    return shared_cache().get(str(q.train_demo_gpt()))


def int4_group_round_trip(w: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Symmetric int4, one scale per `group` weights of a row: scale = max|w| / 7.5 (torchao's symmetric
    scale: half the width of [-8, 7]), codes = round(w / scale) clamped to [-8, 7] (round half to even).
    Returns (dequantized weights, codes, scales)."""
    rows, cols = w.shape
    groups = w.reshape(rows, cols // group, group)
    scale = groups.abs().amax(dim=-1, keepdim=True) / 7.5
    codes = torch.clamp(torch.round(groups * (1.0 / scale)), -8, 7)
    return (codes * scale).reshape(rows, cols), codes.reshape(rows, cols), scale[..., 0]


def test_the_fake_quantizer_is_an_int4_group_round_trip_by_hand():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(48, 128, generator=g) * 0.05
    w[3, 5] = 0.9  # an outlier: its group's scale grows, its neighbours round to few levels
    got = cp.fake_quantize(w, 4, 32)
    expected, codes, scales = int4_group_round_trip(w, 32)
    assert torch.equal(got, expected)
    # at most 16 levels per group, and each group's largest weight lands on -8 or 7 (not 8: clamped)
    assert max(len(set(row.tolist())) for row in codes.reshape(-1, 32)) <= 16
    assert int(codes.max()) == 7 and int(codes.min()) == -8
    # every error within half a step (the clamped maximum too: max - 7 x max / 7.5 = half a step)
    half_step = scales.repeat_interleave(32, dim=1) / 2
    assert not torch.equal(got, w) and bool(((got - w).abs() <= half_step + 1e-7).all())


def test_a_short_qat_run_leaves_weights_on_the_int4_grid(gpt):
    base = gpt.model
    before = {n: p.detach().clone() for n, p in base.state_dict().items()}
    model = cp.prepare(copy.deepcopy(base), 4, 32)
    settings = cp.QATSettings(bits=(4,), steps=4, batch_size=4)
    data = torch.arange(4000) % base.config.vocab_size  # any ids: this checks the grid, not what is learnt
    losses = cp.fine_tune(model, data, settings, teacher=base)
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    trained = {n: m.weight.detach().clone() for n, m in model.named_modules() if hasattr(m, "weight_fake_quantizer")}
    assert len(trained) == 9  # 2 layers x 4 linears + the (tied) output head
    fake = copy.deepcopy(model)
    cp.convert(model, 4, 32)
    ids = torch.tensor([list(range(1, 60))])
    with torch.inference_mode():  # the converted model computes what training saw
        assert torch.equal(model(input_ids=ids).logits, fake(input_ids=ids).logits)
    moved = 0
    for name, module in model.named_modules():
        if name not in trained:
            continue
        w = module.weight
        hand, codes, scales = int4_group_round_trip(trained[name], 32)
        assert w.qdata.dtype == torch.int8 and int(w.qdata.min()) >= -8 and int(w.qdata.max()) <= 7
        assert torch.equal(w.qdata.float(), codes)
        assert torch.allclose(w.scale.float(), scales, rtol=1e-6, atol=0)
        assert torch.equal(w.dequantize(), hand)
        moved += int(not torch.equal(trained[name], before[name + ".weight"]))
    assert moved == 9, "training changed every quantized matrix"
    assert all(torch.equal(p, before[n]) for n, p in base.state_dict().items()), "the cached model is untouched"
    assert cp.on_grid(model, 4)


def test_the_qat_job_reports_every_method_and_stops(gpt):
    settings = cp.QATSettings(bits=(4,), steps=3, batch_size=4, ppl_tokens=256)
    job = shared_runner().submit("qat-test", cp.qat_job, settings)
    assert job.wait(600) and job.status == "done", job.error
    report = job.result
    assert [(r.method, r.bits) for r in report.rows] == [
        ("fp32", 32),
        ("ptq", 4),
        ("finetune", 32),
        ("finetune-ptq", 4),
        ("qat", 4),
    ]
    assert report.row("fp32", 32).kld == 0.0 and report.row("fp32", 32).tokens == 256 - 4
    assert all(r.on_grid for r in report.rows if r.bits == 4) and report.fake_vs_real == {4: 0.0}
    assert report.row("ptq", 4).kld > 0 and report.row("qat", 4).kld > 0
    steps = [e.data for e in job.events_since(0) if e.data.get("kind") == "step"]
    assert [(s["phase"], s["step"]) for s in steps] == [(p, i) for p in ("finetune", "qat-int4") for i in (1, 2, 3)]
    assert report.curves["qat-int4"] == [s["loss"] for s in steps[3:]]
    figures = cp.qat_summary(report)
    assert set(figures) == {"ptq_kld", "qat_kld", "ptq_kld_int4", "finetune_ptq_kld_int4", "qat_kld_int4"}
    assert figures["qat_kld"] == report.row("qat", 4).kld and figures["ptq_kld"] == report.row("ptq", 4).kld

    stopped = shared_runner().submit("qat-test-stop", cp.qat_job, cp.QATSettings(bits=(4,), steps=500, ppl_tokens=256))
    while not any(e.data.get("kind") == "step" for e in stopped.events_since(0)) and not stopped.done:
        stopped.wait(0.2)
    stopped.stop()
    assert stopped.wait(120) and stopped.status == "stopped"
    # the rows so far (None when Stop came while a step waited for the compute queue)
    assert stopped.result is None or (stopped.result.stopped and len(stopped.result.curves["finetune"]) < 500)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="bits"):
        cp.QATSettings(bits=(16,)).validate()
    with pytest.raises(ValueError, match="loss"):
        cp.QATSettings(loss="mse").validate()


def layernorm_ranges(model, ids: torch.Tensor) -> tuple[float, float]:
    """min and max of layer 0's input LayerNorm output over the calibration sequences, by a torch hook."""
    seen = []
    hook = model.gpt_neox.layers[0].input_layernorm.register_forward_hook(lambda m, a, out: seen.append(out))
    try:
        with torch.inference_mode():
            for row in ids:
                model(input_ids=row[None], use_cache=False)
    finally:
        hook.remove()
    return min(float(s.min()) for s in seen), max(float(s.max()) for s in seen)


def test_the_static_int8_file_has_fixed_scales_from_the_calibration(gpt, tmp_path):
    import onnx

    built = cp.STATIC_INT8_SPECS[0].build(gpt.model, "cpu", tmp_path)
    path = tmp_path / built.details["file"]
    graph = onnx.load(str(path)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") >= 8 and "DynamicQuantizeLinear" not in ops
    assert "DynamicQuantizeMatMul" not in ops and built.details["format"] == "QDQ"
    scales = cp.fixed_scales(path)
    assert len(scales) >= 8 and all(s > 0 for s in scales.values())
    # uint8 MinMax: the range widened to hold 0, scale = (max - min) / 255, from the same 16 x 64 tokens
    ids = cp.calibration_batches(gpt.model, gpt.tokenizer)
    assert tuple(ids.shape) == (16, 64)
    lo, hi = layernorm_ranges(gpt.model, ids)
    name = next(k for k in scales if "layers.0/input_layernorm" in k)
    assert scales[name] == pytest.approx((max(hi, 0) - min(lo, 0)) / 255, rel=1e-4)
    # close to fp32 on held-out tokens, compared by hand
    tokens = q.token_slice(gpt.tokenizer, 64)
    with torch.inference_mode():
        ref = torch.log_softmax(gpt.model(input_ids=tokens).logits.float(), -1)[0]
    out = torch.log_softmax(built.runner.logits(tokens).float(), -1)[0]
    kld = float((ref.exp() * (ref - out)).sum(-1).mean())
    assert kld < 0.01 and float((ref.argmax(-1) == out.argmax(-1)).float().mean()) > 0.9
    built.runner.close()


def test_static_int8_lands_in_the_table_beside_dynamic_int8(gpt):
    config = q.BenchConfig(variants=("fp32", "onnx-int8", "onnx-static-int8"), ppl_tokens=1024, runs=1, new_tokens=8)
    job = shared_runner().submit(
        "qat-static-table", q.run_job, gpt.model, gpt.tokenizer, config, "gpt", "cpu", q.describe(gpt)
    )
    assert job.wait(600) and job.status == "done", job.error
    rows = {r.key: r for r in job.result.rows}
    assert list(rows) == ["fp32", "onnx-int8", "onnx-static-int8"]
    assert all(r.status == "ok" for r in rows.values()), [(r.key, r.error) for r in rows.values()]
    static = rows["onnx-static-int8"]
    assert 0 < static.kld < 0.05 and static.top1 > 0.9 and np.isfinite(static.decode_tps)
    assert "QDQ" in static.note and "16 x 64" in static.note
