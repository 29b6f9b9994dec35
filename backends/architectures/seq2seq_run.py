"""Training the seq2seq (a task of couplets.py: "pinyin" or "couplet") as a background job, and
scoring it on the held-out poems.

Events carry `kind`: "step" (loss, lr), "eval" (train_loss, val_loss, samples: greedy outputs for a
few held-out inputs), "scoring" (while the held-out table is decoded), "end" (the scores). The job
returns a Seq2SeqRun; stop keeps the model trained so far (the held-out table is then left to the page).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import torch

from backends.core.scheduler import shared_scheduler
from backends.scratch_gpt import GPTConfig, Seq2Seq, TrainSettings, lr_at, make_optimizer

from .chrf import corpus_chrf, sentence_chrf
from .couplets import Vocab, make_batch, random_batch, task_pairs
from .seq2seq_decode import LABEL, beam_search, greedy, greedy_batch

# 1,660 training pairs are few: the validation loss is lowest after about 200 steps and rises after,
# while the training loss goes on falling. The run goes on to show that, and keeps the best weights.
SEQ2SEQ_CONFIG = GPTConfig(block_size=16, n_layer=2, n_head=4, n_embd=128, dropout=0.3)
SEQ2SEQ_SETTINGS = TrainSettings(
    max_iters=600,
    batch_size=64,
    learning_rate=1e-3,
    min_lr=1e-4,
    warmup_iters=50,
    lr_decay_iters=600,
    weight_decay=0.1,
    eval_interval=50,
    eval_iters=1,
    sample_interval=0,
    seed=1337,
)
# Pinyin: about 3,600 training half-lines whose outputs share 32 characters; the model has to learn each
# Chinese character's syllables from its few occurrences. For about 300 steps it writes plausible
# pinyin whatever the input; then cross-attention finds the alignment and the held-out loss falls.
PINYIN_CONFIG = GPTConfig(block_size=72, n_layer=2, n_head=4, n_embd=64, dropout=0.0)
PINYIN_SETTINGS = replace(
    SEQ2SEQ_SETTINGS,
    max_iters=1400,
    lr_decay_iters=1400,
    batch_size=32,
    learning_rate=3e-3,
    min_lr=3e-4,
    eval_interval=100,
)
TASK_DEFAULTS = {"pinyin": (PINYIN_CONFIG, PINYIN_SETTINGS), "couplet": (SEQ2SEQ_CONFIG, SEQ2SEQ_SETTINGS)}
DEFAULT_TASK = "pinyin"
DEFAULT_BEAM = 4
N_SAMPLES = 4  # held-out inputs decoded at each evaluation


@dataclass
class Seq2SeqRun:
    config: GPTConfig
    settings: TrainSettings
    vocab: Vocab
    model: Seq2Seq
    step: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    beam: int = DEFAULT_BEAM
    best_step: int = 0  # the weights kept: those of the evaluation with the lowest validation loss
    table: list[dict] | None = None  # held-out rows: src, ref, greedy, beam, their chrF
    scores: dict | None = None  # exact match and corpus chrF of greedy and beam

    @property
    def task(self) -> str:
        return self.vocab.task

    def evals(self) -> list[dict]:
        return [e for e in self.history if e["kind"] == "eval"]

    @property
    def val_loss(self) -> float | None:
        """Validation loss of the weights kept (the best evaluation)."""
        evals = [e for e in self.evals() if e["step"] == self.best_step]
        return evals[-1]["val_loss"] if evals else None


@torch.no_grad()
def pair_loss(model: Seq2Seq, vocab: Vocab, pairs) -> float:
    """Mean cross-entropy per target character (EOS included) over the pairs, teacher-forced, dropout off."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(pairs), 256):
        src, tgt, targets = make_batch(pairs[i : i + 256], vocab)
        n = int((targets != 0).sum())
        with shared_scheduler().turn(LABEL):
            total += model(src, tgt, targets)[1].item() * n
        count += n
    model.train(was_training)
    return total / count


def has_form(task: str, src: str, out: str) -> bool:
    """The output's form fits the input: one syllable per character (pinyin), the same length (couplet)."""
    return len(out.split()) == len(src) if task == "pinyin" else len(out) == len(src)


