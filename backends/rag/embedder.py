"""Sentence embeddings for retrieval, through the shared model cache.

`load_embedder(name, device)` hands out the cache's "sentence" variant: a
sentence-transformers model (transformer + pooling + normalisation), shared by
every session and never modified. `embed()` is the hot path of indexing:

- every text is tokenized once, up front, by the fast (Rust) tokenizer, so
  batches can be cut by real token counts, not by characters;
- texts are sorted by token count, so a batch pads to its own longest text
  (little wasted attention work), and results are put back in input order;
- the forward runs under torch.inference_mode (no autograd bookkeeping);
- a small input (a question) runs on one thread: splitting a forward of a few
  tokens across cores gains nothing, and on a busy machine every parallel
  region waits for the slowest core (measured: 490 ms on 2 contended threads,
  15-20 ms on one). torch's thread count is per calling thread, so this does
  not touch other sessions' work;
- a large input on CPU runs as many batches at once as torch has threads, each
  batch on one thread (torch releases the GIL in its kernels): whole batches in
  parallel scale better than splitting every small matmul across cores, and a
  core taken away by other work stalls one batch, not every layer of all of
  them (measured on the 2-core dev box under load: 1.5-1.9x the throughput of
  sentence-transformers' encode with 2 intra-op threads).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch

from backends.core.scheduler import shared_scheduler

DEFAULT_EMBED_MODEL = "all-minilm-l6-v2"
DEFAULT_BATCH = 16  # small enough that every worker gets batches on a short document
SMALL_INPUT_TOKENS = 512  # up to this many tokens in all, embed on one thread


class EmbedderError(ValueError):
    """Bad input to the embedder (not a sentence model, no texts of the right type...)."""


def load_embedder(name: str = DEFAULT_EMBED_MODEL, device: str = "cpu"):
    from backends.models.cache import shared_cache

    return shared_cache().get(name, device=device, variant="sentence")


def _sentence_model(loaded):
    model = getattr(loaded, "model", loaded)
    if not hasattr(model, "preprocess") or not hasattr(model, "max_seq_length"):
        raise EmbedderError(
            f"{type(model).__name__} is not a sentence-transformers model: load it with "
            "shared_cache().get(name, variant='sentence')."
        )
    return model


def max_tokens(loaded) -> int:
    return int(_sentence_model(loaded).max_seq_length or 512)


def token_counts(loaded, texts: list[str]) -> list[int]:
    """Token count of each text (without truncation) by the embedding model's own tokenizer."""
    enc = _sentence_model(loaded).tokenizer(list(texts), add_special_tokens=True, truncation=False)
    return [len(ids) for ids in enc["input_ids"]]


class _Inline:
    """An executor that runs each task when its result is asked for, in the calling thread."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        return _Deferred(fn, args)


class _Deferred:
    def __init__(self, fn, args):
        self._fn, self._args = fn, args

    def result(self):
        return self._fn(*self._args)

    def cancel(self):  # a deferred task whose result is never asked for never runs
        return True


@contextmanager
def _threads(n: int | None):
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _batch_features(ids: list[list[int]], pad_id: int, with_types: bool, device) -> dict:
    width = max(len(row) for row in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    features = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
    if with_types:
        features["token_type_ids"] = torch.zeros_like(features["input_ids"])
    return {k: v.to(device) for k, v in features.items()}


def embed(
    loaded,
    texts: list[str],
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[int, int], bool | None] | None = None,
) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text, in input order.

    on_batch(done, total) is called after every batch; returning True stops early
    (the result then holds only the rows embedded so far, in input order).
    """
    model = _sentence_model(loaded)
    if isinstance(texts, str):
        raise EmbedderError(f"embed() takes a list of texts, not one string ({texts[:40]!r}...).")
    texts = list(texts)
    if batch_size < 1:
        raise EmbedderError(f"batch_size must be at least 1, got {batch_size!r}.")
    dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
    if not texts:
        return np.zeros((0, dim or 0), dtype=np.float32)
    tokenizer = model.tokenizer
    enc = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=max_tokens(loaded))
    ids, with_types = enc["input_ids"], "token_type_ids" in enc
    order = np.argsort([-len(row) for row in ids], kind="stable")
    device = next(model.parameters()).device
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    pad = tokenizer.pad_token_id or 0

    def run(rows: np.ndarray) -> np.ndarray:
        # one intra-op thread per worker (set per thread: other sessions keep theirs)
        with torch.inference_mode(), _threads(1 if workers > 1 or small else None), shared_scheduler().turn("embed"):
            features = _batch_features([ids[i] for i in rows], pad, with_types, device)
            vectors = model(features)["sentence_embedding"].float()
            return torch.nn.functional.normalize(vectors, p=2, dim=1).cpu().numpy()

    small = sum(len(row) for row in ids) <= SMALL_INPUT_TOKENS
    workers = 1 if small or device.type != "cpu" else min(torch.get_num_threads(), len(batches))
    out = np.empty((len(texts), dim or 0), dtype=np.float32) if dim else None
    finished = np.zeros(len(texts), dtype=bool)
    # one worker runs in the caller's thread: a fresh thread would not inherit its torch settings
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed") if workers > 1 else _Inline() as pool:
        pending = [(rows, pool.submit(run, rows)) for rows in batches]
        for rows, future in pending:  # in submission order, so progress grows evenly
            vectors = future.result()
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
            finished[rows] = True
            if on_batch is not None and on_batch(int(finished.sum()), len(texts)):
                for _, later in pending:
                    later.cancel()
                return out[np.flatnonzero(finished)]
    return out


def embed_query(loaded, question: str) -> np.ndarray:
    """One query vector (1-D, unit length)."""
    if not isinstance(question, str) or not question.strip():
        raise EmbedderError(f"The question is empty ({question!r}): type a question to search for.")
    return embed(loaded, [question], batch_size=1)[0]
