"""LoRA and training settings: one frozen config, checked against the real model before a run starts."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from dataclasses import dataclass

import torch

from backends.core.settings import settings_from_dict

SCHEDULES = ("constant", "linear", "cosine")
QUANTIZATION = ("none", "8bit", "4bit")


class SettingsError(ValueError):
    """Settings that cannot train this model; the message quotes the value and says what to use."""


LOSS_ON = ("response", "all")  # which tokens of a chat carry loss: the replies only, or every token


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    warmup_steps: int = 4
    max_steps: int = 30
    epochs: float = 0.0  # > 0: the number of steps comes from the epochs instead of max_steps
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 160
    seed: int = 0
    eval_fraction: float = 0.1
    eval_every: int = 10  # 0: no evaluation
    sample_every: int = 15  # 0: no sample generations
    sample_tokens: int = 40
    early_stopping_patience: int = 0  # evaluations without a better eval loss before stopping; 0: off
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    quantization: str = "none"
    loss_on: str = "response"  # "response": the replies only (prompt labels -100); "all": every token

    def replace(self, **changes) -> LoraSettings:
        if "target_modules" in changes:
            changes["target_modules"] = tuple(changes["target_modules"])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d

    @classmethod
    def from_dict(cls, values: dict) -> LoraSettings:
        """Settings saved by to_dict(); unknown keys or wrong types are refused with their names."""
        return settings_from_dict(cls, values, SettingsError)

    def total_steps(self, n_train: int) -> int:
        if self.epochs > 0:
            return max(1, math.ceil(self.epochs * n_train / (self.batch_size * self.grad_accum)))
        return self.max_steps

    def validate(self, model: torch.nn.Module | None = None) -> LoraSettings:
        def bad(name, value, rule):
            raise SettingsError(f"{name} = {value!r} is not allowed: {rule}.")

        for name in ("rank", "alpha", "batch_size", "grad_accum", "max_length"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                bad(name, getattr(self, name), "use a whole number of at least 1")
        if self.max_length < 8:
            bad("max_length", self.max_length, "use at least 8 tokens (a prompt and a reply must fit)")
        if not 0 <= self.dropout < 1:
            bad("dropout", self.dropout, "use a value in [0, 1)")
        if not 0 < self.learning_rate <= 0.1:
            bad("learning_rate", self.learning_rate, "use a value in (0, 0.1]; LoRA usually trains at 1e-4 .. 1e-3")
        if self.schedule not in SCHEDULES:
            bad("schedule", self.schedule, f"use one of {', '.join(SCHEDULES)}")
        if self.epochs < 0 or (self.epochs == 0 and self.max_steps < 1):
            bad(
                "max_steps" if self.epochs == 0 else "epochs",
                self.max_steps if self.epochs == 0 else self.epochs,
                "train for at least one step",
            )
        if self.max_steps > 100_000 or self.epochs > 1000:
            bad("max_steps", self.max_steps, "use at most 100000 steps")
        if self.warmup_steps < 0:
            bad("warmup_steps", self.warmup_steps, "use 0 or more")
        if not 0 <= self.eval_fraction < 1:
            bad("eval_fraction", self.eval_fraction, "use a share in [0, 1)")
        for name in ("eval_every", "sample_every", "early_stopping_patience", "sample_tokens"):
            if getattr(self, name) < 0:
                bad(name, getattr(self, name), "use 0 (off) or more")
        if self.early_stopping_patience and (not self.eval_every or not self.eval_fraction):
            bad(
                "early_stopping_patience",
                self.early_stopping_patience,
                "early stopping watches the eval loss: set eval_every and an eval share above 0",
            )
        if self.loss_on not in LOSS_ON:
            bad("loss_on", self.loss_on, f"use one of {', '.join(LOSS_ON)}")
        if self.quantization not in QUANTIZATION:
            bad("quantization", self.quantization, f"use one of {', '.join(QUANTIZATION)}")
        if self.quantization != "none":
            ok, reason = quantization_available()
            if not ok:
                bad("quantization", self.quantization, reason)
        if not self.target_modules:
            bad("target_modules", list(self.target_modules), "pick at least one linear layer to adapt")
        if model is not None:
            layers = linear_layers(model)
            unknown = [m for m in self.target_modules if m not in layers]
            if unknown:
                bad("target_modules", unknown, f"this model's linear layers are {', '.join(layers)}")
            smallest = min(min(shape) for m in self.target_modules for shape in layers[m])
            if self.rank > smallest:
                bad(
                    "rank",
                    self.rank,
                    f"it must not exceed the smallest targeted layer dimension ({smallest}); "
                    f"LoRA ranks are usually 4 .. 64",
                )
        return self


NO_BITSANDBYTES = "bitsandbytes is not installed (pip install bitsandbytes)"
NO_CUDA = "bitsandbytes quantization needs a CUDA GPU, and none is available"


def quantization_available() -> tuple[bool, str]:
    """QLoRA / 8-bit need bitsandbytes and a CUDA GPU; the reason (NO_BITSANDBYTES or NO_CUDA) is shown
    beside the disabled option (a page shows it in its own language)."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return False, NO_BITSANDBYTES
    if not torch.cuda.is_available():
        return False, NO_CUDA
    return True, ""


