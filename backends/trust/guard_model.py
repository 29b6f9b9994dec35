"""The optional guard model: a safety classifier from the hub, when online and configured.

LLMPG_GUARD_MODEL names a hub id whose chat template carries its own safety policy and whose reply
starts with the verdict: Llama Guard 3 ("meta-llama/Llama-Guard-3-1B": "safe" / "unsafe\\nS1") or
Qwen3Guard ("Qwen/Qwen3Guard-Gen-0.6B": "Safety: Safe|Unsafe|Controversial"). ShieldGemma needs its
own prompt with a policy written out and is not supported. Loaded through the shared cache
(safetensors, no trust_remote_code), greedy, at most MAX_VERDICT_TOKENS new tokens. Offline, or not
configured, the check is "unavailable" and the pipeline goes on without it.
"""

from __future__ import annotations

import os
import re

from backends.trust.guard_types import FLAGGED, PASSED, UNAVAILABLE, CheckResult

GUARD_MODEL_ENV = "LLMPG_GUARD_MODEL"
MAX_VERDICT_TOKENS = 16
_UNSAFE = re.compile(r"^\s*(?:unsafe\b|safety:\s*(?:unsafe|controversial)\b)", re.IGNORECASE)
_SAFE = re.compile(r"^\s*(?:safe\b|safety:\s*safe\b)", re.IGNORECASE)


def guard_model_id() -> str | None:
    return (os.environ.get(GUARD_MODEL_ENV) or "").strip() or None


def _unavailable(detail: str, reason: str) -> CheckResult:
    return CheckResult("guard model", UNAVAILABLE, None, None, detail, {"reason": reason})


def parse_verdict(reply: str) -> str | None:
    """'flagged', 'pass' or None (a reply in neither of the two formats)."""
    if _UNSAFE.search(reply):
        return FLAGGED
    if _SAFE.search(reply):
        return PASSED
    return None


def model_check(text: str, stage: str = "input", prompt: str | None = None) -> CheckResult:
    hub_id = guard_model_id()
    if hub_id is None:
        return _unavailable(f"not configured: set {GUARD_MODEL_ENV} to a guard model's hub id", "not_configured")
    from backends.models.registry import is_online

    if not is_online():
        return _unavailable(f"{hub_id}: not available offline", "offline")
    from backends.decoding import DecodingConfig, generate_stream
    from backends.models.cache import shared_cache

    try:
        loaded = shared_cache().get(hub_id)
    except Exception as exc:  # noqa: BLE001 - gated repo, no safetensors...: the pipeline goes on without it
        return _unavailable(f"{hub_id}: {type(exc).__name__}: {exc}", "load_failed")
    turns = [{"role": "user", "content": text}]
    if stage == "output":
        turns = [{"role": "user", "content": prompt or ""}, {"role": "assistant", "content": text}]
    ids = loaded.tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    from backends.core.scheduler import shared_scheduler

    config = DecodingConfig(strategy="greedy", max_new_tokens=MAX_VERDICT_TOKENS)
    with shared_scheduler().turn("guard"):
        steps = list(generate_stream(loaded, ids, config))
    reply = "".join(s.piece for s in steps).strip()
    verdict = parse_verdict(reply)
    if verdict is None:
        return _unavailable(f"{hub_id} answered {reply[:80]!r}: not a verdict this check can read", "unreadable")
    score = steps[0].prob if steps else None  # probability of the verdict's first token
    return CheckResult("guard model", verdict, score, None, f"{hub_id}: {reply[:80]!r}", {"model": hub_id})
