"""Distillation's data and its teacher: the training and validation windows, and the teacher's soft
targets, computed once and kept on disk.

Text: the MIDDLE of the held-out text (Milton's Areopagitica, backends/quantization/text.py) in
SmolLM2's tokens: after the first `EVAL_TOKENS_MAX` tokens the table scores, before the calibration
tail (`N_SEQS x SEQ_LEN` tokens from the end, backends/compression/calibration.py). Training windows
are taken from the start of that middle, validation windows from its end: the three parts never
overlap. A window is `block + 1` tokens (the student's context and its last target).

Teacher: SmolLM2-135M-Instruct from the shared cache, read only (inference mode, its mode never set).
A full distribution over its 49,152 tokens for every training position would be 200 KB a position,
so each position keeps its top-k logits, and, for every temperature of the run, the exact log of
the probability mass outside them (`log_rest`). The loss then compares teacher and student on the
k tokens plus one "every other token" bucket (distill.py: kd_loss_topk). The teacher runs once per
window set; the result is cached under `cache_dir()/compression/`, so a second run starts training
at once.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import time
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from backends import quantization as q
from backends.core.paths import cache_dir
from backends.core.scheduler import shared_scheduler

from .calibration import EVAL_TOKENS_MAX, N_SEQS, SEQ_LEN

TEACHER = "smollm2-135m-instruct"
TEACHER_BATCH = 2  # windows per teacher forward (one exclusive scheduler turn, about a second)
CACHE_FORMAT = 1


def middle_ids(tokenizer) -> torch.Tensor:
    """The held-out text's tokens between the scored slice (its start) and the calibration tail (its end)."""
    ids = tokenizer(q.held_out_text(), add_special_tokens=False)["input_ids"]
    end = len(ids) - N_SEQS * SEQ_LEN
    if end <= EVAL_TOKENS_MAX:
        raise ValueError(
            f"the held-out text has {len(ids)} tokens: nothing is left between the scored slice "
            f"and the calibration tail."
        )
    return torch.tensor(ids[EVAL_TOKENS_MAX:end], dtype=torch.long)


def windows(tokenizer, block: int, n_train: int, n_val: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_train, block + 1) training windows from the middle's start, (n_val, block + 1) validation
    windows from its end; ValueError when they would overlap."""
    if block < 2 or n_train < 1 or n_val < 1:
        raise ValueError(f"need block >= 2 and at least one window each, got {block}, {n_train}, {n_val}.")
    ids, size = middle_ids(tokenizer), block + 1
    fits = len(ids) // size
    if n_train + n_val > fits:
        raise ValueError(
            f"{n_train} + {n_val} windows of {size} tokens do not fit in the {len(ids):,} tokens "
            f"between the scored slice and the calibration tail (at most {fits})."
        )
    train = ids[: n_train * size].view(n_train, size)
    val = ids[len(ids) - n_val * size :].view(n_val, size)
    return train, val


@dataclass
class TeacherTargets:
    """The teacher's soft targets for every training position, and its loss on the validation windows."""

    top_logits: torch.Tensor  # (n_train, block, k) float32: the k largest logits of each position
    top_idx: torch.Tensor  # (n_train, block, k) int64: their token ids
    temperatures: tuple[float, ...]
    log_rest: torch.Tensor  # (n_train, block, len(temperatures)): log of the mass outside the top k at T
    log_norm: torch.Tensor  # (n_train, block, len(temperatures)): logsumexp of all logits / T
    train_ce: float  # the teacher's cross-entropy on the training windows' targets (nats per token)
    val_ce: float  # ... on the validation windows' targets
    seconds: float = 0.0  # teacher time (0 when read from the cache)
    cached: bool = False

    def top_logp(self, temperature: float) -> torch.Tensor:
        """log p_T of the top-k tokens (against the full vocabulary), (n_train, block, k)."""
        j = self.temperatures.index(temperature)
        return self.top_logits / temperature - self.log_norm[..., j : j + 1]

    def rest(self, temperature: float) -> torch.Tensor:
        j = self.temperatures.index(temperature)
        return self.log_rest[..., j]


