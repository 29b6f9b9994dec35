"""Quantization-aware training (QAT) of the demo GPT with torchao 0.18, against post-training
quantization (PTQ) of the same fp32 model at the same bits and group size.

PTQ rounds the trained weights once: torchao's `IntxWeightOnlyConfig` (symmetric, one float32 scale
per group of `group_size` weights of a row, int4 in [-8, 7] or int8 in [-128, 127]) on every
nn.Linear, the tied output head included (the input embedding stays fp32, as in the table's torchao
rows). QAT fine-tunes a copy whose linear layers compute with fake-quantized weights
(`QATConfig(base, step="prepare")`: each forward rounds the float weights to that same grid and back,
the backward passes gradients straight through the rounding), so training moves the float weights
to where their rounded values predict well; `QATConfig(base, step="convert")` then applies the PTQ
config to the trained weights: real int4 / int8 weights, the rounding training saw.

The training target (`loss`): "kd" (default), the KL divergence from the fp32 model's next-character
distribution on the same batch (distillation, as LLM-QAT does), zero for the fp32 model itself, so
training moves weights only to undo the rounding; or "ce", the corpus' next characters, as the model
was trained, which also keeps teaching it Shakespeare: its KLD to the original then measures that
drift too (100 steps at 1e-4: 0.020, sixteen times PTQ int4's 0.0012), and QAT is compared with the
control, not with PTQ.

The control: the fp32 model fine-tuned the same steps on the same batches without fake quantization,
then PTQ. Its gap to QAT is what training *through* the rounding buys, not just more training.

Data: the demo GPT's own corpus (Shakespeare, the scratch page's split: its training part); scoring:
q.quality on the held-out text (Milton) in windows of 64 (its positions), perplexity, KLD and top-1
against the original fp32 model. Each training step is one scheduler turn.

Measured (defaults: 100 steps, lr 3e-5, group 32, 2,048 tokens, two cores): KLD int4 PTQ 1.24e-3,
fine-tune + PTQ 1.09e-3, QAT 9.4e-5; int8 PTQ 3.8e-6, fine-tune + PTQ 4.4e-6, QAT 5.7e-7.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from backends import quantization as q
from backends import scratch_gpt as sg
from backends.core.scheduler import shared_scheduler
from backends.models.cache import shared_cache

LABEL = "compression-qat"
CORPUS = "shakespeare"
METHODS = ("fp32", "ptq", "finetune", "finetune-ptq", "qat")  # row order
LOSSES = ("kd", "ce")
ADAM_EPS = 1e-6


@dataclass(frozen=True)
class QATSettings:
    bits: tuple[int, ...] = (4, 8)
    group_size: int = 32
    steps: int = 100
    batch_size: int = 16
    learning_rate: float = 3e-5  # the demo GPT finished its own training at 3e-4
    ppl_tokens: int = 2048  # of the held-out text, windows of 64
    control: bool = True  # also the fp32 fine-tune + PTQ row
    loss: str = "kd"  # "kd": KL to the fp32 model's next-token distribution; "ce": the corpus' next characters
    seed: int = 0

    def validate(self) -> QATSettings:
        if not self.bits or any(b not in (2, 3, 4, 5, 6, 7, 8) for b in self.bits):
            raise ValueError(f"bits must be among 2..8, got {self.bits}.")
        if self.group_size not in (16, 32, 64, 128, 256):
            raise ValueError(f"group_size must be 16, 32, 64, 128 or 256, got {self.group_size}.")
        if not 1 <= self.steps <= 5000 or not 1 <= self.batch_size <= 256:
            raise ValueError(f"steps {self.steps} (1..5000) or batch_size {self.batch_size} (1..256) out of range.")
        if not 0 < self.learning_rate <= 0.1 or not 128 <= self.ppl_tokens <= 16_384:
            raise ValueError("learning_rate must be in (0, 0.1] and ppl_tokens in 128..16384.")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}.")
        return self


@dataclass
class QATRow:
    method: str  # one of METHODS
    bits: int  # 32 for the float rows
    perplexity: float
    kld: float
    top1: float
    tokens: int
    on_grid: bool | None = None  # every quantized weight an integer of the grid times its group's scale


@dataclass
class QATReport:
    settings: QATSettings
    model: str
    rows: list[QATRow] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict)  # phase -> loss per step
    fake_vs_real: dict[int, float] = field(default_factory=dict)  # bits -> max |logit| gap fake-quant vs converted
    seconds: float = 0.0
    stopped: bool = False

    def row(self, method: str, bits: int) -> QATRow | None:
        return next((r for r in self.rows if r.method == method and r.bits == bits), None)

    def gains(self) -> dict[int, dict[str, float]]:
        """bits -> KLD of PTQ, fine-tune + PTQ and QAT, where measured."""
        out = {}
        for b in self.settings.bits:
            out[b] = {m: r.kld for m in ("ptq", "finetune-ptq", "qat") if (r := self.row(m, b)) is not None}
        return out

    def to_dict(self) -> dict:
        return {**asdict(self), "settings": asdict(self.settings)}


# --- torchao: the PTQ config, the QAT prepare / convert, the fake quantizer ------------------------


def ptq_config(bits: int, group_size: int):
    """torchao's post-training config: symmetric int`bits` weights, one scale per `group_size` weights."""
    from torchao.quantization import IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerGroup

    return IntxWeightOnlyConfig(weight_dtype=getattr(torch, f"int{bits}"), granularity=PerGroup(group_size))


