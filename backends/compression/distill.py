"""Knowledge distillation: a small GPT (the scratch page's `GPT`) trained twice from the same
initial weights, on the same windows in the same order with the same schedule: once on hard labels
(cross-entropy on the next token), once on SmolLM2-135M-Instruct's soft targets (Hinton et al. 2015):

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE

The student uses SmolLM2's own tokenizer (49,152 tokens), so teacher and student score the same
vocabulary. The scratch page's `SubwordTokenizer` takes at most 16,000 tokens, so the student is the
scratch `GPT` module with SmolLM2's vocabulary size, exported as a transformers folder (GPT-NeoX,
`scratch_gpt.to_transformers`) with SmolLM2's tokenizer files beside it. At n_embd 128 the
embedding (tied with the head) is 6.3M of the student's 6.7M parameters.

The teacher's distribution is kept as its top-k tokens plus one bucket for the rest
(distill_teacher.py); `kd_loss` is the full-vocabulary loss, `kd_loss_topk` the bucketed one the job
trains with (equal when k is the whole vocabulary; `fused_kd_loss` is the same with a fused gradient).
Both students are compared by plain cross-entropy on the same validation windows; the teacher's own
on them is shown for reference.

Measured (2 shared cores, load 3-8 from other work; 100 training windows of 129 tokens, 12 validation
windows, 4 windows a step, top-64 targets, peak lr 3e-3):
- defaults (100 steps, T = 1, alpha = 0.9): validation 6.819 distilled vs 7.126 hard labels (teacher
  4.586); training-window loss 6.357 vs 6.151: the hard-label student memorises its 12,900 tokens.
  215 s for the job with the teacher cached (steps: 109 s distilled, 79 s hard); the teacher's pass
  over 14,336 tokens took 643 s at load 6-8 (it runs once; its file is reused).
- 120 steps: hard 7.051; T = 1: alpha 0.9 6.742, alpha 0.5 6.794, alpha 1 6.887; T = 1.5 (alpha 0.9)
  6.941; T = 2: alpha 0.9 7.416, alpha 1 7.711. Higher T loses here because only the top 64 tokens
  are kept: at T = 2 they hold 18% of SmolLM2's mass (81% at T = 1), so most of the soft target is
  the "every other token" bucket, which says nothing about which token.
- In the quantization table (first 1,024 tokens of the text, 128-token windows) the exported students
  score perplexity 1,114 (distilled) and 1,602 (hard labels).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

from backends import scratch_gpt as sg
from backends.core.scheduler import shared_scheduler

from .distill_loss import fused_kd_loss
from .distill_teacher import TEACHER, TeacherTargets, teacher_targets, windows

STUDENTS = ("kd", "hard")
FOLDERS = {"kd": "distill-kd", "hard": "distill-hard"}
LABEL = "scratch_gpt"  # a training label of the scheduler: at most its training slots at once
EVAL_BATCH = 8  # windows per evaluation forward pass
# the teacher keeps its bucket mass at these temperatures (and the run's own): another T needs no new teacher pass
TEMPERATURES = (1.0, 1.5, 2.0, 3.0, 4.0)


@dataclass(frozen=True)
class DistillSettings:
    steps: int = 100
    batch_size: int = 4  # windows per step
    block_size: int = 128  # the student's context; windows are block_size + 1 tokens
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    temperature: float = 1.0  # measured best with top-64 targets: see the module doc
    alpha: float = 0.9
    top_k: int = 64
    learning_rate: float = 3e-3
    warmup: int = 10
    eval_interval: int = 20
    train_windows: int = 100  # training windows the teacher scores (12,900 tokens at block 128)
    val_windows: int = 12  # validation windows (1,548 tokens)
    train_eval_windows: int = 8  # training windows whose loss the curves show
    seed: int = 1337
    export: bool = True

    def __post_init__(self):
        for name in (
            "steps",
            "batch_size",
            "block_size",
            "n_layer",
            "n_head",
            "n_embd",
            "top_k",
            "eval_interval",
            "train_windows",
            "val_windows",
            "train_eval_windows",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not 0.5 <= self.temperature <= 20:
            raise ValueError(f"temperature must be in [0.5, 20], got {self.temperature!r}.")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}.")
        if self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2:
            raise ValueError(f"n_embd {self.n_embd} must split into {self.n_head} heads of even size (RoPE).")

    def to_dict(self) -> dict:
        return asdict(self)

    def train_settings(self) -> sg.TrainSettings:
        """The scratch page's schedule: linear warm-up, cosine decay to a tenth of the peak."""
        return sg.TrainSettings(
            max_iters=self.steps,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            min_lr=self.learning_rate / 10,
            warmup_iters=min(self.warmup, self.steps),
            lr_decay_iters=self.steps,
            eval_interval=self.eval_interval,
            sample_interval=0,
            seed=self.seed,
        )


