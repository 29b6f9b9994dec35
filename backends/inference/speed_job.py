"""The Speed tab's measurements as one background job: the roofline, prefill vs decode timings, the decode
paths side by side and a decode step's profile on each path. Reports each part as it is done."""

from __future__ import annotations

from backends.core.scheduler import shared_scheduler
from backends.inference.fast_decode import available_paths, decode_paths, prompt_ids_of
from backends.inference.roofline import (
    decode_ms_per_token,
    machine_bandwidth,
    machine_flops,
    prefill_ms_per_token,
    roofline,
)
from backends.inference.step_profile import profile_steps

PROMPT = "The history of the printing press began"
MODEL = "smollm2-135m-instruct"


def speed_job(
    ctx,
    model_key: str = MODEL,
    prompt: str = PROMPT,
    n_tokens: int = 32,
    prompt_lengths: tuple[int, ...] = (16, 64, 128, 256),
    out_lengths: tuple[int, ...] = (32, 64, 128),
) -> dict:
    """fn(ctx, ...) for `shared_runner().submit`; returns (and reports as `part`) roofline, prefill, decode,
    paths and profile."""
    from backends.models.cache import shared_cache

    loaded = shared_cache().get(model_key)
    result = {}

    def part(progress: float, name: str, value) -> None:
        result[name] = value
        ctx.report(progress, name, part=name, value=value)

    ctx.report(0.02, "roofline")
    with shared_scheduler().turn("inference.roofline", exclusive=True):  # alone, or the copy shares the memory bus
        bandwidth, flops = machine_bandwidth(), machine_flops()
    roof = roofline(loaded.model, bandwidth, flops)
    part(0.1, "roofline", roof.as_dict())
    ctx.check_stop()
    part(0.3, "prefill", prefill_ms_per_token(loaded, prompt_lengths))
    ctx.check_stop()
    part(
        0.5,
        "decode",
        {
            "fast": decode_ms_per_token(loaded, out_lengths, fast=True),
            "transformers": decode_ms_per_token(loaded, out_lengths, fast=False),
        },
    )
    ctx.check_stop()
    rows = decode_paths(loaded, prompt, n_tokens, repeats=3, bound=roof.decode_bound)
    part(0.8, "paths", rows)
    ctx.check_stop()
    ids = prompt_ids_of(loaded, prompt)
    profiles = {name: profile_steps(make(loaded, ids), ids) for name, make in available_paths(loaded).items()}
    part(1.0, "profile", profiles)
    return result