def ptq(model: torch.nn.Module, bits: int, group_size: int) -> torch.nn.Module:
    """A quantized copy (`model` is left as it is)."""
    from torchao.quantization import quantize_

    out = copy.deepcopy(model).eval()
    quantize_(out, ptq_config(bits, group_size))
    return out


def prepare(model: torch.nn.Module, bits: int, group_size: int) -> torch.nn.Module:
    """In place: every nn.Linear becomes torchao's FakeQuantizedLinear for the PTQ config's grid."""
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig

    quantize_(model, QATConfig(ptq_config(bits, group_size), step="prepare"))
    return model


def convert(model: torch.nn.Module, bits: int, group_size: int) -> torch.nn.Module:
    """In place: fake-quantized layers back to nn.Linear, then the PTQ config on the trained weights."""
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig

    quantize_(model, QATConfig(ptq_config(bits, group_size), step="convert"))
    return model.eval()


def fake_quantize(weight: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """What QAT's forward computes with in place of a (out, in) weight: torchao's weight fake quantizer,
    the one `prepare` installs, applied to `weight`."""
    layer = torch.nn.Sequential(torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False))
    prepare(layer, bits, group_size)
    with torch.no_grad():
        return layer[0].weight_fake_quantizer(weight)


def quantized_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """name -> torchao quantized weight (IntxUnpackedToInt8Tensor: qdata, scale, zero_point)."""
    return {
        name: m.weight
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and hasattr(m.weight, "qdata")
    }


def on_grid(model: torch.nn.Module, bits: int) -> bool:
    """Every quantized linear weight holds integers in [-2^(b-1), 2^(b-1)-1], zero points 0, and
    dequantizes to exactly integer x its group's scale."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    found = quantized_weights(model)
    for w in found.values():
        qd, scale = w.qdata, w.scale
        group = qd.shape[1] // scale.shape[1]
        if qd.dtype != torch.int8 or int(qd.min()) < lo or int(qd.max()) > hi or bool(w.zero_point.any()):
            return False
        expected = (qd.float().view(qd.shape[0], -1, group) * scale[..., None]).view(qd.shape)
        if not torch.equal(w.dequantize(), expected):
            return False
    return bool(found)


# --- training ----------------------------------------------------------------------------------


def corpus_ids(tokenizer, block: int) -> torch.Tensor:
    """The training part of the corpus the demo GPT learnt from, in the model tokenizer's ids."""
    prepared = sg.prepare(CORPUS, sg.load_corpus(CORPUS), block)
    sample = sg.load_corpus(CORPUS)[:4000]
    if prepared.tokenizer.encode(sample) != tokenizer(sample, add_special_tokens=False)["input_ids"]:
        raise ValueError("The model's tokenizer is not the corpus' character tokenizer.")
    return prepared.train


