"""Static int8: activation ranges calibrated ahead of time by ONNX Runtime's `quantize_static`, a row
beside the dynamic "onnx-int8" of the same table (the same float32 export, the same runner).

Dynamic int8 (onnx_variant.quantize_dynamic_int8) measures each activation's range at run time, per
batch, and quantizes it there (DynamicQuantizeMatMul). Static int8 runs the float32 model once over
calibration batches (`calibration_ids`: the held-out text's end, disjoint from the scored slice),
records every MatMul input's min and max (MinMax), and writes those ranges into the file as fixed
scales and zero points: nothing is measured at run time, and an activation outside its calibrated
range is clipped.

Format: QDQ (QuantizeLinear / DequantizeLinear pairs around float ops), ONNX Runtime's recommended
format since 1.11: its CPU graph optimizer fuses each DQ -> MatMul -> Q pattern into an integer
kernel at session load, and the file stays readable (every scale is a plain initializer). QOperator
(QLinearMatMul written directly) runs the same kernels but is the older, less optimized path.
Settings match the dynamic row for a fair comparison: uint8 activations, int8 weights per channel,
7-bit weights on a CPU without VNNI (reduce_range), the MatMuls with a constant weight (the linear
layers: MatMulConstBOnly; not attention's activation x activation products) and the embedding table
(Gather), as quantize_dynamic does. A MatMul's output is left in float (OpTypesToExcludeOutputQuantization),
as the dynamic kernel leaves it: quantizing it too (ORT's default) adds a second fixed-range rounding
before the bias add and the residual; in a first try on SmolLM2 it gave KLD 2.3 on 64 tokens.

Measured (q.run_job: fp32, onnx-int8, onnx-static-int8; 1,024 tokens, 1 run, two shared cores, so the
speeds are rough): SmolLM2 KLD 0.89 static vs 0.65 dynamic (perplexity 136 vs 107, fp32 64): one
fixed per-tensor range must hold the outlier activations of every calibration token, where the dynamic
range fits each call; same file size (166 MB), decode 5.9 vs 6.2 tokens/s, build 138 vs 73 s (ORT's
Python quantizer: graph augmentation and per-channel scales, not the calibration passes). Demo GPT:
KLD 4.9e-5 static vs 2.5e-5 dynamic.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import torch

from backends import quantization as q

from .calibration import N_SEQS, SEQ_LEN, calibration_ids

KEY = "onnx-static-int8"
FORMAT = "QDQ"


@functools.lru_cache(maxsize=4)
def tokenizer_for(name_or_path: str):
    """The tokenizer of a model folder (a variant's build gets the model only; its config names its folder)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path)


def context_of(model) -> int | None:
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)


def calibration_batches(model, tokenizer=None, n_seqs: int = N_SEQS, seq_len: int = SEQ_LEN) -> torch.Tensor:
    """The calibration ids for `model`: `n_seqs` x `seq_len`, cut to its positions (the demo GPT has 64:
    twice as many sequences of 64, the same 1,024 tokens)."""
    tokenizer = tokenizer or tokenizer_for(model.config._name_or_path)
    context = context_of(model)
    if context and seq_len > context:
        n_seqs, seq_len = n_seqs * seq_len // context, context
    return calibration_ids(tokenizer, n_seqs, seq_len)


class IdsReader:
    """onnxruntime's CalibrationDataReader over a (n, T) tensor: one {"input_ids": (1, T)} per sequence."""

    def __init__(self, ids: torch.Tensor):
        self.rows = [{"input_ids": row[None].numpy().astype(np.int64)} for row in ids]
        self.position = 0

    def get_next(self):
        if self.position >= len(self.rows):
            return None
        self.position += 1
        return self.rows[self.position - 1]

    def rewind(self):
        self.position = 0


def quantize_static_int8(path: Path, target: Path, ids: torch.Tensor, per_channel: bool = True) -> None:
    """`path` (float32 ONNX) -> `target`: static int8, QDQ, ranges from `ids` (MinMax)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(IdsReader, CalibrationDataReader):
        pass

    logging.getLogger().setLevel(logging.ERROR)  # the "consider pre-processing" hint
    quantize_static(
        str(path),
        str(target),
        Reader(ids),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul", "Gemm", "Gather"],
        per_channel=per_channel,
        reduce_range=q.reduce_range(),
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"MatMulConstBOnly": True, "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm", "Gather"]},
    )


q.register_note("static_calibrated", "{format}, activation ranges calibrated (MinMax) on {n} x {tokens} tokens")


def build(base, device: str, workdir: Path) -> q.Built:
    reason = q.onnx_available(device)
    if reason:
        raise q.VariantUnavailable(reason)
    ids = calibration_batches(base)
    path, export_s = q.onnx_exported(base, workdir)
    target = workdir / "model.static-int8.onnx"
    _, seconds = q.timed(quantize_static_int8, path, target, ids)
    runner, load_s = q.timed(q.OrtRunner, target)
    size = target.stat().st_size
    codes = ["onnx_no_cache", "export_quantize_time"]
    if q.reduce_range():
        codes.append("reduce_range")
    calibrated = ("static_calibrated", {"format": FORMAT, "n": ids.shape[0], "tokens": ids.shape[1]})
    note = q.row_note(calibrated, *codes)
    return q.Built(
        runner,
        size,
        size,
        export_s + seconds,
        load_s,
        note,
        None,
        details={"file": target.name, "format": FORMAT, "calibration": list(ids.shape)},
        decode_bytes=q.onnx_read_bytes(target),
    )


def fixed_scales(path: Path) -> dict[str, float]:
    """The activation QuantizeLinear nodes of an ONNX file -> their scale, read from the file's
    initializers (fixed numbers: a static model measures nothing at run time)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    found = {}
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and node.input[1] in inits:
            found[node.input[0]] = float(numpy_helper.to_array(inits[node.input[1]]).reshape(-1)[0])
    return found


SNIPPET = """import numpy as np
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
# model.onnx exported as in the ONNX fp32 variant; calibration: a few sequences NOT in the scored text
class Reader(CalibrationDataReader):
    def __init__(self, ids):  # ids: (n, T) int64 numpy
        self.rows = iter([{"input_ids": row[None]} for row in ids])
    def get_next(self):
        return next(self.rows, None)
quantize_static("model.onnx", "model.static-int8.onnx", Reader(calibration_ids),
                quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul", "Gemm", "Gather"],
                per_channel=True,
                reduce_range=True,  # 7-bit weights on a CPU without VNNI
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"MatMulConstBOnly": True,
                               "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm", "Gather"]})
"""

SPECS = (
    q.VariantSpec(
        KEY,
        "ONNX Runtime static int8 (calibrated)",
        "onnx",
        8,
        build,
        q.onnx_available,
        SNIPPET,
        int8=True,
    ),
)
