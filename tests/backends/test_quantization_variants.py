"""Every variant the page offers on a CPU, built from a small real model and scored through the real
harness (issue 24, item 19).

The model: a Llama as transformers initialises it (seed 0; float32 matrices drawn from N(0, 0.02),
norms moved to 1 + N(0, 0.1): real values on no grid), saved as safetensors and loaded back so that
bitsandbytes can reload its folder; hidden 256 (GGUF's blocks of 32 and the K-quants' super-blocks
of 256 both fit its rows) and an MLP of 384 (the down-projection's rows of 384 are not a multiple of
256: llama.cpp's K-quant fallback runs too), a tied embedding as in SmolLM2. Its tokenizer is a
byte-level BPE of 512 tokens trained with the `tokenizers` library on the held-out text. The list
of variants comes from the catalog at collection time: a variant added there is tested here as is.
"""

import math

import pytest
import torch
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from backends.core.jobs import shared_runner
from backends.quantization import SPECS, BenchConfig, availability, run_job
from backends.quantization import measure as M
from backends.quantization import text as T
from tests.torch_helpers import checksum, one_torch_thread  # noqa: F401 (fixture: one torch thread)

V, D, F, LAYERS, HEADS, KV_HEADS = 512, 256, 384, 2, 4, 2
KV = KV_HEADS * D // HEADS  # k and v projections' output width
LINEARS = LAYERS * (2 * D * D + 2 * D * KV + 3 * D * F)  # q, o, k, v, gate, up, down
TABLE = V * D  # the tied embedding / output head, once
NORMS = (2 * LAYERS + 1) * D
PARAMS = LINEARS + TABLE + NORMS
SLACK = 128 * 1024  # torch.save's pickle records, an ONNX file's graph and constants

CPU_KEYS = [s.key for s in SPECS if s.available("cpu") is None]
# Offered on a CPU today; a variant that silently stops running here fails test_availability.
OFFERED_ON_CPU = {
    "fp32",
    "bf16",
    "torch-dynamic-int8",
    "torchao-int8-wo",
    "torchao-int8-dyn",
    "onnx-fp32",
    "onnx-int8",
    "onnx-int8-wo",
    "onnx-int4-wo",
    "gguf-q8_0",
    "gguf-q5_1",
    "gguf-q4_0",
    "bnb-int8",
    "bnb-nf4",
}
NOT_ON_CPU = {"fp16", "torchao-int4-wo"}  # float16 is a GPU format; this torchao has no packed int4 CPU kernel


def max_kld(bits: float) -> float:
    """Per-token KL(fp32 || variant) allowed on this model, by the bits of the rounded weights.

    For small errors KLD ~ half the variance of the logit error, which goes with the square of the
    rounding step: each bit fewer multiplies it by about 4. Measured here (64 tokens): float32 kernels
    other than torch's (ONNX Runtime) 2e-14; bf16 (8-bit mantissas, weights and activations) 3e-6;
    8-bit weights 6e-6 .. 2.3e-5, with per-tensor int8 activations (fbgemm, ONNX Runtime's dynamic)
    1e-4 .. 4.5e-4; 4 to 6 bits (Q4_0 .. Q5_1, NF4, int4 blocks) 3e-4 .. 2e-3. Each bound is about
    10x the largest of its tier, and far below what a broken quantizer gives (KLD ~ 0.1 .. 1).
    """
    if bits >= 32:
        return 1e-8
    if bits >= 16:
        return 3e-5
    if bits >= 8:
        return 5e-3
    return 2e-2


def kld(ref_logp: torch.Tensor, logits: torch.Tensor) -> float:
    """Mean over positions of KL(ref || variant), in float64."""
    logp = torch.log_softmax(logits.double(), -1)
    return float((ref_logp.exp() * (ref_logp - logp)).sum(-1).mean())


