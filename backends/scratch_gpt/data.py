"""Text to train on: the shipped corpora, or an upload (encoding detected, size-limited), a
character-level tokenizer, the train/validation split and random batches of windows."""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from dataclasses import dataclass

import torch

from backends.core.paths import ASSETS
from backends.core.text_files import decode_upload

CORPORA_DIR = ASSETS / "corpora"
# key -> (file, language)
CORPORA = {"shakespeare": ("shakespeare.txt", "en"), "tang_song": ("tang_song_poems.txt", "zh")}
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MIN_CHARS = 1000
MAX_VOCAB = 8000
MAX_SUBWORD_VOCAB = 16000  # the embedding and output layers grow with it
UNK = "\ufffd"  # id 0: any character the training text did not have


def load_corpus(key: str) -> str:
    if key not in CORPORA:
        raise ValueError(f"Unknown corpus {key!r}; expected one of {', '.join(CORPORA)}.")
    return (CORPORA_DIR / CORPORA[key][0]).read_text(encoding="utf-8")


def decode_text_upload(name: str, data: bytes) -> tuple[str, str | None]:
    """Text of an uploaded file and a note on its encoding; ValueError with the reason for anything unusable.

    UTF-8 and UTF-16 (with a byte-order mark) are read directly; anything else is detected with
    charset-normalizer (GB18030, Big5, Shift-JIS, cp1252...), and the note names what was found.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"{name!r} is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB.")
    if not data:
        raise ValueError(f"{name!r} is empty.")
    text, warning = decode_upload(data)
    if warning and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        from charset_normalizer import from_bytes

        matches = from_bytes(data)
        best = matches.best()
        # ties are common between Western code pages: prefer Windows-1252, the usual one
        tied = [m for m in matches if best is not None and (m.chaos, m.coherence) == (best.chaos, best.coherence)]
        best = next((m for m in tied if m.encoding == "cp1252"), best)
        if best is not None and best.encoding not in ("utf_8", "ascii"):
            text, warning = str(best), f"{name!r} is not UTF-8; it was read as {best.encoding}."
    if "\x00" in text or sum(1 for c in text[:10000] if ord(c) < 32 and c not in "\n\r\t") > 100:
        raise ValueError(f"{name!r} looks like a binary file, not text.")
    return check_text(text, name), warning


def check_text(text: str, name: str = "the text", characters: bool = True) -> str:
    """Normalised text, or ValueError: too short, or (for a character model) too many distinct characters."""
    text = text.replace("\r\n", "\n")
    if len(text.strip()) < MIN_CHARS:
        raise ValueError(f"{name} has {len(text.strip())} characters; at least {MIN_CHARS} are needed to train.")
    if not characters:
        return text
    distinct = len(set(text))
    if distinct > MAX_VOCAB:
        raise ValueError(
            f"{name} has {distinct} distinct characters; a character model here takes at most {MAX_VOCAB}."
        )
    return text


class CharTokenizer:
    """One token per character: id 0 is the stand-in for characters outside the training text."""

    kind = "char"

    def __init__(self, chars: list[str]):
        chars = [c for c in chars if c != UNK]
        self.itos = [UNK, *chars]
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def unknown(self, text: str) -> list[str]:
        return sorted({c for c in text if c not in self.stoi})

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(c, 0) for c in text]

    def decode(self, ids) -> str:
        return "".join(self.itos[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"kind": "char", "chars": self.itos[1:]}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> CharTokenizer:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("kind") != "char" or not isinstance(data.get("chars"), list):
            raise ValueError("Not a character tokenizer file (expected {'kind': 'char', 'chars': [...]}).")
        return cls(data["chars"])


class SubwordTokenizer:
    """A subword tokenizer trained on the Tokenizers page (BPE, WordPiece or Unigram, a `tokenizers`
    JSON): the GPT then predicts subword tokens instead of characters. Losses are per token, so
    they are compared with a character model's per character (`chars_per_token`)."""

    kind = "subword"

    def __init__(self, name: str, tokenizer_json: str):
        from tokenizers import Tokenizer

        try:
            self.backend = Tokenizer.from_str(tokenizer_json)
        except Exception as exc:  # tokenizers raises its own exception type for a malformed file
            raise ValueError(f"{name!r} is not a tokenizers JSON file: {exc}") from exc
        self.name, self.raw = name, tokenizer_json
        if self.vocab_size > MAX_SUBWORD_VOCAB:
            raise ValueError(
                f"{name!r} has {self.vocab_size:,} tokens; a model here takes at most "
                f"{MAX_SUBWORD_VOCAB:,}: train a smaller vocabulary."
            )

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    @functools.cached_property
    def itos(self) -> list[str]:
        """Each id's text (what the page labels tokens with)."""
        return [
            self.backend.decode([i], skip_special_tokens=False) or self.backend.id_to_token(i) or ""
            for i in range(self.vocab_size)
        ]

    def unknown(self, text: str) -> list[str]:
        return []  # the tokenizer maps any text to ids (bytes, or its unknown token)

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=False)

    def to_json(self) -> str:
        return json.dumps({"kind": "subword", "name": self.name, "tokenizer": self.raw}, ensure_ascii=False)


