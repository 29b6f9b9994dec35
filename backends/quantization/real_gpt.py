"""A model with real-valued weights to quantize offline: a small GPT trained here on Shakespeare.

The only offline LLM (SmolLM2-135M) ships as a Q4_1 GGUF, so its "fp32" weights already sit on a 4-bit
grid and every quantizer re-rounds that grid (baseline.py). A GPT trained on the scratch page has real
float32 weights; this module trains one with fixed settings, once, and exports it as a transformers
folder (`runs_dir() / "quantization-demo"`, the same place and format as the scratch page's exports),
so the quantization page, its "Try this" panel and bench/quantization.py can quantize real-valued
weights without a network. Width 256 makes every matrix's rows a multiple of 256, so the Q4_K_M row is
real K-quants (Q4_K and Q6_K), not the Q5_0 / Q8_0 fallbacks a 576-wide model gets.

Training: the scratch page's own `train_job` through the shared job runner (seeded: the same model
every time), 2 layers, 4 heads, n_embd 256, block 64, RoPE, 150 steps at a peak rate of 3e-3.
About 45 s on two quiet cores; the folder is reused afterwards (and across restarts). Eight sessions
asking at once train it once (a lock).
"""

from __future__ import annotations

import threading
from pathlib import Path

from backends import scratch_gpt as sg
from backends.core.jobs import shared_runner

NAME = "quantization-demo"
CONFIG = {"n_layer": 2, "n_head": 4, "n_embd": 256, "block_size": 64, "positions": "rope"}
STEPS = 150
_lock = threading.Lock()


def folder() -> Path:
    return sg.runs_dir() / NAME


def ready() -> bool:
    f = folder()
    return (f / "config.json").is_file() and (f / "model.safetensors").is_file()


def train_and_export() -> Path:
    """The folder of the trained GPT, training and exporting it first if it is not there yet."""
    with _lock:
        if ready():
            return folder()
        prepared = sg.prepare("shakespeare", sg.load_corpus("shakespeare"), CONFIG["block_size"])
        config = sg.GPTConfig(vocab_size=prepared.tokenizer.vocab_size, **CONFIG)
        settings = sg.TrainSettings(
            max_iters=STEPS,
            learning_rate=3e-3,
            min_lr=3e-4,
            warmup_iters=15,
            lr_decay_iters=STEPS,
            eval_interval=STEPS,
            eval_iters=4,
            sample_interval=0,
        )
        job = shared_runner().submit("quantization-demo-gpt", sg.train_job, prepared, config, settings)
        if not job.wait(1800) or job.status != "done":
            raise RuntimeError(f"Training the demo GPT failed: {job.error or job.status}")
        ckpt = job.result
        return sg.export_hf(ckpt.model, ckpt.tokenizer, folder(), {"corpus": prepared.name, "steps": ckpt.step})
