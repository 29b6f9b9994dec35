"""One small interface over two tokenizer engines: `TiktokenTok` (OpenAI's tiktoken) and
`HFTok` (Hugging Face `tokenizers`; trained SentencePiece models have theirs in
training.py). Instances are shared by all sessions and read-only."""

from __future__ import annotations

import functools
import json
import re
import threading
import unicodedata
from collections.abc import Sequence

_VISIBLE_WHITESPACE = str.maketrans({" ": "·", "\n": "↵", "\t": "→", "\r": "␍"})


def show_whitespace(text: str) -> str:
    """Spaces, newlines and tabs as visible marks (· ↵ → ␍), for token chips."""
    return text.translate(_VISIBLE_WHITESPACE)


def readable(piece: bytes) -> str:
    """A token's bytes as text; bytes that are only part of a UTF-8 character show as \\xNN."""
    return piece.decode("utf-8", errors="backslashreplace")


class Tok:
    """What every tokenizer offers the page. Instances are shared by all sessions: read-only."""

    name: str
    label: str
    vocab_size: int
    special_ids: frozenset[int]
    unknown_ids: frozenset[int] = frozenset()  # [UNK], and byte-fallback tokens such as <0xE6>
    lossless: bool = True
    pad_id: int | None = None
    pad_note: str = ""  # set when the pad token is a stand-in (the tokenizer defines none)
    chat_template: str | None = None

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Special-token text such as "<|endoftext|>" becomes the special token, as in HF tokenizers."""
        raise NotImplementedError

    def encode_ordinary(self, text: str) -> list[int]:
        """Like encode, but special-token text stays plain text (for text a user typed into a chat)."""
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def _build_bytes(self, i: int) -> bytes:
        raise NotImplementedError

    def _build_str(self, i: int) -> str:
        return readable(self.token_bytes(i))

    def encode_with_spans(self, text: str, ordinary: bool = False) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of `text` (no added special tokens) and each token's (start, end) character offsets."""
        raise NotImplementedError(f"{self.label} cannot report token offsets.")

    def token_bytes(self, i: int) -> bytes:
        table = self.__dict__.get("_bytes_table")  # whole-vocabulary table only once someone built it
        return table[i] if table is not None else self._build_bytes(i)

    def token_str(self, i: int) -> str:
        """Readable form: the text of byte-level tokens, the vocabulary entry otherwise ("##ing", "▁the")."""
        table = self.__dict__.get("_str_table")
        return table[i] if table is not None else self._build_str(i)

    @functools.cached_property
    def _bytes_table(self) -> list[bytes]:
        # Built on first use (about 0.1 s for 200k tokens), then indexing is all a page pays.
        return [self._build_bytes(i) for i in range(self.vocab_size)]

    @functools.cached_property
    def _str_table(self) -> list[str]:
        return [self._build_str(i) for i in range(self.vocab_size)]

    @property
    def pad_token(self) -> str | None:
        return None if self.pad_id is None else self.token_str(self.pad_id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} vocab={self.vocab_size}>"


