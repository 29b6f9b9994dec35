"""Train your own tokenizer: BPE, WordPiece and Unigram (Hugging Face `tokenizers`) and SentencePiece.

`train(kind, corpus_text, vocab_size)` returns a `TrainedTokenizer`: the vocabulary size it
really reached (and why, when that is less than asked), a `Tok` that joins the side-by-side
comparison of backends/tokenizers/tokenization.py, BPE's first merges with the count of each pair at
the moment it was merged, and the file to download.

The libraries do not report merge counts, so `merge_counts` replays the merges on the word
counts of the pre-tokenized corpus: the same words the trainer counted, merged in the same
order. The count of a merge is how often its pair sat side by side just before the merge,
the number the trainer picked it by.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from backends.core.paths import ASSETS
from backends.tokenizers.engines import BYTE_FALLBACK, HFTok, Tok
from backends.tokenizers.merges import Merge, corpus_lines, first_merges, pretokenized_words

KINDS = ("bpe", "wordpiece", "unigram", "sentencepiece")
CORPUS_DIR = ASSETS / "corpus"

BPE_SPECIALS = ["<|endoftext|>"]
WORDPIECE_SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
UNIGRAM_SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
SP_CONTROL = 4  # <unk>, <s>, </s>, <pad>
SP_MAX_SENTENCE_BYTES = 1 << 16  # SentencePiece skips longer lines (default 4192); pasted paragraphs are long


def sample_corpus() -> str:
    """The shipped sample corpus: English and Chinese prose and a little Python."""
    return "\n\n".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS_DIR.glob("*.txt")))


def sample_text(n_bytes: int) -> str:
    """The sample corpus repeated to about `n_bytes` of UTF-8 (for long-text tests and benchmarks)."""
    corpus = sample_corpus()
    data = (corpus * (n_bytes // len(corpus.encode("utf-8")) + 1)).encode("utf-8")[:n_bytes]
    return data.decode("utf-8", errors="ignore")  # drops a character cut in half at the end


@dataclass
class TrainedTokenizer:
    kind: str
    requested_vocab_size: int
    vocab_size: int  # what training reached
    min_vocab_size: int  # the alphabet (plus special tokens): no vocabulary can be smaller
    note: str  # why vocab_size < requested_vocab_size; "" when they are equal
    tok: Tok  # encoder for tokenize()/compare() in backends.tokenizers.tokenization
    merges: list[Merge]  # BPE only: the first merges, in order
    seconds: float
    corpus_chars: int
    file_name: str  # tokenizer.json (load with tokenizers.Tokenizer.from_file) or *.model (SentencePiece)
    data: bytes = field(repr=False)

    def to_bytes(self) -> bytes:
        return self.data


class SentencePieceTok(Tok):
    """A trained SentencePiece model behind the `Tok` interface (Llama 2 and T5 use the same engine)."""

    def __init__(self, name: str, label: str, processor, model_bytes: bytes):
        self.name, self.label, self._sp = name, label, processor
        self.model_bytes = model_bytes
        sp = processor
        self.vocab_size = sp.get_piece_size()
        self.special_ids = frozenset(i for i in range(self.vocab_size) if sp.is_control(i) or sp.is_unknown(i))
        self.unknown_ids = frozenset(i for i in range(self.vocab_size) if sp.is_unknown(i) or sp.is_byte(i))
        self.lossless = False
        self.pad_id = sp.pad_id() if sp.pad_id() >= 0 else None

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self._sp.encode(text, out_type=int, add_bos=add_special_tokens and self._sp.bos_id() >= 0)

    def encode_ordinary(self, text: str) -> list[int]:
        return self._sp.encode(text, out_type=int)

    def decode(self, ids: Sequence[int]) -> str:
        return self._sp.decode(list(ids))

    def _build_bytes(self, i: int) -> bytes:
        piece = self._sp.id_to_piece(i)
        match = BYTE_FALLBACK.fullmatch(piece)
        if self._sp.is_byte(i) and match:
            return bytes([int(match.group(1), 16)])
        return piece.replace("▁", " ").encode()

    def _build_str(self, i: int) -> str:
        return self._sp.id_to_piece(i)


# ---------------------------------------------------------------------------
# The four trainers
# ---------------------------------------------------------------------------


def _bpe_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's regex, on bytes
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    return tk


def _bpe_trainer(vocab_size: int, min_frequency: int):
    from tokenizers import pre_tokenizers, trainers

    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=BPE_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )


def _wordpiece_tokenizer():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    tk = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    # BERT's cased setup: CJK characters become words of their own, punctuation splits.
    tk.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False, handle_chinese_chars=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.decoder = decoders.WordPiece(prefix="##")
    return tk


def _wordpiece_trainer(vocab_size: int, min_frequency: int):
    from tokenizers import trainers

    return trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=WORDPIECE_SPECIALS,
        show_progress=False,
    )


def _unigram_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tk = Tokenizer(models.Unigram())
    tk.pre_tokenizer = pre_tokenizers.Metaspace()  # spaces become "▁", as in SentencePiece
    tk.decoder = decoders.Metaspace()
    return tk


def _unigram_trainer(vocab_size: int, min_frequency: int):  # Unigram has no minimum frequency
    from tokenizers import trainers

    return trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=UNIGRAM_SPECIALS,
        unk_token="<unk>",
        show_progress=False,
    )


_HF = {
    "bpe": (_bpe_tokenizer, _bpe_trainer, BPE_SPECIALS, "<|endoftext|>"),
    "wordpiece": (_wordpiece_tokenizer, _wordpiece_trainer, WORDPIECE_SPECIALS, "[PAD]"),
    "unigram": (_unigram_tokenizer, _unigram_trainer, UNIGRAM_SPECIALS, "<pad>"),
}


def min_vocab_size(kind: str, corpus_text: str, byte_fallback: bool = True) -> int:
    """The smallest vocabulary `kind` can have on this corpus: its alphabet plus special tokens."""
    kind = _check_kind(kind)
    corpus_text = _check_corpus(corpus_text)
    if kind == "bpe":
        return 256 + len(BPE_SPECIALS)  # byte-level: every byte is a token from the start
    if kind == "sentencepiece":
        return _sentencepiece_minimum(corpus_text, byte_fallback)
    words = pretokenized_words(_HF[kind][0](), corpus_text)
    alphabet = {c for w in words for c in w}
    if kind == "wordpiece":  # every letter, plus "##x" for each letter seen inside a word
        alphabet |= {"##" + c for w in words for c in w[1:]}
    return len(alphabet) + len(_HF[kind][2])


def _train_hf(kind: str, corpus_text: str, vocab_size: int, min_frequency: int):
    make_tokenizer, make_trainer, _specials, pad = _HF[kind]
    tk = make_tokenizer()
    tk.train_from_iterator(corpus_lines(corpus_text), make_trainer(vocab_size, min_frequency))
    if kind == "wordpiece":
        from tokenizers import processors

        cls, sep = tk.token_to_id("[CLS]"), tk.token_to_id("[SEP]")
        tk.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
        )
    return tk, tk.token_to_id(pad)


def _sentencepiece_args(corpus_text: str, vocab_size: int, model_type: str, byte_fallback: bool) -> dict:
    return dict(
        sentence_iterator=iter([line for line in corpus_text.splitlines() if line.strip()]),
        vocab_size=vocab_size,
        model_type=model_type,
        byte_fallback=byte_fallback,  # characters outside the vocabulary become <0xNN> byte pieces
        hard_vocab_limit=False,  # a small corpus yields a smaller vocabulary instead of an error
        normalization_rule_name="identity",  # keep the text as typed, so decode gives it back
        remove_extra_whitespaces=False,
        max_sentence_length=SP_MAX_SENTENCE_BYTES,
        num_threads=max(1, min(4, os.cpu_count() or 1)),
        pad_id=3,  # off by default; a pad piece lets trained models join batch_encode like the others
        minloglevel=2,
    )


_SP_TOO_SMALL = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


def _sentencepiece_minimum(corpus_text: str, byte_fallback: bool) -> int:
    """SentencePiece checks its alphabet before training; asking for 4 pieces makes it say the minimum."""
    import sentencepiece as spm

    try:
        spm.SentencePieceTrainer.train(
            model_writer=io.BytesIO(), **_sentencepiece_args(corpus_text, SP_CONTROL, "unigram", byte_fallback)
        )
    except RuntimeError as exc:
        found = _SP_TOO_SMALL.search(str(exc))
        if found:
            return int(found.group(2))
        raise ValueError(f"SentencePiece could not read the corpus: {exc}") from exc
    return SP_CONTROL


def _train_sentencepiece(corpus_text: str, vocab_size: int, model_type: str, byte_fallback: bool) -> bytes:
    import sentencepiece as spm

    if model_type not in ("unigram", "bpe"):
        raise ValueError(f"SentencePiece model_type must be 'unigram' or 'bpe', got {model_type!r}.")
    buf = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            model_writer=buf, **_sentencepiece_args(corpus_text, vocab_size, model_type, byte_fallback)
        )
    except RuntimeError as exc:
        raise ValueError(f"SentencePiece could not train on this corpus: {exc}") from exc
    return buf.getvalue()


# ---------------------------------------------------------------------------
# train()
# ---------------------------------------------------------------------------


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"Unknown tokenizer kind {kind!r}; expected one of {', '.join(KINDS)}.")
    return kind


def _check_corpus(corpus_text) -> str:
    if not isinstance(corpus_text, str) or not corpus_text.strip():
        raise ValueError("The training corpus is empty: paste some text, upload a .txt file or use the sample corpus.")
    return corpus_text


def _shortfall_note(kind: str, asked: int, got: int, corpus_text: str, min_frequency: int) -> str:
    if got == asked:
        return ""
    if got > asked:
        return (
            f"Asked for {asked} tokens, got {got}: the trainer keeps every character of the corpus on top "
            "of the pieces it chose, which adds up to more than asked near the minimum."
        )
    size = f"{len(corpus_text.encode('utf-8')) / 1024:.0f} KB"
    if kind in ("bpe", "wordpiece"):
        why = (
            f"no pair of symbols is left that occurs at least {min_frequency} times in this {size} corpus, "
            "so there is nothing more to merge"
        )
    else:
        why = f"this {size} corpus does not contain more pieces worth keeping"
    return f"Asked for {asked} tokens, got {got}: {why}. A larger corpus gives a larger vocabulary."


def train(
    kind: str,
    corpus_text: str,
    vocab_size: int,
    *,
    min_frequency: int = 2,
    n_merges: int = 50,
    sp_model_type: str = "unigram",
    byte_fallback: bool = True,
) -> TrainedTokenizer:
    """Train a `kind` tokenizer ("bpe", "wordpiece", "unigram", "sentencepiece") on `corpus_text`.

    min_frequency: BPE/WordPiece only merge pairs seen at least this often.
    n_merges: how many of BPE's first merges to return, with counts.
    sp_model_type, byte_fallback: SentencePiece's algorithm ("unigram" or "bpe") and whether
    characters outside its vocabulary become byte pieces (<0xE6>) rather than <unk>.
    """
    kind = _check_kind(kind)
    corpus_text = _check_corpus(corpus_text)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive whole number, got {vocab_size!r}.")
    minimum = min_vocab_size(kind, corpus_text, byte_fallback)
    if vocab_size < minimum:
        raise ValueError(
            f"vocab_size {vocab_size} is below the alphabet: a {kind} tokenizer on this corpus needs at least "
            f"{minimum} tokens (every symbol of the corpus{_bytes_clause(kind, byte_fallback)} plus the special "
            "tokens) before it learns anything. Choose at least that many."
        )
    started = time.perf_counter()
    name = f"trained-{kind}-{vocab_size}-{hashlib.sha1(corpus_text.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}"
    merges: list[Merge] = []
    if kind == "sentencepiece":
        import sentencepiece as spm

        data = _train_sentencepiece(corpus_text, vocab_size, sp_model_type, byte_fallback)
        processor = spm.SentencePieceProcessor(model_proto=data)
        got = processor.get_piece_size()
        tok = SentencePieceTok(name, f"SentencePiece {sp_model_type} ({got}, trained)", processor, data)
        file_name = f"{name}.model"
    else:
        tk, pad_id = _train_hf(kind, corpus_text, vocab_size, min_frequency)
        got = tk.get_vocab_size()
        tok = HFTok(name, f"{kind} ({got}, trained)", tk, pad_id=pad_id, lossless=kind == "bpe")
        if kind == "bpe":
            merges = first_merges(tk, corpus_text, n_merges)
        data = tk.to_str(pretty=True).encode("utf-8")
        file_name = "tokenizer.json"
    return TrainedTokenizer(
        kind=kind,
        requested_vocab_size=vocab_size,
        vocab_size=got,
        min_vocab_size=minimum,
        note=_shortfall_note(kind, vocab_size, got, corpus_text, min_frequency),
        tok=tok,
        merges=merges,
        seconds=time.perf_counter() - started,
        corpus_chars=len(corpus_text),
        file_name=file_name,
        data=data,
    )


def _bytes_clause(kind: str, byte_fallback: bool) -> str:
    has_bytes = kind == "bpe" or (kind == "sentencepiece" and byte_fallback)
    return " and all 256 bytes" if has_bytes else ""


def train_job(ctx, kind: str, corpus_text: str, vocab_size: int, **options) -> TrainedTokenizer:
    """Background-job form of `train` (see backends/core/jobs.py). The libraries train in one call,
    so progress is two steps and a stop request takes effect before training starts."""
    ctx.report(0.05, f"training {kind}")
    ctx.check_stop()
    result = train(kind, corpus_text, vocab_size, **options)
    ctx.report(1.0, f"done: {result.vocab_size} tokens in {result.seconds:.2f} s")
    return result