def lr_at(step: int, steps: int, peak: float) -> float:
    """Cosine from `peak` to peak/10 over the run (the same schedule for every fine-tune)."""
    return peak * (0.1 + 0.45 * (1 + math.cos(math.pi * step / max(1, steps))))


def step_loss(logits: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor | None) -> torch.Tensor:
    """Mean next-token cross-entropy on the corpus (`teacher_logits` None), else the mean over tokens of
    KL(teacher || model), the teacher the fp32 model on the same batch."""
    flat = logits.reshape(-1, logits.shape[-1])
    if teacher_logits is None:
        return F.cross_entropy(flat, y.reshape(-1))
    target = F.log_softmax(teacher_logits.reshape(-1, logits.shape[-1]).float(), dim=-1)
    return F.kl_div(F.log_softmax(flat, dim=-1), target, log_target=True, reduction="batchmean")


def fine_tune(
    model, data: torch.Tensor, settings: QATSettings, teacher=None, on_step=None, should_stop=lambda: False
) -> list[float]:
    """AdamW on `step_loss` (KL to `teacher` when given); the batches depend on the seed only (every
    run sees the same). Returns the loss of each step."""
    block = model.config.max_position_embeddings
    gen = torch.Generator().manual_seed(settings.seed)
    model.requires_grad_(True)  # the cache hands out frozen models; this is a private copy
    # eps 1e-6, not 1e-8: the KL of a model to itself is 0, yet its float32 gradient is ~3e-9 (probabilities
    # that do not sum to exactly 1); Adam's m / (sqrt(v) + eps) made that a step of 0.2 x lr with eps 1e-8
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.0, eps=ADAM_EPS)
    model.train()
    losses = []
    for step in range(settings.steps):
        if should_stop():
            break
        x, y = sg.get_batch(data, block, settings.batch_size, gen)
        with shared_scheduler().turn(LABEL):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, settings.steps, settings.learning_rate)
            teacher_logits = None
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = teacher(input_ids=x, use_cache=False).logits
            loss = step_loss(model(input_ids=x, use_cache=False).logits, y, teacher_logits)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step + 1, losses[-1])
    model.requires_grad_(False).eval()
    return losses


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Scorer:
    """The held-out slice, its windows and fp32's answers on it (filled by the first `score`)."""

    ids: torch.Tensor
    spans: list
    reference: q.Reference

    @classmethod
    def of(cls, tokenizer, ppl_tokens: int, window: int) -> Scorer:
        ids = q.token_slice(tokenizer, ppl_tokens)
        spans = q.windows(ids.shape[1], window, window)
        return cls(ids, spans, q.Reference(kld_tokens=ids.shape[1]))

    def score(self, model, fill: bool = False, should_stop=lambda: False):
        got = q.quality(q.TorchRunner(model), self.ids, self.spans, self.reference, fill=fill, should_stop=should_stop)
        if got is None:
            return None
        return got.perplexity, (0.0 if fill else got.kld), (1.0 if fill else got.top1), got.tokens


def logits_gap(a, b, ids: torch.Tensor) -> float:
    with torch.inference_mode():
        return float((a(input_ids=ids).logits - b(input_ids=ids).logits).abs().max())


# --- the job --------------------------------------------------------------------------------------


def load_demo_gpt():
    """The demo GPT (trained once, real fp32 weights) from the shared cache: (model, tokenizer, name)."""
    folder = q.train_demo_gpt()
    loaded = shared_cache().get(str(folder))
    return loaded.model, loaded.tokenizer, folder.name