class TiktokenTok(Tok):
    """OpenAI's tiktoken engine on a rank table we built from local files."""

    def __init__(
        self,
        key: str,
        label: str,
        encoding,
        *,
        bos: str | None = None,
        pad: str | None = None,
        nfc: bool = False,
        lossless: bool = True,
    ):
        self.name, self.label, self._enc = key, label, encoding
        self._nfc = nfc
        self._specials = dict(encoding._special_tokens)
        self.special_ids = frozenset(self._specials.values())
        self._special_text = {v: k for k, v in self._specials.items()}
        self.vocab_size = encoding.n_vocab
        self._bos = self._specials[bos] if bos else None
        self.pad_id = self._specials[pad] if pad else None
        if pad:
            self.pad_note = f"{label} has no padding token; padding uses {pad!r}, hidden by the attention mask."
        self.lossless = lossless

    @property
    def encoding(self):
        """The tiktoken.Encoding itself, for code that wants the library directly."""
        return self._enc

    def _normalize(self, text: str) -> str:
        # Qwen's tokenizer.json has an NFC normalizer; is_normalized is a cheap scan for the common case.
        if self._nfc and not unicodedata.is_normalized("NFC", text):
            return unicodedata.normalize("NFC", text)
        return text

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        ids = self._enc.encode(self._normalize(text), allowed_special="all")
        if add_special_tokens and self._bos is not None:
            ids.insert(0, self._bos)
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        return self._enc.encode_ordinary(self._normalize(text))

    def decode(self, ids: Sequence[int]) -> str:
        return self._enc.decode(list(ids))

    def _build_bytes(self, i: int) -> bytes:
        if i in self._special_text:
            return self._special_text[i].encode()
        try:
            return self._enc.decode_single_token_bytes(i)
        except KeyError:  # gaps in the id range (o200k's unused ids between its specials)
            return b""

    def encode_with_spans(self, text: str, ordinary: bool = False) -> tuple[list[int], list[tuple[int, int]]]:
        ids = self.encode_ordinary(text) if ordinary else self.encode(text)
        decoded, starts = self._enc.decode_with_offsets(ids)
        return ids, list(zip(starts, [*starts[1:], len(decoded)]))


BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@functools.lru_cache(maxsize=1)
def byte_level_decoder() -> dict[str, int]:
    """GPT-2's printable stand-ins for the 256 byte values ('Ġ' is the space), reversed.

    Printable Latin-1 bytes stand for themselves; the other 68 (controls, space, DEL, NBSP,
    soft hyphen) are shifted to U+0100 and up, in order, so every token is visible text.
    """
    kept = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    shifted = [b for b in range(256) if b not in kept]
    return {chr(b): b for b in kept} | {chr(256 + n): b for n, b in enumerate(shifted)}


