"""GGUF formats (llama.cpp's), quantized with the `gguf` package's own numpy quantizers.

Every 2-D weight (the tied embedding / output matrix included) becomes Q8_0, Q4_0 or Q5_1 blocks
of 32 values; 1-D tensors (norms) stay float32, as llama.cpp keeps them. Quality is measured on
the blocks dequantized back into a float32 copy, so it is exactly the format's rounding; speed is
the format's own only through llama.cpp (`pip install llama-cpp-python`, which compiles from
source), so these rows show quality and size only. gguf 0.19 ships no K-quant quantizer
(Q4_K/Q6_K dequantize only), so no K-quant is offered.
"""
from __future__ import annotations

import importlib.util
import time

import numpy as np
import torch

from backends.quantization.torch_variants import torch_copy
from backends.quantization.variants import (
    Built,
    TorchRunner,
    VariantSpec,
    VariantUnavailable,
)

FORMATS = ("Q8_0", "Q4_0", "Q5_1")
BITS = {"Q8_0": 8.5, "Q4_0": 4.5, "Q5_1": 6.0}
SPEED_NOTE = ("quality of the GGUF blocks, run dequantized in fp32: speed needs llama.cpp "
              "(pip install llama-cpp-python, compiles from source)")


def available(device: str) -> str | None:
    return None if importlib.util.find_spec("gguf") else "the gguf package is not installed (pip install gguf)"


def quantize_tensor(w: torch.Tensor, fmt: str) -> tuple[np.ndarray, torch.Tensor]:
    """(the GGUF bytes, the float32 weights they decode to) for one 2-D weight."""
    from gguf import GGMLQuantizationType, quants

    qtype = GGMLQuantizationType[fmt]
    data = w.detach().float().cpu().numpy()
    raw = quants.quantize(data, qtype)
    back = quants.dequantize(raw, qtype).reshape(data.shape)
    return raw, torch.from_numpy(np.ascontiguousarray(back))


def build(fmt: str):
    def make(base, device: str, workdir=None) -> Built:
        if available(device):
            raise VariantUnavailable(available(device))
        model, load_s = torch_copy(base)
        started = time.perf_counter()
        disk, done = 0, {}
        for name, p in model.named_parameters(remove_duplicate=False):
            if p.data_ptr() in done:  # tied embedding / lm_head: one tensor, quantized once
                continue
            done[p.data_ptr()] = name
            if p.ndim == 2 and p.shape[-1] % 32 == 0:
                raw, back = quantize_tensor(p, fmt)
                p.data.copy_(back.to(p.dtype))
                disk += raw.nbytes
            else:
                disk += p.numel() * 4
        quantize_s = time.perf_counter() - started
        runner = TorchRunner(model, speed_note=SPEED_NOTE, fast_fp32=True)
        return Built(runner, disk, disk, quantize_s, load_s, SPEED_NOTE, model, measures_speed=False,
                     details={"format": fmt})
    return make


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


SNIPPET = """import numpy as np
from gguf import GGMLQuantizationType, quants
w = model.model.layers[0].mlp.down_proj.weight.detach().numpy()
blocks = quants.quantize(w, GGMLQuantizationType.{fmt})      # uint8, {nbytes} bytes per 32 weights
w_back = quants.dequantize(blocks, GGMLQuantizationType.{fmt})  # what llama.cpp computes with
# A whole model as GGUF: llama.cpp's convert_hf_to_gguf.py, then llama-quantize model.gguf {fmt};
# run it with llama-cpp-python: Llama(model_path="model-{fmt}.gguf").
"""


SPECS = tuple(
    VariantSpec(f"gguf-{f.lower()}", f"GGUF {f}", "gguf", BITS[f], build(f), available,
                SNIPPET.replace("{fmt}", f).replace("{nbytes}", str(int(BITS[f] * 4))))
    for f in FORMATS
)