@pytest.fixture(scope="module")
def tokenizer():
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=V, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator([T.held_out_text()], trainer)
    assert bpe.get_vocab_size() == V
    return PreTrainedTokenizerFast(tokenizer_object=bpe)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=V,
        hidden_size=D,
        intermediate_size=F,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        tie_word_embeddings=True,
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # norms off their all-ones init: every tensor its own real values
        for p in model.parameters():
            if p.ndim == 1:
                p.copy_(1 + 0.1 * torch.randn(p.shape))
    model.save_pretrained(folder, safe_serialization=True)
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    assert sum(p.numel() for p in model.parameters()) == PARAMS, "the hand count of the shapes"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    return model


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One folder for the module's builds: the ONNX variants share one export, as in a run."""
    return tmp_path_factory.mktemp("variants")


@pytest.fixture(scope="module")
def reference(base, tokenizer):
    """64 tokens of the held-out text and the model's own float64 log-probabilities on them."""
    ids = T.token_slice(tokenizer, 64)
    with torch.inference_mode():
        return ids, torch.log_softmax(base(input_ids=ids).logits[0].double(), -1)


@pytest.fixture(scope="module")
def scores():
    """key -> KLD on the fixed tokens: filled by each variant's own test, the rest computed on demand."""
    return {}


def score(spec, base, reference, workdir, scores) -> float:
    if spec.key not in scores:
        built = spec.build(base, "cpu", workdir)
        scores[spec.key] = kld(reference[1], built.runner.logits(reference[0])[0])
        built.runner.close()
    return scores[spec.key]


def test_availability_on_this_cpu():
    here = availability("cpu")
    assert set(here) == {s.key for s in SPECS}
    assert set(CPU_KEYS) >= OFFERED_ON_CPU, {k: here[k] for k in OFFERED_ON_CPU if here[k]}
    assert all(s.key in CPU_KEYS for s in SPECS if s.family == "gguf"), "every GGUF file type runs on numpy"
    missing = {k: reason for k, reason in here.items() if reason is not None}
    assert set(missing) <= NOT_ON_CPU, f"newly unavailable on the CPU: {missing}"
    assert all(isinstance(r, str) and r.strip() for r in missing.values()), missing
    assert "GPU" in missing["fp16"]
    if "torchao-int4-wo" in missing:  # torchao's own words, quoted
        assert missing["torchao-int4-wo"].startswith("torchao: ")


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(s.key, marks=() if s.key in CPU_KEYS else pytest.mark.skip(reason=s.available("cpu")))
        for s in SPECS
    ],
)
def test_each_variant_builds_and_scores(base, reference, workdir, scores, key):
    spec = next(s for s in SPECS if s.key == key)
    ids, ref = reference
    before = checksum(base)
    built = spec.build(base, "cpu", workdir)
    try:
        assert checksum(base) == before, "the build works on a copy"
        assert built.model is not base
        runner = built.runner
        logits = runner.logits(ids)
        assert logits.shape == (1, ids.shape[1], V) and logits.dtype == torch.float32
        assert torch.isfinite(logits).all()
        scores[key] = k = kld(ref, logits[0])
        if spec.bits >= 32:
            assert k <= max_kld(32), "float32: the baseline's numbers, to kernel rounding"
        else:
            assert 1e-7 < k < max_kld(spec.bits), f"lossy, within the bound of {spec.bits}-bit weights"

        # prefill then one decode step (the speed path: KV cache or recomputed) give the full pass's
        # distributions at those positions; per-batch activation scales (dynamic int8) differ a little
        state, last = runner.start(ids[:, :-1])
        _, step = runner.step(state, int(ids[0, -1]))
        assert last.shape == step.shape == (V,)
        full = torch.log_softmax(logits[0, -2:].double(), -1)
        assert kld(full, torch.stack([last, step])) < max_kld(spec.bits), "prefill + step = the full pass"

        # bytes: below fp32's by the format's factor; hand counts in test_sizes_by_hand
        fp32 = 4 * PARAMS
        for size in (built.mem_bytes, built.disk_bytes):
            if spec.bits >= 32:  # an ONNX export unties the head from the table: one more copy
                assert fp32 <= size <= fp32 + 4 * TABLE + SLACK
            else:
                # every matrix in about `bits` per weight (1.15: scales a format does not count in
                # its bits), the gathered embedding table and the norms possibly left in float32
                high = 1.15 * spec.bits / 8 * (LINEARS + TABLE) + 4 * (TABLE + NORMS) + SLACK
                assert 0.9 * spec.bits / 8 * LINEARS < size < high, (key, size, high)
        # a decoded token reads every weight once and one row of the table (on top when it is tied)
        assert built.mem_bytes - 4 * TABLE - SLACK < built.decode_bytes <= built.mem_bytes + 4 * D
        if spec.bits >= 32:  # tied (torch): the matrix and a row on top; untied (ONNX): the head, a row
            assert built.decode_bytes == 4 * (PARAMS + D)
    finally:
        built.runner.close()


