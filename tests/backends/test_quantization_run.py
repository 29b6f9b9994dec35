"""The benchmark job on the real offline SmolLM2: rows, quality by hand, failures, stop, the shared model untouched."""

import copy
import json
import math
import time

import pytest
import torch
from scipy.stats import t as student

from backends.core.jobs import shared_runner
from backends.models.cache import shared_cache
from backends.quantization import BenchConfig, availability, describe, run_job, snippet, spec
from backends.quantization import measure as M
from backends.quantization import report as R
from backends.quantization import text as T
from tests.torch_helpers import checksum

SMALL = {
    "ppl_tokens": 300,
    "window": 128,
    "stride": 64,
    "kld_tokens": 128,
    "prefill_tokens": 32,
    "new_tokens": 6,
    "runs": 2,
}


@pytest.fixture(scope="module")
def loaded():
    return shared_cache().get("smollm2-135m-instruct")


def run(base, tokenizer, baseline=None, **config):
    job = shared_runner().submit(
        "quantization-test", run_job, base, tokenizer, BenchConfig(**config), "smollm2", "cpu", baseline
    )
    assert job.wait(600), "the run finished"
    assert job.status == "done", job.error
    return job.result


@pytest.fixture(scope="module")
def full(loaded):
    before = checksum(loaded.model)
    report = run(
        loaded.model,
        loaded.tokenizer,
        variants=("fp32", "gguf-q8_0", "onnx-int8-wo", "torch-dynamic-int8"),
        keep=("gguf-q8_0",),
        baseline=describe(loaded),
        **SMALL,
    )
    return report, before


def test_every_row_is_measured_and_the_shared_model_is_unchanged(full, loaded):
    report, before = full
    assert checksum(loaded.model) == before, "the cached model was modified"
    assert [r.key for r in report.rows] == ["fp32", "torch-dynamic-int8", "onnx-int8-wo", "gguf-q8_0"]
    assert all(r.status == "ok" for r in report.rows), [(r.key, r.error) for r in report.rows]
    fp32, dyn, onnx, q8 = report.rows
    assert fp32.kld == 0.0 and fp32.top1 == 1.0 and fp32.kld_tokens == 128
    assert 10 < fp32.perplexity < 500 and fp32.ppl_tokens == 299
    for r in (fp32, dyn, onnx):
        assert r.prefill_tps > 0 and r.decode_tps > 0 and r.decode_tps_p90 <= r.decode_tps + 1e-9
        assert r.peak_rss_bytes > r.mem_bytes and r.disk_bytes > 0 and r.continuation.strip()
    assert fp32.mem_bytes == pytest.approx(134.5e6 * 4, rel=0.01), "tied embedding counted once"
    assert q8.disk_bytes < 0.3 * fp32.disk_bytes and q8.decode_tps is None and "llama" in q8.note
    assert q8.kld < 0.02 and q8.top1 > 0.9, "Q8_0 is nearly lossless"
    assert onnx.kld < 0.1 and not onnx.kv_cache and onnx.disk_bytes < fp32.disk_bytes
    assert dyn.mem_bytes < 0.5 * fp32.mem_bytes
    assert fp32.label == "fp32 copy of the shipped Q4_1 weights (baseline)", "the embedded model's baseline"
    kept = report.kept["gguf-q8_0"]
    assert set(report.kept) == {"gguf-q8_0"} and kept is not loaded.model


def test_perplexity_by_hand_equals_the_row(full, loaded):
    """The row's perplexity against the same windows scored by hand in float64 (a copy of the
    model: the cached one is never changed). The row runs float32 matrix products (oneDNN's), whose
    rounding depends on the CPU's kernels (1.6e-5 relative from a float32 reference on one machine),
    so the tolerance is 1e-4."""
    report, _ = full
    ids = T.token_slice(loaded.tokenizer, SMALL["ppl_tokens"])
    exact = copy.deepcopy(loaded.model).double()
    nll, count, prev_end = 0.0, 0, 0
    with torch.inference_mode():
        for begin in range(0, ids.shape[1], SMALL["stride"]):
            end = min(begin + SMALL["window"], ids.shape[1])
            first = max(prev_end, begin + 1)  # score each token once; the very first has no context
            logits = exact(ids[:, begin:end]).logits[0]
            for pos in range(first, end):
                nll -= float(torch.log_softmax(logits[pos - begin - 1], -1)[ids[0, pos]])
                count += 1
            prev_end = end
            if end == ids.shape[1]:
                break
    del exact
    assert count == report.rows[0].ppl_tokens
    assert report.rows[0].perplexity == pytest.approx(math.exp(nll / count), rel=1e-4)