@dataclass
class DistillResult:
    settings: DistillSettings
    history: list[dict]  # the "eval" events: student, step, train_loss, val_loss
    teacher_val_loss: float
    teacher_train_loss: float
    val_loss: dict[str, float]  # student -> final validation cross-entropy
    params: int  # one student's parameters (the tied head counted once)
    teacher_seconds: float
    teacher_cached: bool
    train_seconds: dict[str, float] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)  # student -> exported transformers folder
    steps: int = 0
    stopped: bool = False
    students: dict = field(default_factory=dict, repr=False)  # student -> its GPT (a page may drop them)

    @property
    def kd_val_loss(self) -> float:
        return self.val_loss["kd"]

    @property
    def hard_val_loss(self) -> float:
        return self.val_loss["hard"]

    def curve(self, student: str) -> list[dict]:
        return [e for e in self.history if e["student"] == student]


def student_folder(student: str) -> Path:
    """Where the job exports a student: the scratch page's runs folder (a local model id by path)."""
    return sg.runs_dir() / FOLDERS[student]


def new_student(settings: DistillSettings, vocab_size: int) -> sg.GPT:
    config = sg.GPTConfig(
        vocab_size=vocab_size,
        block_size=settings.block_size,
        n_layer=settings.n_layer,
        n_head=settings.n_head,
        n_embd=settings.n_embd,
        positions="rope",
    )
    return sg.GPT(config, torch.Generator().manual_seed(settings.seed))