def soft_targets(logits: torch.Tensor, k: int, temperatures: tuple[float, ...]):
    """Top-k logits and ids, logsumexp(z / T) and log of the mass outside the top k at each T.

    log_rest = logsumexp of the other logits / T minus logsumexp of all: exact, no 1 - sum cancellation."""
    top, idx = logits.topk(k, dim=-1)
    others = logits.scatter(-1, idx, float("-inf"))
    norms, rests = [], []
    for temp in temperatures:
        norm = torch.logsumexp(logits / temp, dim=-1)
        norms.append(norm)
        rest = torch.logsumexp(others / temp, dim=-1) - norm if k < logits.shape[-1] else torch.full_like(norm, -1e30)
        rests.append(rest)
    return top, idx, torch.stack(norms, -1), torch.stack(rests, -1)


def _key(train: torch.Tensor, val: torch.Tensor, k: int, temperatures: tuple[float, ...]) -> str:
    h = hashlib.sha256()
    h.update(f"{CACHE_FORMAT}|{TEACHER}|{k}|{temperatures}|{tuple(train.shape)}|{tuple(val.shape)}".encode())
    h.update(train.numpy().tobytes())
    h.update(val.numpy().tobytes())
    return h.hexdigest()[:20]


def cache_file(train: torch.Tensor, val: torch.Tensor, k: int, temperatures: tuple[float, ...]):
    folder = cache_dir() / "compression"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"distill-teacher-{_key(train, val, k, temperatures)}.pt"


def _teacher_pass(model, x: torch.Tensor) -> torch.Tensor:
    threads = torch.get_num_threads()
    with shared_scheduler().turn("compression.distill.teacher", exclusive=True):
        torch.set_num_threads(q.bench_threads())  # alone on the machine: every core
        try:
            with torch.inference_mode():
                return model(x).logits.float()
        finally:
            torch.set_num_threads(threads)


def teacher_targets(
    ctx, loaded, train: torch.Tensor, val: torch.Tensor, k: int, temperatures: tuple[float, ...], progress=(0.0, 1.0)
) -> TeacherTargets | None:
    """The teacher's soft targets on `train` and its loss on `val`, from the disk cache or computed now
    (events kind="teacher"). None when the job was stopped. The cached model is only read."""
    temperatures = tuple(float(x) for x in temperatures)
    path = cache_file(train, val, k, temperatures)
    if path.is_file():
        try:
            data = torch.load(path, weights_only=True)
            return TeacherTargets(**{**data, "temperatures": tuple(data["temperatures"]), "cached": True})
        except (OSError, RuntimeError, TypeError, KeyError, EOFError, pickle.UnpicklingError):
            path.unlink(missing_ok=True)  # a broken file: score again
    model = loaded.model
    started = time.perf_counter()
    tops, idxs, norms, rests = [], [], [], []
    ce_train = ce_val = 0.0
    n_batches = -(-len(train) // TEACHER_BATCH) + -(-len(val) // TEACHER_BATCH)
    done = 0
    for part, rows in (("train", train), ("val", val)):
        for i in range(0, len(rows), TEACHER_BATCH):
            if ctx.stopped:
                return None
            x = rows[i : i + TEACHER_BATCH]
            logits = _teacher_pass(model, x[:, :-1])
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum").item()
            if part == "train":
                ce_train += ce
                top, idx, norm, rest = soft_targets(logits, k, temperatures)
                tops.append(top)
                idxs.append(idx)
                norms.append(norm)
                rests.append(rest)
            else:
                ce_val += ce
            done += 1
            frac = progress[0] + (progress[1] - progress[0]) * done / n_batches
            ctx.report(frac, f"teacher {done}/{n_batches}", kind="teacher", done=done, total=n_batches)
    block = train.shape[1] - 1
    result = TeacherTargets(
        top_logits=torch.cat(tops),
        top_idx=torch.cat(idxs),
        temperatures=temperatures,
        log_rest=torch.cat(rests),
        log_norm=torch.cat(norms),
        train_ce=ce_train / (len(train) * block),
        val_ce=ce_val / (len(val) * block),
        seconds=time.perf_counter() - started,
    )
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")  # two sessions may race
    torch.save({k_: v for k_, v in vars(result).items() if k_ != "cached"}, tmp)
    tmp.replace(path)
    return result