def scored_windows(runner, ids):
    """Each window's token NLLs, scored by hand (stride and window of SMALL, every token once)."""
    out, prev_end = [], 0
    with torch.inference_mode():
        for begin in range(0, ids.shape[1], SMALL["stride"]):
            end = min(begin + SMALL["window"], ids.shape[1])
            first = max(prev_end, begin + 1)
            logp = torch.log_softmax(runner.quality_logits(ids[:, begin:end])[0].double(), -1)
            out.append([-float(logp[pos - begin - 1, ids[0, pos]]) for pos in range(first, end)])
            prev_end = end
            if end == ids.shape[1]:
                break
    return out


def test_the_perplexity_interval_by_hand_from_the_per_window_values(full, loaded, tmp_path):
    """The ±95% half-width of the fbgemm row, from each window's NLL against fp32's, windows as the
    independent samples: Student's t with G - 1 degrees of freedom (scipy's quantile), the cluster
    standard error of the mean difference, times the perplexity."""
    report, _ = full
    ids = T.token_slice(loaded.tokenizer, SMALL["ppl_tokens"])
    nlls = {}
    for key in ("fp32", "torch-dynamic-int8"):
        built = spec(key).build(loaded.model, "cpu", tmp_path)
        nlls[key] = scored_windows(built.runner, ids)
        built.runner.close()
    base, variant = nlls["fp32"], nlls["torch-dynamic-int8"]
    diffs = [sum(v) - sum(b) for v, b in zip(variant, base)]
    counts = [len(b) for b in base]
    g, n = len(diffs), sum(counts)
    mean = sum(diffs) / n
    se = math.sqrt(g / (g - 1) * sum((d - mean * c) ** 2 for d, c in zip(diffs, counts))) / n
    ppl = math.exp(sum(map(sum, variant)) / n)
    row = report.row("torch-dynamic-int8")
    assert g == 4 and row.nll_delta_windows == g, "windows at 0, 64, 128 and 192 of 300 tokens"
    assert row.ppl_half_width() == pytest.approx(student.ppf(0.975, g - 1) * se * ppl, rel=1e-3)
    assert row.ppl_half_width() > 1.5 * 1.96 * se * ppl, "t(3) = 3.18, not the normal 1.96"


def test_the_bound_counts_the_bytes_a_decoded_token_reads(full, loaded):
    """By hand from SmolLM2's shapes: a decoded token reads every weight once, the output head its
    whole matrix (tied: the embedding itself), the input embedding one row."""
    report, _ = full
    c = loaded.model.config
    v, d, f, layers = c.vocab_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers
    kv = c.num_key_value_heads * c.head_dim
    linears = layers * (2 * d * d + 2 * d * kv + 3 * d * f) + v * d  # q, o, k, v, gate, up, down; the head
    norms = (2 * layers + 1) * d
    assert linears + norms == 134_515_008, "SmolLM2-135M's parameters, the tied embedding once"
    fp32, dyn, onnx = (report.row(k) for k in ("fp32", "torch-dynamic-int8", "onnx-int8-wo"))
    assert fp32.decode_bytes == 4 * (linears + norms + d)
    assert fp32.bound_tps == pytest.approx(report.bandwidth / (4 * (linears + norms + d)), rel=1e-12)
    # fbgemm: int8 linears (the head its own tensor now), the float32 table read as one row; a
    # per-tensor scale and zero point per layer is all that is left out of the hand count
    assert dyn.decode_bytes == pytest.approx(linears + 4 * (norms + d), rel=1e-4)
    assert dyn.bound_tps == pytest.approx(report.bandwidth / dyn.decode_bytes)
    # MatMulNBits: a byte per weight and a float32 scale per block of 32; the export's own float32
    # Gather table (untied from the head) read as one row
    assert onnx.decode_bytes == pytest.approx(linears * (1 + 4 / 32) + 4 * (norms + d), rel=1e-6)
    assert "prefill includes the output head at every position" in onnx.note


