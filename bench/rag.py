"""RAG: ingest throughput (ours vs. the plain LangChain pipeline), re-ingest from the
content-hash cache, and hybrid retrieval latency at 100k chunks.

- Ingest: one generated multi-page PDF (--pages, default 120; the sample guide's topics,
  every page numbered differently). Ours = build_collection (pypdf per page, LangChain's
  RecursiveCharacterTextSplitter, our embedder, FAISS + BM25). LangChain = PyPDFLoader +
  RecursiveCharacterTextSplitter + HuggingFaceEmbeddings (the same local all-MiniLM-L6-v2
  folder, normalized) + FAISS.from_documents. Same chunk settings. Both models are loaded
  before timing; each ours run starts with an empty embedding cache. Runs are interleaved
  (ours, LangChain, ours, ...) and each figure is the median after one warm-up.
- Re-ingest: the same file again with the cache filled (median), vs. the cold median.
- Retrieval: 100k synthetic chunks (Zipf-distributed words, the sample's vocabulary among
  them) with random unit vectors; each query runs the real path: query embedding, FAISS,
  BM25, fusion, Hits.

Usage: .venv/bin/python bench/rag.py [--runs 3] [--pages 120] [--chunks 100000] [--queries 200]
Last line: {"ingest_ratio": ..., "reingest_speedup": ..., "p95_ms_100k": ...}
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path, where bench/tokenizers.py would shadow the
# `tokenizers` package that transformers imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from backends.rag import embed_cache  # noqa: E402
from backends.rag.collection import Collection, build_collection  # noqa: E402
from backends.rag.embedder import load_embedder  # noqa: E402
from backends.rag.types import Chunk, ChunkSettings  # noqa: E402
from make_sample_pdf import PAGES, long_document, write_pdf  # noqa: E402

SETTINGS = ChunkSettings(method="characters", size=800, overlap=120)
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "assets/samples/sample_eval.jsonl").open()]


def ours(path: Path) -> tuple[float, int]:
    embed_cache.clear()
    started = time.perf_counter()
    col = build_collection(None, [(path.name, path.read_bytes(), None)], SETTINGS)
    return time.perf_counter() - started, len(col.chunks)


def reingest(path: Path) -> float:
    started = time.perf_counter()
    build_collection(None, [(path.name, path.read_bytes(), None)], SETTINGS)
    return time.perf_counter() - started


def langchain_pipeline(path: Path, embeddings) -> tuple[float, int]:
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    started = time.perf_counter()
    docs = PyPDFLoader(str(path)).load()
    splitter = RecursiveCharacterTextSplitter(chunk_size=SETTINGS.size, chunk_overlap=SETTINGS.overlap)
    chunks = splitter.split_documents(docs)
    FAISS.from_documents(chunks, embeddings)
    return time.perf_counter() - started, len(chunks)


def ingest(path: Path, pages: int, runs: int) -> dict:
    from langchain_huggingface import HuggingFaceEmbeddings

    location = load_embedder().location
    lc_embeddings = HuggingFaceEmbeddings(model_name=location, model_kwargs={"device": "cpu"},
                                          encode_kwargs={"normalize_embeddings": True})
    ours(path), langchain_pipeline(path, lc_embeddings)  # warm-up
    times = {"ours": [], "langchain": [], "reingest": []}
    chunks = {}
    for _ in range(runs):
        for name, fn in (("ours", lambda: ours(path)), ("langchain", lambda: langchain_pipeline(path, lc_embeddings))):
            seconds, chunks[name] = fn()
            times[name].append(seconds)
        times["reingest"].append(reingest(path))  # right after a cold ours run: the cache is filled
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"times": med, "chunks": chunks, "pages": pages}


def zipf_texts(n: int, words_per_chunk: int, rng: np.random.Generator) -> list[str]:
    """Texts with a Zipf word distribution: the sample guide's words first, most frequent first
    (so 'the', 'a', 'of' are as common as in English and a question's stop words hit most
    chunks), then 30k made-up words for a long tail."""
    counts: dict[str, int] = {}
    for _, paragraphs in PAGES:
        for word in " ".join(paragraphs).lower().split():
            word = word.strip(".,:;()'")
            if word:
                counts[word] = counts.get(word, 0) + 1
    sample_words = sorted(counts, key=lambda w: -counts[w])
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "dr", "en", "or", "ul"]
    made = ["".join(rng.choice(syllables, size=rng.integers(2, 5))) for _ in range(30_000)]
    vocab = np.array(list(dict.fromkeys(sample_words + made)))
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    picks = rng.choice(len(vocab), size=(n, words_per_chunk), p=weights / weights.sum())
    return [" ".join(vocab[row]) for row in picks]


def retrieval(n: int, queries: int) -> dict:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    texts = zipf_texts(n, 120, rng)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(i, f"doc{i // 400}.pdf", i % 400 + 1, t, 0) for i, t in enumerate(texts)]
    col = Collection("bench", "all-minilm-l6-v2", SETTINGS, chunks, [], vectors)
    build_s = time.perf_counter() - started
    for q in QUESTIONS[:5]:  # warm-up
        col.search(q, "hybrid", k=5)
    latencies = []
    for i in range(queries):
        started = time.perf_counter()
        hits = col.search(QUESTIONS[i % len(QUESTIONS)], "hybrid", k=5, candidates=30)
        latencies.append((time.perf_counter() - started) * 1000)
        assert len(hits) == 5
    embed_ms = []
    for q in QUESTIONS:
        started = time.perf_counter()
        col.query_embedding(q)
        embed_ms.append((time.perf_counter() - started) * 1000)
    return {"p50": float(np.percentile(latencies, 50)), "p95": float(np.percentile(latencies, 95)),
            "build_s": build_s, "embed_ms": statistics.median(embed_ms), "n": n}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pages", type=int, default=120)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        os.environ["LLMPG_CACHE_DIR"] = str(Path(tmp) / "cache")  # never touch the user's cache
        path = write_pdf(long_document(args.pages), Path(tmp) / "long_guide.pdf")
        ing = ingest(path, args.pages, args.runs)
        ret = retrieval(args.chunks, args.queries)
    t, n = ing["times"], ing["chunks"]
    print(f"{args.pages}-page PDF, chunks of {SETTINGS.size} characters with {SETTINGS.overlap} overlap, "
          f"all-MiniLM-L6-v2 on CPU, {torch.get_num_threads()} threads, median of {args.runs} interleaved runs")
    print(f"{'pipeline':<24}{'seconds':>9}{'pages/s':>10}{'chunks/s':>10}{'chunks':>8}")
    for name, label in (("ours", "ours (cold)"), ("langchain", "LangChain")):
        print(f"{label:<24}{t[name]:>9.2f}{args.pages / t[name]:>10.1f}{n[name] / t[name]:>10.1f}{n[name]:>8}")
    print(f"{'ours, re-ingest (cache)':<24}{t['reingest']:>9.3f}{args.pages / t['reingest']:>10.1f}"
          f"{n['ours'] / t['reingest']:>10.1f}{n['ours']:>8}")
    print(f"hybrid retrieval over {ret['n']:,} chunks (k=5, 30 candidates per method, query embedding "
          f"included, median {ret['embed_ms']:.1f} ms of it): p50 {ret['p50']:.1f} ms, p95 {ret['p95']:.1f} ms "
          f"({args.queries} queries; building the indexes took {ret['build_s']:.1f} s)")
    print(json.dumps({"ingest_ratio": round(t["langchain"] / t["ours"], 3),
                      "reingest_speedup": round(t["ours"] / t["reingest"], 1),
                      "p95_ms_100k": round(ret["p95"], 1)}))


if __name__ == "__main__":
    main()