def test_fewer_bits_lose_more_within_a_family(base, reference, workdir, scores):
    """A variant with at least 3 bits per weight fewer than another of its family (onnx int4 blocks
    against int8 ones, GGUF Q4_0 / Q5_0 / Q4_K_M against Q8_0, NF4 against LLM.int8(), bf16 against
    fp32) has the larger KLD: the step is 8x coarser, the logit error's variance ~64x."""
    by_key = {s.key: s for s in SPECS}
    for key in CPU_KEYS:
        score(by_key[key], base, reference, workdir, scores)
    pairs = [
        (lo, hi)
        for lo in CPU_KEYS
        for hi in CPU_KEYS
        if by_key[lo].family == by_key[hi].family and by_key[hi].bits - by_key[lo].bits >= 3
    ]
    families = {by_key[lo].family for lo, _ in pairs}
    assert {"torch", "onnx", "gguf", "bitsandbytes"} <= families, pairs
    assert {("onnx-int4-wo", "onnx-int8-wo"), ("gguf-q4_0", "gguf-q8_0")} <= set(pairs)
    for lo, hi in pairs:
        assert scores[lo] > scores[hi], (lo, scores[lo], hi, scores[hi])


def gguf_bytes(kind: str, numel: int) -> int:
    """Bytes of `numel` weights of GGUF type `kind`, from the gguf package's block table."""
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[kind]]
    assert numel % block == 0
    return numel // block * size


def test_sizes_by_hand(base, workdir):
    by_key = {s.key: s for s in SPECS}
    fp32 = by_key["fp32"].build(base, "cpu", workdir)
    bf16 = by_key["bf16"].build(base, "cpu", workdir)
    assert fp32.mem_bytes == 4 * PARAMS, "float32, the tied embedding counted once"
    assert bf16.mem_bytes == 2 * PARAMS
    for built in (fp32, bf16):  # torch.save: the tensors' bytes and a few KB of pickle records
        assert built.mem_bytes < built.disk_bytes < built.mem_bytes + 64 * 1024
        assert built.decode_bytes == built.mem_bytes + built.mem_bytes // PARAMS * D, "tied: one row on top"

    q8 = by_key["gguf-q8_0"].build(base, "cpu", workdir)
    # Q8_0: a float16 scale and 32 int8 values (34 bytes) per block of 32; norms in float32
    assert q8.disk_bytes == q8.mem_bytes == (LINEARS + TABLE) // 32 * 34 + 4 * NORMS == 1_188_864
    for built in (fp32, bf16, q8):
        built.runner.close()

    shapes = dict(base.named_parameters())
    for spec in SPECS:
        if spec.family != "gguf" or spec.key not in CPU_KEYS:
            continue
        built = spec.build(base, "cpu", workdir)
        types = built.details["types"]  # parameter -> the GGUF type of its tensor in the file
        assert set(types) == set(shapes), "every tensor once (the tied head is the embedding)"
        for name, kind in types.items():
            w = shapes[name]
            if w.ndim == 1:
                assert kind == "F32", f"{name}: norms stay float32"
            else:  # a tensor's blocks run along its rows: the block must divide the row
                assert w.shape[-1] % GGML_QUANT_SIZES[GGMLQuantizationType[kind]][0] == 0, (name, kind)
        total = sum(gguf_bytes(kind, shapes[n].numel()) for n, kind in types.items())
        assert built.disk_bytes == built.mem_bytes == total, spec.key
        assert sum(built.details["formats"].values()) == LAYERS * 7 + 1, "every matrix counted once"
        assert spec.bits - 0.5 < 8 * total / PARAMS < spec.bits + 2, "near the file type's nominal bits"
        built.runner.close()


