"""BPE's merges in the order they were learned, replayed on the corpus to count each pair."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from dataclasses import dataclass

from backends.tokenizers.engines import byte_level_decoder, readable


def corpus_lines(corpus_text: str) -> list[str]:
    # Line by line, newlines kept: the HF trainers count the words of each item, and newlines
    # belong to the text a tokenizer will meet.
    return corpus_text.splitlines(keepends=True)


@dataclass(frozen=True)
class Merge:
    rank: int  # 0 = the first merge learned
    left: str  # readable text of the two parts and the new token
    right: str
    new: str
    count: int  # times the pair occurred in the corpus just before this merge


def pretokenized_words(tk, corpus_text: str) -> Counter:
    """The words a HF trainer counts: each line normalized and pre-tokenized by `tk`."""
    words = Counter()
    for line in corpus_lines(corpus_text):
        if tk.normalizer is not None:
            line = tk.normalizer.normalize_str(line)
        words.update(piece for piece, _ in tk.pre_tokenizer.pre_tokenize_str(line))
    return words


def bpe_merges(tk) -> list[tuple[str, str]]:
    """The merges of a trained BPE tokenizer, in the order they were learned."""
    merges = json.loads(tk.to_str())["model"]["merges"]
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in merges]


def merge_counts(words: Counter, merges: list[tuple[str, str]]) -> list[int]:
    """For each merge in order, how often its pair is adjacent in the corpus just before it.

    Keeps a count per pair and, per pair, the words that contain it, so a merge only
    revisits the words it changes.
    """
    seqs = [list(w) for w in words]
    freqs = list(words.values())
    pair_count: Counter = Counter()
    holders: defaultdict = defaultdict(set)
    for wi, seq in enumerate(seqs):
        for pair in itertools.pairwise(seq):
            pair_count[pair] += freqs[wi]
            holders[pair].add(wi)
    counts = []
    for left, right in merges:
        counts.append(pair_count.get((left, right), 0))
        for wi in list(holders.pop((left, right), ())):
            seq, freq = seqs[wi], freqs[wi]
            for pair in itertools.pairwise(seq):
                pair_count[pair] -= freq
            seq = _merge_word(seq, left, right)
            for pair in itertools.pairwise(seq):
                pair_count[pair] += freq
                holders[pair].add(wi)
            seqs[wi] = seq
    return counts


def _merge_word(seq: list[str], left: str, right: str) -> list[str]:
    out, i = [], 0
    while i < len(seq):
        if i + 1 < len(seq) and seq[i] == left and seq[i + 1] == right:
            out.append(left + right)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


def _readable_symbol(symbol: str) -> str:
    """A byte-level symbol ('Ġthe') as the text it stands for (' the')."""
    table = byte_level_decoder()
    return readable(bytes(table[c] for c in symbol)) if all(c in table for c in symbol) else symbol


def first_merges(tk, corpus_text: str, n: int) -> list[Merge]:
    merges = bpe_merges(tk)[: max(0, n)]
    counts = merge_counts(pretokenized_words(tk, corpus_text), merges)
    return [
        Merge(rank, _readable_symbol(a), _readable_symbol(b), _readable_symbol(a + b), count)
        for rank, ((a, b), count) in enumerate(zip(merges, counts))
    ]
