"""The brevity rule, its shipped preference set and held-out prompts, and batched generation
against transformers' own `generate` run one prompt at a time."""

from __future__ import annotations

import copy
import importlib.util
import re

import pytest
import torch

from backends.alignment.rule import (
    HELDOUT_PROMPTS,
    MAX_WORDS,
    SHIPPED_PAIRS,
    Answer,
    follows_rule,
    generate_answers,
    heldout_prompts,
    shipped_pairs,
    word_count,
)
from tests.torch_helpers import checksum, one_torch_thread  # noqa: F401 - fixture: one torch thread


def _script():
    path = SHIPPED_PAIRS.parent / "make_brevity_preferences.py"
    spec = importlib.util.spec_from_file_location("make_brevity_preferences", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@pytest.mark.parametrize(
    ("text", "n"),
    [("", 0), ("   ", 0), ("Paris.", 1), ("Hello world", 2), ("one\ntwo\tthree  four", 4), ("It's 4.22 km away.", 4)],
)
def test_word_count(text, n):
    assert word_count(text) == n


def test_follows_rule():
    assert MAX_WORDS == 25
    assert follows_rule("The capital of France is Paris.", stopped=True)
    assert not follows_rule("The capital of France is Paris.", stopped=False)  # cut at the limit
    assert not follows_rule("", stopped=True)  # stopping at once is no answer
    assert follows_rule(" ".join(["word"] * 25), stopped=True)
    assert not follows_rule(" ".join(["word"] * 26), stopped=True)
    assert Answer("q", "Yes, it is.", True, 5).follows
    assert not Answer("q", "Yes, it is.", False, 5).follows


def test_script_cuts_after_the_last_sentence_within_the_limit():
    cut = _script().cut
    words = " ".join(f"w{i}" for i in range(30))  # 30 words, no sentence end
    assert cut("Sleep helps the body rest. " + words) == "Sleep helps the body rest."
    assert cut("One two three. Four five six seven. " + words) == "One two three. Four five six seven."
    assert cut(words) is None
    assert cut("Yes. No. " + words) is None  # no sentence of 3 words or more
    assert cut("1. Drink water " + words) is None  # a list number is no sentence end
    assert cut("See e.g. the sea " + words) is None


def test_shipped_pairs_follow_and_break_the_rule():
    pairs = shipped_pairs()
    assert len(pairs) >= 120
    assert len({_norm(p.prompt) for p in pairs}) == len(pairs)
    for p in pairs:
        assert 1 <= word_count(p.chosen) <= MAX_WORDS, p
        assert word_count(p.rejected) > MAX_WORDS, p
        assert p.rejected.startswith(p.chosen), p  # the model's own words, stopping early


def test_heldout_prompts_are_new():
    held = heldout_prompts()
    assert HELDOUT_PROMPTS.exists() and len(held) == 60
    assert len({_norm(h) for h in held}) == 60
    training = {_norm(p) for p in _script().training_prompts()} | {_norm(p.prompt) for p in shipped_pairs()}
    assert len(training) >= 200
    assert not {_norm(h) for h in held} & training


@pytest.fixture(scope="module")
def loaded():
    from backends.models.cache import shared_cache

    return shared_cache().get("smollm2-135m-instruct")


def _one_by_one(model, tokenizer, prompt, max_new_tokens):
    enc = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
    new = out[0, enc["input_ids"].shape[1] :].tolist()
    return tokenizer.decode(new, skip_special_tokens=True).strip(), new[-1] == tokenizer.eos_token_id


def test_batched_greedy_equals_generate_one_at_a_time(loaded):
    model, tok = loaded.model, loaded.tokenizer
    before, padding_side = checksum(model), tok.padding_side
    prompts = ["Hi", "What is the capital of France?", "Give me three tips for staying focused while studying."]
    answers = generate_answers(model, tok, prompts, max_new_tokens=20, batch_size=3)
    assert [a.prompt for a in answers] == prompts
    for a in answers:
        assert (a.text, a.stopped) == _one_by_one(model, tok, a.prompt, 20)
    assert [a.stopped for a in answers] == [True, True, False]  # the list of tips runs past 20 tokens
    assert answers[2].n_tokens == 20
    assert checksum(model) == before and tok.padding_side == padding_side and not model.training


def test_sampling_repeats_with_a_seed_and_leaves_the_global_rng(loaded):
    model, tok = loaded.model, loaded.tokenizer
    prompts = ["Tell me about cats.", "What is rain?"]
    rng = torch.get_rng_state()
    first = generate_answers(model, tok, prompts, max_new_tokens=12, temperature=1.0, seed=3)
    again = generate_answers(model, tok, prompts, max_new_tokens=12, temperature=1.0, seed=3)
    assert first == again
    assert torch.equal(torch.get_rng_state(), rng)


def test_works_on_a_peft_copy_and_restores_its_mode(loaded):
    from peft import LoraConfig, get_peft_model

    model, tok = loaded.model, loaded.tokenizer
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    peft_model.train()
    # A fresh LoRA adapter adds B @ A with B = 0: the copy answers exactly as the base model.
    on_copy = generate_answers(peft_model, tok, ["What is the capital of France?"], max_new_tokens=10)
    assert peft_model.training
    assert on_copy == generate_answers(model, tok, ["What is the capital of France?"], max_new_tokens=10)
