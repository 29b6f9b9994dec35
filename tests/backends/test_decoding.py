"""Decoding backend: the hand-written sampler and loops against transformers, on the real offline model.

Parity: every filter equals its transformers logits processor on real logits, and the same
seed draws the same tokens; greedy, seeded sampling and beam search give `model.generate`'s
tokens; contrastive search (gone from transformers 5's core) equals a brute-force version of
the paper's definition. Then the step distribution, branching, metrics, the KV cache
comparison, config validation and the JSON round trip; and the shared model is unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import pytest
import torch
from transformers import (
    LogitsProcessorList,
    MinPLogitsWarper,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

from backends import decoding as D
from backends.decoding import sampling as S
from backends.decoding.beam_search import beam_search
from backends.decoding.metrics import (
    distinct_n,
    kv_cache_comparison,
    metrics,
    perplexity,
    repetition_rate,
)
from backends.models.cache import shared_cache

N = 14  # new tokens per parity run: short, so the file stays fast on two cores


def _checksum(model) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def lm():
    loaded = shared_cache().get("smollm2-135m-instruct")
    before = (_checksum(loaded.model), loaded.model.training, loaded.model.generation_config.to_json_string())
    yield loaded
    after = (_checksum(loaded.model), loaded.model.training, loaded.model.generation_config.to_json_string())
    assert after == before, "the shared model was modified"


@pytest.fixture(scope="module")
def chat_ids(lm):
    return D.encode_prompt(lm, "Write a short poem about the sea.", chat=True)


@pytest.fixture(scope="module")
def raw_ids(lm):
    return D.encode_prompt(lm, "The capital of France is", chat=False)


def hf_generate(lm, ids, config):
    x = torch.tensor([ids])
    if config.strategy == "sample":
        torch.manual_seed(config.seed)  # generate draws from torch's global generator
    with torch.inference_mode():
        out = lm.model.generate(x, attention_mask=torch.ones_like(x), **config.to_generate_kwargs())
    return out[0, len(ids) :].tolist()


def ours(lm, ids, config):
    return [s.token_id for s in D.generate_stream(lm, ids, config)]


def real_logits(lm, ids):
    with torch.inference_mode():
        return lm.model(input_ids=torch.tensor([ids])).logits[0, -1].float()


# --- the sampler == transformers' processors -------------------------------------------------------

FILTERS = [
    ("temperature 0.7", lambda x, ids: S.apply_temperature(x, 0.7), TemperatureLogitsWarper(0.7)),
    ("temperature 1.6", lambda x, ids: S.apply_temperature(x, 1.6), TemperatureLogitsWarper(1.6)),
    ("top-k 50", lambda x, ids: S.top_k_filter(x, 50), TopKLogitsWarper(50)),
    ("top-k 1", lambda x, ids: S.top_k_filter(x, 1), TopKLogitsWarper(1)),
    ("top-p 0.9", lambda x, ids: S.top_p_filter(x, 0.9), TopPLogitsWarper(0.9)),
    ("top-p 0.3", lambda x, ids: S.top_p_filter(x, 0.3), TopPLogitsWarper(0.3)),
    ("min-p 0.1", lambda x, ids: S.min_p_filter(x, 0.1), MinPLogitsWarper(0.1)),
    ("typical 0.9", lambda x, ids: S.typical_filter(x, 0.9), TypicalLogitsWarper(0.9)),
    ("typical 0.2", lambda x, ids: S.typical_filter(x, 0.2), TypicalLogitsWarper(0.2)),
    ("repetition 1.3", lambda x, ids: S.apply_repetition_penalty(x, ids, 1.3), RepetitionPenaltyLogitsProcessor(1.3)),
    ("repetition 0.8", lambda x, ids: S.apply_repetition_penalty(x, ids, 0.8), RepetitionPenaltyLogitsProcessor(0.8)),
    ("no-repeat 2", lambda x, ids: S.ban_repeated_ngrams(x, ids, 2), NoRepeatNGramLogitsProcessor(2)),
    ("no-repeat 1", lambda x, ids: S.ban_repeated_ngrams(x, ids, 1), NoRepeatNGramLogitsProcessor(1)),
]


@pytest.fixture(scope="module")
def repeats(lm):
    # A text with repeats, so the n-gram ban and the penalty have something to act on.
    ids = D.encode_prompt(lm, "the cat sat on the mat and the cat sat on the", chat=False)
    return ids, real_logits(lm, ids)


@pytest.mark.parametrize("name,mine,theirs", FILTERS, ids=[f[0] for f in FILTERS])
def test_each_filter_equals_transformers(repeats, name, mine, theirs):
    ids, logits = repeats
    original = logits.clone()
    expected = theirs(torch.tensor([ids]), logits[None].clone())[0]
    got = mine(logits, ids)
    assert torch.equal(got, expected), name
    assert torch.equal(logits, original), "a filter changed its input"
    if "no-repeat" in name:
        assert torch.isinf(got).any()
    if "top" in name or "min-p" in name or "typical" in name:
        assert 1 <= int(torch.isfinite(got).sum()) < logits.numel()


def test_process_logits_and_pick_equal_transformers_chain(lm, chat_ids):
    config = D.DecodingConfig(
        strategy="sample",
        temperature=0.8,
        top_k=40,
        top_p=0.9,
        min_p=0.05,
        typical_p=0.95,
        repetition_penalty=1.2,
        no_repeat_ngram_size=3,
        seed=7,
    )
    chain = LogitsProcessorList(
        [
            RepetitionPenaltyLogitsProcessor(1.2),
            NoRepeatNGramLogitsProcessor(3),
            TemperatureLogitsWarper(0.8),
            TopKLogitsWarper(40),
            TopPLogitsWarper(0.9),
            MinPLogitsWarper(0.05),
            TypicalLogitsWarper(0.95),
        ]
    )
    logits = real_logits(lm, chat_ids)
    scores = S.process_logits(logits, chat_ids, config)
    expected = chain(torch.tensor([chat_ids]), logits[None].clone())[0]
    assert torch.equal(scores, expected)
    # Same seed, same draws: our generator vs transformers' way (global seed, multinomial on [1, vocab]).
    generator = torch.Generator().manual_seed(7)
    picks = [S.pick_token(scores, config, generator) for _ in range(40)]
    torch.manual_seed(7)
    theirs = [int(torch.multinomial(expected[None].softmax(-1), 1)) for _ in range(40)]
    assert picks == theirs and len(set(picks)) > 1
    assert S.pick_token(scores, dataclasses.replace(config, strategy="greedy")) == int(expected.argmax())


# --- generation == model.generate -----------------------------------------------------------------


def test_greedy_stream_equals_generate(lm, chat_ids, raw_ids):
    for ids, n in ((chat_ids, N), (raw_ids, 8)):
        config = D.DecodingConfig(strategy="greedy", max_new_tokens=n)
        steps = list(D.generate_stream(lm, ids, config))
        assert [s.token_id for s in steps] == hf_generate(lm, ids, config)
        assert [s.index for s in steps] == list(range(n))
        assert "".join(s.piece for s in steps) == lm.tokenizer.decode([s.token_id for s in steps])
        for s in steps:  # greedy: the chosen token is the most likely one
            assert s.top[0].token_id == s.token_id and s.prob == pytest.approx(s.top[0].prob)
            assert math.isclose(math.log(s.prob), s.logprob, rel_tol=1e-4)
            assert len(s.top) == 5 and all(a.prob >= b.prob for a, b in zip(s.top, s.top[1:]))


SAMPLED = [
    D.DecodingConfig(strategy="sample", temperature=0.7, top_k=50, seed=1),
    D.DecodingConfig(strategy="sample", top_p=0.9, seed=2),
    D.DecodingConfig(
        strategy="sample",
        temperature=1.3,
        min_p=0.1,
        typical_p=0.9,
        repetition_penalty=1.3,
        no_repeat_ngram_size=2,
        seed=3,
    ),
]


@pytest.mark.parametrize("config", SAMPLED, ids=["t0.7-k50", "top-p0.9", "min-p+typical+penalties"])
def test_seeded_sampling_equals_generate(lm, chat_ids, config):
    config = dataclasses.replace(config, max_new_tokens=N)
    steps = list(D.generate_stream(lm, chat_ids, config))
    assert [s.token_id for s in steps] == hf_generate(lm, chat_ids, config)
    assert [s.token_id for s in D.generate_stream(lm, chat_ids, config)] == [s.token_id for s in steps]
    assert all(0 < s.filtered_prob <= 1 for s in steps)


def test_penalties_in_greedy_equal_generate(lm, raw_ids):
    config = D.DecodingConfig(strategy="greedy", repetition_penalty=1.5, no_repeat_ngram_size=3, max_new_tokens=N)
    assert ours(lm, raw_ids, config) == hf_generate(lm, raw_ids, config)


def test_different_seeds_give_different_samples(lm, chat_ids):
    config = D.DecodingConfig(strategy="sample", temperature=1.5, max_new_tokens=6)
    outs = {tuple(ours(lm, chat_ids, dataclasses.replace(config, seed=s))) for s in (0, 1)}
    assert len(outs) > 1


def test_seeded_sampling_is_not_greedy_and_repeats_with_its_seed(lm, chat_ids):
    """At temperature 1.5 (no other filter) sampling walks the greedy path only with the product of each
    greedy token's tempered probability along it; computed here from one forward pass of the model over
    prompt + greedy tokens, it is far below 1e-3, so a seeded sample that equals greedy is a bug (e.g. the
    temperature or the draw ignored). The same seed draws the same tokens again."""
    n, temperature = 8, 1.5
    greedy = ours(lm, chat_ids, D.DecodingConfig(strategy="greedy", max_new_tokens=n))
    assert len(greedy) == n
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([chat_ids + greedy])).logits[0].float()
    steps = logits[len(chat_ids) - 1 : -1]  # the distribution each greedy token was picked from
    assert steps.argmax(-1).tolist() == greedy
    log_path = (steps / temperature).log_softmax(-1).gather(1, torch.tensor(greedy)[:, None]).sum()
    assert log_path < math.log(1e-3), float(log_path.exp())
    for seed in (0, 1, 2):
        config = D.DecodingConfig(strategy="sample", temperature=temperature, max_new_tokens=n, seed=seed)
        first = ours(lm, chat_ids, config)
        assert first != greedy, f"seed {seed} sampled the greedy tokens"
        assert ours(lm, chat_ids, config) == first, f"seed {seed} is not reproducible"


# --- beam search by hand == generate(num_beams) ---------------------------------------------------

BEAMS = [
    ("sea", D.DecodingConfig(strategy="beam", num_beams=5, max_new_tokens=8)),
    ("sum", D.DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=16)),  # finishes with EOS
    ("sum", D.DecodingConfig(strategy="beam", num_beams=4, early_stopping=True, max_new_tokens=16)),
    (
        "colour",
        D.DecodingConfig(strategy="beam", num_beams=3, length_penalty=-1.0, early_stopping="never", max_new_tokens=16),
    ),
    (
        "raw",
        D.DecodingConfig(strategy="beam", num_beams=4, length_penalty=2.0, no_repeat_ngram_size=2, max_new_tokens=10),
    ),
]
BEAM_PROMPTS = {
    "sea": ("Write a short poem about the sea.", True),
    "sum": ("What is 2+2? Answer with just the number.", True),
    "colour": ("Name one colour.", True),
    "raw": ("The capital of France is", False),
}


@pytest.mark.parametrize("prompt,config", BEAMS, ids=["beam5", "eos", "early-stop", "never+neg-lp", "lp2+ngram"])
def test_beam_search_equals_generate(lm, prompt, config):
    ids = D.encode_prompt(lm, *BEAM_PROMPTS[prompt])
    seen = []
    result = beam_search(lm, ids, config, on_step=seen.append)
    assert result.best_ids == hf_generate(lm, ids, config)
    assert seen == result.steps and 1 <= len(result.steps) <= config.max_new_tokens
    n = config.num_beams
    for i, step in enumerate(result.steps):
        assert len(step.kept) == n
        assert len(step.kept) + len(step.finished) + len(step.dropped) == 2 * n
        assert [b.score for b in step.kept] == sorted((b.score for b in step.kept), reverse=True)
        for b in step.kept + step.finished + step.dropped:
            assert len(b.ids) == i + 1 and 0 < b.token_prob <= 1
            parent = result.steps[i - 1].kept[b.parent] if i else None
            assert (b.parent == 0) if i == 0 else (b.ids[:-1] == parent.ids)
    assert result.best_score == result.hypotheses[0].normalized
    if prompt == "sum":
        assert result.best_ids[-1] in D.eos_ids(lm) and any(s.finished for s in result.steps)


# --- contrastive search: by hand, against brute force ---------------------------------------------


def test_transformers5_contrastive_needs_the_hub(lm, raw_ids):
    """Why we hand-write it: transformers 5 moved contrastive search to a hub `custom_generate` repo."""
    x = torch.tensor([raw_ids])
    with pytest.raises(ValueError, match="trust_remote_code"):
        lm.model.generate(x, attention_mask=torch.ones_like(x), penalty_alpha=0.6, top_k=4, max_new_tokens=2)


def brute_force_contrastive(lm, ids, k, alpha, n):
    """The paper's definition with no cache at all: re-run the whole text with each candidate appended."""
    base, head = lm.model.base_model, lm.model.get_output_embeddings()
    ids, out = list(ids), []
    with torch.inference_mode():
        for _ in range(n):
            probs = head(base(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]).float().softmax(-1)
            best, best_score = None, -math.inf
            candidates = torch.topk(probs, k).indices.tolist()
            hidden = base(input_ids=torch.tensor([[*ids, c] for c in candidates])).last_hidden_state
            for c, h in zip(candidates, hidden):
                sim = max(float(torch.cosine_similarity(h[-1], h[j], dim=0)) for j in range(len(ids)))
                score = (1 - alpha) * float(probs[c]) - alpha * sim
                if score > best_score:
                    best, best_score = c, score
            ids.append(best)
            out.append(best)
            if best in D.eos_ids(lm):
                break
    return out


