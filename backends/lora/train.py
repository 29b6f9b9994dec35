"""The LoRA training loop, run as a background job on the run's own copy of the model.

The cached base model is shared by every browser session, so a run deep-copies it and lets
peft freeze and wrap the copy; the cached one is never touched. Events (see backends/core/jobs.py)
carry `kind`: "step" (loss, lr, tokens/s, ETA), "eval" (eval loss) and "sample" (generations).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import get_scheduler

from backends.core.build_lock import MODEL_BUILD
from backends.core.scheduler import shared_scheduler
from backends.lora import data as D
from backends.lora.config import LoraSettings
from backends.models.loaders import frozen_view

SAMPLE_PROMPTS = (
    "What is the tallest mountain in the world?",
    "Give me a tip for sleeping better.",
    "What is 7 times 8?",
)
SCHEDULER_NAMES = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}


@dataclass(frozen=True)
class Prepared:
    """Everything checked and tokenized before a run starts, so a bad input fails here and not half-way."""

    settings: LoraSettings
    train: list
    eval: list
    total_steps: int
    pad_id: int


@dataclass
class TrainResult:
    model: PeftModel
    settings: LoraSettings
    base_name: str
    steps: list = field(default_factory=list)  # dicts: step, loss, lr, tokens_per_s
    evals: list = field(default_factory=list)  # dicts: step, eval_loss
    samples: list = field(default_factory=list)  # dicts: step, outputs [(prompt, text)]
    steps_done: int = 0
    total_steps: int = 0
    stop_reason: str = "done"  # done | stopped | early_stopping
    train_seconds: float = 0.0


def prepare(tokenizer, examples: list[D.Example], settings: LoraSettings, model=None) -> Prepared:
    settings.validate(model)
    if not examples:
        raise D.DataError("The dataset is empty: it holds no examples. Add at least one prompt/response pair.")
    train_ex, eval_ex = D.split(examples, settings.eval_fraction, settings.seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise D.DataError("The tokenizer has neither a pad nor an end-of-sequence token to pad batches with.")
    train = D.encode_all(tokenizer, train_ex, settings.max_length, settings.loss_on)
    # Evaluated on the replies only, whatever the training loss covers: runs with loss_on "all" and
    # "response" are then compared on the same tokens.
    held = D.encode_all(tokenizer, eval_ex, settings.max_length) if eval_ex else []
    return Prepared(settings, train, held, settings.total_steps(len(train)), pad_id)


def lora_copy(base: torch.nn.Module, settings: LoraSettings) -> PeftModel:
    """A private copy of the base model with LoRA layers injected; `base` itself is untouched.

    The copy's frozen weights are the cached model's own storage (`frozen_view`): thirty students
    training adapters hold one copy of the base weights, each only their own LoRA matrices.

    Built under MODEL_BUILD: a model load in another thread would otherwise swap torch's init
    functions under peft's new layers (backends/core/build_lock.py)."""
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        task_type="CAUSAL_LM",
    )
    with MODEL_BUILD:
        torch.manual_seed(settings.seed)
        model = quantized_copy(base, settings.quantization) if settings.quantization != "none" else frozen_view(base)
        return get_peft_model(model, config)


def quantized_copy(base: torch.nn.Module, mode: str) -> torch.nn.Module:
    """QLoRA / 8-bit: a fresh bitsandbytes load of the base model's own safetensors folder.

    Only reached when settings.validate() found bitsandbytes and a CUDA GPU.
    """
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quant = (
        BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
        if mode == "4bit"
        else BitsAndBytesConfig(load_in_8bit=True)
    )
    model = AutoModelForCausalLM.from_pretrained(
        base.config._name_or_path, quantization_config=quant, device_map={"": 0}, use_safetensors=True
    )
    return prepare_model_for_kbit_training(model)


def _on(batch: dict, model) -> dict:
    device = next(model.parameters()).device
    return {k: v.to(device) for k, v in batch.items()} if device.type != "cpu" else batch


def batches(train: list, batch_size: int, seed: int):
    """Endless batches: each epoch a fresh seeded shuffle, cut into batches of `batch_size`."""
    rng = random.Random(seed)
    while True:
        order = list(range(len(train)))
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            yield [train[i] for i in order[start : start + batch_size]]


