"""SFT for the Alignment page: which tokens carry loss, the rules answers are judged by, a short run.

Expected values come from the chat template's own text and hand-written cases.
"""

from __future__ import annotations

import pytest
import torch

from backends.alignment import sft as S
from backends.core.jobs import Job, JobContext
from backends.lora import data as D
from backends.lora import train as T
from backends.lora.config import LoraSettings, SettingsError
from backends.models.cache import shared_cache


@pytest.fixture(scope="module")
def lm():
    return shared_cache().get("smollm2-135m-instruct")


def test_response_tokens_are_exactly_the_reply_and_its_end_of_turn(lm):
    example = D.shipped_examples()[0]
    tokens = S.loss_tokens(lm.tokenizer, example)
    whole = lm.tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in example.messages], tokenize=False)
    assert "".join(tok.text for tok in tokens) == whole
    assert "".join(tok.text for tok in tokens if tok.response) == example.response() + "<|im_end|>\n"
    assert tokens[0].special and not tokens[0].response  # <|im_start|> of the system turn


def test_loss_on_all_labels_every_token_and_eval_stays_response_only(lm):
    example = D.shipped_examples()[0]
    everything = D.encode_example(lm.tokenizer, example, 512, "all")
    reply = D.encode_example(lm.tokenizer, example, 512, "response")
    assert everything.labels == everything.input_ids == reply.input_ids
    assert everything.trained_tokens == len(everything.input_ids) > reply.trained_tokens
    examples = D.shipped_examples()[:20]
    a = T.prepare(lm.tokenizer, examples, LoraSettings(loss_on="all", eval_fraction=0.2), lm.model)
    b = T.prepare(lm.tokenizer, examples, LoraSettings(loss_on="response", eval_fraction=0.2), lm.model)
    assert [e.labels for e in a.eval] == [e.labels for e in b.eval]  # the same tokens are scored
    assert all(e.labels == e.input_ids for e in a.train)
    assert all(e.trained_tokens < len(e.input_ids) for e in b.train)


def test_bad_loss_on_is_refused_by_name():
    with pytest.raises(SettingsError, match="loss_on = 'prompt'"):
        LoraSettings(loss_on="prompt").validate()
    with pytest.raises(ValueError, match="loss_on = 'x'"):
        D.encode_example(None, D.Example(text="hi"), 8, "x")


@pytest.mark.parametrize(
    ("text", "pirate"),
    [
        ("Arr! The sea be blue. Fair winds, matey!", True),
        ("arr, it be so. Fair winds matey", True),
        ("Arr! The sea be blue.", False),
        ("The sea is blue. Fair winds, matey!", False),
        ("Barrels float. Fair winds, matey!", False),
        ("", False),
    ],
)
def test_pirate_style_by_hand(text, pirate):
    assert S.pirate_style(text) is pirate


def test_a_short_sft_run_reports_steps_and_judges_answers(lm):
    before = sum(float(p.double().sum()) for p in lm.model.parameters())
    settings = LoraSettings(loss_on="all", max_steps=2, eval_every=0, sample_every=0, eval_fraction=0.1)
    prepared = T.prepare(lm.tokenizer, D.shipped_examples()[:12], settings, lm.model)
    job = Job("test", "sft")
    ctx = JobContext(job)
    prompts = ["What is 2 plus 2?", "Name a colour."]
    result = S.sft_job(ctx, lm.model, lm.tokenizer, prepared, "smollm2-135m-instruct", prompts)
    assert result.loss_on == "all" and result.train.steps_done == 2
    assert [a.prompt for a in result.judged.answers] == prompts
    assert result.judged.pirate == sum(S.pirate_style(a.text) for a in result.judged.answers) / 2
    kinds = [e.data.get("kind") for e in job.events_since(0)]
    assert kinds.count("step") == 2 and kinds[-1] == "judged"
    base = S.judge_base("smollm2-135m-instruct", prompts)
    assert base is S.judge_base("smollm2-135m-instruct", prompts)  # computed once, shared
    assert sum(float(p.double().sum()) for p in lm.model.parameters()) == before
    assert torch.is_grad_enabled()
