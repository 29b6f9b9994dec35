"""The pruning page's job: perplexity against sparsity for magnitude, Wanda and structured pruning on one
model, the decode speed of dense / 50% unstructured / 30% structured copies, and a short LoRA recovery
fine-tune of the structured copy, with its perplexity before and after.

Everything runs on private copies of the cached model (the shared one is never touched). Calibration:
calibration.py's batches from the held-out text's end (SmolLM2: 8 x 128 tokens; the demo GPT, 64
positions: 16 x 64); perplexity: the text's first `ppl_tokens` tokens (quantization/text.py), in
windows of at most 512 tokens. The structured copy whose speed is measured has been saved with
save_pretrained and loaded back by path (its logits are compared with the sliced copy's).
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from backends import quantization as q
from backends.compression import pruning as P
from backends.compression import structured as S
from backends.compression.calibration import calibration_ids

METHODS = ("magnitude", "wanda", "structured")
SPARSITIES = (0.1, 0.3, 0.5, 0.7)
SPEED_ROWS = (("dense", 0.0), ("magnitude", 0.5), ("structured", 0.3))
WINDOW = 512


def calibration_set(model, tokenizer) -> torch.Tensor:
    """8 x 128 tokens, or 16 x 64 for a model of 64 positions (the demo GPT)."""
    seq = min(128, _positions(model))
    return calibration_ids(tokenizer, 8 * 128 // seq, seq)


def _positions(model) -> int:
    n = getattr(model.config, "max_position_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else 128


def prune(base, method: str, sparsity: float, stats: P.InputStats):
    """(pruned copy, its report) for one method; sparsity 0 gives a plain copy."""
    if sparsity == 0:
        return copy.deepcopy(base), None
    if method == "structured":
        return S.structured_copy(base, sparsity, stats)
    return P.pruned_copy(base, method, sparsity, stats.sq)


def removed_params(report) -> int:
    """Parameters a pruning took out: zeroed weights (unstructured), or sliced-out weights and biases."""
    if isinstance(report, S.StructuredReport):
        return report.prunable_before - report.prunable_after
    return round(report.achieved * report.weights)


def perplexity(model, ids, spans, reference=None, fill=False, should_stop=lambda: False):
    return q.quality(q.TorchRunner(model), ids, spans, reference, fill=fill, should_stop=should_stop)


@dataclass
class PruningCurve:
    model: str
    family: str  # "llama" | "gpt_neox"
    ppl_tokens: int
    calibration: str  # sequences x tokens from the held-out text's end, e.g. "8 x 128"
    dense_ppl: float = 0.0
    points: list = field(default_factory=list)  # dicts: method, sparsity, achieved, perplexity, kld, params
    speed: list = field(default_factory=list)  # dicts: row, sparsity, decode_tps, decode_tps_p90, params, ...
    reload: dict = field(default_factory=dict)  # the saved structured copy: folder bytes, logits max diff
    recovery: dict = field(default_factory=dict)
    seconds: float = 0.0
    threads: int = 1
    stopped: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class _Part:
    """A job context for one stage: its progress fractions mapped into [start, start + span]."""

    def __init__(self, ctx, start: float, span: float, stage: str):
        self.ctx, self.start, self.span, self.stage = ctx, start, span, stage

    @property
    def stopped(self) -> bool:
        return self.ctx.stopped

    def report(self, progress=None, message: str = "", **data) -> None:
        at = None if progress is None else self.start + self.span * progress
        self.ctx.report(at, message, stage=self.stage, **data)


def pruning_curve_job(
    ctx,
    model_name: str,
    sparsities=SPARSITIES,
    methods=METHODS,
    ppl_tokens: int = 512,
    speed: bool = True,
    recovery_steps: int = 0,
) -> PruningCurve:
    """Background job (backends/core/jobs.py). Events: kind="point" per measured sparsity, "speed"
    per speed row, "step" from the LoRA trainer, "recovery" at its end. `model_name`: a cache key
    ("smollm2-135m-instruct"), a model folder, or quantization.DEMO_GPT_NAME (trained first if needed)."""
    from backends.models.cache import shared_cache

    started = time.perf_counter()
    for s in sparsities:
        if not 0.0 < s < 1.0:
            raise ValueError(f"sparsity {s!r}: use shares between 0 and 1, e.g. 0.1 to 0.7.")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods {list(methods)!r}: pick from {', '.join(METHODS)}.")
    ctx.report(0.0, "loading the model", kind="setup")
    if model_name == q.DEMO_GPT_NAME:  # the GPT trained here with real fp32 weights (once, ~45 s)
        model_name = str(q.train_demo_gpt())
    loaded = shared_cache().get(model_name)
    base, tok = loaded.model, loaded.tokenizer
    result = PruningCurve(model_name, S.family(base), ppl_tokens, "")
    # The job's own torch threads (all cores but one, backends/core/jobs.py), not every core as the
    # quantization table takes: two threads on two busy cores stalled a SmolLM2 decode step 6x.
    result.threads = torch.get_num_threads()
    try:
        _curve(ctx, base, tok, result, sorted(sparsities), list(methods), speed, recovery_steps)
    finally:
        result.seconds = time.perf_counter() - started
    return result


def _curve(ctx, base, tok, result: PruningCurve, sparsities, methods, speed: bool, recovery_steps: int) -> None:
    stop = lambda: ctx.stopped  # noqa: E731
    calib = calibration_set(base, tok)
    result.calibration = f"{calib.shape[0]} x {calib.shape[1]}"
    ctx.report(0.02, "calibrating: input stats of every linear layer", kind="setup")
    stats = P.calibration_stats(base, calib, stop)
    window = min(WINDOW, _positions(base))
    ids = q.token_slice(tok, result.ppl_tokens)
    spans = q.windows(ids.shape[1], window, window)
    reference = q.Reference(kld_tokens=min(256, ids.shape[1]))
    dense = perplexity(base, ids, spans, reference, fill=True, should_stop=stop)
    if dense is None:
        result.stopped = True
        return
    result.dense_ppl = dense.perplexity
    ctx.report(0.05, "dense", kind="point", method="dense", sparsity=0.0, perplexity=dense.perplexity)
    todo = [(m, s) for m in methods for s in sparsities]
    share = 0.65 if speed or recovery_steps else 0.95
    for n, (method, s) in enumerate(todo):
        if ctx.stopped:
            result.stopped = True
            return
        model, report = prune(base, method, s, stats)
        got = perplexity(model, ids, spans, reference, should_stop=stop)
        if got is None:
            result.stopped = True
            return
        point = {
            "method": method,
            "sparsity": s,
            "achieved": report.achieved,
            "perplexity": got.perplexity,
            "kld": got.kld,
            "params_removed": removed_params(report),
        }
        result.points.append(point)
        ctx.report(0.05 + share * (n + 1) / len(todo), f"{method} {s:.0%}", kind="point", **point)
        del model
    start = 0.05 + share
    if speed:
        span = 0.1 if recovery_steps else 0.25
        speed_rows(ctx, base, tok, stats, result, start, span)
        start += span
    if recovery_steps and not ctx.stopped:
        part = _Part(ctx, start, 0.98 - start, "recovery")
        result.recovery = recover_structured(part, base, tok, stats, ids, spans, recovery_steps)


def speed_rows(ctx, base, tok, stats, result: PruningCurve, start: float, span: float, runs: int = 3) -> None:
    """Decode tokens/s (greedy, KV cache, at the median step time) of dense, 50% magnitude and 30%
    structured, measured in turn `runs` times, each first once (a load change on the machine hits all
    three alike); the structured copy measured is the one loaded back from its saved folder."""
    n_pos = _positions(base)
    new = min(32, n_pos // 2)
    prompt = q.prompt_ids(tok)[:, -(n_pos - new) :]
    prefill = q.token_slice(tok, min(128, n_pos))
    probe = prefill[:, : min(32, prefill.shape[1])]
    models, steps = {}, {method: [] for method, _ in SPEED_ROWS}
    with tempfile.TemporaryDirectory(prefix="llmpg-prune-") as tmp:
        for method, s in SPEED_ROWS:
            ctx.report(start, f"building the {method} copy", kind="progress")
            model, _ = prune(base, method, s, stats)
            if method == "structured":
                folder = S.save(model, f"{tmp}/structured-{round(100 * s)}", tok)
                reloaded = S.load(folder)
                with torch.inference_mode():
                    diff = (model(input_ids=probe).logits - reloaded(input_ids=probe).logits).abs().max()
                size = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
                result.reload = {"folder_bytes": size, "max_logit_diff": float(diff), "loads": True}
                model = reloaded
            models[method] = model
    for r in range(runs):
        order = SPEED_ROWS[r % len(SPEED_ROWS) :] + SPEED_ROWS[: r % len(SPEED_ROWS)]  # each goes first once
        for n, (method, _) in enumerate(order):
            if ctx.stopped:
                result.stopped = True
                return
            measured = q.speed(q.TorchRunner(models[method]), prefill, prompt, new, 1, should_stop=lambda: ctx.stopped)
            if measured is None:
                result.stopped = True
                return
            steps[method] += measured.decode_step_s
            done = (r * len(SPEED_ROWS) + n + 1) / (runs * len(SPEED_ROWS))
            ctx.report(start + span * done, f"speed: {method}, run {r + 1}/{runs}", kind="progress")
    for method, s in SPEED_ROWS:
        model = models.pop(method)
        row = {
            "row": method,
            "sparsity": s,
            "decode_tps": 1 / statistics.median(steps[method]),
            "decode_tps_p90": 1 / float(np.percentile(steps[method], 90)),
            "steps": len(steps[method]),
            "params": sum(p.numel() for p in model.parameters()),
            "nonzero": sum(int((p != 0).sum()) for p in model.parameters()),
            "weight_bytes": q.state_bytes(model),
        }
        result.speed.append(row)
        ctx.report(start + span, f"speed: {method}", kind="speed", **row)
        del model


def recover_structured(ctx, base, tok, stats, ids, spans, steps: int, sparsity: float = 0.3) -> dict:
    """LoRA (the LoRA page's trainer, rank 8 on every attention and MLP layer) on the 30% structured
    copy for `steps` steps over 32 calibration-text sequences; perplexity before and after."""
    from backends import lora

    pruned, report = S.structured_copy(base, sparsity, stats)
    before = perplexity(pruned, ids, spans, should_stop=lambda: ctx.stopped)
    seq = min(128, _positions(base))
    texts = [tok.decode(row) for row in calibration_ids(tok, 32 * 128 // seq, seq)]
    if tok.pad_token_id is None and tok.eos_token_id is None:  # the demo GPT: equal lengths, never padded
        tok = copy.deepcopy(tok)
        tok.pad_token = tok.convert_ids_to_tokens(0)
    settings = lora.LoraSettings(
        rank=8,
        alpha=16,
        dropout=0.0,
        target_modules=tuple(sorted({n.rsplit(".", 1)[-1] for n in P.block_linears(pruned)})),
        learning_rate=1e-3,
        schedule="cosine",
        warmup_steps=2,
        max_steps=steps,
        batch_size=4,
        max_length=seq,
        eval_fraction=0.0,
        eval_every=0,
        sample_every=0,
        loss_on="all",
    )
    prepared = lora.prepare(tok, [lora.Example(text=t) for t in texts], settings, model=pruned)
    trained = lora.train_job(ctx, pruned, tok, prepared, "structured-30")
    after = perplexity(trained.model, ids, spans, should_stop=lambda: ctx.stopped)
    out = {
        "trainer": "lora",
        "sparsity": sparsity,
        "achieved": report.achieved,
        "steps": trained.steps_done,
        "losses": [p["loss"] for p in trained.steps],
        "ppl_before": before.perplexity if before else None,
        "ppl_after": after.perplexity if after else None,
        "train_s": trained.train_seconds,
        "trainable": sum(p.numel() for p in trained.model.parameters() if p.requires_grad),
    }
    ctx.report(1.0, "recovered", kind="recovery", **out)
    return out
