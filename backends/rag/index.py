"""Dense (FAISS inner product), sparse (BM25) and hybrid (reciprocal rank fusion) retrieval.

The indexes hold row numbers only; a Collection maps rows to Chunks. BM25 is
written here on a scipy sparse matrix so every step of its score can be shown:
the per-(chunk, term) BM25 weights are computed once at build time, and a
query sums the columns of its terms, each as many times as the question says it
(one sparse column slice, a few ms at 100k chunks).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

RRF_K = 60
BM25_K1, BM25_B = 1.5, 0.75
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")


class RetrievalError(ValueError):
    """Bad input to an index (wrong shapes, unknown method...)."""


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of letters/digits (any script), with Chinese, Japanese and Korean split up.

    CJK text has no spaces, so a whole sentence would be one "word" that no question matches:
    its characters and each pair of neighbouring characters stand in for words instead. A pair is
    two characters side by side in the text: none is made across punctuation, a space or a Latin
    word ("机制。注意" gives 机制 and 注意, never 制注).
    """
    found = list(_TOKEN.finditer(text.lower()))
    pairs = [
        a.group() + b.group()
        for a, b in itertools.pairwise(found)
        if a.end() == b.start() and _IS_CJK.match(a.group()) and _IS_CJK.match(b.group())
    ]
    return [m.group() for m in found] + pairs


class BM25:
    """Okapi BM25 over a fixed set of texts."""

    def __init__(self, texts: list[str], k1: float = BM25_K1, b: float = BM25_B):
        from scipy import sparse

        self.k1, self.b = k1, b
        self.vocab: dict[str, int] = {}
        rows, cols = [], []
        for row, text in enumerate(texts):
            for term in tokenize(text):
                cols.append(self.vocab.setdefault(term, len(self.vocab)))
                rows.append(row)
        n_docs = len(texts)
        ones = np.ones(len(cols), dtype=np.float32)
        # duplicates are summed on conversion: tf counts per (chunk, term)
        tf = sparse.csr_matrix(
            (ones, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
            shape=(n_docs, max(len(self.vocab), 1)),
            dtype=np.float32,
        )
        tf.sum_duplicates()
        lengths = np.asarray(tf.sum(axis=1)).ravel()
        self.avg_len = float(lengths.mean()) if n_docs else 0.0
        df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float64)
        self.idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = self.k1 * (1.0 - self.b + self.b * lengths / (self.avg_len or 1.0))
        row_of = np.repeat(np.arange(n_docs), np.diff(tf.indptr))
        counts = tf.data
        weights = self.idf[tf.indices] * counts * (self.k1 + 1.0) / (counts + norm[row_of])
        weighted = sparse.csr_matrix((weights.astype(np.float32), tf.indices, tf.indptr), shape=tf.shape)
        self.matrix = weighted.tocsc()  # a query slices term columns
        self.n_docs = n_docs

    def query_terms(self, question: str) -> list[str]:
        """The question's terms found in the texts, each once, in order of first appearance."""
        return [t for t in dict.fromkeys(tokenize(question)) if t in self.vocab]

    def scores(self, question: str) -> np.ndarray:
        """BM25 score of every text for the question (0 where no query term occurs).

        A term the question repeats counts once per occurrence, as in Lucene (a BooleanQuery of one
        TermQuery per query word: the clauses' scores add up), so "cat cat dog" weighs cat twice.
        """
        counts = Counter(t for t in tokenize(question) if t in self.vocab)
        if not counts or self.n_docs == 0:
            return np.zeros(self.n_docs, dtype=np.float32)
        ids = [self.vocab[t] for t in counts]
        times = np.asarray(list(counts.values()), dtype=np.float32)
        return np.asarray(self.matrix[:, ids] @ times, dtype=np.float32).ravel()