def linear_layers(model: torch.nn.Module) -> dict[str, list[tuple[int, int]]]:
    """Leaf names of the model's linear layers -> their (in, out) shapes.

    The LM head is left out: SmolLM2 ties it to the embeddings, and adapting a 49k-wide
    output is rarely what a small LoRA run wants.
    """
    found: dict[str, list[tuple[int, int]]] = {}
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("lm_head", "score"):
            continue
        if isinstance(module, torch.nn.Linear):
            found.setdefault(leaf, []).append((module.in_features, module.out_features))
        elif type(module).__name__ == "Conv1D":  # GPT-2's linear layers, stored transposed; peft adapts them too
            found.setdefault(leaf, []).append(tuple(module.weight.shape))
    return found


@dataclass(frozen=True)
class Plan:
    trainable_params: int
    total_params: int
    adapted_layers: int
    adapter_bytes: int
    weights_bytes: int
    optimizer_bytes: int
    activation_bytes: int

    @property
    def share(self) -> float:
        return self.trainable_params / self.total_params

    @property
    def memory_bytes(self) -> int:
        return self.weights_bytes + self.optimizer_bytes + self.activation_bytes


def plan(model: torch.nn.Module, settings: LoraSettings) -> Plan:
    """What a run will train and roughly what it costs, computed from the model without building it.

    Memory: the run's own copy of the weights, the adapter's weights + gradients + two AdamW
    moments (4 float32 copies), and activations kept for the backward pass (a rough
    per-token figure: ~34 hidden-size values per layer, plus the logits over the vocabulary).
    """
    layers = linear_layers(model)
    r = settings.rank
    trainable = sum(r * (i + o) for m in settings.target_modules for i, o in layers.get(m, []))
    adapted = sum(len(layers.get(m, [])) for m in settings.target_modules)
    total = sum(p.numel() for p in model.parameters()) + trainable
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    cfg = getattr(model, "config", None)
    hidden = getattr(cfg, "hidden_size", 768)
    n_layers = getattr(cfg, "num_hidden_layers", 12)
    vocab = getattr(cfg, "vocab_size", 32000)
    tokens = settings.batch_size * settings.max_length
    activations = tokens * (34 * hidden * n_layers + 3 * vocab) * 4
    return Plan(trainable, total, adapted, trainable * 4, weights, trainable * 4 * 4, activations)


def snippet(settings: LoraSettings, model_id: str, data_file: str = "data.jsonl") -> str:
    """The same run written as a plain peft + torch script a learner can copy."""
    s = settings
    steps = (
        f"{s.max_steps}"
        if s.epochs == 0
        else f"math.ceil({s.epochs} * len(train) / ({s.batch_size} * {s.grad_accum}))"
    )
    encode_comment, encode_labels = (
        ("train on the reply only: prompt tokens get label -100", "[-100] * start + ids[start:]")
        if s.loss_on == "response"
        else ("loss on every token, the prompt included", "list(ids)")
    )
    return f'''import json, math, random
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, get_scheduler

torch.manual_seed({s.seed})
tokenizer = AutoTokenizer.from_pretrained("{model_id}")
model = AutoModelForCausalLM.from_pretrained("{model_id}", dtype=torch.float32)
model = get_peft_model(model, LoraConfig(
    r={s.rank}, lora_alpha={s.alpha}, lora_dropout={s.dropout},
    target_modules={list(s.target_modules)!r}, task_type="CAUSAL_LM"))
model.print_trainable_parameters()

def encode(row):  # {encode_comment}
    chat = [{{"role": "user", "content": row["prompt"]}}]
    start = len(tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True)["input_ids"])
    chat.append({{"role": "assistant", "content": row["response"]}})
    ids = tokenizer.apply_chat_template(chat, return_dict=True)["input_ids"][:{s.max_length}]
    return ids, {encode_labels}

rows = [json.loads(line) for line in open("{data_file}", encoding="utf-8")]
random.Random({s.seed}).shuffle(rows)
train = [encode(r) for r in rows[:len(rows) - max(1, round({s.eval_fraction} * len(rows)))]]
steps = {steps}
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                              lr={s.learning_rate}, weight_decay={s.weight_decay})
scheduler = get_scheduler("{s.schedule}", optimizer, num_warmup_steps={s.warmup_steps}, num_training_steps=steps)
model.train()
for step in range(steps):
    for micro in range({s.grad_accum}):
        batch = random.sample(train, {s.batch_size})
        width = max(len(ids) for ids, _ in batch)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss / {s.grad_accum}
        loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), {s.max_grad_norm})
    optimizer.step(); scheduler.step(); optimizer.zero_grad()
    print(step, loss.item() * {s.grad_accum})
model.save_pretrained("my-adapter")  # adapter_config.json + adapter_model.safetensors
'''
