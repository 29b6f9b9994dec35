"""GGUF formats (llama.cpp's), quantized with the `gguf` package's own numpy quantizers.

Every 2-D weight (the tied embedding / output matrix included) becomes Q8_0, Q4_0 or Q5_1 blocks
of 32 values; 1-D tensors (norms) stay float32, as llama.cpp keeps them. Quality is measured on
the blocks dequantized back into a float32 copy, so it is exactly the format's rounding; speed is
the format's own only through llama.cpp (`pip install llama-cpp-python`, which compiles from
source), so these rows show quality and size only.

Q4_K, the K-quant: gguf 0.19 decodes K-quants but ships no encoder, so its blocks come from this
app's encoder (kquants.py), read back by gguf's own dequantizer. As llama.cpp does, a tensor whose
rows are not a multiple of 256 falls back to Q5_0: in SmolLM2-135M (hidden size 576) that is every
matrix but the 30 MLP down-projections, which is what `llama-quantize ... Q4_K` does to this model.
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import torch

from backends.quantization import kquants
from backends.quantization.torch_variants import torch_copy
from backends.quantization.variants import (
    Built,
    TorchRunner,
    VariantSpec,
    VariantUnavailable,
    embedding_weights,
    one_row_read,
)

FORMATS = ("Q8_0", "Q4_0", "Q5_1", "Q4_K")
BITS = {"Q8_0": 8.5, "Q4_0": 4.5, "Q5_1": 6.0, "Q4_K": 4.5}  # Q4_K's fallback tensors (Q5_0) take 5.5
SPEED_NOTE = (
    "quality of the GGUF blocks, run dequantized in fp32: speed needs llama.cpp "
    "(pip install llama-cpp-python, compiles from source)"
)


def available(device: str) -> str | None:
    return None if importlib.util.find_spec("gguf") else "the gguf package is not installed (pip install gguf)"


def quantize_tensor(w: torch.Tensor, fmt: str) -> tuple[np.ndarray, torch.Tensor]:
    """(the GGUF bytes, the float32 weights they decode to) for one 2-D weight."""
    from gguf import GGMLQuantizationType, quants

    qtype = GGMLQuantizationType[fmt]
    data = w.detach().float().cpu().numpy()
    raw = kquants.quantize_q4_k(data) if fmt == "Q4_K" else quants.quantize(data, qtype)
    back = quants.dequantize(raw, qtype).reshape(data.shape)
    return raw, torch.from_numpy(np.ascontiguousarray(back))


def build(fmt: str):
    def make(base, device: str, workdir=None) -> Built:
        if available(device):
            raise VariantUnavailable(available(device))
        model, load_s = torch_copy(base)
        started = time.perf_counter()
        disk, done, formats, sizes = 0, {}, {}, {}
        for name, p in model.named_parameters(remove_duplicate=False):
            if p.data_ptr() in done:  # tied embedding / lm_head: one tensor, quantized once
                continue
            done[p.data_ptr()] = name
            if p.ndim == 2 and p.shape[-1] % 32 == 0:
                used = fmt if fmt not in kquants.FALLBACK or kquants.supports(p.shape[-1]) else kquants.FALLBACK[fmt]
                raw, back = quantize_tensor(p, used)
                p.data.copy_(back.to(p.dtype))
                sizes[p.data_ptr()] = raw.nbytes
                formats[used] = formats.get(used, 0) + 1
            else:
                sizes[p.data_ptr()] = p.numel() * 4
            disk += sizes[p.data_ptr()]
        quantize_s = time.perf_counter() - started
        note = SPEED_NOTE
        if fmt in kquants.FALLBACK:
            note = (
                f"{formats.get(fmt, 0)} matrices {fmt} (this app's encoder: gguf has none), "
                f"{formats.get(kquants.FALLBACK[fmt], 0)} {kquants.FALLBACK[fmt]} (rows not a multiple of 256, "
                f"llama.cpp's fallback); {SPEED_NOTE}"
            )
        runner = TorchRunner(model, speed_note=SPEED_NOTE, fast_fp32=True)
        table, head = embedding_weights(model)
        read = disk
        if table is not None and table.data_ptr() in sizes:
            tied = isinstance(head, torch.Tensor) and head.data_ptr() == table.data_ptr()
            read = one_row_read(disk, sizes[table.data_ptr()], table.shape[0], tied)
        return Built(
            runner,
            disk,
            disk,
            quantize_s,
            load_s,
            note,
            model,
            measures_speed=False,
            details={"format": fmt, "formats": formats},
            decode_bytes=read,
        )

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


SNIPPET_K = """import numpy as np
from gguf import GGMLQuantizationType, quants
from backends.quantization.kquants import quantize_q4_k  # this app's encoder: gguf 0.19 has none
w = model.model.layers[0].mlp.down_proj.weight.detach().numpy()  # rows of 1536 = 6 x 256
blocks = quantize_q4_k(w)                                 # uint8, 144 bytes per 256 weights
w_back = quants.dequantize(blocks, GGMLQuantizationType.Q4_K)  # gguf's own reading of the bytes
# Rows of 576 (most of SmolLM2-135M) are not a multiple of 256: llama.cpp writes those as Q5_0.
# A whole model: convert_hf_to_gguf.py, then llama-quantize model.gguf model-Q4_K_M.gguf Q4_K_M
"""

SPECS = tuple(
    VariantSpec(
        f"gguf-{f.lower()}",
        f"GGUF {f}",
        "gguf",
        BITS[f],
        build(f),
        available,
        SNIPPET_K if f in kquants.FALLBACK else SNIPPET.replace("{fmt}", f).replace("{nbytes}", str(int(BITS[f] * 4))),
    )
    for f in FORMATS
)
