"""Where one decode step's time goes, from torch.profiler: each aten operator's own time, grouped, and
what is left of the step's wall time outside every operator (Python, module calls, dispatch).

Groups by operator name: matmuls (the weights' matrix-vector products), attention (the SDPA kernel),
elementwise (RMSNorm's pow/mean/rsqrt, RoPE's multiplies and rotation, SiLU, the residual adds),
memory (copies, concatenations, slicing, the cache writes, the embedding lookup) and Python & dispatch
(the step's wall time minus every operator's own time).
"""

from __future__ import annotations

import statistics
import time

import torch

from backends.core.scheduler import shared_scheduler

GROUPS = ("matmul", "attention", "elementwise", "memory", "python")
MATMUL = {"aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::baddbmm"}
ELEMENTWISE = {
    "aten::mul", "aten::add", "aten::sub", "aten::div", "aten::div_", "aten::pow", "aten::mean", "aten::rsqrt",
    "aten::silu", "aten::neg", "aten::cos", "aten::sin", "aten::sum", "aten::softmax", "aten::_softmax",
    "aten::exp", "aten::mul_", "aten::add_", "aten::tril", "aten::ones",
}  # fmt: skip


def group_of(op: str) -> str:
    if op in MATMUL:
        return "matmul"
    if "attention" in op:
        return "attention"
    if op in ELEMENTWISE:
        return "elementwise"
    return "memory"


def profile_steps(stepper, prompt_ids: list[int], steps: int = 5, warmup: int = 8) -> dict:
    """Profile `steps` decode steps of `stepper` (a callable new_ids -> logits, see fast_decode) after a
    prefill and `warmup` steps; milliseconds per step in each group, and the step's wall time."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        with shared_scheduler().turn("inference.profile"):
            scores = stepper(torch.tensor([prompt_ids]))
        token = int(scores.argmax())
        for _ in range(warmup):
            token = int(stepper(torch.tensor([[token]])).argmax())
        walls = []
        with shared_scheduler().turn("inference.profile"), profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                started = time.perf_counter()
                token = int(stepper(torch.tensor([[token]])).argmax())
                walls.append(time.perf_counter() - started)
    ms = dict.fromkeys(GROUPS, 0.0)
    for event in prof.key_averages():
        if not event.key.startswith("aten::"):
            continue
        ms[group_of(event.key)] += event.self_cpu_time_total / 1000 / steps
    wall = sum(walls) * 1000 / steps
    ms["python"] = max(0.0, wall - sum(ms[g] for g in GROUPS if g != "python"))
    return {"ms": ms, "wall_ms": wall, "median_ms": statistics.median(walls) * 1000}
