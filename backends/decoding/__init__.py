"""Decoding strategies on a real causal LM, one token at a time, observable at every step.

One concept a file:
  config.py       `DecodingConfig` (frozen, validated, JSON and `model.generate` kwargs), `PRESETS`
  steps.py        what a step is made of: `TokenStep`, `encode_prompt` (`PromptError`), one forward pass on a
                  KV cache, the text a token adds (shared by every loop below)
  fast_step.py    that forward pass written out by hand for Llama models (`FastCache`, `fast_logits`): the
                  same logits as transformers, without its per-step bookkeeping (greedy and sampling loops)
  sampling.py     the hand-written sampler (penalties, temperature, top-k/p, min-p, typical-p)
  loop.py         `generate_stream`, `branch`, `stream_columns` (`take_turns`), `distribution_at`
  beam_search.py  beam search by hand, so the tree of kept, finished and dropped beams is visible
  contrastive.py  contrastive search, from the paper
  metrics.py      perplexity, distinct-n, repetition, KV cache on/off
  runs.py         `run_record` / `load_run`: a run as JSON, and back
  remote.py       a remote server's streamed tokens as `TokenStep`s, and their metrics

Loops built on this one (backends/structured's grammar-guided loop) use its parts: `next_token_logits`,
`process_logits`, `pick_token`, `token_step`, `TextTracker`, `inference_steps`, `new_cache`.

Equivalence with transformers (tested in tests/backends/test_decoding.py): greedy,
sampling (same seed) and beam search give the tokens `model.generate` gives. Contrastive
search left transformers' core in version 5 (it is a hub `custom_generate` repo now, which
needs the network and trust_remote_code), so it is written here from the paper's definition
and tested against a brute-force version.

Models come from the shared cache and are shared by all sessions: nothing here modifies
them (no training mode, no hooks, no config or generation_config edits). Every loop keeps
its own KV cache (`DynamicCache`; `FastCache` for greedy and sampled Llama runs: `new_cache(loaded,
logits_only=True)`, off with LLMPG_FAST_DECODE=0), so one token costs one forward pass of one position.

Notes (how it works, what is left out, measured figures): docs/decoding.md.
"""

from backends.decoding.beam_search import (
    BeamResult,
    BeamStep,
    beam_search,
    iter_beam_search,
)
from backends.decoding.config import (
    MAX_BEAMS,
    MAX_NEW_TOKENS,
    PRESETS,
    STRATEGIES,
    DecodingConfig,
)
from backends.decoding.fast_step import FastCache, LlamaWeights, fast_logits, supports_fast
from backends.decoding.loop import (
    ColumnEvent,
    branch,
    distribution_at,
    generate_stream,
    stream_columns,
)
from backends.decoding.remote import remote_columns, remote_metrics, token_steps
from backends.decoding.runs import RunOutput, RunRecord, load_run, run_record
from backends.decoding.sampling import FILTERED, pick_token, process_logits
from backends.decoding.steps import (
    Alternative,
    Candidate,
    PromptError,
    StepDistribution,
    TextTracker,
    TokenStep,
    context_limit,
    encode_prompt,
    eos_ids,
    fast_decode_enabled,
    fast_decode_off,
    inference_steps,
    model_device,
    new_cache,
    new_token_budget,
    next_token_logits,
    token_step,
)

__all__ = [
    "FILTERED",
    "MAX_BEAMS",
    "MAX_NEW_TOKENS",
    "PRESETS",
    "STRATEGIES",
    "Alternative",
    "BeamResult",
    "BeamStep",
    "Candidate",
    "ColumnEvent",
    "DecodingConfig",
    "FastCache",
    "LlamaWeights",
    "PromptError",
    "RunOutput",
    "RunRecord",
    "StepDistribution",
    "TextTracker",
    "TokenStep",
    "beam_search",
    "branch",
    "context_limit",
    "distribution_at",
    "encode_prompt",
    "eos_ids",
    "fast_decode_enabled",
    "fast_decode_off",
    "fast_logits",
    "generate_stream",
    "inference_steps",
    "iter_beam_search",
    "load_run",
    "model_device",
    "new_cache",
    "new_token_budget",
    "next_token_logits",
    "pick_token",
    "process_logits",
    "remote_columns",
    "remote_metrics",
    "run_record",
    "stream_columns",
    "supports_fast",
    "token_step",
    "token_steps",
]
