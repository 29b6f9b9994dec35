"""Corpora, uploads and the character tokenizer of the scratch GPT page."""

import pytest
import torch

from backends.scratch_gpt import (
    CORPORA,
    MAX_UPLOAD_BYTES,
    CharTokenizer,
    decode_text_upload,
    load_corpus,
    prepare,
)
from backends.scratch_gpt.data import MIN_CHARS, get_batch


def test_shipped_corpora_are_there_with_their_notice():
    from backends.core.paths import ASSETS

    notice = (ASSETS / "corpora" / "NOTICE.md").read_text()
    for key, (file, _) in CORPORA.items():
        text = load_corpus(key)
        assert 30_000 < len(text) < 1_100_000 and file in notice
    assert "CC-BY 2.5" in notice and "fortunes-zh" in notice
    assert load_corpus("shakespeare").startswith("HAMLET")


def test_character_tokenizer_round_trip_and_unknown_characters():
    tok = CharTokenizer.from_text("hello world")
    assert tok.decode(tok.encode("hello")) == "hello" and tok.vocab_size == 9
    assert tok.encode("hq") == [tok.stoi["h"], 0] and tok.unknown("hqz") == ["q", "z"]
    assert CharTokenizer.from_json(tok.to_json()).itos == tok.itos
    with pytest.raises(ValueError, match="Not a character tokenizer"):
        CharTokenizer.from_json('{"kind": "bpe"}')


def test_uploads_detect_their_encoding():
    poem = "床前明月光，疑是地上霜。举头望明月，低头思故乡。\n" * 60
    text, note = decode_text_upload("poem.txt", poem.encode("gb18030"))
    assert text == poem and "gb18030" in note.lower()
    text, note = decode_text_upload("poem16.txt", poem.encode("utf-16"))
    assert text == poem
    english = "Café au lait, naïve façade. " * 60
    text, note = decode_text_upload("latin.txt", english.encode("cp1252"))
    assert text == english and note


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("big.txt", b"a" * (MAX_UPLOAD_BYTES + 1), "the limit is 5 MB"),
        ("empty.txt", b"", "'empty.txt' is empty"),
        ("short.txt", b"too short", f"at least {MIN_CHARS}"),
        ("image.png", bytes(range(256)) * 20, "'image.png' looks like a binary file"),
    ],
)
def test_bad_uploads_are_refused_with_the_reason(name, data, message):
    with pytest.raises(ValueError, match=message):
        decode_text_upload(name, data)


def test_split_and_batches():
    prepared = prepare("shakespeare", load_corpus("shakespeare"), 64)
    assert abs(len(prepared.val) / prepared.n_tokens - 0.1) < 0.001
    x, y = get_batch(prepared.train, 64, 12, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (12, 64) and torch.equal(x[:, 1:], y[:, :-1])
    assert 3.0 < prepared.unigram_loss() < 3.5  # characters alone: about 3.3 nats
    with pytest.raises(ValueError, match="too short for a context of 5000"):
        prepare("x", "abc " * 1000, 5000)
