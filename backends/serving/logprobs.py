"""Per-token log-probabilities in OpenAI's two shapes, with each token's true bytes.

A byte-level BPE tokenizer (SmolLM2's, GPT-2's) stores every token as a string over a 256-character
alphabet that stands for the bytes 0-255 (`backends.tokenizers.byte_level_decoder`). A token may hold
only part of a UTF-8 character (an emoji is often three or four tokens), so decoding it alone gives U+FFFD; mapping its
alphabet string back gives its real bytes, and concatenating every token's bytes rebuilds the
answer's UTF-8 exactly. Added tokens (`<|im_end|>`) are their own text; a tokenizer that is not
byte-level falls back to the UTF-8 of the token decoded alone.

Token strings follow OpenAI: in chat, a token that is not whole UTF-8 shows its stray bytes escaped
(`"\\xf0\\x9f\\x92"`, as OpenAI's logprobs cookbook shows) and `bytes` tells the truth; in legacy
completions, which have no `bytes` field, such a token is written `"bytes:\\xf0\\x9f\\x92"` (every
byte escaped), as OpenAI's completions API did, so the bytes can be read back from the string.
"""

from __future__ import annotations

import functools
import math

from backends.decoding import TokenStep
from backends.tokenizers import byte_level_decoder, is_byte_level

BYTES_PREFIX = "bytes:"


def token_bytes(tokenizer, token_id: int) -> bytes:
    """The raw bytes `token_id` adds to the output (part of a character for some tokens)."""
    added = getattr(tokenizer, "added_tokens_decoder", {}).get(token_id)
    if added is not None:
        return str(added).encode("utf-8")
    if is_byte_level(tokenizer):
        alphabet = byte_level_decoder()
        piece = tokenizer.convert_ids_to_tokens(token_id)
        if isinstance(piece, str) and all(c in alphabet for c in piece):
            return bytes(alphabet[c] for c in piece)
    return tokenizer.decode([token_id]).encode("utf-8")


def chat_token(raw: bytes) -> str:
    """A chat token's string: its text, with bytes that are not whole UTF-8 escaped as \\xNN."""
    return raw.decode("utf-8", errors="backslashreplace")


def legacy_token(raw: bytes) -> str:
    """A legacy completions token: its text, or `bytes:\\xNN...` when it is not whole UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return BYTES_PREFIX + "".join(f"\\x{b:02x}" for b in raw)


def logprob_of(prob: float) -> float:
    return math.log(prob) if prob > 0 else -9999.0  # OpenAI's own floor for "practically never"


def chat_logprobs(tokenizer, steps: list[TokenStep], top_n: int) -> dict:
    """OpenAI's `choices[].logprobs` for chat: one entry per token with its top alternatives."""

    def entry(token_id: int, logprob: float) -> dict:
        raw = token_bytes(tokenizer, token_id)
        return {"token": chat_token(raw), "logprob": logprob, "bytes": list(raw)}

    return {
        "content": [
            entry(s.token_id, s.logprob)
            | {"top_logprobs": [entry(a.token_id, logprob_of(a.prob)) for a in s.top[:top_n]]}
            for s in steps
        ],
        "refusal": None,
    }


def completion_logprobs(tokenizer, steps: list[TokenStep], top_n: int, offset: int = 0) -> dict:
    """The legacy completions shape: parallel lists of tokens, logprobs, top alternatives and text offsets."""
    offsets, at = [], offset
    for s in steps:
        offsets.append(at)
        at += len(s.piece)
    label = functools.partial(_legacy_label, tokenizer)
    return {
        "tokens": [label(s.token_id) for s in steps],
        "token_logprobs": [s.logprob for s in steps],
        "top_logprobs": [{label(a.token_id): logprob_of(a.prob) for a in s.top[:top_n]} for s in steps],
        "text_offset": offsets,
    }


def _legacy_label(tokenizer, token_id: int) -> str:
    return legacy_token(token_bytes(tokenizer, token_id))
