"""Decoding the seq2seq model: greedy and beam search, one input at a time, and the cross-attention map.

Greedy takes the most likely next character until EOS. Beam search keeps the `beam` best partial
outputs by summed log-probability; a finished output (EOS, or the length limit) is ranked by its
length-normalised score, sum of log-probs / length ** length_penalty (length counts EOS), as
transformers' `generate(num_beams=k, length_penalty=..., early_stopping=True)` does: at each step
the 2k best continuations of all beams are ranked, those of the first k that end become finished
outputs, the best k that go on become the next beams, and the search ends once k outputs are finished.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from backends.core.coded import CodedError
from backends.core.scheduler import shared_scheduler
from backends.scratch_gpt import Seq2Seq

from .couplets import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocab, pad

LABEL = "architectures.seq2seq"
MAX_INPUT = 9  # characters the page accepts (the corpus's half-lines have 1 to 9, mostly 5 or 7)
SUPPRESS = (PAD_ID, BOS_ID, UNK_ID)  # never generated (transformers: generation_config.suppress_tokens)


class CoupletInputError(CodedError, ValueError):
    """A first half-line the model cannot take: code "empty", "too_long" (n, limit) or "unknown" (chars)."""


@dataclass(frozen=True)
class Decoded:
    text: str
    ids: list[int]  # generated ids, EOS included when produced
    logprob: float  # summed log-probability of the ids
    score: float  # what the search ranked by: logprob (greedy) or logprob / len ** length_penalty (beam)


def check_input(vocab: Vocab, text: str, max_chars: int = MAX_INPUT) -> str:
    """The half-line stripped of spaces and punctuation around it, or ValueError saying what is wrong."""
    text = "".join(text.split()).strip("，。？！；、：,.?!;:")
    if not text:
        raise CoupletInputError("Type a half-line, e.g. 床前明月光.", "empty")
    if len(text) > max_chars:
        raise CoupletInputError(
            f"{len(text)} characters: a half-line here has at most {max_chars}.",
            "too_long",
            n=len(text),
            limit=max_chars,
        )
    unknown = " ".join(vocab.unknown(text))
    if unknown:
        raise CoupletInputError(f"Not in the training vocabulary: {unknown}.", "unknown", chars=unknown)
    return text


def max_new(model: Seq2Seq, vocab: Vocab, src_len: int) -> int:
    return min(vocab.max_out(src_len), model.config.block_size)


def next_logprobs(model: Seq2Seq, ids: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the next token after each row of ids, the suppressed tokens set to -inf."""
    n = ids.shape[0]
    logp = F.log_softmax(model.decode(ids, memory.expand(n, -1, -1), mask.expand(n, -1))[:, -1], dim=-1)
    logp[:, list(SUPPRESS)] = float("-inf")
    return logp


def encode_one(model: Seq2Seq, vocab: Vocab, text: str):
    src = torch.tensor([vocab.encode(text)], dtype=torch.long)
    mask = torch.ones_like(src, dtype=torch.bool)
    return src, mask, model.encode(src, mask)


@torch.no_grad()
def greedy(model: Seq2Seq, vocab: Vocab, text: str, max_new_tokens: int | None = None) -> Decoded:
    model.eval()
    with shared_scheduler().turn(LABEL):
        src, mask, memory = encode_one(model, vocab, text)
        limit = max_new_tokens or max_new(model, vocab, src.shape[1])
        ids, total = [BOS_ID], 0.0
        for _ in range(limit):
            logp = next_logprobs(model, torch.tensor([ids]), memory, mask)[0]
            nxt = int(logp.argmax())
            ids.append(nxt)
            total += float(logp[nxt])
            if nxt == EOS_ID:
                break
    return Decoded(vocab.decode(ids[1:]), ids[1:], total, total)