def test_contrastive_equals_brute_force(lm, raw_ids):
    config = D.DecodingConfig(strategy="contrastive", top_k=4, penalty_alpha=0.6, max_new_tokens=8)
    steps = list(D.generate_stream(lm, raw_ids, config))
    assert [s.token_id for s in steps] == brute_force_contrastive(lm, raw_ids, 4, 0.6, 8)
    for s in steps:
        assert len(s.candidates) == 4
        best = max(s.candidates, key=lambda c: c.score)
        assert best.token_id == s.token_id
        assert best.score == pytest.approx((1 - 0.6) * best.prob - 0.6 * best.similarity, abs=1e-6)
    # It is not greedy: the degeneration penalty changes some picks.
    assert [s.token_id for s in steps] != ours(lm, raw_ids, D.DecodingConfig(max_new_tokens=8))


# --- one step's distribution, branching -----------------------------------------------------------


def test_distribution_at_before_and_after_filtering(lm, chat_ids):
    config = D.DecodingConfig(strategy="sample", temperature=0.7, top_k=50, top_p=0.9)
    first = next(D.generate_stream(lm, chat_ids, dataclasses.replace(config, max_new_tokens=1)))
    dist = D.distribution_at(lm, chat_ids, config, top_n=20)
    assert dist.vocab_size == lm.model.config.vocab_size and 1 <= dist.kept <= 50
    assert len(dist.raw) == 20 and len(dist.filtered) == min(20, dist.kept)
    assert [a.token_id for a in dist.raw[:5]] == [a.token_id for a in first.top]
    assert dist.raw[0].prob == pytest.approx(first.top[0].prob, abs=1e-5)
    assert dist.raw[0].filtered_prob >= dist.raw[0].prob  # temperature 0.7 and filtering sharpen the top
    # Plain nucleus: the kept tokens hold at least 90% of the raw probability, and all of the filtered.
    nucleus = D.distribution_at(lm, chat_ids, D.DecodingConfig(strategy="sample", top_p=0.9), top_n=1000)
    assert 1 <= nucleus.kept == len(nucleus.filtered) < 1000
    assert sum(a.filtered_prob for a in nucleus.filtered) == pytest.approx(1.0, abs=1e-4)
    assert sum(a.prob for a in nucleus.filtered) == pytest.approx(nucleus.kept_mass, abs=1e-4)
    assert 0.9 <= nucleus.kept_mass < 0.9 + nucleus.filtered[-1].prob + 1e-4
    assert sum(a.prob for a in nucleus.raw) <= 1.0 + 1e-5
    greedy = D.distribution_at(lm, chat_ids, D.DecodingConfig(), top_n=5)  # greedy: no sampling filters
    assert [a.prob for a in greedy.raw] == pytest.approx([a.filtered_prob for a in greedy.raw])
    assert greedy.kept == greedy.vocab_size and greedy.kept_mass == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError, match="top_n"):
        D.distribution_at(lm, chat_ids, config, top_n=0)


