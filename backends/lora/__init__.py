"""LoRA fine-tuning: data (data.py), settings and plan (config.py), the training job (train.py),
and adapters: save, load, compare, merge (adapters.py).

Notes (how it works, what is left out, measured figures): docs/lora.md.
"""

# The public API other topics use (backends.experiments): settings, the plan of what trains, a LoRA copy.
from backends.lora.config import LoraSettings, plan
from backends.lora.data import collate, encode_example, shipped_examples
from backends.lora.train import lora_copy

__all__ = ["LoraSettings", "collate", "encode_example", "lora_copy", "plan", "shipped_examples"]