def qat_job(ctx, settings: QATSettings | None = None) -> QATReport:
    """PTQ, fine-tune + PTQ (the control) and QAT of the demo GPT at each of `settings.bits`.

    Events: kind="phase" (phase), kind="step" (phase, step, loss), kind="row" (a QATRow's fields).
    The cached model is never changed: every method works on its own copy. Stop: ends after the
    current step or window with the rows so far (stopped=True)."""
    s = (settings or QATSettings()).validate()
    started = time.perf_counter()
    base, tokenizer, name = load_demo_gpt()
    report = QATReport(s, name)
    block = base.config.max_position_embeddings
    trainings = len(s.bits) + int(s.control)
    total = trainings * s.steps + 1 + len(s.bits) * (2 + int(s.control)) + int(s.control)
    done = [0]

    def tick(message: str, **data):
        done[0] += 1
        ctx.report(min(done[0] / total, 1.0), message, **data)

    def add(model, method: str, bits: int, grid: bool | None = None) -> bool:
        got = scorer.score(model, fill=method == "fp32", should_stop=lambda: ctx.stopped)
        if got is None:
            return False
        row = QATRow(method, bits, *got, on_grid=grid)
        report.rows.append(row)
        tick(f"{method}{f' int{bits}' if bits < 32 else ''}: KLD {row.kld:.2e}", kind="row", **asdict(row))
        return True

    def train(model, phase: str) -> None:
        ctx.report(done[0] / total, phase, kind="phase", phase=phase)

        def on_step(step, loss):
            tick(f"{phase} step {step}/{s.steps}: loss {loss:.3f}", kind="step", phase=phase, step=step, loss=loss)

        teacher = fp32 if s.loss == "kd" else None
        report.curves[phase] = fine_tune(model, data, s, teacher, on_step, lambda: ctx.stopped)

    def finish() -> QATReport:
        report.seconds = time.perf_counter() - started
        report.stopped = ctx.stopped
        return report

    scorer = Scorer.of(tokenizer, s.ppl_tokens, block)
    data = corpus_ids(tokenizer, block)
    fp32 = copy.deepcopy(base).float().eval()
    if not add(fp32, "fp32", 32):
        return finish()
    for bits in s.bits:
        with shared_scheduler().turn(LABEL):
            model = ptq(fp32, bits, s.group_size)
        if not add(model, "ptq", bits, on_grid(model, bits)):
            return finish()
    if s.control:
        tuned = copy.deepcopy(fp32)
        train(tuned, "finetune")
        if ctx.stopped or not add(tuned, "finetune", 32):
            return finish()
        for bits in s.bits:
            with shared_scheduler().turn(LABEL):
                model = ptq(tuned, bits, s.group_size)
            if not add(model, "finetune-ptq", bits, on_grid(model, bits)):
                return finish()
        del tuned
    for bits in s.bits:
        model = prepare(copy.deepcopy(fp32), bits, s.group_size)
        train(model, f"qat-int{bits}")
        if ctx.stopped:
            return finish()
        fake = copy.deepcopy(model).eval()
        with shared_scheduler().turn(LABEL):
            convert(model, bits, s.group_size)
            report.fake_vs_real[bits] = logits_gap(fake, model, scorer.ids[:, :block])
        del fake
        if not add(model, "qat", bits, on_grid(model, bits)):
            return finish()
    return finish()


def summary(report: QATReport) -> dict:
    """The figures bench/compression.py prints: `qat_kld`, `ptq_kld` (int4, the issue's done-when) and
    `<method>_kld_int<bits>` for every method and bits measured."""
    out = {}
    for bits, kld in report.gains().items():
        for method, value in kld.items():
            out[f"{method.replace('-', '_')}_kld_int{bits}"] = value
            if bits == 4 and method in ("qat", "ptq"):
                out[f"{method}_kld"] = value
    return out
