"""Speculative decoding measured: the shipped prompt set, speed-up against plain greedy in the same
process (same threads, same loop), and the background job the page runs.

Speed-up figures use DECODE time: everything after the prompt's forward pass (which both loops share
and which gives the first token). `lookup_speedup` reports the median over prompts of
plain / speculative decode time, and the ratio of the summed times beside it.
"""

from __future__ import annotations

import json
import statistics
from functools import cache

import torch

from backends.core.paths import ASSETS
from backends.decoding import encode_prompt
from backends.inference.spec_draft import layer_draft
from backends.inference.speculative import DraftProposer, PromptLookup, SpecRun, iter_speculative, plain_greedy

MODEL = "smollm2-135m-instruct"
PROMPTS_FILE = ASSETS / "inference" / "lookup_prompts.json"
METHODS = ("prompt_lookup", "draft")
DEFAULT_K = 4  # proposals per step
DEFAULT_DRAFT_LAYERS = 24  # the layer-draft default, picked by measured speed-up (spec_draft.py's docstring)


@cache
def _prompt_file() -> tuple:
    data = json.loads(PROMPTS_FILE.read_text(encoding="utf-8"))
    return tuple(data["prompts"])


def lookup_prompts() -> list[dict]:
    """The shipped prompts: dicts with id, lang, title, text (answers that copy spans of the prompt)."""
    return [dict(p) for p in _prompt_file()]


def make_proposer(loaded, method: str, draft_layers: int = DEFAULT_DRAFT_LAYERS, max_ngram: int = 3):
    if method == "prompt_lookup":
        return PromptLookup(max_ngram)
    if method == "draft":
        return DraftProposer(layer_draft(loaded, draft_layers))
    raise ValueError(f"method={method!r} is invalid: pick one of {', '.join(METHODS)}.")


def compare(plain: SpecRun, spec: SpecRun) -> dict:
    """The numbers the page and the bench show for one prompt."""
    return {
        "identical": spec.tokens == plain.tokens,
        "tokens": len(spec.tokens),
        "accept_rate": spec.accept_rate,
        "accepted": spec.accepted,
        "proposed": spec.proposed,
        "forward_passes": spec.forward_passes,
        "plain_forward_passes": plain.forward_passes,
        "plain_decode_s": plain.decode_s,
        "spec_decode_s": spec.decode_s,
        "plain_tokens_per_s": plain.tokens_per_s(),
        "spec_tokens_per_s": spec.tokens_per_s(),
        "speedup": plain.decode_s / spec.decode_s if spec.decode_s > 0 else float("nan"),
        "threads": torch.get_num_threads(),
    }


def spec_run(
    loaded,
    prompt: str,
    method: str = "prompt_lookup",
    k: int = DEFAULT_K,
    max_new_tokens: int = 96,
    draft_layers: int = DEFAULT_DRAFT_LAYERS,
    chat: bool = True,
) -> dict:
    """One prompt, plain greedy then speculative: accept_rate, speedup (decode time), identical, and both runs."""
    ids = encode_prompt(loaded, prompt, chat=chat)
    plain = plain_greedy(loaded, ids, max_new_tokens)
    spec = SpecRun(prompt_ids=ids, method=method, k=k, threads=torch.get_num_threads())
    spec.steps.extend(iter_speculative(loaded, ids, make_proposer(loaded, method, draft_layers), k, max_new_tokens))
    return {**compare(plain, spec), "plain": plain, "spec": spec}


def _summary(rows: list[dict]) -> dict:
    plain = sum(r["plain_decode_s"] for r in rows)
    spec = sum(r["spec_decode_s"] for r in rows)
    proposed = sum(r["proposed"] for r in rows)
    return {
        "speedup": statistics.median(r["speedup"] for r in rows),
        "speedup_kind": "median over prompts of plain / speculative decode time",
        "total_speedup": plain / spec if spec > 0 else float("nan"),
        "accept_rate": sum(r["accepted"] for r in rows) / proposed if proposed else float("nan"),
        "identical": all(r["identical"] for r in rows),
        "prompts": rows,
    }


def lookup_speedup(loaded, prompts=None, max_new_tokens: int = 96, k: int = DEFAULT_K) -> dict:
    """Prompt lookup vs plain greedy over `prompts` (texts or the shipped dicts; default: the shipped set).

    speedup = median over prompts of plain decode time / lookup decode time; total_speedup = the ratio
    of the summed times; identical = every prompt's tokens equal plain greedy's."""
    return method_speedup(loaded, "prompt_lookup", prompts, max_new_tokens, k)


def method_speedup(
    loaded, method: str, prompts=None, max_new_tokens: int = 96, k: int = DEFAULT_K, draft_layers=DEFAULT_DRAFT_LAYERS
) -> dict:
    prompts = lookup_prompts() if prompts is None else prompts
    rows = []
    for p in prompts:
        text = p["text"] if isinstance(p, dict) else p
        got = spec_run(loaded, text, method, k, max_new_tokens, draft_layers)
        rows.append({key: v for key, v in got.items() if key not in ("plain", "spec")})
    return {**_summary(rows), "method": method, "k": k, "draft_layers": draft_layers if method == "draft" else None}


def step_record(step) -> dict:
    """A SpecStep as plain data for a job event."""
    return {
        "index": step.index,
        "proposed": step.proposed,
        "proposed_text": step.proposed_text,
        "accepted": step.accepted,
        "tokens": step.tokens,
        "pieces": step.pieces,
        "propose_s": step.propose_s,
        "verify_s": step.verify_s,
    }


def load_model(model_key: str = MODEL):
    from backends.models.cache import shared_cache

    return shared_cache().get(model_key)


def spec_job(
    ctx,
    prompt: str,
    method: str,
    k: int = DEFAULT_K,
    max_new_tokens: int = 96,
    draft_layers: int = DEFAULT_DRAFT_LAYERS,
    model_key: str = MODEL,
) -> dict:
    """The page's job: the speculative run step by step (one event per step), then plain greedy in the same
    thread for the comparison. Returns {"spec": SpecRun, "plain": SpecRun, **compare(...)}."""
    loaded = load_model(model_key)
    prompt_ids = encode_prompt(loaded, prompt, chat=True)
    spec = SpecRun(prompt_ids=list(prompt_ids), method=method, k=k, threads=torch.get_num_threads())
    proposer = make_proposer(loaded, method, draft_layers)
    for step in iter_speculative(loaded, prompt_ids, proposer, k, max_new_tokens):
        spec.steps.append(step)
        ctx.report(0.5 * len(spec.tokens) / max_new_tokens, "speculative", kind="step", **step_record(step))
        ctx.check_stop()
    plain = SpecRun(prompt_ids=list(prompt_ids), threads=torch.get_num_threads())
    for step in iter_speculative(loaded, prompt_ids, None, 0, max_new_tokens):
        plain.steps.append(step)
        ctx.report(0.5 + 0.5 * len(plain.tokens) / max_new_tokens, "greedy", kind="plain", n=len(plain.tokens))
        ctx.check_stop()
    return {
        "spec": spec,
        "plain": plain,
        "draft_layers": draft_layers if method == "draft" else None,
        **compare(plain, spec),
    }
