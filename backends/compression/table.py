"""The default comparable table of the Compression page and bench/compression.py: which rows, how many
tokens scored, how many speed runs. Every row is built and measured by the quantization harness
(backends/quantization/run.py); the compression methods join it through `quantization.register`."""

from __future__ import annotations

# fp32 (the baseline), round-to-nearest 4-bit against GPTQ at the same bits and group size, and
# unstructured (magnitude, Wanda) against structured pruning: about 3 minutes on SmolLM2 on 2 cores.
TABLE_DEFAULT: tuple[str, ...] = (
    "fp32",
    "rtn-w4g64",
    "gptq-w4g64",
    "prune-magnitude-50",
    "prune-wanda-50",
    "prune-structured-30",
)
# Rows one click away, left out of the default for their build time on SmolLM2 on 2 quiet cores:
# AutoRound (~90 s of tuning), ONNX Runtime's static int8 (~140 s, its Python quantizer) and the dynamic
# int8 row it is compared with (~70 s, the ONNX export). On the GPT trained here each takes seconds.
SLOW_ROWS: tuple[str, ...] = ("autoround-w4g64", "onnx-int8", "onnx-static-int8")
TABLE_PPL_TOKENS = 2_048  # 2 windows of 1024 on SmolLM2 (the quantization page's default is 5,120)
TABLE_RUNS = 2
