"""One question checked on a remote engine: any OpenAI-compatible server (the sidebar's), not SmolLM2 here.

The same prompt as the in-app check (the question, then INSTRUCTION, as one user message), the same
scores: the greedy answer (temperature 0) and N samples at temperature 1.0 with `seed` = seed + i (a
server that ignores `seed` gives other samples each time: said on the page). The answer's sentences get
the MiniLM and unigram self-consistency scores computed here, on this machine.

Token uncertainty needs the distribution: the server sends each token's log-probability and its
`top_logprobs` alternatives (at most TOP_LOGPROBS, the OpenAI API's limit), not the whole vocabulary.
The entropy shown is that of the top alternatives plus one bucket for the rest of the mass,
-sum p_i ln p_i - r ln r with r = 1 - sum p_i: a LOWER bound of the full entropy (splitting the
bucket among more tokens can only raise it). A server that sends no log-probabilities gives no
entropy (NaN) and no token chips.

`engine` is duck-typed (backends.serving.RemoteEngine: `stream_chat`, `chat`): backends.trust never
imports backends.serving, which imports it for the guarded route.
"""

from __future__ import annotations

import math
import time

from backends import decoding as dec
from backends.core.jobs import JobStopped
from backends.trust.selfcheck import minilm_encoder, minilm_scores, split_sentences, unigram_scores
from backends.trust.selfcheck_run import (
    ANSWER_TOKENS,
    INSTRUCTION,
    MAX_SAMPLES,
    N_SAMPLES,
    SelfCheck,
    SentenceScores,
)
from backends.trust.uncertainty import TokenUncertainty, sentence_uncertainty

TOP_LOGPROBS = 20


def entropy_lower_bound(logprobs: list[float]) -> float:
    """Entropy (nats) of the given alternatives' probabilities plus one bucket for the remaining mass."""
    probs = [math.exp(lp) for lp in logprobs if math.isfinite(lp)]
    rest = max(0.0, 1.0 - sum(probs))
    return -sum(p * math.log(p) for p in probs if p > 0) - (rest * math.log(rest) if rest > 0 else 0.0)


def remote_tokens(steps) -> list[TokenUncertainty]:
    """The streamed tokens of an answer with p, ln p and the entropy lower bound from their alternatives."""
    out, start = [], 0
    for step in steps:
        for token in step.tokens:
            top = [lp for _, lp in token.top] or [token.logprob]
            prob = math.exp(token.logprob) if math.isfinite(token.logprob) else float("nan")
            out.append(TokenUncertainty(-1, token.token, start, prob, token.logprob, entropy_lower_bound(top)))
            start += len(token.token)
    return out


def run_selfcheck_remote(
    question: str,
    engine,
    n_samples: int = N_SAMPLES,
    seed: int = 0,
    max_new_tokens: int = ANSWER_TOKENS,
    ctx=None,
) -> SelfCheck:
    """`run_selfcheck` on a remote engine (see the module's note on entropy and seeds). Not memoized."""
    if not 1 <= n_samples <= MAX_SAMPLES:
        raise ValueError(f"n_samples={n_samples}: sample 1 to {MAX_SAMPLES} answers.")
    began = time.perf_counter()
    messages = [{"role": "user", "content": f"{question}\n{INSTRUCTION}"}]

    def report(done: int, message: str) -> None:
        if ctx is not None:
            ctx.report(done / (n_samples + 2), message, kind="selfcheck", done=done, total=n_samples + 2)
            if ctx.stopped:
                raise JobStopped()

    report(0, "greedy answer")
    steps = list(engine.stream_chat(messages, max_tokens=max_new_tokens, temperature=0.0, top_logprobs=TOP_LOGPROBS))
    answer = "".join(s.text for s in steps)
    samples = []
    for i in range(n_samples):
        report(i + 1, f"sample {i + 1} of {n_samples}")
        samples.append(engine.chat(messages, max_tokens=max_new_tokens, temperature=1.0, seed=seed + i).strip())
    report(n_samples + 1, "scoring the sentences")
    tokens = remote_tokens(steps)
    sentences = split_sentences(answer)
    texts = [s.text for s in sentences]
    minilm = minilm_scores(texts, samples, minilm_encoder("cpu")) if texts else []
    ngram = unigram_scores(texts, samples, answer)
    if tokens:
        uncertainty = [(u.mean_entropy, u.max_surprise) for u in sentence_uncertainty(tokens, sentences)]
    else:
        uncertainty = [(float("nan"), float("nan"))] * len(sentences)
    scored = tuple(
        SentenceScores(s.text, s.start, s.end, m, g.mean_neg_logprob, g.max_neg_logprob, u[0], u[1])
        for s, m, g, u in zip(sentences, minilm, ngram, uncertainty, strict=True)
    )
    chips = tuple(dec.token_steps(steps))
    return SelfCheck(
        question, answer, scored, tuple(samples), tuple(tokens), chips, n_samples, seed, time.perf_counter() - began
    )


def selfcheck_remote_job(ctx, question: str, engine, n_samples: int = N_SAMPLES, seed: int = 0) -> SelfCheck:
    """The page's one-question job on the sidebar's remote engine."""
    return run_selfcheck_remote(question, engine, n_samples, seed, ctx=ctx)
