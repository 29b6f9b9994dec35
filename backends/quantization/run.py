"""The benchmark as a background job: every chosen variant built on its own copy, measured, freed.

fp32 always runs first: it is the baseline of the speed-ups and the reference of KLD and top-1. A
variant that is unavailable or fails gets its row with the reason and the others still run; Stop
keeps the rows finished so far.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import psutil
import torch

from backends.quantization import catalog, measure
from backends.quantization import text as T
from backends.quantization.baseline import Baseline
from backends.quantization.variants import VariantUnavailable, timed

OK, FAILED, UNAVAILABLE, STOPPED = "ok", "failed", "unavailable", "stopped"
QUALITY_KLD = 0.05  # a variant keeps quality below this KLD to the baseline (the headline speed-up counts only those)


@dataclass(frozen=True)
class BenchConfig:
    variants: tuple[str, ...] = (
        "fp32",
        "bf16",
        "torch-dynamic-int8",
        "torchao-int8-wo",
        "onnx-int8",
        "gguf-q8_0",
        "gguf-q4_0",
    )
    ppl_tokens: int = 5_120  # the held-out slice scored by every variant (5 windows of 1024; docs/quantization.md)
    window: int = 1024
    stride: int = 1024  # = window: every token computed once (a smaller stride gives tokens more context, at a cost)
    kld_tokens: int = 1024  # fp32's full distributions are kept for this many scored tokens
    prefill_tokens: int = 128
    new_tokens: int = 32
    runs: int = 3
    keep: tuple[str, ...] = ()  # variants whose model copy the caller keeps
    prompt: str = T.PROMPT

    def validate(self) -> BenchConfig:
        for key in self.variants + self.keep:
            catalog.spec(key)  # unknown names raise with the list of known ones
        if not self.variants:
            raise ValueError("No variant chosen: pick at least one.")
        limits = {
            "ppl_tokens": (16, 200_000),
            "window": (16, 8192),
            "stride": (1, 8192),
            "kld_tokens": (0, 8192),
            "prefill_tokens": (1, 4096),
            "new_tokens": (1, 512),
            "runs": (1, 50),
        }
        for name, (lo, hi) in limits.items():
            value = getattr(self, name)
            if not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{name} = {value!r} is not allowed: expected an integer from {lo} to {hi}.")
        if self.stride > self.window:
            raise ValueError(f"stride = {self.stride} is larger than window = {self.window}: tokens would be skipped.")
        if not self.prompt.strip():
            raise ValueError("The prompt is empty.")
        return self

    def ordered(self) -> tuple[str, ...]:
        """fp32 first (baseline and reference), then the others in catalog order."""
        chosen = set(self.variants) | {catalog.BASELINE}
        return tuple(s.key for s in catalog.all_specs() if s.key in chosen)


@dataclass
class VariantResult:
    key: str
    label: str
    family: str
    bits: float  # before the build, the format's nominal bits; after it, the file's: 8 x file bytes / weights
    status: str = OK
    error: str = ""
    note: str = ""
    disk_bytes: int | None = None
    mem_bytes: int | None = None
    quantize_s: float | None = None
    load_s: float | None = None
    prefill_tps: float | None = None
    prefill_tps_p90: float | None = None
    decode_tps: float | None = None
    decode_tps_p90: float | None = None
    bound_tps: float | None = None  # copy bandwidth / decode_bytes: the memory-bound ceiling
    decode_bytes: int | None = None  # weight bytes one decoded token reads (one row of the input embedding)
    peak_rss_bytes: int | None = None
    perplexity: float | None = None
    nll: float | None = None
    ppl_tokens: int | None = None
    kld: float | None = None
    kld_tokens: int | None = None
    top1: float | None = None
    weight_error: float | None = None  # GGUF: relative RMSE of the quantized matrices (||W_q - W|| / ||W||)
    nll_delta_se: float | None = None  # standard error of the mean NLL difference to fp32 (paired, per window)
    nll_delta_windows: int | None = None  # the windows behind it (independent samples: df = windows - 1)
    continuation: str = ""
    kv_cache: bool = True
    seconds: float = 0.0  # the whole row: build + quality + speed
    build_s: float | None = None  # wall time of the build (copy, export, quantize, load)
    quality_s: float | None = None  # the perplexity pass
    speed_s: float | None = None  # the speed runs (or the greedy continuation alone)
    decode_runs: int | None = None  # decode runs made: fewer than `runs` once two agreed within 3%

    def ppl_half_width(self) -> float | None:
        """Half-width of the 95% interval of this perplexity against fp32 on the same tokens: Student's
        t with windows - 1 degrees of freedom (2.776 for 5 windows) x the paired standard error of the
        NLL difference, x the perplexity (delta method); None without one."""
        if self.nll_delta_se is None or self.perplexity is None or (self.nll_delta_windows or 0) < 2:
            return None
        return measure.t975(self.nll_delta_windows - 1) * self.nll_delta_se * self.perplexity

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VariantResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class BenchReport:
    model: str
    device: str
    config: BenchConfig
    rows: list[VariantResult] = field(default_factory=list)
    bandwidth: float = 0.0  # bytes/s of a tensor copy
    threads: int = 1
    seconds: float = 0.0
    stopped: bool = False
    kept: dict = field(default_factory=dict)  # variant key -> model copy, for the session (not exported)
    baseline: Baseline = field(default_factory=Baseline)  # what the fp32 row's weights are (baseline.py)
    fitted: str = ""  # how the settings were cut to a short-context model (fit_to_context), or ""
    context: int | None = None  # the model's positions, when it has a limit

    def row(self, key: str) -> VariantResult | None:
        return next((r for r in self.rows if r.key == key), None)


def int8_speedups(rows: list[VariantResult]) -> tuple[dict[str, float], dict[str, float]]:
    """Decode speed-up over the baseline of every measured int8 variant, as (those that keep quality:
    KLD < QUALITY_KLD, the lossy ones): the headline is the best of the first; fbgemm's dynamic int8
    (per-tensor activation scales, KLD ~1.4 on SmolLM2) is faster and lands in the second."""
    base = next((r for r in rows if r.key == catalog.BASELINE and r.status == OK and r.decode_tps), None)
    keep, lossy = {}, {}
    if base is None:
        return keep, lossy
    for r in rows:
        if r.status == OK and r.decode_tps and r.kld is not None and catalog.spec(r.key).int8:
            (keep if r.kld < QUALITY_KLD else lossy)[r.key] = r.decode_tps / base.decode_tps
    return keep, lossy


def estimate_bytes(base: torch.nn.Module, config: BenchConfig, vocab: int) -> int:
    """Memory a run needs on top of what is loaded: one copy at a time (two while quantizing),
    fp32's kept distributions, and the copies kept for the session."""
    weights = sum(p.numel() * p.element_size() for p in base.parameters())
    return 2 * weights + config.kld_tokens * vocab * 4 + len(config.keep) * weights