@torch.no_grad()
def window_loss(model: sg.GPT, rows: torch.Tensor) -> float:
    """Mean next-token cross-entropy over every target of every window (nats per token)."""
    was = model.training
    model.eval()
    total = 0.0
    for i in range(0, len(rows), EVAL_BATCH):
        x = rows[i : i + EVAL_BATCH]
        with shared_scheduler().turn(LABEL):
            logits, _ = model(x[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum").item()
    model.train(was)
    return total / (rows.shape[0] * (rows.shape[1] - 1))


def student_step(model, optimizer, student: str, x, rows, targets: TeacherTargets, s: DistillSettings, lr: float):
    """One optimizer step of one student on the windows `x` (rows = their indices in the teacher cache)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    with shared_scheduler().turn(LABEL):
        logits, _ = model(x[:, :-1])
        y = x[:, 1:]
        if student == "hard":
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        else:
            t = s.temperature
            loss, _, _ = fused_kd_loss(
                logits, targets.top_logp(t)[rows], targets.top_idx[rows], targets.rest(t)[rows], y, t, s.alpha
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return loss.item()


def export_student(model: sg.GPT, tokenizer, folder: Path, meta: dict) -> Path:
    """A transformers folder (GPT-NeoX weights, SmolLM2's tokenizer files, distill.json), written atomically."""

    def write(tmp: Path) -> None:
        sg.to_transformers(model).save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "distill.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    return sg.write_folder(folder, write)


def distill_job(ctx, settings: DistillSettings | None = None, loaded=None) -> DistillResult | None:
    """Background job (backends/core/jobs.py): teacher targets (events kind="teacher"), then both
    students step by step (kind="step": student, step, loss; kind="eval": student, step, train_loss,
    val_loss), then the export (kind="end"). `loaded` defaults to the shared cache's SmolLM2.
    Returns None when stopped before training; a stopped run keeps its curves but exports nothing."""
    s = settings or DistillSettings()
    if loaded is None:
        from backends.models.cache import shared_cache

        loaded = shared_cache().get(TEACHER)
    tok = loaded.tokenizer
    train, val = windows(tok, s.block_size, s.train_windows, s.val_windows)
    temps = tuple(sorted({*TEMPERATURES, float(s.temperature)}))
    targets = teacher_targets(ctx, loaded, train, val, min(s.top_k, len(tok)), temps, progress=(0.0, 0.25))
    if targets is None:
        return None
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    ts = s.train_settings()
    models = {name: new_student(s, vocab) for name in STUDENTS}  # the same initial weights
    optimizers = {name: sg.make_optimizer(m, ts) for name, m in models.items()}
    eval_rows = train[: min(s.train_eval_windows, len(train))]
    history: list[dict] = []
    seconds = dict.fromkeys(STUDENTS, 0.0)

    def evaluate(step: int) -> None:
        for name, model in models.items():
            event = {
                "kind": "eval",
                "student": name,
                "step": step,
                "train_loss": window_loss(model, eval_rows),
                "val_loss": window_loss(model, val),
            }
            history.append(event)
            ctx.report(None, f"{name} step {step}: val {event['val_loss']:.3f}", **event)

    evaluate(0)
    gen = torch.Generator().manual_seed(s.seed + 1)
    order: list[int] = []
    step = 0
    while step < s.steps and not ctx.stopped:
        if len(order) < s.batch_size:  # epochs of a random order, drawn once for both students
            order += torch.randperm(len(train), generator=gen).tolist()
        rows, order = torch.tensor(order[: s.batch_size]), order[s.batch_size :]
        x, lr = train[rows], sg.lr_at(step, ts)
        losses = {}
        for name in STUDENTS:
            t0 = time.perf_counter()
            losses[name] = student_step(models[name], optimizers[name], name, x, rows, targets, s, lr)
            seconds[name] += time.perf_counter() - t0
        step += 1
        ctx.report(
            0.25 + 0.7 * step / s.steps,
            f"step {step}/{s.steps}",
            kind="step",
            step=step,
            lr=lr,
            kd_loss=losses["kd"],
            hard_loss=losses["hard"],
        )
        if step % s.eval_interval == 0 or step == s.steps:
            evaluate(step)
    if not history or history[-1]["step"] != step:
        evaluate(step)
    final = {e["student"]: e["val_loss"] for e in history if e["step"] == step}
    result = DistillResult(
        settings=s,
        history=history,
        teacher_val_loss=targets.val_ce,
        teacher_train_loss=targets.train_ce,
        val_loss=final,
        params=models["kd"].num_params(),
        teacher_seconds=targets.seconds,
        teacher_cached=targets.cached,
        train_seconds=seconds,
        steps=step,
        stopped=ctx.stopped,
        students={name: model.eval() for name, model in models.items()},
    )
    if s.export and not result.stopped:
        for name, model in models.items():
            meta = {
                "student": name,
                "teacher": TEACHER,
                "settings": s.to_dict(),
                "steps": step,
                "val_loss": final[name],
                "teacher_val_loss": targets.val_ce,
            }
            result.folders[name] = str(export_student(model, tok, student_folder(name), meta))
    ctx.report(
        1.0 if not result.stopped else None,
        "done",
        kind="end",
        kd_val_loss=final["kd"],
        hard_val_loss=final["hard"],
        teacher_val_loss=targets.val_ce,
        stopped=result.stopped,
    )
    return result
