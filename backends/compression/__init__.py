"""Compression beyond rounding: pruning, distillation, calibrated 4-bit (GPTQ by hand, AutoRound),
quantization-aware training and static int8, measured on the quantization page's harness.

  calibration.py   the calibration batches (the held-out text's end, disjoint from the scored slice)
  table.py         the default comparable table (rows, tokens, runs) on the quantization harness

Notes (how it works, what is left out, measured figures): docs/compression.md.
"""

from backends.compression.calibration import EVAL_TOKENS_MAX, calibration_ids
from backends.compression.structured import blocks as decoder_blocks
from backends.compression.structured import shape as structured_shape
from backends.compression.structured import unit_params
from backends.compression.table import SLOW_ROWS, TABLE_DEFAULT, TABLE_PPL_TOKENS, TABLE_RUNS

__all__ = [
    "EVAL_TOKENS_MAX",
    "SLOW_ROWS",
    "TABLE_DEFAULT",
    "TABLE_PPL_TOKENS",
    "TABLE_RUNS",
    "calibration_ids",
    "decoder_blocks",
    "structured_shape",
    "unit_params",
]

# --- pruning (pruning.py) ---
#   pruning.py           unstructured magnitude and Wanda (|W_ij| * ||X_j||_2 per output row), calibration norms
#   structured.py        structured pruning: heads / KV groups and MLP channels sliced out, config edited, saved
#   pruning_run.py       the page's job: perplexity vs sparsity, decode speed, LoRA recovery of the structured copy
#   pruning_variants.py  the table rows prune-magnitude-50, prune-wanda-50, prune-structured-30 (registered with
#                        the quantization harness when it is imported)
from backends.compression.pruning import (
    InputStats,
    PruneReport,
    block_linears,
    calibration_stats,
    input_sq_norms,
    input_stats,
    prunable_params,
    prune_rows_,
    prune_unstructured_,
    pruned_copy,
    row_pruned_count,
    sparsity_of,
    wanda_scores,
)
from backends.compression.pruning_run import METHODS as PRUNING_METHODS
from backends.compression.pruning_run import SPARSITIES as PRUNING_SPARSITIES
from backends.compression.pruning_run import PruningCurve, pruning_curve_job, recover_structured
from backends.compression.pruning_variants import SPECS as PRUNING_SPECS
from backends.compression.structured import (
    StructuredReport,
    make_plan,
    prune_structured_,
    structured_copy,
    unit_scores,
)
from backends.compression.structured import load as load_pruned
from backends.compression.structured import save as save_pruned

__all__ += [
    "PRUNING_METHODS",
    "PRUNING_SPARSITIES",
    "PRUNING_SPECS",
    "InputStats",
    "PruneReport",
    "PruningCurve",
    "StructuredReport",
    "block_linears",
    "calibration_stats",
    "input_sq_norms",
    "input_stats",
    "load_pruned",
    "make_plan",
    "prunable_params",
    "prune_rows_",
    "prune_structured_",
    "prune_unstructured_",
    "pruned_copy",
    "pruning_curve_job",
    "recover_structured",
    "row_pruned_count",
    "save_pruned",
    "sparsity_of",
    "structured_copy",
    "unit_scores",
    "wanda_scores",
]
# --- end pruning ---

# --- distillation (distill.py) ---
#   distill_teacher.py  the windows (the held-out text's middle) and SmolLM2's soft targets (top-k + the rest's
#                       mass at each temperature), computed once and cached on disk
#   distill_loss.py     kd_loss (full vocabulary), kd_loss_topk (top-k + bucket), fused_kd_loss (its fused gradient)
#   distill.py          the page's job: a scratch GPT on SmolLM2's vocabulary trained on hard labels and on the
#                       teacher's soft targets, same steps and data, both curves; exported by path (distill-kd/-hard)
from backends.compression.distill import FOLDERS as DISTILL_FOLDERS  # noqa: E402
from backends.compression.distill import STUDENTS as DISTILL_STUDENTS  # noqa: E402
from backends.compression.distill import TEMPERATURES as DISTILL_TEMPERATURES  # noqa: E402
from backends.compression.distill import (  # noqa: E402
    DistillResult,
    DistillSettings,
    distill_job,
    window_loss,
)
from backends.compression.distill import student_folder as distill_folder  # noqa: E402
from backends.compression.distill_loss import fused_kd_loss, kd_loss, kd_loss_topk  # noqa: E402
from backends.compression.distill_teacher import TeacherTargets  # noqa: E402
from backends.compression.distill_teacher import soft_targets as distill_soft_targets  # noqa: E402
from backends.compression.distill_teacher import teacher_targets as distill_teacher_targets  # noqa: E402
from backends.compression.distill_teacher import windows as distill_windows  # noqa: E402