def check_memory(base, config: BenchConfig, vocab: int) -> None:
    need, free = estimate_bytes(base, config, vocab), psutil.virtual_memory().available
    if need > free:
        raise MemoryError(
            f"This run needs about {need / 2**30:.2f} GB and {free / 2**30:.2f} GB are free: pick a "
            "smaller model, fewer kept variants or fewer KLD tokens."
        )


def bench_threads() -> int:
    """torch (and ONNX Runtime) threads of the measured steps: every core, since each such step runs
    alone (an exclusive scheduler turn). Results do not depend on it: the logits of SmolLM2 on one
    and on two threads are bitwise equal, so a rerun's perplexity is identical at any load."""
    return max(1, os.cpu_count() or 1)


def context_length(model) -> int | None:
    """The most positions the model takes (a GPT trained on the scratch page: its block size), or None."""
    n = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else None


def fit_to_context(config: BenchConfig, n_positions: int | None) -> tuple[BenchConfig, list[str]]:
    """The settings cut to a model's context (window, stride, prefill, prompt + new tokens), with what
    changed in words: a GPT trained here with 64 positions cannot run a 1024-token window."""
    if not n_positions:
        return config, []
    changes = {}
    if config.window > n_positions:
        changes["window"] = n_positions
        changes["stride"] = min(config.stride, n_positions)
    if config.prefill_tokens > n_positions:
        changes["prefill_tokens"] = n_positions
    if config.new_tokens > n_positions // 2:
        changes["new_tokens"] = max(1, n_positions // 2)
    said = [f"{k} {getattr(config, k)} -> {v}" for k, v in changes.items()]
    return replace(config, **changes), said


def run_job(
    ctx, base, tokenizer, config: BenchConfig, model_name: str, device: str = "cpu", baseline: Baseline | None = None
) -> BenchReport:
    """Background-job form (backends/core/jobs.py): events kind="row" carry each finished row.
    `baseline` names what the model's weights are (`baseline.describe(loaded)`); without it the
    fp32 row is plain "fp32"."""
    config = config.validate()
    before = torch.get_num_threads()
    torch.set_num_threads(bench_threads())
    try:
        return _run(ctx, base, tokenizer, config, model_name, device, baseline or Baseline())
    finally:
        torch.set_num_threads(before)


def _run(ctx, base, tokenizer, config: BenchConfig, model_name: str, device: str, baseline: Baseline) -> BenchReport:
    started = time.perf_counter()
    vocab = base.get_output_embeddings().weight.shape[0]
    check_memory(base, config, vocab)
    n_positions = context_length(base)
    config, fitted = fit_to_context(config, n_positions)
    ids = T.token_slice(tokenizer, config.ppl_tokens)
    spans = measure.windows(ids.shape[1], config.window, config.stride)
    prompt = T.prompt_ids(tokenizer, config.prompt)
    if n_positions and prompt.shape[1] + config.new_tokens > n_positions:  # keep the prompt's end
        prompt = prompt[:, -(n_positions - config.new_tokens) :]
        fitted.append(f"prompt cut to its last {prompt.shape[1]} tokens")
    prefill = ids[:, : config.prefill_tokens]
    report = BenchReport(model_name, device, config, threads=torch.get_num_threads(), baseline=baseline)
    report.context = n_positions
    if fitted:
        report.fitted = f"settings cut to the model's context of {n_positions} tokens: " + "; ".join(fitted)
        ctx.report(0.0, report.fitted, kind="setup")
    ctx.report(0.0, "measuring memory bandwidth", kind="setup")
    report.bandwidth = measure.copy_bandwidth()
    reference = measure.Reference(kld_tokens=config.kld_tokens)
    order = config.ordered()
    with tempfile.TemporaryDirectory(prefix="llmpg-quant-") as workdir:
        for n, key in enumerate(order):
            if ctx.stopped:
                report.stopped = True
                break
            row = one_variant(
                ctx,
                key,
                base,
                tokenizer,
                config,
                device,
                Path(workdir),
                ids,
                spans,
                prompt,
                prefill,
                reference,
                report,
                (n, len(order)),
            )
            report.rows.append(row)
            ctx.report((n + 1) / len(order), f"{row.label}: {row.status}", kind="row", row=row.to_dict())
            if row.status == STOPPED:
                report.stopped = True
                break
    report.seconds = time.perf_counter() - started
    return report


def unique_params(model) -> int:
    """Weights of the model, a tied tensor once."""
    return sum(p.numel() for p in model.parameters())


def one_variant(
    ctx, key, base, tokenizer, config, device, workdir, ids, spans, prompt, prefill, reference, report, position
) -> VariantResult:
    spec = catalog.spec(key)
    label = report.baseline.label if key == catalog.BASELINE else spec.label
    row = VariantResult(spec.key, label, spec.family, spec.bits)
    reason = spec.available(device)
    if reason:
        row.status, row.error = UNAVAILABLE, reason
        return row
    n, total = position

    def say(step: str, fraction: float = 0.0):
        ctx.report((n + fraction) / total, f"{spec.label}: {step}", kind="progress", variant=key, step=step)

    started = time.perf_counter()
    built = None
    try:
        with measure.PeakRSS() as rss:
            say("building")
            built, row.build_s = timed(spec.build, base, device, workdir)
            row.note, row.quantize_s, row.load_s = built.note, built.quantize_s, built.load_s
            row.mem_bytes, row.disk_bytes, row.decode_bytes = built.mem_bytes, built.disk_bytes, built.decode_bytes
            row.kv_cache = built.runner.kv_cache
            # the file's real bits per weight: GGUF's own count (tensor blocks), else its size over the weights
            row.bits = built.bits if built.bits is not None else 8 * built.disk_bytes / unique_params(base)
            row.weight_error = 0.0 if key == catalog.BASELINE else built.weight_error
            say("perplexity", 0.1)
            phase = time.perf_counter()
            q = measure.quality(
                built.runner,
                ids,
                spans,
                reference,
                fill=key == catalog.BASELINE,
                should_stop=lambda: ctx.stopped,
                on_window=lambda i, m: say(f"perplexity {i}/{m}", 0.1 + 0.6 * i / m),
            )
            if q is None:
                row.status = STOPPED
                return row
            row.quality_s = time.perf_counter() - phase
            row.perplexity, row.nll, row.ppl_tokens = q.perplexity, q.nll, q.tokens
            row.kld, row.kld_tokens, row.top1 = q.kld, q.kld_tokens, q.top1
            row.nll_delta_se, row.nll_delta_windows = q.delta_se, q.delta_windows
            if key == catalog.BASELINE:
                row.kld, row.top1, row.kld_tokens = 0.0, 1.0, reference.held()
            say("speed", 0.7)
            phase = time.perf_counter()
            if built.measures_speed:
                s = measure.speed(
                    built.runner, prefill, prompt, config.new_tokens, config.runs, should_stop=lambda: ctx.stopped
                )
                if s is None:
                    row.status = STOPPED
                    return row
                row.prefill_tps, row.prefill_tps_p90 = s.prefill()
                row.decode_tps, row.decode_tps_p90 = s.decode()
                row.decode_runs = s.decode_runs
                row.bound_tps = report.bandwidth / row.decode_bytes if row.decode_bytes else None
                tokens = s.continuation_ids
            else:
                tokens = measure.greedy_ids(built.runner, prompt, config.new_tokens)
            row.speed_s = time.perf_counter() - phase
            row.continuation = tokenizer.decode(tokens, skip_special_tokens=True)
        row.peak_rss_bytes = rss.peak
        if key in config.keep and built.model is not None:
            report.kept[key] = built.model
    except VariantUnavailable as exc:
        row.status, row.error = UNAVAILABLE, str(exc)
    except Exception as exc:  # a variant's failure (missing kernel, export error) is its row's
        row.status, row.error = FAILED, f"{type(exc).__name__}: {exc}"
    finally:
        row.seconds = time.perf_counter() - started
        if built is not None:
            built.runner.close()
            built.model = None
        del built
        gc.collect()
    return row