@torch.no_grad()
def eval_loss(model, examples: list, batch_size: int, pad_id: int) -> float:
    """Mean loss per trained token over the held-out set (not a mean of batch means)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = _on(D.collate(examples[start : start + batch_size], pad_id), model)
        n = int((batch["labels"][:, 1:] != D.IGNORE).sum())
        with shared_scheduler().turn("lora"):
            total += model(**batch).loss.item() * n
        count += n
    model.train(was_training)
    return total / max(count, 1)


@torch.no_grad()
def generate(model, tokenizer, prompt: str, max_new_tokens: int = 40) -> str:
    """Greedy, so that base and LoRA answers differ only because of the weights."""
    was_training = model.training
    model.eval()
    ids = torch.tensor([D.prompt_ids(tokenizer, prompt)], device=next(model.parameters()).device)
    stepped = model.get_base_model() if hasattr(model, "get_base_model") else model  # the module called per token
    with shared_scheduler().turn_per_forward(stepped, "lora"):  # a private copy: hooks are ours to add
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        )
    model.train(was_training)
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()


def train_job(
    ctx,
    base_model: torch.nn.Module,
    tokenizer,
    prepared: Prepared,
    base_name: str,
    sample_prompts: tuple[str, ...] = SAMPLE_PROMPTS,
) -> TrainResult:
    """Background-job form of a LoRA run (see backends/core/jobs.py); returns the trained copy even when stopped."""
    s, total = prepared.settings, prepared.total_steps
    ctx.report(0.0, "copying the model", kind="setup")
    model = lora_copy(base_model, s)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=s.weight_decay)
    scheduler = get_scheduler(
        SCHEDULER_NAMES[s.schedule], optimizer, num_warmup_steps=s.warmup_steps, num_training_steps=total
    )
    result = TrainResult(model, s, base_name, total_steps=total)
    best, waited = math.inf, 0

    def evaluate(step: int) -> bool:
        """Eval loss (and early-stopping bookkeeping); True when patience has run out."""
        nonlocal best, waited
        if not prepared.eval:
            return False
        loss = eval_loss(model, prepared.eval, s.batch_size, prepared.pad_id)
        result.evals.append({"step": step, "eval_loss": loss})
        ctx.report(step / total, f"eval loss {loss:.4f}", kind="eval", step=step, eval_loss=loss)
        if loss < best - 1e-4:
            best, waited = loss, 0
        else:
            waited += 1
        return bool(s.early_stopping_patience) and waited >= s.early_stopping_patience

    def sample(step: int) -> None:
        outputs = [(p, generate(model, tokenizer, p, s.sample_tokens)) for p in sample_prompts]
        result.samples.append({"step": step, "outputs": outputs})
        ctx.report(step / total, "samples", kind="sample", step=step, outputs=outputs)

    if s.eval_every:
        evaluate(0)
    if s.sample_every:
        sample(0)
    feed = batches(prepared.train, s.batch_size, s.seed)
    started = time.perf_counter()
    for step in range(1, total + 1):
        if ctx.stopped:
            result.stop_reason = "stopped"
            break
        t0 = time.perf_counter()
        loss_sum, tokens = 0.0, 0
        with shared_scheduler().turn("lora"):  # one training step at a time: other sessions' tokens interleave
            for _ in range(s.grad_accum):
                batch = _on(D.collate(next(feed), prepared.pad_id), model)
                loss = model(**batch).loss / s.grad_accum
                loss.backward()
                loss_sum += loss.item()
                tokens += int(batch["attention_mask"].sum())
            if s.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        now = time.perf_counter()
        elapsed = now - started
        point = {"step": step, "loss": loss_sum, "lr": lr, "tokens_per_s": tokens / (now - t0)}
        result.steps.append(point)
        result.steps_done = step
        ctx.report(
            step / total,
            f"step {step}/{total} · loss {loss_sum:.4f}",
            kind="step",
            **point,
            elapsed_s=elapsed,
            eta_s=elapsed / step * (total - step),
        )
        if s.eval_every and step % s.eval_every == 0 and step < total and evaluate(step):
            result.stop_reason = "early_stopping"
            break
        if s.sample_every and step % s.sample_every == 0 and step < total:
            sample(step)
    result.train_seconds = time.perf_counter() - started
    if result.stop_reason == "done":  # a stopped run ends now; early stopping has just evaluated
        if s.eval_every:
            evaluate(result.steps_done)
        if s.sample_every:
            sample(result.steps_done)
    model.eval()
    ctx.report(
        1.0 if result.stop_reason == "done" else result.steps_done / total,
        f"{result.stop_reason} after {result.steps_done} steps",
        kind="end",
        stop_reason=result.stop_reason,
    )
    return result