SETTINGS = {
    "ppl_tokens": 200,
    "window": 64,
    "stride": 64,
    "kld_tokens": 64,
    "prefill_tokens": 16,
    "new_tokens": 4,
    "runs": 1,
}


def test_one_run_over_every_cpu_variant(base, tokenizer):
    before = checksum(base)
    config = BenchConfig(variants=tuple(CPU_KEYS), **SETTINGS)
    job = shared_runner().submit("quantization-variants-test", run_job, base, tokenizer, config, "tiny-llama", "cpu")
    assert job.wait(600), "the run finished"
    assert job.status == "done", job.error
    report = job.result
    assert checksum(base) == before, "the shared model is unchanged"
    assert [r.key for r in report.rows] == CPU_KEYS, "every chosen variant, fp32 first, in catalog order"
    failed = {r.key: r.error for r in report.rows if r.status != "ok"}
    assert not failed

    # the fp32 perplexity by hand: windows of 64 from 0, 64, 128 and 192 over 200 tokens, each
    # window's first token unscored; float64 log-softmax of the model itself
    ids = T.token_slice(tokenizer, SETTINGS["ppl_tokens"])
    nll, count = 0.0, 0
    with torch.inference_mode():
        for begin in range(0, 200, 64):
            window = ids[:, begin : begin + 64]
            logp = torch.log_softmax(base(input_ids=window).logits[0].double(), -1)
            nll -= float(logp[:-1].gather(1, window[0, 1:, None]).sum())
            count += window.shape[1] - 1
    assert count == 196
    fp32 = report.row("fp32")
    assert fp32.perplexity == pytest.approx(math.exp(nll / count), rel=1e-4)
    assert fp32.kld == 0.0 and fp32.top1 == 1.0 and fp32.kld_tokens == SETTINGS["kld_tokens"]

    by_key = {s.key: s for s in SPECS}
    for r in report.rows:
        bits = by_key[r.key].bits
        assert r.ppl_tokens == count and math.isfinite(r.perplexity) and r.perplexity > 1, r.key
        assert math.isfinite(r.kld) and 0 <= r.kld < max_kld(bits), (r.key, r.kld)
        if bits < 32:
            assert r.kld > 0 and r.kld_tokens == SETTINGS["kld_tokens"], (r.key, r.kld)
        assert 0 <= r.top1 <= 1 and r.continuation.strip(), r.key
        assert r.mem_bytes > 0 and r.disk_bytes > 0 and r.decode_bytes > 0
        if r.family == "gguf":  # quality and size only: its speed would be llama.cpp's
            assert r.decode_tps is None and "llama" in r.note, r.key
        else:
            assert r.decode_tps > 0 and r.prefill_tps > 0 and r.decode_tps_p90 <= r.decode_tps + 1e-9, r.key
            assert r.bound_tps == pytest.approx(report.bandwidth / r.decode_bytes), r.key
        if r.key != "fp32":  # the paired interval over 4 windows of the same tokens
            assert r.nll_delta_windows == len(M.windows(200, 64, 64)) == 4, r.key
            assert r.ppl_half_width() is not None and r.ppl_half_width() >= 0, r.key
