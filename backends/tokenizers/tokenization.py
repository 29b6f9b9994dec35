"""What the tokenizer page does with a tokenizer: `tokenize`, `token_strings`, `compare`,
`chat_template_tokens`, `batch_encode` and `decode_upload`.

The tokenizers themselves (which ones exist, how each is loaded, the per-process cache) are in
backends/tokenizers/zoo.py; `TOKENIZERS` and `get_tokenizer` are imported here too, so the page
needs one module.

Long texts: the hot path (`tokenize`) only encodes; per-token bytes and readable strings
are computed on first use, so a 5 MB paste costs one encode, and a page that shows 500
tokens computes 500 strings (`Tokenized.rows`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from backends.core.text_files import decode_upload as decode_upload  # part of this module's API for the page
from backends.models.registry import ModelNotAvailable
from backends.tokenizers.engines import HFTok, Tok
from backends.tokenizers.zoo import TOKENIZERS, get_tokenizer

# --- one text, one tokenizer -----------------------------------------------------------


@dataclass
class TokenRow:
    index: int
    id: int
    string: str  # readable form (see Tok.token_str)
    piece: bytes  # the token's raw bytes
    special: bool
    unknown: bool


@dataclass
class Tokenized:
    """One text through one tokenizer. Only `ids` is computed eagerly; the per-token lists
    (pieces, strings, special, unknown, partial_utf8) and `round_trips` are computed on first
    access, so a 5 MB text costs one encode until someone looks at its tokens."""

    tokenizer: str
    label: str
    text: str = field(repr=False)
    ids: list[int] = field(repr=False)
    n_chars: int
    n_bytes: int
    tok: Tok = field(repr=False, compare=False)

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    @property
    def chars_per_token(self) -> float:
        return self.n_chars / len(self.ids) if self.ids else 0.0

    @property
    def bytes_per_token(self) -> float:
        return self.n_bytes / len(self.ids) if self.ids else 0.0

    @functools.cached_property
    def pieces(self) -> list[bytes]:
        table = self.tok._bytes_table
        return [table[i] for i in self.ids]

    @functools.cached_property
    def strings(self) -> list[str]:
        table = self.tok._str_table
        return [table[i] for i in self.ids]

    @functools.cached_property
    def special(self) -> list[bool]:
        specials = self.tok.special_ids
        return [i in specials for i in self.ids]

    @functools.cached_property
    def unknown(self) -> list[bool]:
        unknown = self.tok.unknown_ids
        return [i in unknown for i in self.ids]

    @functools.cached_property
    def partial_utf8(self) -> list[bool]:
        """Tokens whose bytes are not whole UTF-8 characters (a character split across tokens)."""
        return [not _is_utf8(p) for p in self.pieces]

    @functools.cached_property
    def round_trips(self) -> bool:
        return self.tok.decode(self.ids) == self.text

    def rows(self, start: int = 0, stop: int | None = None) -> list[TokenRow]:
        """Per-token details for one page of tokens, without building the lists for the whole text."""
        tok = self.tok
        stop = len(self.ids) if stop is None else min(stop, len(self.ids))
        return [
            TokenRow(n, i, tok.token_str(i), tok.token_bytes(i), i in tok.special_ids, i in tok.unknown_ids)
            for n, i in zip(range(start, stop), self.ids[start:stop])
        ]


def _is_utf8(piece: bytes) -> bool:
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise ValueError(f"Text to tokenize must be a string, got {type(text).__name__}: {text!r:.80}")
    return text


def tokenize(key: str | Tok, text: str, add_special_tokens: bool = False) -> Tokenized:
    """Encode `text` with one tokenizer. Empty text gives zero tokens."""
    tok = get_tokenizer(key)
    text = _check_text(text)
    ids = tok.encode(text, add_special_tokens=add_special_tokens)
    return Tokenized(tok.name, tok.label, text, ids, len(text), len(text.encode("utf-8", "surrogatepass")), tok)


def token_strings(key: str | Tok, ids: Sequence[int]) -> list[str]:
    tok = get_tokenizer(key)
    return [tok.token_str(i) for i in ids]


def summary(t: Tokenized) -> dict:
    """One row of the comparison table for a text already tokenized."""
    return {
        "key": t.tokenizer,
        "tokenizer": t.label,
        "tokens": t.n_tokens,
        "chars_per_token": round(t.chars_per_token, 3),
        "bytes_per_token": round(t.bytes_per_token, 3),
        "round_trips": t.round_trips,
        "unknown": sum(t.unknown),
        "error": None,
    }


def compare(keys: Sequence[str | Tok], text: str) -> list[dict]:
    """One row per tokenizer for a comparison table. A tokenizer that cannot load gets a row
    with `error` set instead of failing the whole table."""
    rows = []
    for key in keys:
        try:
            rows.append(summary(tokenize(key, text)))
        except ModelNotAvailable as exc:
            name = key.name if isinstance(key, Tok) else str(key)
            rows.append(
                {
                    "key": name,
                    "tokenizer": name,
                    "tokens": None,
                    "chars_per_token": None,
                    "bytes_per_token": None,
                    "round_trips": None,
                    "unknown": None,
                    "error": str(exc),
                }
            )
    return rows


# --- chat templates ---------------------------------------------------------------------


class ChatTokens(NamedTuple):
    rendered: str  # the conversation as the template writes it
    ids: list[int]
    added: list[bool]  # True where the template added the token, False for the messages' own text


_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use marks around each message while rendering


def _check_messages(messages) -> list[dict]:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError(
            f"messages must be a non-empty list of {{'role': ..., 'content': ...}} dicts, got {messages!r:.80}"
        )
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"Each message needs a string 'role' and 'content', got {m!r:.80}")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _content_spans(
    tok: HFTok, messages: list[dict], rendered: str, add_generation_prompt: bool
) -> list[tuple[int, int]]:
    """Where each message's text sits in the rendered chat.

    Renders a second time with private-use marks around every message; if removing the marks
    gives the same chat, the marks are exact. Templates that edit the text (say `| trim`) fall
    back to finding each message's text in order.
    """
    marked = [{**m, "content": _OPEN + m["content"] + _CLOSE} for m in messages]
    spans, out, pos = [], [], 0
    try:
        with_marks = tok.render_chat(marked, add_generation_prompt)
    except Exception:  # a template that inspects the content may reject the marks
        with_marks = ""
    for part in re.split(f"([{_OPEN}{_CLOSE}])", with_marks):
        if part == _OPEN:
            start = pos
        elif part == _CLOSE:
            spans.append((start, pos))
        else:
            out.append(part)
            pos += len(part)
    if "".join(out) == rendered and len(spans) == len(messages):
        return spans
    spans, cursor = [], 0
    for m in messages:
        text = m["content"].strip()
        found = rendered.find(text, cursor) if text else -1
        if found >= 0:
            spans.append((found, found + len(text)))
            cursor = found + len(text)
    return spans


def chat_template_tokens(
    key: str | Tok, messages: list[dict], add_generation_prompt: bool = True, sanitize_control_tokens: bool = False
) -> ChatTokens:
    """Render a conversation with the tokenizer's chat template and mark the tokens it added.

    Encoded as transformers' `apply_chat_template(tokenize=True)` does: the whole chat at once,
    so special-token text typed inside a message becomes a real control token, unless
    `sanitize_control_tokens` (transformers' option of the same name) keeps it plain text.
    """
    tok = get_tokenizer(key)
    messages = _check_messages(messages)
    if not getattr(tok, "chat_template", None) or not hasattr(tok, "render_chat"):
        with_template = [s.key for s in TOKENIZERS if s.chat_template]
        raise ValueError(
            f"{tok.label!r} has no chat template available offline. Tokenizers with one: "
            f"{', '.join(with_template)} (and hub chat models when online)."
        )
    rendered = tok.render_chat(messages, add_generation_prompt)
    spans = _content_spans(tok, messages, rendered, add_generation_prompt)
    ids, token_spans = [], []
    segments = _chat_segments(tok, rendered, spans) if sanitize_control_tokens else [(0, len(rendered), False)]
    for start, end, as_text in segments:
        seg_ids, seg_spans = tok.encode_with_spans(rendered[start:end], ordinary=as_text)
        ids += seg_ids
        token_spans += [(start + a, start + b) for a, b in seg_spans]
    added = [not any(s <= a and b <= e for s, e in spans) for a, b in token_spans]
    return ChatTokens(rendered, ids, added)


def _chat_segments(tok: Tok, rendered: str, spans: list[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """Cut the chat around special-token text that a user typed, so it is encoded as text."""
    names = sorted((n for n in (tok.token_str(i) for i in tok.special_ids) if n), key=len, reverse=True)
    cuts = []
    if names:
        pattern = re.compile("|".join(map(re.escape, names)))
        for s, e in spans:
            cuts += [(m.start(), m.end()) for m in pattern.finditer(rendered, s, e)]
    segments, pos = [], 0
    for start, end in sorted(cuts):
        if start > pos:
            segments.append((pos, start, False))
        segments.append((start, end, True))
        pos = end
    if pos < len(rendered):
        segments.append((pos, len(rendered), False))
    return segments


# --- batches ----------------------------------------------------------------------------


@dataclass
class BatchEncoded:
    """A padded batch: every row as long as the longest; attention_mask is 0 on padding."""

    tokenizer: str
    ids: list[list[int]]
    attention_mask: list[list[int]]
    pad_id: int
    pad_token: str
    padding_side: str
    lengths: list[int]  # real tokens per row (after truncation)
    truncated: list[bool]
    pad_note: str = ""


def batch_encode(
    key: str | Tok,
    texts: Sequence[str],
    padding_side: str = "right",
    truncation_max: int | None = None,
    add_special_tokens: bool = True,
) -> BatchEncoded:
    """Encode several texts into one rectangle, as a model batch needs.

    HF tokenizers use the library's own padding/truncation. tiktoken has neither, so we pad
    with the end-of-text token (see tokenizer_zoo._TIKTOKEN_PAD) and cut on the right, like transformers'
    default truncation.
    """
    tok = get_tokenizer(key)
    if isinstance(texts, str):
        raise ValueError("batch_encode takes a list of texts, got a single string; wrap it in a list.")
    texts = [_check_text(t) for t in texts]
    if not texts:
        raise ValueError("batch_encode needs at least one text.")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
    if truncation_max is not None and int(truncation_max) < 1:
        raise ValueError(f"truncation_max must be at least 1 (or None for no truncation), got {truncation_max!r}.")
    full = [len(tok.encode(t, add_special_tokens)) for t in texts]
    note = tok.pad_note
    if tok.pad_id is None:
        note = f"{tok.label} has no padding or end token; padding uses id 0, hidden by the attention mask."
    if isinstance(tok, HFTok) and tok.pad_id is not None:
        encs = tok.batch(texts, padding_side, truncation_max, add_special_tokens)
        ids, mask = [e.ids for e in encs], [e.attention_mask for e in encs]
    else:
        ids, mask = _pad_by_hand(tok, texts, padding_side, truncation_max, add_special_tokens)
    lengths = [sum(m) for m in mask]
    pad_id = 0 if tok.pad_id is None else tok.pad_id
    return BatchEncoded(
        tok.name,
        ids,
        mask,
        pad_id,
        tok.token_str(pad_id),
        padding_side,
        lengths,
        [n > kept for n, kept in zip(full, lengths)],
        note,
    )


def _pad_by_hand(tok: Tok, texts, padding_side, truncation_max, add_special_tokens):
    rows = [tok.encode(t, add_special_tokens) for t in texts]
    if truncation_max is not None:
        rows = [r[: int(truncation_max)] for r in rows]
    width = max(len(r) for r in rows)
    pad = 0 if tok.pad_id is None else tok.pad_id
    ids, mask = [], []
    for r in rows:
        fill = width - len(r)
        if padding_side == "right":
            ids.append(r + [pad] * fill)
            mask.append([1] * len(r) + [0] * fill)
        else:
            ids.append([pad] * fill + r)
            mask.append([0] * fill + [1] * len(r))
    return ids, mask