def test_branch_continues_from_the_alternative(lm, chat_ids):
    config = D.DecodingConfig(strategy="greedy", max_new_tokens=10)
    steps = list(D.generate_stream(lm, chat_ids, config))
    generated = [s.token_id for s in steps]
    at, alternative = 3, steps[3].top[1]
    branched = list(D.branch(lm, chat_ids, generated, at, alternative.token_id, config))
    assert branched[0].index == at and branched[0].token_id == alternative.token_id
    assert branched[0].prob == pytest.approx(alternative.prob, abs=1e-5)
    assert [s.index for s in branched] == list(range(at, at + len(branched))) and at + len(branched) <= 10
    # The continuation is what greedy decoding does from the new prefix.
    prefix = [*generated[:at], alternative.token_id]
    rest = ours(lm, chat_ids + prefix, dataclasses.replace(config, max_new_tokens=10 - at - 1))
    assert [s.token_id for s in branched[1:]] == rest
    with pytest.raises(ValueError, match="at_step"):
        list(D.branch(lm, chat_ids, generated, 11, alternative.token_id, config))


def test_stream_columns_side_by_side(lm, raw_ids):
    configs = [
        D.DecodingConfig(max_new_tokens=6),
        D.DecodingConfig(strategy="sample", top_p=0.9, seed=4, max_new_tokens=6),
        D.DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=6),
    ]
    events = list(D.stream_columns(lm, raw_ids, configs))
    tokens = {i: [e.token.token_id for e in events if e.column == i and e.token] for i in (0, 1)}
    assert tokens[0] == ours(lm, raw_ids, configs[0]) and tokens[1] == ours(lm, raw_ids, configs[1])
    done = [e for e in events if e.done]
    assert sorted(e.column for e in done) == [0, 1, 2] and all(e.elapsed_s > 0 for e in done)
    beam_done = next(e for e in done if e.column == 2)
    assert beam_done.result.best_ids == beam_search(lm, raw_ids, configs[2]).best_ids
    assert len([e for e in events if e.beam_step]) == len(beam_done.result.steps)
    # Turns alternate: the first events are one step of each column.
    assert [e.column for e in events[:3]] == [0, 1, 2]
    with pytest.raises(ValueError, match="Column 2: temperature"):
        list(D.stream_columns(lm, raw_ids, [configs[0], D.DecodingConfig(strategy="sample", temperature=0)]))


