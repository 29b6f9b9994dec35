"""ONNX Runtime: the model exported to ONNX (float32); the same file dynamically quantized to int8
by `onnxruntime.quantization.quantize_dynamic` (int8 weights per channel, activations quantized per
batch at run time: DynamicQuantizeMatMul); and weight-only 8-/4-bit blocks of 32 by
`MatMulNBitsQuantizer` (MatMulNBits, the format onnxruntime-genai uses for LLMs; accuracy level 4
lets the kernel quantize activations per block to int8 as well).

The export is a plain forward pass without a KV cache (torch.onnx's TorchScript exporter), so a
decode step recomputes the whole sequence, and its prefill computes the output head at every position
(the torch rows, as `generate`, compute it for the last one only); the rows say so. Both variants
share one export per run.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from backends.quantization import notes
from backends.quantization.variants import (
    Built,
    Runner,
    VariantSpec,
    VariantUnavailable,
    timed,
)

NO_CACHE_NOTE = notes.NOTES["onnx_no_cache"]


def available(device: str) -> str | None:
    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        return f"not installed: {', '.join(missing)} (pip install onnx onnxruntime)"
    return None


class LogitsOnly(torch.nn.Module):
    """input_ids -> logits, the one graph exported (an all-ones attention mask keeps the export simple)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), use_cache=False).logits


def export(base: torch.nn.Module, path: Path) -> float:
    """Export a float32 copy on the CPU (the cached model is not touched); returns the seconds it took."""
    started = time.perf_counter()
    model = copy.deepcopy(base).float().cpu().eval()
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LogitsOnly(model),
            (ids,),
            str(path),
            input_names=["input_ids"],
            output_names=["logits"],
            dynamic_axes={"input_ids": {1: "sequence"}, "logits": {1: "sequence"}},
            opset_version=17,
            dynamo=False,
        )
    del model
    return time.perf_counter() - started


def exported(base, workdir: Path) -> tuple[Path, float]:
    """The run's one float32 export (made on first use), and the seconds it took."""
    path = workdir / "model.onnx"
    marker = workdir / "model.onnx.seconds"
    if not marker.exists():
        seconds = export(base, path)
        marker.write_text(str(seconds))
    return path, float(marker.read_text())


