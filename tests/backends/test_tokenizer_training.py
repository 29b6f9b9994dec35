"""Training tokenizers on the shipped corpus: vocabulary sizes, round trips, BPE merges with counts."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from backends.core.jobs import DONE, JobRunner
from backends.tokenizers import merges as M
from backends.tokenizers import tokenization as T
from backends.tokenizers import training as TT
from backends.tokenizers import zoo as Z

CORPUS = TT.sample_corpus()
LINES = [line for line in CORPUS.splitlines() if line.strip()]


def test_the_sample_corpus_has_english_chinese_and_code():
    assert len(CORPUS.encode()) > 10_000
    assert "lighthouse" in CORPUS and "菜园" in CORPUS and "def merge_once" in CORPUS
    text = TT.sample_text(100_000)
    assert 99_990 < len(text.encode()) <= 100_000


@pytest.mark.parametrize("kind", TT.KINDS)
def test_each_kind_reaches_the_requested_size_and_tokenizes(kind):
    trained = TT.train(kind, CORPUS, 1000)
    assert trained.vocab_size == trained.tok.vocab_size == 1000
    assert trained.note == ""
    line = next(line for line in LINES if line.startswith("Copying is a strange way to read."))
    t = T.tokenize(trained.tok, line)
    assert 0 < t.n_tokens < t.n_chars / 2  # the trained pieces are longer than characters


@pytest.mark.parametrize("kind", ["bpe", "sentencepiece", "unigram"])
def test_trained_tokenizers_round_trip_the_corpus(kind):
    tok = TT.train(kind, CORPUS, 1000).tok
    for line in LINES:
        if kind == "unigram" and line.startswith(" "):
            # Metaspace adds no "▁" before text that already starts with a space, yet its
            # decoder drops the first one: a known quirk of the HF Unigram/Metaspace pair.
            assert tok.decode(tok.encode(line)) == line[1:]
        else:
            assert tok.decode(tok.encode(line)) == line, line[:60]
    if kind == "bpe":  # byte-level: any text at all, newlines included
        assert T.tokenize(tok, CORPUS + "\n🦙 unseen ✓").round_trips


def test_wordpiece_round_trips_up_to_whitespace():
    tok = TT.train("wordpiece", CORPUS, 1000).tok
    for line in LINES:
        ids = tok.encode(line)
        assert tok.unknown_ids.isdisjoint(ids), line[:60]
        assert "".join(tok.decode(ids).split()) == "".join(line.split()), line[:60]


@pytest.mark.parametrize("kind", TT.KINDS)
def test_a_too_large_vocabulary_is_explained(kind):
    trained = TT.train(kind, CORPUS, 50_000)
    assert trained.vocab_size < 50_000
    assert trained.note.startswith(f"Asked for 50000 tokens, got {trained.vocab_size}")
    assert "corpus" in trained.note


@pytest.mark.parametrize("kind", TT.KINDS)
def test_the_alphabet_is_the_minimum(kind):
    minimum = TT.min_vocab_size(kind, CORPUS)
    with pytest.raises(ValueError, match=f"below the alphabet.*at least {minimum} tokens"):
        TT.train(kind, CORPUS, minimum - 1)
    trained = TT.train(kind, CORPUS, minimum)
    if kind == "unigram":  # Unigram keeps all characters besides the pieces it picked
        assert trained.vocab_size >= minimum and "every character" in trained.note
    else:
        assert trained.vocab_size == minimum and trained.note == ""
    assert trained.min_vocab_size == minimum


def test_bad_inputs_are_rejected_clearly():
    with pytest.raises(ValueError, match="corpus is empty"):
        TT.train("bpe", "  \n\t ", 500)
    with pytest.raises(ValueError, match="Unknown tokenizer kind 'bytes'"):
        TT.train("bytes", CORPUS, 500)
    with pytest.raises(ValueError, match="positive whole number"):
        TT.train("bpe", CORPUS, 0)
    with pytest.raises(ValueError, match="model_type"):
        TT.train("sentencepiece", CORPUS, 1000, sp_model_type="char")


def _naive_counts(words: Counter, merges) -> list[int]:
    """Recount every pair from scratch before each merge (slow, obviously right)."""
    seqs = {w: list(w) for w in words}
    counts = []
    for left, right in merges:
        pairs = Counter()
        for w, seq in seqs.items():
            for pair in itertools.pairwise(seq):
                pairs[pair] += words[w]
        counts.append(pairs[(left, right)])
        seqs = {w: M._merge_word(seq, left, right) for w, seq in seqs.items()}
    return counts


def test_bpe_merges_are_in_order_with_counts():
    trained = TT.train("bpe", CORPUS, 600, n_merges=40)
    tk = Z.get_tokenizer(trained.tok).backend
    merges = M.bpe_merges(tk)
    assert len(merges) == 600 - 257
    assert [m.rank for m in trained.merges] == list(range(40))
    words = M.pretokenized_words(tk, CORPUS)
    assert [m.count for m in trained.merges] == _naive_counts(words, merges[:40])
    counts = [m.count for m in trained.merges]
    assert counts == sorted(counts, reverse=True)  # greedy: each merge is the most frequent pair left
    first = Counter(p for w, n in words.items() for p in itertools.pairwise(w) for _ in range(n))
    assert counts[0] == max(first.values())
    whole = [m for m in trained.merges if "\\x" not in m.left + m.right]  # no character split in half
    assert whole and all(m.new == m.left + m.right for m in whole)
    assert "，" in {m.new for m in trained.merges}  # 3 bytes of a Chinese comma, merged in two steps
    assert trained.merges[0].new in {" t", "he", "th", " the"}  # English dominates the corpus


def test_merge_counts_on_a_tiny_example():
    words = Counter({"low": 5, "lower": 2, "newest": 6, "widest": 3})
    merges = [("e", "s"), ("es", "t"), ("l", "o"), ("lo", "w")]
    assert M.merge_counts(words, merges) == [9, 9, 7, 7]


def test_downloads_load_back():
    import sentencepiece as spm
    from tokenizers import Tokenizer

    bpe = TT.train("bpe", CORPUS, 800)
    assert bpe.file_name == "tokenizer.json"
    again = Tokenizer.from_str(bpe.to_bytes().decode())
    assert again.encode(LINES[5]).ids == bpe.tok.encode(LINES[5])
    sp = TT.train("sentencepiece", CORPUS, 900)
    assert sp.file_name.endswith(".model")
    processor = spm.SentencePieceProcessor(model_proto=sp.to_bytes())
    assert processor.encode(LINES[5]) == sp.tok.encode(LINES[5])


def test_trained_tokenizer_joins_the_comparison_and_flags_byte_fallback():
    sp = TT.train("sentencepiece", CORPUS, 900, byte_fallback=True)
    rows = T.compare(["gpt2", sp.tok], "lighthouse 🦙")
    assert [r["key"] for r in rows] == ["gpt2", sp.tok.name]
    t = T.tokenize(sp.tok, "lighthouse 🦙")
    assert t.round_trips and any(t.unknown)
    assert all(s.startswith("<0x") for s, u in zip(t.strings, t.unknown) if u)
    assert b"".join(p for p, u in zip(t.pieces, t.unknown) if u) == "🦙".encode()


def test_training_runs_as_a_background_job():
    job = JobRunner().submit("train", TT.train_job, "bpe", CORPUS, 400)
    assert job.wait(30)
    assert job.status == DONE and job.result.vocab_size == 400
    assert job.progress == 1.0