def test_should_stop_and_eos(lm):
    ids = D.encode_prompt(lm, "What is 2+2? Answer with just the number.", chat=True)
    steps = list(D.generate_stream(lm, ids, D.DecodingConfig(max_new_tokens=40)))
    assert steps[-1].token_id in D.eos_ids(lm) and len(steps) < 40
    calls = []
    stopped = list(
        D.generate_stream(
            lm, ids, D.DecodingConfig(max_new_tokens=40), should_stop=lambda: len(calls) > 2 or calls.append(1)
        )
    )
    assert len(stopped) == 3


# --- metrics, KV cache ----------------------------------------------------------------------------


def test_distinct_and_repetition_on_known_inputs():
    assert distinct_n([1, 2, 3, 4], 1) == 1.0
    assert distinct_n([1, 1, 1, 1], 1) == 0.25
    assert distinct_n([1, 2, 1, 2, 1], 2) == 0.5  # (1,2) (2,1) (1,2) (2,1): 2 unique of 4
    assert distinct_n([7], 2) == 0.0
    assert repetition_rate([1, 2, 3, 4, 5]) == 0.0
    assert repetition_rate([1, 2, 3, 4, 1, 2, 3, 4]) == pytest.approx(1 / 5)  # 5 4-grams, (1, 2, 3, 4) twice
    assert repetition_rate([1, 1, 1], n=1) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="n >= 1"):
        distinct_n([1], 0)