def is_byte_level(tokenizer) -> bool:
    """Whether a transformers tokenizer writes bytes as `byte_level_decoder`'s characters (GPT-2, SmolLM2)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and "ByteLevel" in repr(backend.decoder)


class HFTok(Tok):
    """A Hugging Face `tokenizers.Tokenizer` (Rust), optionally with the transformers tokenizer around it.

    `raw` is our own copy with truncation and padding switched off, never changed after
    construction, so encode needs no lock. Batch padding works on a second copy under a lock.
    """

    def __init__(
        self,
        name: str,
        label: str,
        raw,
        *,
        hf=None,
        pad_id: int | None = None,
        chat_template: str | None = None,
        template_vars: dict | None = None,
        lossless: bool | None = None,
    ):
        from tokenizers import Tokenizer

        self.name, self.label, self._hf = name, label, hf
        serialized = raw.to_str()
        self._raw, self._batch = Tokenizer.from_str(serialized), Tokenizer.from_str(serialized)
        for copy in (self._raw, self._batch):  # a tokenizer.json may carry both (MiniLM's: 128 tokens)
            copy.no_truncation()
            copy.no_padding()
        self._batch_lock = threading.Lock()
        self._plain = None  # a copy that reads special-token text as text, made on first use
        config = json.loads(serialized)
        self._config_model = config.get("model") or {}
        self._decoder_types = _node_types(config.get("decoder"))
        added = self._raw.get_added_tokens_decoder()
        self._added = {i: t.content for i, t in added.items()}
        self.special_ids = frozenset(i for i, t in added.items() if t.special)
        self.vocab_size = self._raw.get_vocab_size(with_added_tokens=True)
        self.unknown_ids = frozenset(self._unknown_ids())
        self.pad_id = pad_id
        self.chat_template = chat_template
        self._template_vars = template_vars or {}
        if lossless is None:  # byte-level BPE without a normalizer keeps every byte
            lossless = "ByteLevel" in self._decoder_types and not config.get("normalizer")
        self.lossless = lossless

    @property
    def backend(self):
        """The `tokenizers.Tokenizer` this wraps (truncation and padding off). Do not modify it."""
        return self._raw

    def _unknown_ids(self) -> list[int]:
        model = self._config_model
        ids = []
        unk = model.get("unk_token")
        if unk is not None and self._raw.token_to_id(unk) is not None:
            ids.append(self._raw.token_to_id(unk))
        if model.get("unk_id") is not None:  # Unigram stores an index
            ids.append(int(model["unk_id"]))
        if model.get("byte_fallback"):
            ids += [i for b in range(256) if (i := self._raw.token_to_id(f"<0x{b:02X}>")) is not None]
        return ids

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self._raw.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_ordinary(self, text: str) -> list[int]:
        return self._plain_copy().encode(text, add_special_tokens=False).ids

    def _plain_copy(self):
        # Two threads may both build one; either copy is equally good, so no lock.
        if self._plain is None:
            from tokenizers import Tokenizer

            plain = Tokenizer.from_str(self._raw.to_str())
            plain.encode_special_tokens = True
            self._plain = plain
        return self._plain

    def decode(self, ids: Sequence[int]) -> str:
        return self._raw.decode(list(ids), skip_special_tokens=False)

    def _build_bytes(self, i: int) -> bytes:
        token = self._raw.id_to_token(i)
        if token is None:
            return b""
        if i in self._added:
            return self._added[i].encode()
        if "ByteLevel" in self._decoder_types:
            table = byte_level_decoder()
            if all(c in table for c in token):
                return bytes(table[c] for c in token)
        match = BYTE_FALLBACK.fullmatch(token)
        if match and self._config_model.get("byte_fallback"):
            return bytes([int(match.group(1), 16)])
        if "Metaspace" in self._decoder_types or "Replace" in self._decoder_types:
            token = token.replace("▁", " ")
        prefix = self._config_model.get("continuing_subword_prefix") or ""
        if self._config_model.get("type") == "WordPiece" and prefix and token.startswith(prefix):
            token = token[len(prefix) :]
        return token.encode()

    def _build_str(self, i: int) -> str:
        if "ByteLevel" in self._decoder_types and i not in self._added:
            return readable(self.token_bytes(i))
        return self._raw.id_to_token(i) or ""

    def encode_with_spans(self, text: str, ordinary: bool = False) -> tuple[list[int], list[tuple[int, int]]]:
        encoding = (self._plain_copy() if ordinary else self._raw).encode(text, add_special_tokens=False)
        return encoding.ids, list(encoding.offsets)

    def render_chat(self, messages: list[dict], add_generation_prompt: bool) -> str:
        if self._hf is not None:
            return self._hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered, _ = render_jinja_template(
            [messages],
            chat_template=self.chat_template,
            add_generation_prompt=add_generation_prompt,
            **self._template_vars,
        )
        return rendered[0]

    def batch(self, texts: list[str], padding_side: str, truncation_max: int | None, add_special_tokens: bool) -> list:
        """The library's own padding and truncation (what transformers uses), on a private copy."""
        with self._batch_lock:
            tk = self._batch
            try:
                if truncation_max is not None:
                    tk.enable_truncation(max_length=truncation_max)
                pad_token = self._raw.id_to_token(self.pad_id)
                tk.enable_padding(direction=padding_side, pad_id=self.pad_id, pad_token=pad_token)
                return tk.encode_batch(texts, add_special_tokens=add_special_tokens)
            finally:
                tk.no_truncation()
                tk.no_padding()


def _node_types(node: dict | None) -> set[str]:
    """Types in a tokenizer.json component, looking inside Sequence nodes."""
    if not node:
        return set()
    types = {node.get("type", "")}
    for child in node.get("decoders", []) + node.get("pretokenizers", []) + node.get("normalizers", []):
        types |= _node_types(child)
    return types
