"""LoRA fine-tuning: data (data.py), settings and plan (config.py), the training job (train.py),
and adapters: save, load, compare, merge (adapters.py).

Notes (how it works, what is left out, measured figures): docs/lora.md.
"""

# The public API other topics use (backends.experiments, backends.alignment): settings, the plan of
# what trains, a LoRA copy, and the training job with its data (one training loop in the project).
from backends.lora.config import LOSS_ON, LoraSettings, linear_layers, plan
from backends.lora.data import IGNORE, DataError, Example, collate, encode_example, shipped_examples
from backends.lora.train import Prepared, TrainResult, lora_copy, prepare, train_job

__all__ = [
    "IGNORE",
    "LOSS_ON",
    "DataError",
    "Example",
    "LoraSettings",
    "Prepared",
    "TrainResult",
    "collate",
    "encode_example",
    "linear_layers",
    "lora_copy",
    "plan",
    "prepare",
    "shipped_examples",
    "train_job",
]
