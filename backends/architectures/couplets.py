"""The seq2seq tasks, both from the shipped poems (assets/corpora/tang_song_poems.txt):

- "pinyin" (grapheme to phoneme): a half-line -> its pinyin with tone numbers, as pypinyin reads it
  (床前明月光 -> chuang2 qian2 ming2 yue4 guang1; ü kept, the neutral tone written 5). Every half-line
  of the poems (1 to 9 Chinese characters between punctuation) is a pair; the output is about six
  times longer than the input, so the model cannot copy position by position.
- "couplet": a line of regular five- or seven-character verse is two half-lines of the same length,
  "兰叶春葳蕤，桂华秋皎洁。"; given the first half-line, write the second (兰叶春葳蕤 -> 桂华秋皎洁).

Held-out pairs are whole poems (a poem is held out when a checksum of its title and author says so),
so no poem gives pairs to both sides. Characters are the tokens, one vocabulary for both sides (the
model ties its embeddings); ids 0-3 are PAD, BOS, EOS, UNK.
"""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass

import torch

from backends.scratch_gpt import load_corpus

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
LENGTHS = (5, 7)  # five- and seven-character verse
HELD_OUT_EVERY = 10  # about one poem in ten
LINE = re.compile(r"([^，。？！；、：\s]+)，([^，。？！；、：\s]+)[。？！；]")
HALF_LINE = re.compile(r"[\u4e00-\u9fff]{1,9}")  # the Chinese characters between two punctuation marks
TASKS = ("pinyin", "couplet")
OUT_PER_CHAR = {"pinyin": 8, "couplet": 1}  # the longest output per input character ("zhuang1 ")


@dataclass(frozen=True)
class Pair:
    src: str  # the first half-line
    tgt: str  # the second
    poem: str  # 《title》 author


def held_out(poem: str) -> bool:
    return zlib.crc32(poem.encode("utf-8")) % HELD_OUT_EVERY == 0


def poem_lines(text: str):
    """(poem, line) for every text line of every poem. A poem starts with its title ("《...》" or
    "题目:《...》") and an author line ("作者："); a block after a blank line without a title goes on
    with the poem before."""
    poem = None
    for block in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in block.strip().splitlines()]
        if len(lines) >= 2 and lines[0].removeprefix("题目:").startswith("《") and lines[1].startswith("作者"):
            poem = lines[0].removeprefix("题目:") + " " + re.sub(r"^作者[:：]|（.*", "", lines[1])
            lines = lines[2:]
        if poem is not None:
            yield from ((poem, line) for line in lines)


def parse_pairs(text: str) -> list[Pair]:
    """Every regular line of every poem: two half-lines of five or seven characters."""
    pairs = []
    for poem, line in poem_lines(text):
        m = LINE.fullmatch(line)
        if m and len(m[1]) == len(m[2]) and len(m[1]) in LENGTHS:
            pairs.append(Pair(m[1], m[2], poem))
    return pairs


def pinyin(text: str) -> str:
    """pypinyin's reading of the characters, tone numbers after each syllable, one space between."""
    from pypinyin import Style, lazy_pinyin

    return " ".join(lazy_pinyin(text, style=Style.TONE3, v_to_u=True, neutral_tone_with_five=True))


def parse_pinyin_pairs(text: str) -> list[Pair]:
    """Every half-line of every poem (runs of 1 to 9 Chinese characters between punctuation, lines of
    notes or dates skipped) with its pinyin."""
    pairs = []
    for poem, line in poem_lines(text):
        if re.fullmatch(r"[\u4e00-\u9fff，。？！；、：]+", line):  # verse only: no notes, dates or brackets
            pairs += [Pair(h, pinyin(h), poem) for h in re.split(r"[，。？！；、：]", line) if HALF_LINE.fullmatch(h)]
    return pairs


def split(pairs) -> tuple[tuple[Pair, ...], tuple[Pair, ...]]:
    return tuple(p for p in pairs if not held_out(p.poem)), tuple(p for p in pairs if held_out(p.poem))


@functools.cache
def couplet_pairs() -> tuple[tuple[Pair, ...], tuple[Pair, ...]]:
    """(train, held_out) pairs of the shipped corpus; held-out pairs come from poems never trained on."""
    return split(parse_pairs(load_corpus("tang_song")))


@functools.cache
def pinyin_pairs() -> tuple[tuple[Pair, ...], tuple[Pair, ...]]:
    """(train, held_out) half-lines with their pinyin, split by poem as the couplets are."""
    return split(parse_pinyin_pairs(load_corpus("tang_song")))


def task_pairs(task: str) -> tuple[tuple[Pair, ...], tuple[Pair, ...]]:
    if task not in TASKS:
        raise ValueError(f"Unknown seq2seq task {task!r}; one of {TASKS}.")
    return pinyin_pairs() if task == "pinyin" else couplet_pairs()


class Vocab:
    """Characters of the training pairs (inputs and outputs) after the four special tokens; `inputs`
    are the characters seen on the input side (what a typed input may use), `task` says which pairs."""

    def __init__(self, chars: list[str], inputs=None, task: str = "couplet"):
        self.itos = [*SPECIALS, *(c for c in chars if c not in SPECIALS)]
        self.stoi = {c: i for i, c in enumerate(self.itos)}
        self.inputs = frozenset(self.itos[len(SPECIALS) :] if inputs is None else inputs)
        self.task = task

    @classmethod
    def from_pairs(cls, pairs, task: str = "couplet") -> Vocab:
        return cls(sorted({c for p in pairs for c in p.src + p.tgt}), {c for p in pairs for c in p.src}, task)

    @property
    def size(self) -> int:
        return len(self.itos)

    def output_ids(self, pairs) -> list[int]:
        """EOS, UNK and the characters of the pairs' outputs: the only tokens a pinyin model may write."""
        return [EOS_ID, UNK_ID, *sorted({self.stoi[c] for p in pairs for c in p.tgt if c in self.stoi})]

    def max_out(self, src_len: int) -> int:
        """The longest output worth generating for an input of src_len characters (EOS included)."""
        return OUT_PER_CHAR.get(self.task, 1) * src_len + 3

    def unknown(self, text: str) -> list[str]:
        """Characters of text that never appear in a training input."""
        return sorted({c for c in text if c not in self.inputs})

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(c, UNK_ID) for c in text]

    def decode(self, ids) -> str:
        """Characters of the ids, stopping at EOS, without special tokens."""
        out = []
        for i in ids:
            if i == EOS_ID:
                break
            if i >= len(SPECIALS):
                out.append(self.itos[i])
        return "".join(out)


def pad(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [PAD_ID] * (width - len(r)) for r in rows], dtype=torch.long)


def make_batch(pairs, vocab: Vocab) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(src, decoder input, targets), right-padded with PAD: the decoder reads [BOS] + output and
    predicts output + [EOS], one position ahead."""
    src = pad([vocab.encode(p.src) for p in pairs])
    out = [vocab.encode(p.tgt) for p in pairs]
    return src, pad([[BOS_ID, *o] for o in out]), pad([[*o, EOS_ID] for o in out])


def random_batch(pairs, vocab: Vocab, batch_size: int, generator: torch.Generator):
    idx = torch.randint(len(pairs), (batch_size,), generator=generator).tolist()
    return make_batch([pairs[i] for i in idx], vocab)