def test_metrics_and_perplexity(lm, raw_ids):
    output = ours(lm, raw_ids, D.DecodingConfig(max_new_tokens=10))
    m = metrics(lm, raw_ids, output, seconds=2.0)
    assert m.tokens == 10 and m.tokens_per_s == 5.0
    assert m.distinct_1 == distinct_n(output, 1) and m.distinct_2 == distinct_n(output, 2)
    # Perplexity by hand, one full forward pass.
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([raw_ids + output])).logits[0].float()
    nll = [-float(logits[len(raw_ids) - 1 + i].log_softmax(-1)[t]) for i, t in enumerate(output)]
    assert m.perplexity == pytest.approx(math.exp(sum(nll) / len(nll)), rel=1e-4)
    # Greedy text is unsurprising to the model; a reversed one is not.
    assert 1.0 <= m.perplexity < perplexity(lm, raw_ids, output[::-1])


def test_kv_cache_comparison(lm, raw_ids):
    result = kv_cache_comparison(lm, raw_ids, 6)
    assert result.same_tokens and len(result.tokens) == 6
    assert result.with_cache_s_per_token > 0 and result.without_cache_s_per_token > 0
    assert result.speedup == pytest.approx(result.without_cache_s_per_token / result.with_cache_s_per_token)
    with pytest.raises(ValueError, match="1 to 512"):
        kv_cache_comparison(lm, raw_ids, 0)