class OrtRunner(Runner):
    kv_cache = False
    speed_note = NO_CACHE_NOTE

    def __init__(self, path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _run(self, ids: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": ids})[0]

    def logits(self, ids):
        return torch.from_numpy(self._run(ids.cpu().numpy().astype(np.int64)))

    def start(self, ids):
        seq = ids.cpu().numpy().astype(np.int64)
        return seq, torch.from_numpy(self._run(seq)[0, -1].copy())

    def step(self, state, token):
        seq = np.concatenate([state, np.array([[token]], dtype=np.int64)], axis=1)
        return seq, torch.from_numpy(self._run(seq)[0, -1].copy())

    def close(self):
        self.session = None


def decode_read_bytes(path: Path) -> int:
    """Weight bytes one decoded token reads from an ONNX file: every initializer once, except a 2-D
    table that only Gather nodes read (the input embedding), which counts as one row. The export
    unties SmolLM2's tied embedding: the Gather's table and the output head's transposed copy are two
    initializers, so the head's copy counts whole and the table as one row."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    users = defaultdict(set)
    for node in graph.node:
        for name in node.input:
            users[name].add(node.op_type)
    total = 0
    for init in graph.initializer:
        size = len(init.raw_data) if init.HasField("raw_data") else numpy_helper.to_array(init).nbytes
        gathered = len(init.dims) == 2 and init.dims[0] > 0 and users[init.name] == {"Gather"}
        total += size // init.dims[0] if gathered else size
    return total


def cpu_has_vnni(flags: str | None = None) -> bool:
    """Whether this x86 CPU has VNNI (avx512_vnni or avx_vnni in /proc/cpuinfo's flags); False when unknown."""
    if flags is None:
        try:
            flags = next(
                (line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), ""
            )
        except OSError:
            flags = ""
    return bool({"avx512_vnni", "avx_vnni"} & set(flags.split()))


def reduce_range(flags: str | None = None) -> bool:
    """ONNX Runtime's advice (docs, "Quantize ONNX models": when and why to use reduce_range): its U8S8
    int8 kernels on x86 CPUs without VNNI add pairs of u8 x s8 products in 16 bits, which saturate, so
    weights should use 7 bits there. Measured on SmolLM2 on an AVX2 EPYC without VNNI, 256 tokens:
    KLD to fp32 9.65 with 8-bit weights, 0.94 with reduce_range."""
    return not cpu_has_vnni(flags)


def quantize_dynamic_int8(path: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" hint on every call
    quantize_dynamic(
        str(path), str(target), weight_type=QuantType.QInt8, per_channel=True, reduce_range=reduce_range()
    )


def quantize_nbits(bits: int):
    def run(path: Path, target: Path) -> None:
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(path)), bits=bits, block_size=32, is_symmetric=True, accuracy_level=4
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(target), False)

    return run


def nbits_available(device: str) -> str | None:
    reason = available(device)
    if reason is None and importlib.util.find_spec("onnx_ir") is None:
        reason = "MatMulNBitsQuantizer needs onnx-ir (pip install onnx-ir)"
    return reason


def build(quantizer=None, name: str = ""):
    def make(base, device: str, workdir: Path) -> Built:
        reason = nbits_available(device) if quantizer is not None and name != "int8" else available(device)
        if reason:
            raise VariantUnavailable(reason)
        path, export_s = exported(base, workdir)
        quantize_s = export_s
        if quantizer is not None:
            target = workdir / f"model.{name}.onnx"
            _, seconds = timed(quantizer, path, target)
            quantize_s += seconds
            path = target
        runner, load_s = timed(OrtRunner, path)
        size = path.stat().st_size
        codes = ["onnx_no_cache", "export_quantize_time" if quantizer else "export_time"]
        if quantizer is quantize_dynamic_int8 and reduce_range():
            codes.append("reduce_range")
        note = notes.note(*codes)
        return Built(
            runner,
            size,
            size,
            quantize_s,
            load_s,
            note,
            None,
            details={"file": path.name},
            decode_bytes=decode_read_bytes(path),
        )

    return make


SNIPPET = """import torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("{hub_id}", dtype=torch.float32).eval()
ids = torch.tensor([[1, 2, 3, 4]])
torch.onnx.export(model, (ids,), "model.onnx", input_names=["input_ids"], output_names=["logits"],
                  dynamic_axes={"input_ids": {1: "seq"}}, opset_version=17, dynamo=False)
from onnxruntime.quantization import QuantType, quantize_dynamic
quantize_dynamic("model.onnx", "model.int8.onnx", weight_type=QuantType.QInt8, per_channel=True,
                 reduce_range=True)  # 7-bit weights on a CPU without VNNI, where 8-bit u8s8 saturates
import onnxruntime as ort
session = ort.InferenceSession("model.int8.onnx", providers=["CPUExecutionProvider"])
logits = session.run(None, {"input_ids": ids.numpy()})[0]
"""

SNIPPET_NBITS = """import onnx
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
# model.onnx exported as in the fp32 variant
quantizer = MatMulNBitsQuantizer(onnx.load("model.onnx"), bits={bits}, block_size=32, is_symmetric=True,
                                 accuracy_level=4)
quantizer.process()
quantizer.model.save_model_to_file("model.int{bits}.onnx", False)
"""

SPECS = (
    VariantSpec("onnx-fp32", "ONNX Runtime fp32", "onnx", 32, build(), available, SNIPPET),
    VariantSpec(
        "onnx-int8",
        "ONNX Runtime dynamic int8",
        "onnx",
        8,
        build(quantize_dynamic_int8, "int8"),
        available,
        SNIPPET,
        int8=True,
    ),
    VariantSpec(
        "onnx-int8-wo",
        "ONNX Runtime int8 blocks (MatMulNBits)",
        "onnx",
        9,
        build(quantize_nbits(8), "nbits8"),
        nbits_available,
        SNIPPET_NBITS.replace("{bits}", "8"),
        int8=True,
    ),
    VariantSpec(
        "onnx-int4-wo",
        "ONNX Runtime int4 blocks (MatMulNBits)",
        "onnx",
        5,
        build(quantize_nbits(4), "nbits4"),
        nbits_available,
        SNIPPET_NBITS.replace("{bits}", "4"),
    ),
)
