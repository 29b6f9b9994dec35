"""Plain PyTorch variants: fp32 (the baseline), bf16, fp16 (GPU), and PyTorch's own dynamic int8
(fbgemm's int8 GEMM with per-row weight scales; activations quantized on the fly per batch)."""

from __future__ import annotations

import copy
import warnings

import torch

from backends.quantization import notes
from backends.quantization.variants import (
    VariantSpec,
    VariantUnavailable,
    timed,
    torch_built,
)


def torch_copy(base: torch.nn.Module, dtype: torch.dtype | None = None) -> tuple[torch.nn.Module, float]:
    """A private copy of the shared model (the cached one is never modified), optionally cast."""

    def make():
        model = copy.deepcopy(base)
        return model.to(dtype) if dtype is not None else model

    return timed(make)


def build_float(dtype: torch.dtype):
    def build(base, device: str, workdir=None):
        model, load_s = torch_copy(base, dtype)
        note = "" if dtype == torch.float32 else notes.note("cast")
        return torch_built(model, 0.0, load_s, note, fast_fp32=dtype == torch.float32)

    return build


def needs_cuda(device: str) -> str | None:
    return None if device.startswith("cuda") else "float16 matmuls are a GPU format (slow or missing on CPU)"


def always(device: str) -> str | None:
    return None


def fbgemm_available(device: str) -> str | None:
    if device != "cpu":
        return "PyTorch's dynamic int8 kernels (fbgemm) run on the CPU only"
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        return f"this torch build has no fbgemm engine ({torch.backends.quantized.supported_engines})"
    return None


def build_dynamic_int8(base, device: str, workdir=None):
    if fbgemm_available(device):
        raise VariantUnavailable(fbgemm_available(device))
    model, load_s = torch_copy(base)
    with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao; it still runs
        warnings.simplefilter("ignore")
        torch.backends.quantized.engine = "fbgemm"
        _, quantize_s = timed(
            torch.ao.quantization.quantize_dynamic, model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )
    return torch_built(model, quantize_s, load_s, notes.note("torch_ao"))


SNIPPET_FLOAT = """import torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("{hub_id}", dtype=torch.{dtype})
"""
SNIPPET_DYNAMIC = """import torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("{hub_id}", dtype=torch.float32)
torch.backends.quantized.engine = "fbgemm"
model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
"""

SPECS = (
    VariantSpec(
        "fp32",
        "fp32 (baseline)",
        "torch",
        32,
        build_float(torch.float32),
        always,
        SNIPPET_FLOAT.replace("{dtype}", "float32"),
    ),
    VariantSpec(
        "bf16", "bf16", "torch", 16, build_float(torch.bfloat16), always, SNIPPET_FLOAT.replace("{dtype}", "bfloat16")
    ),
    VariantSpec(
        "fp16",
        "fp16",
        "torch",
        16,
        build_float(torch.float16),
        needs_cuda,
        SNIPPET_FLOAT.replace("{dtype}", "float16"),
    ),
    VariantSpec(
        "torch-dynamic-int8",
        "PyTorch dynamic int8 (fbgemm)",
        "torch",
        8,
        build_dynamic_int8,
        fbgemm_available,
        SNIPPET_DYNAMIC,
        int8=True,
    ),
)
