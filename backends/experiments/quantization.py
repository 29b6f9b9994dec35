"""Quantization experiments: GGUF formats on real-valued weights against the shipped 4-bit grid, and what
a "4-bit" file really costs. Each measures with the page's own GGUF builds (gguf_variant), whose
weight error is ||W_q - W|| / ||W|| over the quantized matrices.

The first is the suggested first run: the GPT of backends/quantization/real_gpt.py (train_demo_gpt) (trained here on
Shakespeare, real float32 weights) shows the ordering the llama.cpp tables show; the second asks the
same of the embedded SmolLM2, whose "fp32" copy is its Q4_1 GGUF's blocks, and finds it distorted.
"""

from __future__ import annotations

from backends.experiments.base import Experiment, fmt, observation
from backends.models.cache import shared_cache
from backends.quantization import gguf_plan, spec, train_demo_gpt

SMOLLM2 = "smollm2-135m-instruct"
REAL_VARIANTS = ("fp32", "gguf-q8_0", "gguf-q5_1", "gguf-q5_0", "gguf-q4_0", "gguf-q4_k_m")


def _errors(model, device: str, keys) -> dict[str, tuple[float, float]]:
    """variant key -> (weight error, bits per weight of the file), each built from a private copy."""
    out = {}
    for key in keys:
        built = spec(key).build(model, device, None)
        out[key] = (built.weight_error, built.bits)
        built.runner.close()
    return out


def _closer(e51: float, e50: float, margin: float = 0.02) -> str:
    if e51 < e50 * (1 - margin):
        return "q5_1"
    if e50 < e51 * (1 - margin):
        return "q5_0"
    return "same"


def measure_grid(params, device):
    """Weight error of GGUF Q5_1 (a scale and a minimum per 32) and Q5_0 (a scale per 32) on one model."""
    name = str(train_demo_gpt()) if params["model"] == "real" else SMOLLM2
    model = shared_cache().get(name).model
    errors = _errors(model, "cpu", ("gguf-q5_1", "gguf-q5_0"))
    (e51, b51), (e50, b50) = errors["gguf-q5_1"], errors["gguf-q5_0"]
    return observation(
        f"quantization.{params['id']}",
        _closer(e51, e50),
        params["expected"],
        q5_1=fmt(e51, 4),
        q5_0=fmt(e50, 4),
        ratio=fmt(e50 / e51, 2),
        bits_51=fmt(b51, 2),
        bits_50=fmt(b50, 2),
    )


def measure_file_bits(params, device):
    """Bits per weight of SmolLM2's Q4_0 GGUF file, every tensor in the type llama-quantize gives it."""
    model = shared_cache().get(SMOLLM2).model
    types = gguf_plan(model, "Q4_0")
    bits = spec("gguf-q4_0").file_bits(model)
    sizes = dict(model.named_parameters())
    q8 = sum(sizes[n].numel() for n, k in types.items() if k == "Q8_0")
    total = sum(p.numel() for p in model.parameters())
    outcome = "nominal" if abs(bits - 4.5) < 0.1 else "q8" if abs(bits - 8.5) < 0.1 else "between"
    return observation(
        "quantization.file_bits",
        outcome,
        "between",
        bits=fmt(bits, 2),
        q8_share=fmt(100 * q8 / total, 1),
        q8_m=fmt(q8 / 1e6, 1),
    )


EXPERIMENTS = (
    Experiment(
        "quantization",
        "real_grid",
        ("q5_1", "q5_0", "same"),
        "q5_1",
        {"id": "real_grid", "model": "real", "expected": "q5_1", "variants": REAL_VARIANTS},
        measure_grid,
    ),
    Experiment(
        "quantization",
        "shipped_grid",
        ("q5_1", "q5_0", "same"),
        "q5_0",
        {
            "id": "shipped_grid",
            "model": "shipped",
            "expected": "q5_0",
            "variants": ("fp32", "gguf-q8_0", "gguf-q5_1", "gguf-q5_0", "gguf-q4_0"),
        },
        measure_grid,
    ),
    Experiment(
        "quantization",
        "file_bits",
        ("nominal", "between", "q8"),
        "between",
        {"model": "shipped", "variants": ("fp32", "gguf-q8_0", "gguf-q4_0")},
        measure_file_bits,
    ),
)
