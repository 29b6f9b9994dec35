"""Speculative decoding and the be-the-sampler game on the real SmolLM2-135M-Instruct.

References: transformers' own `generate` (plain greedy, `prompt_lookup_num_tokens=`, `assistant_model=`),
a hand-built acceptance case, and log-probabilities computed here from the model's logits.
"""

from __future__ import annotations

import copy
import hashlib
import math

import pytest
import torch

from backends import inference as inf
from backends.decoding import encode_prompt
from backends.models.cache import shared_cache

N = 24  # new tokens per run: short, so the file stays quick on two cores


def _checksum(model) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _state(model):
    return (
        _checksum(model),
        model.training,
        model.config.to_json_string(),
        model.generation_config.to_json_string(),
        len(model.model.layers),
        any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()),
    )


@pytest.fixture(scope="module")
def lm():
    loaded = shared_cache().get("smollm2-135m-instruct")
    before = _state(loaded.model)
    yield loaded
    assert _state(loaded.model) == before, "the shared model was modified"


@pytest.fixture(scope="module")
def prompt_ids(lm):
    record = next(p for p in inf.lookup_prompts() if p["id"] == "json")
    return encode_prompt(lm, record["text"], chat=True)


def hf_generate(lm, ids, **kwargs):
    x = torch.tensor([ids])
    with torch.inference_mode():
        out = lm.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=N, do_sample=False, **kwargs)
    return out[0, len(ids) :].tolist()


@pytest.fixture(scope="module")
def greedy(lm, prompt_ids):
    return hf_generate(lm, prompt_ids)


def test_plain_loop_is_transformers_greedy(lm, prompt_ids, greedy):
    run = inf.plain_greedy(lm, prompt_ids, N)
    assert run.tokens == greedy
    assert run.forward_passes == len(greedy)  # one token per forward pass
    assert all(s.proposed == [] and s.accepted == 0 for s in run.steps)
    assert "".join(p for s in run.steps for p in s.pieces) == lm.tokenizer.decode(greedy)


def test_prompt_lookup_equals_greedy_and_transformers(lm, prompt_ids, greedy):
    run = inf.speculative_decode(lm, prompt_ids, inf.PromptLookup(3), 4, N)
    assert run.tokens == greedy
    assert hf_generate(lm, prompt_ids, prompt_lookup_num_tokens=4) == greedy
    # The answer copies the record: guesses were made and some accepted, in fewer big-model passes.
    assert run.proposed > 0 and run.accepted > 0
    assert run.forward_passes < len(greedy)
    assert run.accepted == len(run.tokens) - run.forward_passes  # each pass adds its own token + the accepted
    for s in run.steps:
        assert s.tokens == [*s.proposed[: s.accepted], s.own_token][: len(s.tokens)]
        assert len(s.proposed) <= 4
    assert run.steps[-1].cache_len == len(prompt_ids) + len(run.tokens) - 1


def test_draft_equals_greedy_and_transformers_assisted(lm, prompt_ids, greedy):
    # 27 of 30 layers: shallower drafts of this model agree with it on almost no token (spec_draft.py)
    draft = inf.layer_draft(lm, 27)
    run = inf.speculative_decode(lm, prompt_ids, inf.DraftProposer(draft), 3, N)
    assert run.tokens == greedy
    assert run.proposed > 0 and run.accepted > 0  # some guesses kept: the cache crop and the resync are exercised
    assert any(s.accepted < len(s.proposed) for s in run.steps)  # and some rejected
    assistant = inf.layer_draft(lm, 27)
    assistant.generation_config.num_assistant_tokens = 3
    assistant.generation_config.num_assistant_tokens_schedule = "constant"
    assert hf_generate(lm, prompt_ids, assistant_model=assistant) == greedy


def test_draft_shares_storage_and_is_the_first_layers(lm, prompt_ids):
    draft = inf.layer_draft(lm, 6)
    assert inf.shares_weights(draft, lm)
    base = dict(lm.model.named_parameters())
    for name, p in draft.named_parameters():
        assert p.data_ptr() == base[name].data_ptr(), name  # layers.0-5, embeddings, norm: the same tensors
    assert len(draft.model.layers) == 6 and draft.config.num_hidden_layers == 6
    assert lm.model.config.num_hidden_layers == 30
    assert draft.lm_head.weight.data_ptr() == lm.model.model.embed_tokens.weight.data_ptr()  # tied head
    # An independent early exit: transformers' hidden state after layer 6, then the final norm and the head.
    # On a copy: asking for hidden states installs transformers' capture hooks on the model it runs.
    ref = copy.deepcopy(lm.model)
    x = torch.tensor([prompt_ids])
    with torch.inference_mode():
        hidden = ref(x, output_hidden_states=True).hidden_states[6]
        by_hand = ref.lm_head(ref.model.norm(hidden))[0, -1]
        ours = draft(x).logits[0, -1]
    torch.testing.assert_close(ours, by_hand, rtol=1e-4, atol=1e-4)


