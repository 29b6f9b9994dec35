"""Fine-tuning MiniLM with a classification head: full (every weight) or LoRA (peft), in the background.

The encoder handed in is the shared cached model: a run trains a `copy.deepcopy` of it and never
touches the original. Each optimiser step is one turn of the process-wide scheduler. Events
(backends/core/jobs.py) carry `kind`: "step" (loss, batch accuracy, lr), "eval" (validation loss,
accuracy, macro-F1) and "end". The validation macro-F1 drives early stopping, and the best
checkpoint so far is what a run returns, also when it is stopped or fails half-way.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from transformers import get_scheduler

from backends.classifier.data import Split
from backends.classifier.metrics import report
from backends.classifier.model import (
    LABEL,
    EncoderClassifier,
    ModelRun,
    predict_proba,
    tokenize,
)
from backends.core.scheduler import shared_scheduler

METHODS = ("full", "lora")
SCHEDULES = ("linear", "cosine", "constant")
SCHEDULER_NAMES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


class SettingsError(ValueError):
    """A setting out of range; the message quotes it."""


@dataclass(frozen=True)
class FinetuneSettings:
    method: str = "full"
    epochs: float = 2.0
    batch_size: int = 16
    learning_rate: float = 1e-4
    schedule: str = "linear"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 64
    eval_every: int = 50  # steps between validation passes (the end of training is always evaluated)
    patience: int = 3  # validation passes without a better macro-F1 before stopping (0: never stop early)
    class_weighted: bool = True  # loss weights n / (k * n_class), as the baselines' class_weight="balanced"
    dropout: float = 0.1
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ("query", "value")
    seed: int = 0

    def validate(self) -> FinetuneSettings:
        checks = (
            ("method", self.method in METHODS, f"one of {', '.join(METHODS)}"),
            ("schedule", self.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
            ("epochs", 0 < self.epochs <= 100, "above 0 and at most 100"),
            ("batch_size", 1 <= self.batch_size <= 512, "between 1 and 512"),
            ("learning_rate", 0 < self.learning_rate <= 1, "above 0 and at most 1"),
            ("warmup_ratio", 0 <= self.warmup_ratio < 1, "at least 0 and below 1"),
            ("weight_decay", 0 <= self.weight_decay <= 1, "between 0 and 1"),
            ("max_length", 4 <= self.max_length <= 512, "between 4 and 512 tokens (MiniLM's limit)"),
            ("eval_every", self.eval_every >= 1, "at least 1"),
            ("patience", self.patience >= 0, "0 (off) or more"),
            ("dropout", 0 <= self.dropout < 1, "at least 0 and below 1"),
            ("lora_rank", 1 <= self.lora_rank <= 384, "between 1 and 384 (MiniLM's width)"),
            ("lora_alpha", self.lora_alpha >= 1, "at least 1"),
            ("lora_dropout", 0 <= self.lora_dropout < 1, "at least 0 and below 1"),
            ("lora_targets", bool(self.lora_targets), "at least one layer name"),
        )
        for name, ok, rule in checks:
            if not ok:
                raise SettingsError(f"{name} = {getattr(self, name)!r} is not allowed: it must be {rule}.")
        return self

    def total_steps(self, n_train: int) -> int:
        return max(1, math.ceil(self.epochs * math.ceil(n_train / self.batch_size)))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FinetuneSettings:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(unknown)}.")
        values = dict(d)
        if "lora_targets" in values:
            values["lora_targets"] = tuple(values["lora_targets"])
        return cls(**values).validate()


def classifier_copy(encoder: torch.nn.Module, n_classes: int, s: FinetuneSettings) -> EncoderClassifier:
    """A private deep copy of the encoder with a fresh head; LoRA wraps the copy with peft. `encoder` is untouched."""
    torch.manual_seed(s.seed)
    own = copy.deepcopy(encoder)
    if s.method == "lora":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=s.lora_rank, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout, target_modules=list(s.lora_targets)
        )
        own = get_peft_model(own, config)  # freezes the copy's own weights, adds trainable A and B
    else:
        own.requires_grad_(True)
    model = EncoderClassifier(own, n_classes, s.dropout)
    model.head.requires_grad_(True)
    return model


def class_weights(labels, n_classes: int) -> torch.Tensor:
    counts = np.bincount(np.asarray(labels), minlength=n_classes).astype(float)
    return torch.tensor(
        np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0), dtype=torch.float32
    )


def batches(n: int, batch_size: int, seed: int):
    """Endless index batches: each epoch a fresh seeded shuffle."""
    rng = random.Random(seed)
    while True:
        order = list(range(n))
        rng.shuffle(order)
        for start in range(0, n, batch_size):
            yield order[start : start + batch_size]


def _trainable_state(model: torch.nn.Module) -> dict:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k in names}


def validate_model(model, tokenizer, split: Split, s: FinetuneSettings, weights) -> dict:
    probs = predict_proba(model, tokenizer, split.val.texts, s.max_length)
    r = report(split.val.labels, probs, split.label_names)
    target = torch.tensor(split.val.labels)
    loss = torch.nn.functional.nll_loss(
        torch.log(torch.from_numpy(probs).float().clamp_min(1e-12)), target, weight=weights
    ).item()
    return {"val_loss": loss, "val_accuracy": r.accuracy, "val_macro_f1": r.macro_f1}


def finetune(
    encoder, tokenizer, split: Split, settings: FinetuneSettings, report_fn=None, should_stop=lambda: False
) -> ModelRun:
    """Train a copy of `encoder` on split.train, early-stop on split.val's macro-F1, score split.test."""
    s = settings.validate()
    emit = report_fn or (lambda progress, message, **data: None)
    names, train = split.label_names, split.train
    total = s.total_steps(len(train))
    started = time.perf_counter()
    emit(0.0, "copying the model", kind="setup", total=total)
    model = classifier_copy(encoder, len(names), s)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=s.weight_decay)
    scheduler = get_scheduler(
        SCHEDULER_NAMES[s.schedule],
        optimizer,
        num_warmup_steps=round(s.warmup_ratio * total),
        num_training_steps=total,
    )
    weights = class_weights(train.labels, len(names)) if s.class_weighted else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    history, best, waited, stop_reason, step = [], None, 0, "done", 0
    device = next(model.parameters()).device
    labels = torch.tensor(train.labels)

    def evaluate(at: int) -> bool:
        """One validation pass; keeps the best checkpoint; True when patience has run out."""
        nonlocal best, waited
        point = {"step": at, **validate_model(model, tokenizer, split, s, weights)}
        history.append({"kind": "eval", **point})
        emit(at / total, f"validation macro-F1 {point['val_macro_f1']:.3f}", kind="eval", **point)
        if best is None or point["val_macro_f1"] > best[0] + 1e-6:
            best, waited = (point["val_macro_f1"], at, _trainable_state(model)), 0
        else:
            waited += 1
        return bool(s.patience) and waited >= s.patience

    feed = batches(len(train), s.batch_size, s.seed)
    model.train()
    try:
        for step in range(1, total + 1):
            if should_stop():
                stop_reason, step = "stopped", step - 1
                break
            idx = next(feed)
            batch = tokenize(tokenizer, [train.texts[i] for i in idx], s.max_length)
            t0 = time.perf_counter()
            with shared_scheduler().turn(LABEL):
                logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
                loss = loss_fn(logits, labels[idx].to(device))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                lr = scheduler.get_last_lr()[0]
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            accuracy = float((logits.argmax(-1).cpu() == labels[idx]).float().mean())
            elapsed = time.perf_counter() - started
            point = {
                "step": step,
                "epoch": step * s.batch_size / len(train),
                "loss": loss.item(),
                "accuracy": accuracy,
                "lr": lr,
                "step_s": time.perf_counter() - t0,
            }
            history.append({"kind": "step", **point})
            emit(
                step / total,
                f"step {step}/{total} · loss {point['loss']:.3f}",
                kind="step",
                **point,
                eta_s=elapsed / step * (total - step),
            )
            if step % s.eval_every == 0 and step < total and evaluate(step):
                stop_reason = "early_stopping"
                break
        if stop_reason == "done":
            evaluate(step)
    except Exception as exc:  # a failed run still hands back its last good checkpoint, if it has one
        if best is None:
            raise
        stop_reason = f"failed: {type(exc).__name__}: {exc}"
    if best is None:  # stopped before any validation pass
        evaluate(step)
    model.load_state_dict(best[2], strict=False)
    model.eval()
    emit(0.98, "scoring the test part", kind="test")
    probs = predict_proba(model, tokenizer, split.test.texts, s.max_length)
    seconds = time.perf_counter() - started
    emit(1.0, f"{stop_reason} after {step} steps", kind="end", stop_reason=stop_reason, best_step=best[1])
    return ModelRun(
        s.method,
        names,
        probs,
        seconds,
        model,
        {**s.to_dict(), "train_examples": len(train), "best_step": best[1], "steps_done": step},
        history,
        stop_reason,
        val_macro_f1=best[0],
    )


def finetune_job(ctx, encoder, tokenizer, split: Split, settings: FinetuneSettings) -> ModelRun:
    """Background-job form of finetune (see backends/core/jobs.py); torch threads are set by the runner."""
    return finetune(encoder, tokenizer, split, settings, report_fn=ctx.report, should_stop=lambda: ctx.stopped)
