"""LoRA fine-tuning: data (data.py), settings and plan (config.py), the training job (train.py),
and adapters: save, load, compare, merge (adapters.py)."""
