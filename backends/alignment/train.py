"""The DPO training job: fast.py's cached top-layer step in a loop, run off the UI thread.

Same job protocol as backends/lora/train.py (backends/core/jobs.py): the job checks `ctx.stopped`
before every step and calls `ctx.report(fraction, message, kind=..., **fields)`:
- kind="setup" while `prepare_and_train` prepares (fraction of the caches filled, message);
- kind="step" after every optimizer step: step, steps_total, loss, reward_chosen, reward_rejected
  (batch means of beta * (log pi - log pi_ref)), margin (their difference), accuracy (share of pairs
  with chosen reward > rejected), kl, lr (the rate this step used), pairs_per_s (this step),
  elapsed_s, eta_s. `kl` is the exact mean per-token KL(policy || reference) on the fixed probe set
  (fast.probe_kl), measured every `probe_every` steps and at the last step, and None on the other
  steps (the last measured value is not carried: a chart plots the measured points);
- kind="end": stop_reason ("done" or "stopped"), steps_done, pairs_seen, seconds.
Each optimizer step (forward, backward, clip, AdamW, schedule) holds one turn on the shared compute
scheduler, labelled "dpo" (a training step: at most the scheduler's training slots run at once);
each KL probe (forward only) takes an "alignment" turn.

Optimiser as TRL 1.16's defaults: AdamW (betas 0.9/0.999, eps 1e-8, no weight decay), the learning
rate decaying linearly to 0 over the run with no warm-up, gradients clipped to max_grad_norm.
Pairs are visited in a fresh seeded shuffle each epoch.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import torch
from peft import PeftModel
from transformers import get_scheduler

from backends.alignment.config import DpoSettings, SettingsError
from backends.alignment.fast import LABEL, Prepared, TopLayers, lora_policy, prepare, step_loss
from backends.alignment.fast import probe_kl as measure_kl
from backends.core.scheduler import shared_scheduler

STEP_LABEL = "dpo"  # a training step: counts against the scheduler's training slots (backends/core/scheduler.py)

# Settings a prepared cache was built for: a run may change the others (beta, loss, rate, length of run).
PREPARE_FIELDS = ("top_layers", "rank", "alpha", "target_modules", "max_length", "probe_pairs")


@dataclass
class DpoResult:
    model: PeftModel  # the trained LoRA copy: generate with it; `with model.disable_adapter():` is the base
    settings: DpoSettings
    steps: list = field(default_factory=list)  # the step events' fields, one dict per step
    seconds: float = 0.0  # training time, prepare excluded
    prepare_seconds: float = 0.0
    stop_reason: str = "done"  # done | stopped
    pairs_seen: int = 0
    cache_bytes: int = 0  # what the prepared caches hold (fast.Prepared.cache_bytes)


def claim_policy(prepared: Prepared, settings: DpoSettings) -> PeftModel:
    """The prepared LoRA copy for the first run; a fresh seeded copy for every later run, so each
    result keeps its own model (the caches do not depend on the adapter: they are the base's)."""
    if not prepared.claimed:
        prepared.claimed.append(True)
        return prepared.model
    return lora_policy(prepared.base, settings)


def batches(n: int, batch_pairs: int, seed: int):
    """Endless lists of pair indices: each epoch a fresh seeded shuffle, cut into batch_pairs."""
    rng = random.Random(seed)
    while True:
        order = list(range(n))
        rng.shuffle(order)
        for start in range(0, n, batch_pairs):
            yield order[start : start + batch_pairs]


def dpo_job(ctx, prepared: Prepared, settings: DpoSettings | None = None, probe=None) -> DpoResult:
    """Background-job form of a fast DPO run on `prepared`; returns the trained copy even when stopped.

    `settings` (default: the prepared ones) may change beta, loss_type, learning_rate, batch_pairs,
    epochs, max_steps, seed, probe_every and max_grad_norm; the fields the caches depend on must
    match. `probe`: pair indices whose chosen responses make the KL probe set (default:
    `prepared.probe`)."""
    s = (settings or prepared.settings).validate(prepared.base)
    changed = [f for f in PREPARE_FIELDS if getattr(s, f) != getattr(prepared.settings, f)]
    if changed:
        raise SettingsError(
            f"{changed[0]} = {getattr(s, changed[0])!r} is not allowed: the caches were prepared with "
            f"{getattr(prepared.settings, changed[0])!r}; prepare again to change it."
        )
    probe = tuple(prepared.probe if probe is None else probe)
    if not probe or not all(0 <= i < len(prepared.pairs) for i in probe):
        raise SettingsError(
            f"probe = {list(probe)!r} is not allowed: use pair indices in 0 .. {len(prepared.pairs) - 1}."
        )
    model = claim_policy(prepared, s)
    model.train()
    split = TopLayers(model, s.top_layers)
    probe_pairs = [prepared.pairs[i] for i in probe]
    params = [p for p in model.parameters() if p.requires_grad]
    total = s.total_steps(len(prepared.pairs))
    optimizer = torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=0.0)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=total)
    result = DpoResult(model, s, prepare_seconds=prepared.prepare_seconds, cache_bytes=prepared.cache_bytes)
    feed = batches(len(prepared.pairs), s.batch_pairs, s.seed)
    started = time.perf_counter()
    for step in range(1, total + 1):
        if ctx.stopped:
            result.stop_reason = "stopped"
            break
        t0 = time.perf_counter()
        batch = [prepared.pairs[i] for i in next(feed)]
        with shared_scheduler().turn(STEP_LABEL):  # one step at a time: other sessions' tokens interleave
            out = step_loss(split, batch, s.beta, s.loss_type)
            out.loss.backward()
            if s.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        step_s = time.perf_counter() - t0
        kl = None
        if s.probe_every and (step % s.probe_every == 0 or step == total):
            with shared_scheduler().turn(LABEL):
                kl = measure_kl(split, probe_pairs)
        elapsed = time.perf_counter() - started
        result.pairs_seen += len(batch)
        point = {
            "step": step,
            "steps_total": total,
            "loss": out.loss.item(),
            "reward_chosen": out.chosen_rewards.mean().item(),
            "reward_rejected": out.rejected_rewards.mean().item(),
            "margin": out.margins.mean().item(),
            "accuracy": out.accuracy,
            "kl": kl,
            "lr": lr,
            "pairs_per_s": len(batch) / step_s,
            "elapsed_s": elapsed,
            "eta_s": elapsed / step * (total - step),
        }
        result.steps.append(point)
        ctx.report(step / total, f"step {step}/{total} · loss {point['loss']:.4f}", kind="step", **point)
    result.seconds = time.perf_counter() - started
    model.eval()
    done = len(result.steps)
    ctx.report(
        1.0 if result.stop_reason == "done" else done / total,
        f"{result.stop_reason} after {done} steps",
        kind="end",
        stop_reason=result.stop_reason,
        steps_done=done,
        pairs_seen=result.pairs_seen,
        seconds=result.seconds,
    )
    return result


def prepare_and_train(ctx, model, tokenizer, pairs, settings: DpoSettings | None = None, probe=None) -> DpoResult:
    """The whole run as one job: `fast.prepare` (kind="setup" events, stoppable between chunks), then `dpo_job`."""

    def report(fraction: float, message: str) -> None:
        ctx.check_stop()  # raises JobStopped: a stop during prepare ends the job with no result
        ctx.report(fraction, message, kind="setup")

    prepared = prepare(model, tokenizer, pairs, settings, report=report)
    return dpo_job(ctx, prepared, probe=probe)