def tokenizer_from_json(raw: str):
    """A CharTokenizer or a SubwordTokenizer from its `to_json()`."""
    data = json.loads(raw)
    if isinstance(data, dict) and data.get("kind") == "subword" and isinstance(data.get("tokenizer"), str):
        return SubwordTokenizer(str(data.get("name") or "subword"), data["tokenizer"])
    return CharTokenizer.from_json(raw)


@dataclass
class Prepared:
    """A corpus split and encoded, ready to train on."""

    name: str
    tokenizer: CharTokenizer | SubwordTokenizer
    train: torch.Tensor  # int64 ids
    val: torch.Tensor
    chars_per_token: float = 1.0  # 1 for characters; a subword token covers several

    @property
    def n_tokens(self) -> int:
        return len(self.train) + len(self.val)

    def unigram_loss(self) -> float:
        """Cross-entropy on the validation ids of the best context-free guess: train-set character frequencies."""
        counts = Counter(self.train.tolist())
        total = len(self.train) + self.tokenizer.vocab_size  # add-one smoothing
        return -sum(math.log((counts.get(i, 0) + 1) / total) for i in self.val.tolist()) / len(self.val)


def prepare(
    name: str,
    text: str,
    block_size: int,
    val_fraction: float = 0.1,
    segments: int = 10,
    tokenizer: SubwordTokenizer | None = None,
) -> Prepared:
    """Encode, then hold out the last `val_fraction` of each of `segments` equal parts for validation.

    nanoGPT holds out the end of the text; on a few concatenated plays that end is one play
    (The Tempest here), so the validation loss measured a different play's names and verse
    (0.17 above the training loss at step 1,500). Ten held-out stretches spread over the text
    measure the same kind of text the model trains on, still never seen in training. A short
    text is cut into fewer parts, so that each held-out stretch is longer than the context.
    """
    text = check_text(text, name, characters=tokenizer is None)
    tok = tokenizer or CharTokenizer.from_text(text)
    ids = torch.tensor(tok.encode(text), dtype=torch.long)
    # a short text gets fewer, longer stretches: each must hold more than one context window
    segments = max(1, min(segments, int(len(ids) * val_fraction) // (block_size + 2)))
    size = len(ids) // segments
    n_val = int(size * val_fraction)
    if n_val <= block_size + 1 or size - n_val <= block_size + 1:
        raise ValueError(f"{name} is too short for a context of {block_size}: {len(ids)} tokens.")
    train, val = [], []
    for k in range(segments):
        part = ids[k * size : (k + 1) * size if k < segments - 1 else len(ids)]
        train.append(part[: len(part) - n_val])
        val.append(part[len(part) - n_val :])
    return Prepared(name, tok, torch.cat(train), torch.cat(val), chars_per_token=len(text) / max(len(ids), 1))


def get_batch(data: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator):
    """batch_size random windows of block_size tokens and the same windows shifted by one (the targets)."""
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i : i + block_size] for i in ix.tolist()])
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix.tolist()])
    return x, y
