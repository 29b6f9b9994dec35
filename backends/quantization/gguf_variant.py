"""GGUF files as `llama-quantize` writes them: every tensor in the type llama.cpp gives it.

A GGUF "Q4_0 file" is not all Q4_0: llama.cpp picks a type per tensor (llama_types.py walks its
rules): the tied embedding / output matrix of a model whose rows are not a multiple of 256 is Q8_0
in every file type, and Q4_K_M raises the attention-value and down-projection matrices of a third of
the layers to Q6_K, with K-quant tensors whose rows are not a multiple of 256 falling back to Q5_0 /
Q8_0. Each tensor is quantized into its type's blocks by the `gguf` package (Q8_0, Q5_1, Q5_0,
Q4_0) or by this app's K-quant encoders (kquants.py: gguf 0.19 has none), read back by gguf's own
dequantizer into a float32 copy for quality, so the rows are exactly the file's rounding; 1-D
tensors (norms, biases) stay float32 as the converter writes them. The row's bits per weight are
the whole file's (every tensor's blocks over every weight), as llama.cpp's loader prints them.
Speed is the format's own only through llama.cpp (`pip install llama-cpp-python`, which compiles
from source), so these rows show quality and size only.
"""

from __future__ import annotations

import importlib.util
import time
import weakref

import numpy as np
import torch

from backends.quantization import kquants, llama_types, notes
from backends.quantization.torch_variants import torch_copy
from backends.quantization.variants import (
    Built,
    TorchRunner,
    VariantSpec,
    VariantUnavailable,
    embedding_weights,
    one_row_read,
)

FORMATS = ("Q8_0", "Q5_1", "Q5_0", "Q4_0", "Q4_K_M")  # llama-quantize's file types, in table order
BITS = {"Q8_0": 8.5, "Q5_1": 6.0, "Q5_0": 5.5, "Q4_0": 4.5, "Q4_K_M": 4.5}  # the main type's nominal bits
SPEED_NOTE = notes.NOTES["gguf_speed"]
ENCODERS = {"Q4_K": kquants.quantize_q4_k, "Q6_K": kquants.quantize_q6_k}  # ours; the rest are gguf's


def available(device: str) -> str | None:
    return None if importlib.util.find_spec("gguf") else "the gguf package is not installed (pip install gguf)"


def quantize_tensor(w: torch.Tensor, kind: str) -> tuple[np.ndarray, torch.Tensor]:
    """(the GGUF bytes, the float32 weights they decode to) for one 2-D weight, rows along the last axis."""
    from gguf import GGMLQuantizationType, quants

    data = w.detach().float().cpu().numpy()
    if kind == "F16":
        raw = data.astype(np.float16)
        return raw.view(np.uint8), torch.from_numpy(raw.astype(np.float32))
    qtype = GGMLQuantizationType[kind]
    raw = ENCODERS[kind](data) if kind in ENCODERS else quants.quantize(data, qtype)
    back = quants.dequantize(raw, qtype).reshape(data.shape)
    return raw, torch.from_numpy(np.ascontiguousarray(back))


def plan(model: torch.nn.Module, file_type: str) -> dict[str, str]:
    """transformers parameter name -> GGUF type, for every tensor of `model` (tied ones once)."""
    return llama_types.tensor_types(llama_types.model_tensors(model), file_type)


def file_bits(model: torch.nn.Module, file_type: str) -> float:
    """Bits per weight of the whole file: every tensor's bytes in its type over every weight."""
    tensors = llama_types.model_tensors(model)
    types = llama_types.tensor_types(tensors, file_type)
    shapes = {n: p.numel() for n, p in model.named_parameters(remove_duplicate=False)}
    total = sum(shapes[t.name] for t in tensors)
    return 8 * sum(llama_types.type_bytes(types[t.name], shapes[t.name]) for t in tensors) / total


def _transposed(model: torch.nn.Module) -> set[str]:
    from transformers.pytorch_utils import Conv1D

    return {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, Conv1D)}


_NORMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # base model -> {(name, threads, version): norm}