def test_acceptance_against_a_hand_built_case(lm, prompt_ids, greedy):
    k, wrong_at = 4, 2

    class Oracle:  # proposes greedy's next k tokens, with one of the first step's guesses spoiled
        name, calls = "oracle", 0

        def reset(self):
            self.calls = 0

        def propose(self, ids, n):
            done = len(ids) - len(prompt_ids)
            guess = list(greedy[done : done + n])
            if self.calls == 0:
                guess[wrong_at] = (guess[wrong_at] + 1) % lm.model.config.vocab_size
            self.calls += 1
            return guess

    run = inf.speculative_decode(lm, prompt_ids, Oracle(), k, N)
    first = run.steps[1]
    assert first.accepted == wrong_at
    assert first.tokens == greedy[1 : 1 + wrong_at + 1]  # two accepted guesses + the model's own token
    assert first.own_token == greedy[1 + wrong_at]
    assert first.rejected[0] != greedy[1 + wrong_at] and len(first.rejected) == k - wrong_at
    assert first.cache_len == len(prompt_ids) + 1 + wrong_at
    later = run.steps[2:]
    assert all(s.accepted == len(s.proposed) for s in later)  # right guesses are all taken
    assert run.tokens == greedy
    assert inf.accept_count([5, 6, 7], [5, 6, 8, 9]) == 2
    assert inf.accept_count([], [3]) == 0
    assert inf.accept_count([1, 2], [1, 2, 3]) == 2


def test_prompt_lookup_proposals_by_hand():
    lookup = inf.PromptLookup(max_ngram=2)
    # ...the last 2-gram (7, 8) occurs at positions 1-2, followed by 9, 4, 5.
    assert lookup.propose([3, 7, 8, 9, 4, 5, 6, 7, 8], 3) == [9, 4, 5]
    assert lookup.propose([3, 7, 8, 9, 4, 5, 6, 7, 8], 10) == [9, 4, 5, 6, 7, 8]
    assert lookup.propose([1, 2, 3], 4) == []  # no earlier occurrence
    # The latest earlier occurrence wins; a 1-gram when no 2-gram matches.
    assert lookup.propose([5, 1, 5, 2, 9, 5], 1) == [2]


def test_lookup_prompts_and_spec_run(lm):
    prompts = inf.lookup_prompts()
    assert 8 <= len(prompts) <= 12
    assert {p["lang"] for p in prompts} == {"en", "zh"}
    assert len({p["id"] for p in prompts}) == len(prompts)
    got = inf.spec_run(lm, prompts[0]["text"], "prompt_lookup", 4, 16)
    assert got["identical"] is True
    assert got["spec"].tokens == got["plain"].tokens
    assert got["accept_rate"] == got["spec"].accepted / got["spec"].proposed
    assert got["speedup"] == pytest.approx(got["plain_decode_s"] / got["spec_decode_s"])


def test_sampler_bars_and_perplexity_by_hand(lm, prompt_ids, greedy):
    x = torch.tensor([prompt_ids])
    with torch.inference_mode():
        probs = lm.model(x).logits[0, -1].float().softmax(-1)
    bars = inf.next_token_bars(lm, prompt_ids, 15)
    values, idx = probs.topk(15)
    assert [b.token_id for b in bars] == idx.tolist()
    assert [b.prob for b in bars] == pytest.approx(values.tolist(), rel=1e-4)

    chosen = [bars[1].token_id, bars[0].token_id, 13, 42]  # a learner's picks, not all likely
    full = torch.tensor([prompt_ids + chosen])
    with torch.inference_mode():
        logp = lm.model(full).logits[0].double().log_softmax(-1)
    hand = [float(logp[len(prompt_ids) - 1 + i, t]) for i, t in enumerate(chosen)]
    assert inf.token_logprobs(lm, prompt_ids, chosen) == pytest.approx(hand, abs=1e-4)
    cmp = inf.compare_with_greedy(lm, prompt_ids, chosen)
    assert cmp.yours_ppl == pytest.approx(math.exp(-sum(hand) / len(hand)), rel=1e-4)
    assert cmp.greedy == greedy[: len(chosen)]
    assert cmp.greedy_ppl < cmp.yours_ppl  # greedy's picks are each the likeliest
    assert not cmp.greedy_ended


def test_draft_layers_are_checked(lm):
    with pytest.raises(ValueError, match="n_layers"):
        inf.layer_draft(lm, 30)
    with pytest.raises(ValueError, match="k="):
        inf.speculative_decode(lm, [1, 2], inf.PromptLookup(), 40, 4)
    assert copy.deepcopy(inf.PromptLookup(2)).max_ngram == 2
