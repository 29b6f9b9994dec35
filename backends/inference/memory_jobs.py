"""The memory tab's background jobs (backends.core.jobs): the cache growing with the prompt, dynamic vs
static decoding, the quantized cache's perplexity, window vs sinks. Each model step takes its turn in the
shared compute queue; the model is the shared SmolLM2-135M-Instruct, only read."""

from __future__ import annotations

from contextlib import contextmanager

from backends.core.scheduler import shared_scheduler
from backends.inference.cache_variants import dynamic_vs_static
from backends.inference.kv_memory import cache_growth
from backends.inference.kv_quant import quantized_cache_ppl
from backends.inference.sinks import window_sinks_ppl

MODEL = "smollm2-135m-instruct"
LABEL = "inference.memory"


def load_model():
    from backends.models.cache import shared_cache

    return shared_cache().get(MODEL)


@contextmanager
def _turn():
    with shared_scheduler().turn(LABEL):
        yield


def growth_job(ctx, max_tokens: int = 1024, step: int = 64) -> list[dict]:
    loaded = load_model()
    with _turn():
        return cache_growth(loaded, max_tokens, step, on_step=lambda rows: ctx.report(rows[-1]["tokens"] / max_tokens))


def variants_job(ctx, window: int = 256, sinks: int = 4) -> dict:
    """Dynamic vs static, window vs sinks, int8 and int4 caches: one job, each model step in its own turn."""
    loaded = load_model()
    out: dict = {}
    ctx.report(0.0, "decode")
    out["decode"] = dynamic_vs_static(loaded, turn=_turn)
    ctx.check_stop()
    ctx.report(0.1, "sinks", part="decode")
    out["sinks"] = window_sinks_ppl(loaded, window=window, sinks=sinks, turn=_turn)
    ctx.check_stop()
    ctx.report(0.2, "kvq", part="sinks")
    reference = None
    for i, bits in enumerate((8, 4)):

        def progress(done, total, i=i, bits=bits):
            ctx.report(0.3 + 0.35 * (i + done / total), f"int{bits}")

        reference = out[f"int{bits}"] = quantized_cache_ppl(
            loaded, bits=bits, on_chunk=progress, should_stop=lambda: ctx.stopped, turn=_turn, reference=reference
        )
        ctx.check_stop()
    ctx.report(1.0, "done", part="kvq")
    return out
