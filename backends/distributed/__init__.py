"""Training the scratch GPT on several processes: DDP and FSDP with PyTorch's own engine, and a
calculator of the memory one rank needs.

worker.py  one rank, started by torchrun (`python -m torch.distributed.run --standalone
           --nproc_per_node N -m backends.distributed.worker --out DIR ...`): each rank trains on its
           slice of the same global batch (one seeded generator), DDP (gradients all-reduced) or
           FSDP2 `fully_shard` (parameters, gradients and optimizer state sharded); gloo on CPU,
           NCCL on CUDA; one torch thread per rank; a JSONL log per rank
launch.py  the background job: starts torchrun in its own process group, tails the rank logs into
           job events ("start", "rank_step", "memory", "run_end", "compare", "end"), stop kills the
           group, a failure carries torchrun's stderr; the 1-process run at the same global batch
memory.py  what a rank really holds: bytes of its local tensors (a DTensor's shard), and the bytes
           saved for backward (saved_tensors_hooks)
calc.py    the calculator: parameter count from a published config, bytes per rank for DDP and
           ZeRO-1/2/3 in fp32 or bf16 mixed precision, activations (exact for our GPT, Korthikanti
           et al. 2022 for Llama-style presets); presets SmolLM2-135M to Llama-3-70B
"""

from .calc import (
    DTYPES,
    PRESETS,
    STRATEGIES,
    MemoryEstimate,
    ModelShape,
    activation_bytes,
    gpt_shape,
    local_numel,
    memory_per_rank,
    param_count,
    param_shapes,
    shard_rows,
)
from .launch import RunFailed, RunSpec, distributed_job, runs_root, torchrun_command
from .memory import counting_saved, state_bytes

__all__ = [
    "DTYPES",
    "PRESETS",
    "STRATEGIES",
    "MemoryEstimate",
    "ModelShape",
    "RunFailed",
    "RunSpec",
    "activation_bytes",
    "counting_saved",
    "distributed_job",
    "gpt_shape",
    "local_numel",
    "memory_per_rank",
    "param_count",
    "param_shapes",
    "runs_root",
    "shard_rows",
    "state_bytes",
    "torchrun_command",
]
