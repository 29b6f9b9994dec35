"""DPO settings: a small frozen dataclass, its checks, and the same run written as a TRL 1.16 script.

The fast trainer (fast.py, train.py) takes these; the page builds them from its widgets.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from backends.alignment import dpo
from backends.core.settings import settings_from_dict

LOSS_TYPES = dpo.LOSS_TYPES
SUPPORTED_MODEL_TYPES = ("llama",)  # decoder layers that read only (hidden, mask, rotary): see fast.TopLayers


class SettingsError(ValueError):
    """DPO settings that cannot run; the message quotes the bad value and says what to use."""


class DataError(ValueError):
    """Preference pairs that cannot be trained on (none at all, or no response token left)."""


@dataclass(frozen=True)
class DpoSettings:
    beta: float = 0.1
    loss_type: str = "sigmoid"
    top_layers: int = 6  # K: LoRA on the top K decoder layers; the lower ones are cached
    rank: int = 8
    alpha: int = 16
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    learning_rate: float = 1.5e-4
    batch_pairs: int = 4
    epochs: float = 2.0
    max_steps: int = 0  # > 0: train this many steps instead of `epochs`
    max_length: int = 256
    seed: int = 0
    probe_every: int = 10  # steps between KL measurements (and the last step); 0: never
    probe_pairs: int = 4  # chosen responses of this many pairs make the KL probe set
    max_grad_norm: float = 1.0  # TRL's default; 0: no clipping

    def replace(self, **changes) -> DpoSettings:
        if "target_modules" in changes:
            changes["target_modules"] = tuple(changes["target_modules"])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d

    @classmethod
    def from_dict(cls, values: dict) -> DpoSettings:
        """Settings saved by to_dict(); unknown keys or wrong types are refused with their names."""
        return settings_from_dict(cls, values, SettingsError)

    def total_steps(self, n_pairs: int) -> int:
        if self.max_steps > 0:
            return self.max_steps
        return max(1, math.ceil(self.epochs * n_pairs / self.batch_pairs))

    def validate(self, model: torch.nn.Module | None = None) -> DpoSettings:
        """Raise SettingsError naming the first bad value; with `model`, also check layers and modules."""

        def bad(name, value, rule):
            raise SettingsError(f"{name} = {value!r} is not allowed: {rule}.")

        def number(name):
            value = getattr(self, name)
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        for name in ("beta", "learning_rate", "epochs", "max_grad_norm", "alpha"):
            if not number(name):
                bad(name, getattr(self, name), "use a finite number")
        for name in ("top_layers", "rank", "batch_pairs", "max_length", "probe_pairs"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                bad(name, getattr(self, name), "use a whole number")
            if getattr(self, name) < 1:
                bad(name, getattr(self, name), "use a whole number of at least 1")
        if self.beta <= 0:
            bad("beta", self.beta, "use a value above 0 (0.1 is usual; larger keeps the policy nearer the reference)")
        if self.loss_type not in LOSS_TYPES:
            bad("loss_type", self.loss_type, f"use one of {', '.join(LOSS_TYPES)}")
        if self.alpha <= 0:
            bad("alpha", self.alpha, "use a value above 0 (usually twice the rank)")
        if not 0 < self.learning_rate <= 0.1:
            bad("learning_rate", self.learning_rate, "use a value in (0, 0.1]; LoRA DPO trains at 1e-5 .. 1e-3")
        if not isinstance(self.max_steps, int) or self.max_steps < 0 or self.max_steps > 100_000:
            bad("max_steps", self.max_steps, "use 0 (train for `epochs`) or 1 .. 100000 steps")
        if self.max_steps == 0 and not 0 < self.epochs <= 1000:
            bad("epochs", self.epochs, "use a value in (0, 1000], or set max_steps")
        if self.max_length < 8:
            bad("max_length", self.max_length, "use at least 8 tokens (a prompt and a reply must fit)")
        if not isinstance(self.probe_every, int) or self.probe_every < 0:
            bad("probe_every", self.probe_every, "use 0 (no KL probe) or a number of steps")
        if self.max_grad_norm < 0:
            bad("max_grad_norm", self.max_grad_norm, "use 0 (no clipping) or more")
        if not isinstance(self.seed, int):
            bad("seed", self.seed, "use a whole number")
        if not self.target_modules:
            bad("target_modules", list(self.target_modules), "pick at least one linear layer to adapt")
        if model is not None:
            model_type = getattr(model.config, "model_type", None)
            if model_type not in SUPPORTED_MODEL_TYPES:
                bad(
                    "model",
                    model_type,
                    f"fast DPO runs the top layers on their own, written for {', '.join(SUPPORTED_MODEL_TYPES)} "
                    "models (SmolLM2); use dpo.batch_loss for other models",
                )
            n_layers = model.config.num_hidden_layers
            if self.top_layers > n_layers:
                bad("top_layers", self.top_layers, f"this model has {n_layers} layers: use 1 .. {n_layers}")
            from backends.lora import linear_layers

            layers = linear_layers(model)
            unknown = [m for m in self.target_modules if m not in layers]
            if unknown:
                bad("target_modules", unknown, f"this model's linear layers are {', '.join(layers)}")
            smallest = min(min(shape) for m in self.target_modules for shape in layers[m])
            if self.rank > smallest:
                bad("rank", self.rank, f"it must not exceed the smallest targeted layer dimension ({smallest})")
        return self

    def snippet(self, model_id: str, data_file: str = "pairs.jsonl") -> str:
        """The same run as a TRL 1.16 script (DPOConfig + DPOTrainer + peft LoraConfig).

        TRL computes the same loss; it has the cached reference (`precompute_ref_log_probs`) but
        not the cached lower layers or the response-only head, so it is slower, not different."""
        s = self
        length = f"max_steps={s.max_steps}," if s.max_steps > 0 else f"num_train_epochs={s.epochs},"
        return f'''import json
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

model_id = "{model_id}"
tokenizer = AutoTokenizer.from_pretrained(model_id)
model = AutoModelForCausalLM.from_pretrained(model_id, dtype="float32")
layers = model.config.num_hidden_layers
# One preference pair per line: {{"prompt": [...], "chosen": [...], "rejected": [...]}}
rows = [json.loads(line) for line in open("{data_file}", encoding="utf-8")]

peft_config = LoraConfig(
    r={s.rank}, lora_alpha={s.alpha}, lora_dropout=0.0,
    target_modules={list(s.target_modules)!r},
    layers_to_transform=list(range(layers - {s.top_layers}, layers)),  # the top {s.top_layers} layers
    task_type="CAUSAL_LM",
)
args = DPOConfig(
    output_dir="dpo-run",
    beta={s.beta},
    loss_type=["{s.loss_type}"],
    learning_rate={s.learning_rate},
    lr_scheduler_type="linear",
    per_device_train_batch_size={s.batch_pairs},
    {length}
    max_length={s.max_length},
    max_grad_norm={s.max_grad_norm},
    precompute_ref_log_probs=True,  # the reference (adapters off) scored once per pair
    seed={s.seed},
    logging_steps=1,
    report_to="none",
)
trainer = DPOTrainer(
    model=model, args=args, train_dataset=Dataset.from_list(rows),
    processing_class=tokenizer, peft_config=peft_config,
)
trainer.train()
trainer.save_model("dpo-adapter")
'''
