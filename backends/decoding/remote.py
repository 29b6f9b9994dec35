"""A run on a remote OpenAI-compatible server, as the same `TokenStep`s the in-app loop yields.

The server sends text pieces and, when asked and able, each token's log-probability with its
`top_logprobs` alternatives. `token_steps` turns that stream into `TokenStep`s (token ids are
unknown remotely: -1), so the page draws remote runs with the same probability chips; a server
that sends no log-probabilities gives one chip per text piece with an unknown probability (NaN).
`remote_metrics` is `metrics` without the model: perplexity from the sent log-probabilities,
distinct-n and repetition over the token strings.

Duck-typed on purpose: `steps` is any iterable of objects with `.text` and `.tokens` (items with
`.token`, `.logprob`, `.top` as (token, logprob) pairs), e.g. `backends.serving.RemoteEngine`'s
`stream_config`; this module imports no other topic (serving imports decoding). `remote_columns`
reads several such streams side by side with the in-app loop's own `take_turns`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from backends.decoding.loop import ColumnEvent, take_turns
from backends.decoding.metrics import RunMetrics, distinct_n, repetition_rate
from backends.decoding.steps import Alternative, TokenStep

UNKNOWN = float("nan")


def token_steps(steps: Iterable, top_n: int = 5) -> Iterator[TokenStep]:
    """One `TokenStep` per remote token (or per text piece when the server sends no log-probabilities)."""
    index = 0
    for step in steps:
        tokens = list(getattr(step, "tokens", None) or [])
        if not tokens:
            if step.text:
                yield TokenStep(index, -1, step.text, step.text, UNKNOWN, UNKNOWN, UNKNOWN, [])
                index += 1
            continue
        for token in tokens:
            logprob = float(token.logprob)
            prob = math.exp(logprob) if math.isfinite(logprob) else UNKNOWN
            top = [
                Alternative(-1, text, math.exp(lp), math.exp(lp))
                for text, lp in list(token.top)[:top_n]
                if lp is not None and math.isfinite(lp)
            ]
            yield TokenStep(index, -1, token.token, token.token, prob, logprob, prob, top)
            index += 1


def remote_columns(
    engine,
    prompt: str,
    configs: list,
    chat: bool = True,
    extensions: bool = False,
    catch: tuple[type[Exception], ...] = (),
) -> Iterator[ColumnEvent]:
    """`stream_columns` on a remote server: one stream per config (`engine.stream_config`), read in
    turns, as the same `ColumnEvent`s; an error of a type in `catch` ends only its own column."""
    running = {
        i: token_steps(engine.stream_config(prompt, config, chat=chat, top_logprobs=5, extensions=extensions))
        for i, config in enumerate(configs)
    }
    return take_turns(running, catch)


def remote_metrics(steps: list[TokenStep], seconds: float) -> RunMetrics:
    """Tokens, tokens/s, perplexity (when every token came with its log-probability), distinct-n, repetition."""
    pieces = [s.text for s in steps]
    logprobs = [s.logprob for s in steps]
    known = bool(logprobs) and all(math.isfinite(lp) for lp in logprobs)
    ppl = math.exp(-sum(logprobs) / len(logprobs)) if known else UNKNOWN
    return RunMetrics(
        tokens=len(steps),
        tokens_per_s=len(steps) / seconds if seconds > 0 else 0.0,
        perplexity=ppl,
        distinct_1=distinct_n(pieces, 1),
        distinct_2=distinct_n(pieces, 2),
        repetition_rate=repetition_rate(pieces),
    )