@torch.no_grad()
def greedy_batch(model: Seq2Seq, vocab: Vocab, texts: list[str], chunk: int = 64) -> list[Decoded]:
    """greedy() for many inputs, `chunk` at a time (the held-out table): the inputs right-padded (the
    padding hidden from attention), all outputs grown one token per step; a row stops at its EOS or limit."""
    model.eval()
    out = []
    for start in range(0, len(texts), chunk):
        part = texts[start : start + chunk]
        with shared_scheduler().turn(LABEL):
            src = pad([vocab.encode(t) for t in part])
            mask = src != PAD_ID
            memory = model.encode(src, mask)
            limits = [max_new(model, vocab, len(t)) for t in part]
            ids, rows = torch.full((len(part), 1), BOS_ID), [[] for _ in part]
            totals, done = [0.0] * len(part), [False] * len(part)
            for step in range(max(limits)):
                logp = next_logprobs(model, ids, memory, mask)
                nxt = logp.argmax(-1)
                for i, token in enumerate(nxt.tolist()):
                    if not done[i]:
                        rows[i].append(token)
                        totals[i] += float(logp[i, token])
                        done[i] = token == EOS_ID or step + 1 >= limits[i]
                if all(done):
                    break
                ids = torch.cat([ids, nxt[:, None]], dim=1)
        out += [Decoded(vocab.decode(r), r, total, total) for r, total in zip(rows, totals)]
    return out


@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    vocab: Vocab,
    text: str,
    beam: int = 4,
    length_penalty: float = 1.0,
    max_new_tokens: int | None = None,
) -> Decoded:
    model.eval()
    with shared_scheduler().turn(LABEL):
        src, mask, memory = encode_one(model, vocab, text)
        limit = max_new_tokens or max_new(model, vocab, src.shape[1])
        beams = [([BOS_ID], 0.0)]  # (ids, summed log-prob)
        finished: list[tuple[float, list[int], float]] = []  # (normalised score, ids, summed log-prob)
        for length in range(1, limit + 1):
            logp = next_logprobs(model, torch.tensor([b[0] for b in beams]), memory, mask)
            totals = logp + torch.tensor([b[1] for b in beams])[:, None]
            values, flat = totals.flatten().topk(min(2 * beam, totals.numel()))
            running = []
            for rank, (value, index) in enumerate(zip(values.tolist(), flat.tolist())):
                row, token = divmod(index, totals.shape[1])
                seq = beams[row][0] + [token]
                if token == EOS_ID or length == limit:
                    if rank < beam:  # only the k best candidates may finish
                        finished.append((value / length**length_penalty, seq, value))
                elif len(running) < beam:
                    running.append((seq, value))
            finished = sorted(finished, key=lambda f: -f[0])[:beam]
            if len(finished) == beam or length == limit:
                break
            beams = running
    score, seq, total = finished[0]
    return Decoded(vocab.decode(seq[1:]), seq[1:], total, score)


def translate(model: Seq2Seq, vocab: Vocab, text: str, beam: int = 1, length_penalty: float = 1.0) -> Decoded:
    """The output for a half-line (its pinyin, or a second half-line): greedy (beam=1) or beam search."""
    text = check_input(vocab, text)
    if beam <= 1:
        return greedy(model, vocab, text)
    return beam_search(model, vocab, text, beam, length_penalty)


@torch.no_grad()
def cross_attention_map(model: Seq2Seq, vocab: Vocab, src: str, out: str) -> torch.Tensor:
    """Cross-attention weights when the decoder reads [BOS] + out: (layers, heads, len(out) + 1, len(src)).
    Row i is the position that predicts out[i] (the last row predicts EOS); each row sums to 1."""
    src = check_input(vocab, src)
    model.eval()
    with shared_scheduler().turn(LABEL):
        _, mask, memory = encode_one(model, vocab, src)
        tgt = torch.tensor([[BOS_ID, *vocab.encode(out)]])
        _, maps = model.decode(tgt, memory, mask, return_weights=True)
    return torch.stack([m[0] for m in maps])