# --- config, presets, export ----------------------------------------------------------------------


def test_presets_are_the_classic_four():
    p = D.PRESETS
    assert p["greedy"].strategy == "greedy"
    assert (p["beam 5"].strategy, p["beam 5"].num_beams) == ("beam", 5)
    assert (p["sampling t=0.7 top-k 50"].temperature, p["sampling t=0.7 top-k 50"].top_k) == (0.7, 50)
    assert (p["nucleus top-p 0.9"].top_p, p["nucleus top-p 0.9"].top_k) == (0.9, 0)
    for config in p.values():
        config.validate()
        assert D.DecodingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
        assert "model.generate(" in config.to_snippet()


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"max_new_tokens": 513}, "caps it at 512"),
        ({"max_new_tokens": 0}, "at least 1"),
        ({"strategy": "magic"}, "greedy, sample, beam, contrastive"),
        ({"temperature": 0.0}, "above 0"),
        ({"top_p": 0.0}, r"\(0, 1\]"),
        ({"min_p": 1.5}, r"\[0, 1\]"),
        ({"top_k": -1}, "turn it off"),
        ({"strategy": "beam", "num_beams": 1}, "1 beam is greedy"),
        ({"strategy": "contrastive", "top_k": 0}, "at least 2 candidates"),
        ({"early_stopping": "sometimes"}, "'never'"),
        ({"temperature": float("nan")}, "finite"),
        ({"max_new_tokens": 2.5}, "whole number"),
    ],
)
def test_config_validation_quotes_the_bad_value(changes, message):
    config = D.DecodingConfig(**changes)
    with pytest.raises(ValueError, match=message) as err:
        config.validate()
    assert repr(next(iter(changes.values()))) in str(err.value) or "strategy" in changes