def test_a_rerun_gives_the_identical_perplexity(full, loaded):
    again = run(loaded.model, loaded.tokenizer, variants=("fp32",), **SMALL)
    assert again.rows[0].perplexity == full[0].rows[0].perplexity


def test_a_failing_variant_gets_its_error_and_the_others_still_run(loaded):
    base = copy.deepcopy(loaded.model)

    def no_bf16(module, args, output):  # a kernel that is missing for one dtype, as on some CPUs
        if output.dtype == torch.bfloat16:
            raise RuntimeError("no bfloat16 kernel for this layer")

    base.model.layers[0].mlp.register_forward_hook(no_bf16)
    report = run(
        base,
        loaded.tokenizer,
        variants=("fp32", "bf16", "gguf-q4_0"),
        **{**SMALL, "ppl_tokens": 100, "kld_tokens": 32},
    )
    status = {r.key: (r.status, r.error) for r in report.rows}
    assert status["bf16"] == ("failed", "RuntimeError: no bfloat16 kernel for this layer")
    assert status["fp32"][0] == "ok" and status["gguf-q4_0"][0] == "ok"
    assert report.row("gguf-q4_0").kld > report.row("fp32").kld


def test_stop_keeps_the_rows_finished_so_far(loaded):
    config = BenchConfig(variants=("fp32", "bf16", "gguf-q8_0"), **{**SMALL, "ppl_tokens": 100})
    job = shared_runner().submit("quantization-test", run_job, loaded.model, loaded.tokenizer, config, "smollm2")
    deadline = time.time() + 300
    while not any(e.data.get("kind") == "row" for e in job.events_since(0)) and time.time() < deadline:
        time.sleep(0.2)
    job.stop()
    assert job.wait(300)
    report = job.result
    assert report.stopped and report.rows[0].key == "fp32" and report.rows[0].status == "ok"
    assert len(report.rows) < 3 or report.rows[-1].status == "stopped"


@pytest.mark.parametrize(
    "key, max_kld", [("bf16", 0.05), ("torchao-int8-wo", 0.05), ("gguf-q4_0", 1.5), ("bnb-int8", 0.2)]
)
def test_each_variant_stays_within_its_expected_error_on_a_fixed_prompt(loaded, key, max_kld, tmp_path):
    ids = T.prompt_ids(loaded.tokenizer)
    with torch.inference_mode():
        ref = torch.log_softmax(loaded.model(ids).logits[0].double(), -1)
    built = spec(key).build(loaded.model, "cpu", tmp_path)
    logp = torch.log_softmax(built.runner.logits(ids)[0].double(), -1)
    kld = float((ref.exp() * (ref - logp)).sum(-1).mean())
    assert 0 < kld < max_kld
    assert built.mem_bytes < 0.6 * 538e6


def test_windows_score_every_token_once():
    spans = M.windows(10, 4, 2)
    scored = [b + i for b, e, f in spans for i in range(f, e - b)]
    assert scored == list(range(1, 10))
    with pytest.raises(ValueError, match="window=4, stride=5"):
        M.windows(10, 4, 5)
    # stride = window (the default): each token is computed once; a window's first token has no
    # context inside its window and is not scored, as in Hugging Face's recipe
    spans = M.windows(10, 4, 4)
    assert [b + i for b, e, f in spans for i in range(f, e - b)] == [1, 2, 3, 5, 6, 7, 9]


def test_the_paired_standard_error_by_hand():
    # two windows of 10 tokens whose NLL differences to fp32 sum to 1 and 3: mean 0.2 per token;
    # cluster deviations 1 - 2 and 3 - 2; se = sqrt(2 / 1 * 2) / 20
    assert M.paired_se([(1.0, 10), (3.0, 10)]) == pytest.approx(0.1)
    assert M.paired_se([(1.0, 10)]) is None


def test_the_interval_separates_a_lossy_format_from_a_near_lossless_one(loaded):
    report = run(
        loaded.model,
        loaded.tokenizer,
        variants=("fp32", "gguf-q8_0", "gguf-q4_0"),
        **{**SMALL, "ppl_tokens": 1024, "window": 128, "stride": 128},
    )
    fp32, q8, q4 = (report.row(k) for k in ("fp32", "gguf-q8_0", "gguf-q4_0"))
    assert fp32.nll_delta_se is None and q8.nll_delta_se > 0 and q4.nll_delta_se > 0
    t = student.ppf(0.975, q4.nll_delta_windows - 1)
    assert q4.nll - fp32.nll > t * q4.nll_delta_se, "Q4_0's loss is beyond the noise of 1k tokens"
    assert abs(q8.nll - fp32.nll) < q4.nll - fp32.nll