def score_held_out(model: Seq2Seq, vocab: Vocab, pairs, beam: int = DEFAULT_BEAM, stopped=lambda: False):
    """Greedy and beam outputs for every held-out pair, with sentence chrF; exact match, corpus chrF and
    how often the output has the input's form (`has_form`, which a model can learn)."""
    rows = []
    greedy_outputs = greedy_batch(model, vocab, [p.src for p in pairs])
    for p, g in zip(pairs, greedy_outputs):
        if stopped():
            break
        b = beam_search(model, vocab, p.src, beam)
        rows.append(
            {
                "src": p.src,
                "ref": p.tgt,
                "greedy": g.text,
                "greedy_logprob": g.logprob,
                "greedy_chrf": sentence_chrf(g.text, p.tgt),
                "beam": b.text,
                "beam_score": b.score,
                "beam_chrf": sentence_chrf(b.text, p.tgt),
            }
        )
    refs = [r["ref"] for r in rows]
    scores = {
        "n": len(rows),
        "beam_width": beam,
        "greedy_exact": sum(r["greedy"] == r["ref"] for r in rows) / max(1, len(rows)),
        "beam_exact": sum(r["beam"] == r["ref"] for r in rows) / max(1, len(rows)),
        "greedy_length": sum(has_form(vocab.task, r["src"], r["greedy"]) for r in rows) / max(1, len(rows)),
        "beam_length": sum(has_form(vocab.task, r["src"], r["beam"]) for r in rows) / max(1, len(rows)),
        "greedy_chrf": corpus_chrf([r["greedy"] for r in rows], refs) if rows else 0.0,
        "beam_chrf": corpus_chrf([r["beam"] for r in rows], refs) if rows else 0.0,
    }
    return rows, scores


def new_run(config: GPTConfig | None = None, settings: TrainSettings | None = None, task: str = DEFAULT_TASK):
    """A fresh model for the task; config and settings default to the task's (TASK_DEFAULTS)."""
    config, settings = config or TASK_DEFAULTS[task][0], settings or TASK_DEFAULTS[task][1]
    train, _ = task_pairs(task)
    vocab = Vocab.from_pairs(train, task)
    config = replace(config, vocab_size=vocab.size)
    model = Seq2Seq(config, torch.Generator().manual_seed(settings.seed))
    if task == "pinyin":  # outputs are pinyin letters: Chinese characters are never predicted
        model.only_output(vocab.output_ids(train))
    return Seq2SeqRun(config, settings, vocab, model)


def seq2seq_job(
    ctx,
    config: GPTConfig | None = None,
    settings: TrainSettings | None = None,
    beam: int = DEFAULT_BEAM,
    score: bool = True,
    task: str = DEFAULT_TASK,
) -> Seq2SeqRun:
    """Train from scratch on the task's pairs (seeded: the same settings give the same model), keep the
    weights of the evaluation with the lowest validation loss, then decode the held-out set greedily and
    with beam search of width `beam` (unless stopped or score=False). config and settings default to
    the task's."""
    run = new_run(config, settings, task)
    run.beam = beam
    s, model, vocab = run.settings, run.model, run.vocab
    train, held = task_pairs(task)
    probe = list(train[:: max(1, len(train) // 256)])  # a fixed slice of training pairs for train_loss
    optimizer = make_optimizer(model, s)
    gen = torch.Generator().manual_seed(s.seed + 1)
    best = {"val": float("inf"), "state": None}

    def event(kind, progress=None, message="", **data):
        data = {"kind": kind, "step": run.step, **data}
        run.history.append(data)
        ctx.report(progress, message, **data)

    def evaluate():
        val, tr = pair_loss(model, vocab, held), pair_loss(model, vocab, probe)
        samples = [{"src": p.src, "ref": p.tgt, "out": greedy(model, vocab, p.src).text} for p in held[:N_SAMPLES]]
        model.train()
        if val < best["val"]:  # early stopping: remember the best weights seen so far
            best.update(val=val, state={k: v.clone() for k, v in model.state_dict().items()})
            run.best_step = run.step
        event("eval", run.step / s.max_iters, f"step {run.step}: val {val:.3f}", train_loss=tr, val_loss=val,
              samples=samples)  # fmt: skip

    evaluate()
    model.train()
    started, cpu_started = time.perf_counter(), time.thread_time()
    while run.step < s.max_iters and not ctx.stopped:
        src, tgt, targets = random_batch(train, vocab, s.batch_size, gen)
        lr = lr_at(run.step, s)
        with shared_scheduler().turn(LABEL):
            for group in optimizer.param_groups:
                group["lr"] = lr
            _, loss = model(src, tgt, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
            optimizer.step()
        run.step += 1
        event("step", run.step / s.max_iters, f"step {run.step}/{s.max_iters}: loss {loss.item():.3f}",
              loss=loss.item(), lr=lr)  # fmt: skip
        if s.eval_interval and run.step % s.eval_interval == 0 and run.step < s.max_iters:
            evaluate()
    run.seconds += time.perf_counter() - started
    run.cpu_seconds += time.thread_time() - cpu_started
    if not run.evals() or run.evals()[-1]["step"] != run.step:
        evaluate()
    model.load_state_dict(best["state"])
    model.eval()
    if score and not ctx.stopped:
        event("scoring", None, "decoding the held-out set")
        rows, scores = score_held_out(model, vocab, held, beam, lambda: ctx.stopped)
        if not ctx.stopped:
            run.table, run.scores = rows, scores
    event("end", 1.0 if run.step >= s.max_iters else None, f"{run.step} steps", stopped=ctx.stopped,
          best_step=run.best_step, val_loss=run.val_loss, scores=run.scores)  # fmt: skip
    return run
