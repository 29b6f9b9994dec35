"""Token labels for attention axes: special tokens, and byte-level pieces shown as the text
they stand for (a character split over several tokens gets subscripts)."""

from __future__ import annotations

import numpy as np

from backends.tokenizers import byte_level_decoder, is_byte_level

MAX_TOKEN_CHARS = 12


def special_mask(tokenizer, ids: list[int]) -> np.ndarray:
    """True for structural tokens ([CLS], [SEP], BOS, EOS, padding); [UNK] and [MASK] count as content."""
    content = {getattr(tokenizer, "unk_token_id", None), getattr(tokenizer, "mask_token_id", None)}
    special = set(tokenizer.all_special_ids) - content
    return np.isin(np.asarray(ids), list(special)) if special else np.zeros(len(ids), dtype=bool)


def _utf8_length(lead: int) -> int:
    """How many bytes the UTF-8 character starting with this byte takes."""
    return 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4


_PART = "₁₂₃₄"


def _byte_level_labels(pieces: list[str]) -> list[str]:
    """Decode byte-level BPE pieces. A character split over several tokens (common for Chinese)
    is shown on each of them with a part number: 我₁ 我₂. A stray byte shows as \\xNN."""
    table = byte_level_decoder()
    raw = [bytes(table[c] for c in p) if p and all(c in table for c in p) else p.encode() for p in pieces]
    data = b"".join(raw)
    chars, i = [], 0  # (start, end, text) for each character of the whole text
    while i < len(data):
        n = _utf8_length(data[i])
        try:
            text = data[i : i + n].decode("utf-8")
        except UnicodeDecodeError:
            n, text = 1, f"\\x{data[i]:02x}"
        chars.append((i, i + n, text))
        i += n
    labels, start, first, parts_seen = [], 0, 0, {}
    for token in raw:
        end = start + len(token)
        while first < len(chars) and chars[first][1] <= start:
            first += 1
        label, c = "", first
        while c < len(chars) and chars[c][0] < end:
            cs, ce, text = chars[c]
            if start <= cs and ce <= end:
                label += text
            else:  # only part of this character's bytes are in this token
                parts_seen[cs] = parts_seen.get(cs, 0) + 1
                label += text + _PART[min(parts_seen[cs], 4) - 1]
            c += 1
        labels.append(label)
        start = end
    return labels


def readable_tokens(tokenizer, ids: list[int], max_chars: int = MAX_TOKEN_CHARS) -> list[str]:
    """Short labels: bytes decoded, spaces as '␣', newlines as '↵', split characters as 我₁ 我₂."""
    pieces = [str(p) for p in tokenizer.convert_ids_to_tokens(ids)]
    if is_byte_level(tokenizer):
        pieces = _byte_level_labels(pieces)
    out = []
    for piece in pieces:
        piece = piece.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍")
        out.append(piece if len(piece) <= max_chars else piece[: max_chars - 1] + "…")
    return out