def test_the_fast_fp32_pass_gives_the_same_logits_and_leaves_the_copy_as_it_was(loaded, tmp_path):
    from backends.quantization.variants import _onednn_linear, onednn_linears

    built = spec("fp32").build(loaded.model, "cpu", tmp_path)
    assert built.runner.fast_fp32 and _onednn_linear() is not None, "oneDNN's linear is in this torch"
    ids = T.prompt_ids(loaded.tokenizer)
    plain, fast = built.runner.logits(ids), built.runner.quality_logits(ids)
    assert torch.allclose(plain, fast, atol=2e-3) and not torch.equal(plain, fast), "another kernel, same numbers"
    assert not any("forward" in vars(m) for m in built.model.modules()), "the layers' own forward is restored"
    with onednn_linears(built.model) as patched:
        assert patched == 211, "7 linears in each of 30 layers, and the output head"
    bf16 = spec("bf16").build(loaded.model, "cpu", tmp_path)
    with onednn_linears(bf16.model) as patched:
        assert patched == 0, "only float32 layers"


def test_perplexity_is_the_same_on_one_thread_and_on_every_core(loaded, tmp_path):
    built = spec("fp32").build(loaded.model, "cpu", tmp_path)
    ids = T.token_slice(loaded.tokenizer, 512)
    spans = M.windows(ids.shape[1], 256, 256)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = M.quality(built.runner, ids, spans)
        torch.set_num_threads(2)
        two = M.quality(built.runner, ids, spans)
    finally:
        torch.set_num_threads(before)
    assert one.perplexity == two.perplexity


def test_bad_settings_quote_the_value():
    with pytest.raises(ValueError, match="Unknown variant 'int3'"):
        BenchConfig(variants=("int3",)).validate()
    with pytest.raises(ValueError, match="ppl_tokens = 5 is not allowed"):
        BenchConfig(ppl_tokens=5).validate()
    with pytest.raises(ValueError, match="stride = 600 is larger than window = 512"):
        BenchConfig(window=512, stride=600).validate()
    with pytest.raises(ValueError, match="No variant chosen"):
        BenchConfig(variants=()).validate()


def test_availability_names_a_reason_for_each_missing_variant():
    here = availability("cpu")
    assert here["fp32"] is None and here["gguf-q8_0"] is None
    assert "GPU" in here["fp16"]
    assert all(reason is None or reason.strip() for reason in here.values())
    assert 'from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct"' in snippet(
        "torchao-int8-wo", "HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def test_report_json_round_trip_and_bad_uploads(full):
    report, _ = full
    text = R.to_json(report)
    doc = json.loads(text)
    assert doc["benchmarks"][0]["decode"]["throughput"]["unit"] == "tokens/s"
    assert doc["baseline"] == "fp32 copy of the shipped Q4_1 weights"
    assert doc["baseline_origin"]["kind"] == "gguf" and doc["baseline_origin"]["weights"] == "Q4_1"
    back = R.from_json(text.encode())
    assert [r.key for r in back["rows"]] == [r.key for r in report.rows]
    assert back["rows"][0].perplexity == report.rows[0].perplexity
    assert back["rows"][1].mem_bytes == pytest.approx(report.rows[1].mem_bytes, abs=1)
    with pytest.raises(R.ReportError, match="'x.json' is not valid JSON"):
        R.from_json(b"{nope", "x.json")
    with pytest.raises(R.ReportError, match="format 'other'"):
        R.from_json(b'{"format": "other"}', "y.json")
    with pytest.raises(R.ReportError, match="not UTF-8"):
        R.from_json(b"\xff\xfe\x00", "z.json")
    bad = json.dumps({"format": R.FORMAT, "benchmarks": [{"name": "fp32", "quality": {"perplexity": "high"}}]})
    with pytest.raises(R.ReportError, match="fp32.perplexity = 'high': expected a number"):
        R.from_json(bad)
