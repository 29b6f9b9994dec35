"""Quantization benchmark: size, speed and quality of every precision of one model, on this machine.

One file per format or library, in the spirit of peft's tuners:
  variants.py          what a variant is (spec, runner, built copy) and how its bytes are counted
  torch_variants.py    fp32 (baseline), bf16, fp16 (GPU), PyTorch dynamic int8 (fbgemm)
  torchao_variants.py  torchao int8 weight-only, int8 dynamic activation + int8 weight, int4 weight-only
  onnx_variant.py      ONNX export run by ONNX Runtime, fp32 and dynamically quantized int8
  gguf_variant.py      GGUF files as llama-quantize writes them (Q8_0, Q5_1, Q5_0, Q4_0, Q4_K_M): each
                       tensor in its llama.cpp type, blocks by the `gguf` package or kquants.py
  llama_types.py       llama.cpp's per-tensor type rules (llama_tensor_get_type, the fallbacks)
  kquants.py           our Q4_K and Q6_K encoders (gguf 0.19 decodes K-quants but has no encoder)
  bnb_variant.py       bitsandbytes LLM.int8() and NF4
  catalog.py           every variant in table order, which run on a device, their code
  teaching.py          the quantizers written out by hand (int8 absmax / zero point, per tensor,
                       channel, group; GGUF Q8_0 / Q4_0 blocks, Q4_1 / Q5_0 / Q5_1 round trips), the
                       table of every block format's error on one matrix, finding a model's matrices;
                       tested against the libraries
  real_gpt.py          a GPT trained here once (real fp32 weights) to quantize offline
  text.py              the held-out text (assets/texts/) and the fixed prompt
  measure.py           perplexity over strided windows, KLD and top-1 against fp32, the paired
                       interval (Student's t), speed, RSS
  run.py               the benchmark as a background job (BenchConfig -> BenchReport), the int8
                       speed-ups split into quality-keeping and lossy
  baseline.py          what the fp32 baseline is, from the model's origin (a dequantized GGUF
                       package, or a checkpoint's own fp32 / bf16 weights)
  report.py            the report as JSON (optimum-benchmark's field names) and back
  notes.py             a row's note: English parts from codes, read back into codes a page translates

Notes (how it works, what is left out, measured figures): docs/quantization.md.
"""

from backends.quantization.baseline import Baseline, describe
from backends.quantization.catalog import SPECS, all_specs, availability, opt_in, register, snippet, spec
from backends.quantization.gguf_variant import plan as gguf_plan
from backends.quantization.measure import PeakRSS, Reference, copy_bandwidth, quality, speed, t975, windows
from backends.quantization.notes import note as row_note
from backends.quantization.notes import register as register_note
from backends.quantization.onnx_variant import OrtRunner, reduce_range
from backends.quantization.onnx_variant import available as onnx_available
from backends.quantization.onnx_variant import decode_read_bytes as onnx_read_bytes
from backends.quantization.onnx_variant import exported as onnx_exported
from backends.quantization.real_gpt import NAME as DEMO_GPT_NAME
from backends.quantization.real_gpt import train_and_export as train_demo_gpt
from backends.quantization.run import (
    OK,
    QUALITY_KLD,
    BenchConfig,
    BenchReport,
    VariantResult,
    bench_threads,
    int8_speedups,
    run_job,
)
from backends.quantization.text import held_out_text, prompt_ids, token_slice
from backends.quantization.variants import (
    Built,
    Runner,
    TorchRunner,
    VariantSpec,
    VariantUnavailable,
    decode_read_bytes,
    serialized_bytes,
    state_bytes,
    timed,
    torch_built,
)

__all__ = [
    "DEMO_GPT_NAME",
    "OK",
    "QUALITY_KLD",
    "SPECS",
    "Baseline",
    "BenchConfig",
    "BenchReport",
    "Built",
    "OrtRunner",
    "PeakRSS",
    "Reference",
    "Runner",
    "TorchRunner",
    "VariantResult",
    "VariantSpec",
    "VariantUnavailable",
    "all_specs",
    "availability",
    "bench_threads",
    "copy_bandwidth",
    "decode_read_bytes",
    "describe",
    "gguf_plan",
    "held_out_text",
    "int8_speedups",
    "onnx_available",
    "onnx_exported",
    "onnx_read_bytes",
    "opt_in",
    "prompt_ids",
    "quality",
    "reduce_range",
    "register",
    "register_note",
    "row_note",
    "run_job",
    "serialized_bytes",
    "snippet",
    "spec",
    "speed",
    "state_bytes",
    "t975",
    "timed",
    "token_slice",
    "torch_built",
    "train_demo_gpt",
    "windows",
]
