"""Inference internals on a real model: what the KV cache holds, where decode time goes, speculative
decoding, batching, and the server's metrics.

One concept a file:
  batching.py     static vs continuous batching simulated over step costs measured on the real model,
                  and the paged KV cache the same run drives
  flash.py        FlashAttention's tiled online softmax by hand; PyTorch's SDPA kernels timed here
  server_load.py  a load generator (N streaming clients for S seconds) against an OpenAI-compatible
                  server, its /metrics (vLLM's names) scraped every second into chart points and
                  Prometheus' histogram_quantile
  speculative.py  greedy speculative decoding by hand on a KV cache: prompt lookup and a draft model
                  propose, one forward pass verifies, the cache is cropped back (`SpecStep`, `SpecRun`)
  spec_draft.py   the draft model stand-in: SmolLM2's first n layers + final norm + tied head, sharing
                  the cached model's tensors
  spec_bench.py   the shipped lookup prompts, speed-up vs plain greedy (`lookup_speedup`, `spec_run`), the job
  sampler.py      be the sampler: next-token bars, per-token log-probabilities, perplexity vs greedy
  roofline.py     this machine's copy bandwidth and matmul FLOP rate, the decode and prefill bounds, ms per
                  token of prefill vs decode on the real model
  fast_decode.py  one greedy decode step by several paths (transformers DynamicCache / StaticCache, the
                  hand-written pass the token loop uses), timed interleaved, tokens compared; the app loop's speedup
  step_profile.py a decode step's time by operator group (torch.profiler) and the Python & dispatch rest
  speed_job.py    the Speed tab's background job
  kv_memory.py    the KV cache formula (GQA included) vs the bytes a real DynamicCache holds; the crossover
                  context at which the cache outgrows the weights
  model_configs.py known models' config.json numbers as data (`KNOWN_MODELS`), any hub id's config
  long_text.py    the long English text the memory tab measures on
  cache_variants.py dynamic vs static cache: the same greedy tokens, ms per token, bytes
  kv_quant.py     int8/int4 KV cache (transformers' QuantizedCache, HQQ backend): bytes and perplexity
  sinks.py        sliding window vs attention sinks (StreamingLLM) by a 4D banded mask, per-token losses
  memory_jobs.py  the Memory tab's background jobs
"""

from .batching import (
    Request,
    SimResult,
    StepCosts,
    contiguous_reserved,
    costs_job,
    fit_costs,
    last_costs,
    make_requests,
    measure_step_costs,
    remember_costs,
    simulate,
    sweep,
)
from .cache_variants import dynamic_vs_static, greedy_decode
from .fast_decode import app_loop_speedup, decode_paths, llama_cpp_available
from .flash import (
    available_backends,
    kernels_job,
    measure_kernels,
    naive_attention,
    tiled_attention,
    traffic_bytes,
)
from .kv_memory import (
    KVShape,
    cache_bytes,
    cache_growth,
    crossover_tokens,
    kv_formula_bytes,
    kv_formula_error,
    kv_shape,
    loaded_params,
    loaded_weight_bytes,
    measured_cache_bytes,
    weights_bytes,
)
from .kv_quant import expected_ratio, quantized_bytes, quantized_cache, quantized_cache_ppl
from .long_text import long_text, text_ids
from .memory_jobs import growth_job, variants_job
from .model_configs import (
    DTYPE_BYTES,
    KNOWN_BY_NAME,
    KNOWN_MODELS,
    ConfigUnavailable,
    ModelShape,
    hub_config,
)
from .roofline import (
    Roofline,
    decode_ms_per_token,
    machine_bandwidth,
    machine_flops,
    prefill_ms_per_token,
    prompt_of,
    roofline,
)
from .sampler import (
    SamplerComparison,
    compare_with_greedy,
    next_token_bars,
    perplexity_of,
    token_logprobs,
)
from .server_load import (
    ClientRecord,
    Histo,
    LoadConfig,
    LoadResult,
    Point,
    Scrape,
    histogram_quantile,
    load_job,
    metric_table,
    parse_scrape,
    point,
)
from .sinks import band_mask, token_losses, window_sinks_ppl
from .spec_bench import (
    DEFAULT_DRAFT_LAYERS,
    DEFAULT_K,
    METHODS,
    load_model,
    lookup_prompts,
    lookup_speedup,
    make_proposer,
    method_speedup,
    spec_job,
    spec_run,
    step_record,
)
from .spec_draft import DRAFT_LAYERS, layer_draft, shares_weights
from .speculative import (
    DraftProposer,
    PromptLookup,
    SpecRun,
    SpecStep,
    accept_count,
    iter_speculative,
    plain_greedy,
    speculative_decode,
)
from .speed_job import speed_job
from .step_profile import GROUPS, profile_steps

__all__ = [
    "DEFAULT_DRAFT_LAYERS",
    "DEFAULT_K",
    "DRAFT_LAYERS",
    "DTYPE_BYTES",
    "GROUPS",
    "KNOWN_BY_NAME",
    "KNOWN_MODELS",
    "METHODS",
    "ClientRecord",
    "ConfigUnavailable",
    "DraftProposer",
    "Histo",
    "KVShape",
    "LoadConfig",
    "LoadResult",
    "ModelShape",
    "Point",
    "PromptLookup",
    "Request",
    "Roofline",
    "SamplerComparison",
    "Scrape",
    "SimResult",
    "SpecRun",
    "SpecStep",
    "StepCosts",
    "accept_count",
    "app_loop_speedup",
    "available_backends",
    "band_mask",
    "cache_bytes",
    "cache_growth",
    "compare_with_greedy",
    "contiguous_reserved",
    "costs_job",
    "crossover_tokens",
    "decode_ms_per_token",
    "decode_paths",
    "dynamic_vs_static",
    "expected_ratio",
    "fit_costs",
    "greedy_decode",
    "growth_job",
    "histogram_quantile",
    "hub_config",
    "iter_speculative",
    "kernels_job",
    "kv_formula_bytes",
    "kv_formula_error",
    "kv_shape",
    "last_costs",
    "layer_draft",
    "llama_cpp_available",
    "load_job",
    "load_model",
    "loaded_params",
    "loaded_weight_bytes",
    "long_text",
    "lookup_prompts",
    "lookup_speedup",
    "machine_bandwidth",
    "machine_flops",
    "make_proposer",
    "make_requests",
    "measure_kernels",
    "measure_step_costs",
    "measured_cache_bytes",
    "method_speedup",
    "metric_table",
    "naive_attention",
    "next_token_bars",
    "parse_scrape",
    "perplexity_of",
    "plain_greedy",
    "point",
    "prefill_ms_per_token",
    "profile_steps",
    "prompt_of",
    "quantized_bytes",
    "quantized_cache",
    "quantized_cache_ppl",
    "remember_costs",
    "roofline",
    "shares_weights",
    "simulate",
    "spec_job",
    "spec_run",
    "speculative_decode",
    "speed_job",
    "step_record",
    "sweep",
    "text_ids",
    "tiled_attention",
    "token_logprobs",
    "token_losses",
    "traffic_bytes",
    "variants_job",
    "weights_bytes",
    "window_sinks_ppl",
]