class DenseIndex:
    """Exact inner-product search in FAISS; on unit vectors the score is the cosine."""

    def __init__(self, embeddings: np.ndarray):
        import faiss

        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2:
            raise RetrievalError(
                f"Embeddings must be a 2-D array (chunks x dimensions), got shape {embeddings.shape}."
            )
        self.faiss = faiss.IndexFlatIP(embeddings.shape[1])
        if len(embeddings):
            self.faiss.add(embeddings)

    @classmethod
    def from_faiss(cls, index) -> DenseIndex:
        obj = cls.__new__(cls)
        obj.faiss = index
        return obj

    @property
    def dim(self) -> int:
        return self.faiss.d

    def search(self, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self.dim:
            raise RetrievalError(
                f"The query vector has {query.shape[1]} dimensions but the index holds {self.dim}: "
                "embed the question with the collection's own model."
            )
        n = min(n, self.faiss.ntotal)
        if n <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        scores, ids = _single_thread_search(self.faiss, query, n)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]


def _single_thread_search(index, query: np.ndarray, n: int):
    """One query is one pass over the vectors (memory-bound): extra OpenMP threads only add
    waiting on a busy machine (measured 30-40 ms on 2 threads vs 16 ms on one at 100k x 384).
    OpenMP's thread count is per calling thread, so other sessions are not affected."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(query, n)
    finally:
        faiss.omp_set_num_threads(before)


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the n highest positive scores, best first (ties: lower row first)."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > n:
        part = np.argpartition(-scores[positive], n - 1)[:n]
        positive = positive[part]
    return positive[np.lexsort((positive, -scores[positive]))]


@dataclass(frozen=True)
class Scored:
    """One candidate row with what each method said about it (ranks are 1-based, None = not ranked)."""

    row: int
    dense_score: float | None
    dense_rank: int | None
    sparse_score: float | None
    sparse_rank: int | None
    fused_score: float | None
    fused_rank: int | None


def retrieve(
    dense: DenseIndex, bm25: BM25, embeddings: np.ndarray, query_vec: np.ndarray, question: str, candidates: int = 30
) -> list[Scored]:
    """Every candidate of the dense and sparse top-`candidates` lists, ordered by fused (RRF) rank.

    Dense and BM25 scores are filled in for every candidate, also where the other
    method did not rank it, so the glass-box view can compare them.
    """
    if candidates < 1:
        raise RetrievalError(f"candidates must be at least 1, got {candidates!r}.")
    _d_scores, d_rows = dense.search(query_vec, candidates)
    sparse_all = bm25.scores(question)
    s_rows = top_n(sparse_all, candidates)
    d_rank = {int(r): i + 1 for i, r in enumerate(d_rows)}
    s_rank = {int(r): i + 1 for i, r in enumerate(s_rows)}
    fused = dict.fromkeys((*d_rank, *s_rank), 0.0)
    for ranks in (d_rank, s_rank):
        for row, rank in ranks.items():
            fused[row] += 1.0 / (RRF_K + rank)
    order = sorted(fused, key=lambda r: (-fused[r], min(d_rank.get(r, 1 << 30), s_rank.get(r, 1 << 30)), r))
    rows = np.asarray(order, dtype=np.int64)
    q = np.asarray(query_vec, dtype=np.float32).ravel()
    dense_of = embeddings[rows] @ q if len(rows) else np.zeros(0, dtype=np.float32)
    return [
        Scored(
            int(r),
            float(dense_of[i]),
            d_rank.get(int(r)),
            float(sparse_all[r]),
            s_rank.get(int(r)),
            fused[int(r)],
            i + 1,
        )
        for i, r in enumerate(rows)
    ]


def order_for(method: str, scored: list[Scored]) -> list[tuple[Scored, float]]:
    """The candidates a method returns, best first, with that method's score."""
    if method == "dense":
        picked = sorted((s for s in scored if s.dense_rank), key=lambda s: s.dense_rank)
        return [(s, s.dense_score) for s in picked]
    if method == "sparse":
        picked = sorted((s for s in scored if s.sparse_rank), key=lambda s: s.sparse_rank)
        return [(s, s.sparse_score) for s in picked]
    if method == "hybrid":
        return [(s, s.fused_score) for s in scored]
    raise RetrievalError(f"Unknown retrieval method {method!r}; use dense, sparse or hybrid.")