def squared_norm(base: torch.nn.Module, name: str, source: torch.Tensor | None, w: torch.Tensor) -> float:
    """`(w.double() ** 2).sum()` of the base's weight `name` (`source`; w: the copy's, as the build reads it), computed
    once per model and thread count: every GGUF row of a table divides by the same norms, and this was
    a third of the weight-error arithmetic, which was half of a GGUF build (issue 33). The thread count is
    in the key since a full sum splits across threads; the base weight's version too (it never changes)."""
    key = (name, torch.get_num_threads(), source._version if source is not None else None)
    norms = _NORMS.setdefault(base, {})
    if source is None or key not in norms:
        value = float((w.double() ** 2).sum())
        if source is None:
            return value
        norms[key] = value
    return norms[key]


def build(file_type: str):
    def make(base, device: str, workdir=None) -> Built:
        if available(device):
            raise VariantUnavailable(available(device))
        model, load_s = torch_copy(base)
        started = time.perf_counter()
        types = plan(model, file_type)
        transposed = _transposed(model)
        sources = dict(base.named_parameters(remove_duplicate=False))
        disk, sizes, counts, numel = 0, {}, {}, 0
        err2, norm2 = 0.0, 0.0  # squared error and squared weights over the quantized matrices
        for name, p in model.named_parameters(remove_duplicate=False):
            if name not in types:  # the second name of a tied tensor
                continue
            kind = types[name]
            numel += p.numel()
            if kind == "F32":
                sizes[p.data_ptr()] = p.numel() * 4
            else:
                w = p.data.t() if name in transposed else p.data  # GGUF's rows are a Conv1D's columns
                raw, back = quantize_tensor(w, kind)
                err2 += float(((back.double() - w.double()) ** 2).sum())
                norm2 += squared_norm(base, name, sources.get(name), w)
                p.data.copy_((back.t() if name in transposed else back).to(p.dtype))
                sizes[p.data_ptr()] = raw.nbytes
                counts[kind] = counts.get(kind, 0) + 1
            disk += sizes[p.data_ptr()]
        quantize_s = time.perf_counter() - started
        bits = 8 * disk / numel
        mix = ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        note = notes.note(
            ("gguf_types", {"file_type": file_type, "mix": mix}), ("bits", {"bits": f"{bits:.2f}"}), "gguf_speed"
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
            details={"format": file_type, "formats": counts, "types": types},
            decode_bytes=read,
            bits=bits,
            weight_error=(err2 / norm2) ** 0.5 if norm2 else None,
        )

    return make


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


SNIPPET = """import numpy as np
from gguf import GGMLQuantizationType, quants
# llama-quantize writes the tied embedding of a 576-wide model as Q8_0, the other matrices as {fmt}
w = model.model.layers[0].mlp.down_proj.weight.detach().numpy()
blocks = quants.quantize(w, GGMLQuantizationType.{fmt})      # uint8, {nbytes} bytes per 32 weights
w_back = quants.dequantize(blocks, GGMLQuantizationType.{fmt})  # what llama.cpp computes with
# A whole model as GGUF: llama.cpp's convert_hf_to_gguf.py, then llama-quantize model.gguf {fmt};
# run it with llama-cpp-python: Llama(model_path="model-{fmt}.gguf").
"""


SNIPPET_K = """import numpy as np
from gguf import GGMLQuantizationType, quants
from backends.quantization.kquants import quantize_q4_k  # this app's encoder: gguf 0.19 has none
from backends.quantization.gguf_variant import plan
print(plan(model, "Q4_K_M"))  # the type llama-quantize gives each tensor (Q4_K, Q6_K, Q5_0, Q8_0)
w = model.model.layers[3].mlp.down_proj.weight.detach().numpy()  # rows of 1536 = 6 x 256
blocks = quantize_q4_k(w)                                 # uint8, 144 bytes per 256 weights
w_back = quants.dequantize(blocks, GGMLQuantizationType.Q4_K)  # gguf's own reading of the bytes
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
        SNIPPET_K if f == "Q4_K_M" else SNIPPET.replace("{fmt}", f).replace("{nbytes}", str(int(BITS[f] * 4))),
        file_bits=lambda model, f=f: file_bits(model, f),
    )
    for f in FORMATS
)