def test_generate_kwargs_override_model_defaults():
    kwargs = D.DecodingConfig(strategy="sample", top_p=0.9).to_generate_kwargs()
    assert kwargs["top_k"] == 0 and kwargs["do_sample"] is True  # not transformers' default top_k=50
    assert D.DecodingConfig(strategy="contrastive", top_k=4).to_generate_kwargs()["custom_generate"]


def test_run_export_import_round_trip(lm, raw_ids):
    configs = [D.PRESETS["greedy"], dataclasses.replace(D.PRESETS["nucleus top-p 0.9"], seed=3)]
    outputs = [D.RunOutput([1, 2, 3], "abc", {"tokens": 3}), {"token_ids": [4], "text": "d"}]
    record = D.run_record("The capital of France is", False, configs, 3, outputs, model="smollm2-135m-instruct")
    data = json.loads(json.dumps(record))
    assert data["versions"]["transformers"].startswith("5.") and data["versions"]["torch"]
    run = D.load_run(data)
    assert run.configs == configs and run.seed == 3 and run.prompt == "The capital of France is"
    assert run.outputs[0] == D.RunOutput([1, 2, 3], "abc", {"tokens": 3}) and run.outputs[1].token_ids == [4]
    assert run.model == "smollm2-135m-instruct"
    for bad, message in [
        ([], "JSON object"),
        ({**data, "format": "x"}, "Not a decoding run"),
        ({**data, "version": 99}, "Unsupported run version"),
        ({k: v for k, v in data.items() if k != "seed"}, "missing seed"),
        ({**data, "outputs": data["outputs"][:1]}, "same length"),
        ({**data, "configs": [{**data["configs"][0], "top_q": 1}, data["configs"][1]]}, "Config 1: Unknown .*top_q"),
        ({**data, "configs": [data["configs"][0], {**data["configs"][1], "top_p": 2}]}, "Config 2: top_p=2"),
        ({**data, "outputs": [{"token_ids": ["a"]}, data["outputs"][1]]}, "non-negative whole numbers"),
    ]:
        with pytest.raises(ValueError, match=message):
            D.load_run(bad)
    with pytest.raises(ValueError, match="one output per config"):
        D.run_record("p", False, configs, 0, outputs[:1])


def test_encode_prompt(lm):
    chat = D.encode_prompt(lm, "Hi", chat=True)
    text = lm.tokenizer.decode(chat)
    assert "<|im_start|>user\nHi<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")
    assert D.encode_prompt(lm, "Hi", chat=False) == lm.tokenizer("Hi")["input_ids"]
    with pytest.raises(ValueError, match="empty"):
        D.encode_prompt(lm, "  ", chat=False)
    with pytest.raises(ValueError, match="beam_search"):
        next(D.generate_stream(lm, chat, D.PRESETS["beam 5"]))


@pytest.mark.parametrize(
    "config",
    [
        D.DecodingConfig(strategy="greedy", max_new_tokens=3),
        D.DecodingConfig(strategy="contrastive", max_new_tokens=3, top_k=3, penalty_alpha=0.6),
        D.DecodingConfig(strategy="beam", num_beams=2, max_new_tokens=3),
    ],
    ids=["greedy", "contrastive", "beam"],
)
def test_a_suspended_token_loop_leaves_the_callers_thread_out_of_inference_mode(lm, raw_ids, config):
    """Between tokens (and after a run is abandoned half-way) the caller's thread is back to normal:
    a backward pass it does there gets gradients. Each step still runs in inference mode."""
    stream = (
        D.iter_beam_search(lm, raw_ids, config)
        if config.strategy == "beam"
        else D.generate_stream(lm, raw_ids, config)
    )
    first = next(stream)
    assert not torch.is_inference_mode_enabled()
    weight = torch.ones(2, requires_grad=True)
    (weight * 3).sum().backward()
    assert weight.grad.tolist() == [3.0, 3.0]
    if config.strategy != "beam":
        assert first.token_id >= 0 and first.prob > 0
    next(stream)
    assert not torch.is_inference_mode_enabled()
    del stream  # abandoned, not exhausted
    assert not torch.is_inference_mode_enabled()
