"""One question checked: SmolLM2's greedy answer, N sampled answers, and every sentence's scores.

The model answers in its chat template ("Answer in one or two short sentences.", at most
ANSWER_TOKENS new tokens). The main answer is greedy; the samples use temperature 1.0 with no other
filter, sample i seeded with seed + i (backends.decoding's own torch.Generator, so a run is the same
whatever other sessions draw at the same time; decoding's tests hold its sampling equal to
`model.generate`'s for the same seed). One token is one scheduler turn. Batched `model.generate` with
num_return_sequences was measured 1.5-1.8x faster on the 2-core box but draws from the process-wide
RNG (not reproducible while other sessions sample) and runs outside the scheduler, so it is not used.

A result is memoized per (question, N, seed, tokens) in process (128 kept): the cached model never
changes, so every session asking the same thing shares one run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from backends import decoding as dec
from backends.core.jobs import JobStopped
from backends.core.memo import SingleFlightLRU
from backends.core.scheduler import shared_scheduler
from backends.core.shared import process_wide
from backends.trust.selfcheck import minilm_encoder, minilm_scores, split_sentences, unigram_scores
from backends.trust.uncertainty import TokenUncertainty, sentence_uncertainty, token_uncertainty

MODEL = "smollm2-135m-instruct"
ANSWER_TOKENS = 48
N_SAMPLES = 5
MAX_SAMPLES = 20
INSTRUCTION = "Answer in one or two short sentences."
RUNS_KEPT = 128


@dataclass(frozen=True)
class SentenceScores:
    text: str
    start: int
    end: int
    minilm: float  # 1 - mean over samples of the best cosine with a sample sentence
    ngram: float  # mean -ln p(word) under the unigram model of samples + answer
    ngram_max: float
    entropy: float  # mean token entropy, nats
    surprise_max: float  # max -ln p of a token


@dataclass(frozen=True)
class SelfCheck:
    question: str
    answer: str  # the greedy answer's text
    sentences: tuple[SentenceScores, ...]
    samples: tuple[str, ...]
    tokens: tuple[TokenUncertainty, ...]
    steps: tuple  # the greedy run's TokenSteps (for the decoding page's probability chips)
    n_samples: int
    seed: int
    seconds: float

    def answer_score(self, scorer: str) -> float:
        """The answer's score for `scorer` ("minilm", "ngram", "entropy"): its most doubtful sentence.

        An answer with no sentence (the model said nothing) scores 0."""
        return max((getattr(s, scorer) for s in self.sentences), default=0.0)


def selfcheck_prompt(loaded, question: str) -> list[int]:
    return dec.encode_prompt(loaded, f"{question}\n{INSTRUCTION}", chat=True)


def _generate(loaded, prompt_ids, config, should_stop) -> list:
    steps, it = [], dec.generate_stream(loaded, prompt_ids, config, should_stop=should_stop, top_n=5)
    sched = shared_scheduler()
    while True:
        with sched.turn("trust.selfcheck"):
            step = next(it, None)
        if step is None:
            return steps
        steps.append(step)


def _text(loaded, steps) -> tuple[list[int], str]:
    stop = dec.eos_ids(loaded)
    ids = [s.token_id for s in steps if s.token_id not in stop]
    return ids, loaded.tokenizer.decode(ids, skip_special_tokens=True)


def run_selfcheck(
    question: str,
    n_samples: int = N_SAMPLES,
    seed: int = 0,
    max_new_tokens: int = ANSWER_TOKENS,
    ctx=None,
    device: str = "cpu",
) -> SelfCheck:
    """Answer `question` (greedy and n_samples sampled) and score every sentence of the greedy answer.

    Not memoized (see `selfcheck_question`). `ctx` (a job's context) gets progress and stops the run."""
    from backends.models.cache import shared_cache

    if not 1 <= n_samples <= MAX_SAMPLES:
        raise ValueError(f"n_samples={n_samples}: sample 1 to {MAX_SAMPLES} answers.")
    began = time.perf_counter()
    loaded = shared_cache().get(MODEL, device=device)
    prompt = selfcheck_prompt(loaded, question)

    def should_stop() -> bool:
        return ctx is not None and ctx.stopped

    def report(done: int, message: str) -> None:
        if ctx is not None:
            ctx.report(done / (n_samples + 2), message, kind="selfcheck", done=done, total=n_samples + 2)
        if should_stop():
            raise JobStopped()

    report(0, "greedy answer")
    greedy = dec.DecodingConfig(strategy="greedy", max_new_tokens=max_new_tokens)
    steps = _generate(loaded, prompt, greedy, should_stop)
    answer_ids, answer = _text(loaded, steps)
    samples = []
    for i in range(n_samples):
        report(i + 1, f"sample {i + 1} of {n_samples}")
        config = dec.DecodingConfig(strategy="sample", temperature=1.0, max_new_tokens=max_new_tokens, seed=seed + i)
        samples.append(_text(loaded, _generate(loaded, prompt, config, should_stop))[1].strip())
    report(n_samples + 1, "scoring the sentences")
    with shared_scheduler().turn("trust.selfcheck"):
        tokens = token_uncertainty(loaded, prompt, answer_ids)
    sentences = split_sentences(answer)
    texts = [s.text for s in sentences]
    minilm = minilm_scores(texts, samples, minilm_encoder(device)) if texts else []
    ngram = unigram_scores(texts, samples, answer)
    uncertainty = sentence_uncertainty(tokens, sentences)
    scored = tuple(
        SentenceScores(
            s.text, s.start, s.end, m, g.mean_neg_logprob, g.max_neg_logprob, u.mean_entropy, u.max_surprise
        )
        for s, m, g, u in zip(sentences, minilm, ngram, uncertainty, strict=True)
    )
    return SelfCheck(
        question,
        answer,
        scored,
        tuple(samples),
        tuple(tokens),
        tuple(s for s in steps if s.token_id not in dec.eos_ids(loaded)),
        n_samples,
        seed,
        time.perf_counter() - began,
    )


# The job context of the caller that runs a memoized load (SingleFlightLRU loads in the asking thread).
_caller = threading.local()


def current_ctx():
    """The job context `with_ctx` set for this thread (None outside a job)."""
    return getattr(_caller, "ctx", None)


def _load(key) -> SelfCheck:
    question, n_samples, seed, max_new_tokens, device = key
    return run_selfcheck(question, n_samples, seed, max_new_tokens, current_ctx(), device)


_runs = process_wide(lambda: SingleFlightLRU(_load, budget=lambda group: RUNS_KEPT))


def with_ctx(ctx, fn: Callable):
    """fn() with `ctx` as the job context a memoized load in this thread reports to."""
    saved = getattr(_caller, "ctx", None)
    _caller.ctx = ctx
    try:
        return fn()
    finally:
        _caller.ctx = saved


def selfcheck_question(
    question: str, n_samples: int = N_SAMPLES, seed: int = 0, ctx=None, max_new_tokens: int = ANSWER_TOKENS
) -> SelfCheck:
    """`run_selfcheck`, memoized in process: the same question, N and seed are answered once."""
    key = (question.strip(), int(n_samples), int(seed), int(max_new_tokens), "cpu")
    return with_ctx(ctx, lambda: _runs().get(key))


def selfcheck_job(ctx, question: str, n_samples: int = N_SAMPLES, seed: int = 0) -> SelfCheck:
    """The page's one-question job."""
    return selfcheck_question(question, n_samples, seed, ctx=ctx)