__all__ += [
    "DISTILL_FOLDERS",
    "DISTILL_STUDENTS",
    "DISTILL_TEMPERATURES",
    "DistillResult",
    "DistillSettings",
    "TeacherTargets",
    "distill_folder",
    "distill_job",
    "distill_soft_targets",
    "distill_teacher_targets",
    "distill_windows",
    "fused_kd_loss",
    "kd_loss",
    "kd_loss_topk",
    "window_loss",
]
# --- end distillation ---

# --- calibrated 4-bit (gptq.py, autoround_variant.py) ---
#   gptq.py              GPTQ by hand (one layer: gptq_linear; the model block by block: gptq_model) and
#                        round-to-nearest in the same int4 group format (rtn_linear)
#   gptq_layer.py        one layer of a real model, GPTQ against RTN, for the page (compare_layer_job)
#   autoround_variant.py the table rows rtn-w4g64, gptq-w4g64, autoround-w4g64 (auto-round 0.16.1)
from backends import quantization as _q  # noqa: E402
from backends.compression.autoround_variant import SPECS as GPTQ_SPECS  # noqa: E402
from backends.compression.autoround_variant import build_autoround, calibration_for, format_bytes  # noqa: E402
from backends.compression.gptq import (  # noqa: E402
    gptq_linear,
    gptq_model,
    hessian,
    output_error,
    quantized_names,
    rtn_linear,
)
from backends.compression.gptq_layer import compare_layer, compare_layer_job  # noqa: E402

_q.register(GPTQ_SPECS)
__all__ += [
    "GPTQ_SPECS",
    "build_autoround",
    "calibration_for",
    "compare_layer",
    "compare_layer_job",
    "format_bytes",
    "gptq_linear",
    "gptq_model",
    "hessian",
    "output_error",
    "quantized_names",
    "rtn_linear",
]
# --- end calibrated 4-bit ---

# --- QAT and static int8 (qat.py, static_int8.py) ---
#   qat.py           torchao QAT (fake-quant fine-tune, then convert) vs PTQ vs fine-tune + PTQ, the demo GPT
#   static_int8.py   the table row onnx-static-int8: ONNX Runtime quantize_static (QDQ, MinMax calibration)
from backends import quantization as _q  # noqa: E402
from backends.compression.qat import (  # noqa: E402
    QATReport,
    QATRow,
    QATSettings,
    convert,
    fake_quantize,
    fine_tune,
    on_grid,
    prepare,
    ptq,
    ptq_config,
    qat_job,
)
from backends.compression.qat import summary as qat_summary  # noqa: E402
from backends.compression.static_int8 import SPECS as STATIC_INT8_SPECS  # noqa: E402
from backends.compression.static_int8 import calibration_batches, fixed_scales, quantize_static_int8  # noqa: E402

_q.register(STATIC_INT8_SPECS)
__all__ += [
    "STATIC_INT8_SPECS",
    "QATReport",
    "QATRow",
    "QATSettings",
    "calibration_batches",
    "convert",
    "fake_quantize",
    "fine_tune",
    "fixed_scales",
    "on_grid",
    "prepare",
    "ptq",
    "ptq_config",
    "qat_job",
    "qat_summary",
    "quantize_static_int8",
]
# --- end QAT and static int8 ---
