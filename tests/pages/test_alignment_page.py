"""The Alignment page on the real offline SmolLM2-135M-Instruct: the loss tokens, an SFT run, a DPO run.

Expected values come from the tokenizer's own chat template, the shipped files and hand rules; the
arena has its own tests (tests/pages/test_alignment_arena.py).
"""

from __future__ import annotations

import time

import pytest

from backends.alignment import rule
from backends.core.jobs import shared_runner
from backends.lora import data as D
from backends.models.cache import shared_cache
from components.i18n import strings
from components.page_registry import PAGES

from .plotly_helpers import figures

ALIGNMENT = next(p for p in PAGES if p.key == "alignment")
EN, ZH = strings("en"), strings("zh")

# What a browser must see once the page has run (tests/e2e/test_browser.py).
BROWSER_MUST_SHOW = "text=" + EN["alignment.sft.template.title"]


def _template_counts() -> tuple[int, int]:
    """Tokens of the first shipped example, and how many belong to the reply (with its end of turn)."""
    tok = shared_cache().get("smollm2-135m-instruct").tokenizer
    example = D.shipped_examples()[0]
    chat = [{"role": r, "content": c} for r, c in example.messages]
    full = tok.apply_chat_template(chat, return_dict=True)["input_ids"]
    prompt = tok.apply_chat_template(chat[:-1], add_generation_prompt=True, return_dict=True)["input_ids"]
    return len(full), len(full) - len(prompt)


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    total, reply = _template_counts()
    shown = [m.value for m in at.markdown]
    assert EN["alignment.sft.template.response"].format(n=reply, total=total) in shown
    assert EN["alignment.sft.template.all"].format(n=total, total=total) in shown
    chips = next(m.value for m in at.markdown if "carries loss" in m.value)
    assert chips.count("carries loss") == reply and chips.count("no loss") == total - reply
    assert at.info[0].value == EN["alignment.sft.none"]


@pytest.fixture
def page(open_page):
    return open_page(ALIGNMENT)


def wait_for(at, key: str, timeout: float = 600):
    job = shared_runner().get(at.session_state[key])
    deadline = time.time() + timeout
    while not job.done and time.time() < deadline:
        time.sleep(0.5)
    assert job.done, "the job did not finish"
    return at.run()


def open_tab(at, label):
    at.session_state["alignment.tab"] = label
    return at.run()


def test_an_sft_run_is_compared_with_the_base_model(page):
    at = page
    at.number_input(key="alignment.sft.steps_n").set_value(2)
    at.radio(key="alignment.sft.loss_on").set_value("all")
    at.button(key="alignment.sft.start").click().run()
    at = wait_for(at, "alignment.sft.job")
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "Pirate style" in d.value.columns)
    models = list(table["Model"])
    assert models[0] == EN["alignment.sft.base"] and "every token" in models[1]
    # The base model has no eval loss: a dash, not the grid's "None" (English on the Chinese page).
    assert table["Eval loss (responses)"].iloc[0] == "–" and float(table["Eval loss (responses)"].iloc[1]) > 0
    answers = at.table[0].value
    assert list(answers.index) == rule.heldout_prompts()[:8]
    # The percentages are the share of the shown answers that follow each rule (checked by hand rules).
    sft_answers = list(answers[models[1]])
    pirate = sum(a.lstrip().lower().startswith("arr") and "fair winds" in a.lower()[-25:] for a in sft_answers)
    assert table["Pirate style"].iloc[1] == f"{pirate / 8:.0%}"
    assert at.session_state["alignment.adapters"]["sft"] is not None


def test_the_page_speaks_chinese(open_page):
    at = open_page(ALIGNMENT, **{"app.lang": "zh"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == ZH["page.alignment.title"]
    assert at.info[0].value == ZH["alignment.sft.none"]
    assert at.radio(key="alignment.sft.loss_on").options == [
        ZH["alignment.sft.loss_on.response"],
        ZH["alignment.sft.loss_on.all"],
    ]


def test_dpo_tab_shows_the_shipped_pairs_and_the_trl_script(page):
    at = open_tab(page, EN["alignment.tab.dpo"])
    assert not at.exception, [e.value for e in at.exception]
    pairs = rule.shipped_pairs()
    shown = next(d.value for d in at.dataframe if "chosen" in d.value.columns)
    assert len(shown) == min(len(pairs), 200) and shown["chosen"].iloc[0] == pairs[0].chosen
    assert any("DPOTrainer" in c.value for c in at.code)
    assert any("def dpo_loss" in c.value for c in at.code)
    assert figures(at) == []


def test_a_dpo_run_on_arena_pairs_draws_its_charts_and_judges_the_rule(page):
    at = page
    at.session_state["alignment.imported_pairs"] = rule.shipped_pairs()[:8]
    at = open_tab(at, EN["alignment.tab.dpo"])
    at.radio(key="alignment.dpo.source").set_value("arena").run()
    assert any(EN["alignment.dpo.source.arena.note"].format(n=8) == c.value for c in at.caption)
    at.select_slider(key="alignment.dpo.beta").set_value(0.5).run()
    at.button(key="alignment.dpo.start").click().run()
    at = wait_for(at, "alignment.dpo.job")
    assert not at.exception, [e.value for e in at.exception]
    record = at.session_state["alignment.dpo.record"]
    assert record["settings"].beta == 0.5 and len(record["steps"]) == 4  # 8 pairs, 4 per step, 2 epochs
    chart = figures(at)[0]
    assert {tr.name for tr in chart.data} >= {"Loss", "chosen reward", "rejected reward", "margin"}
    steps = record["steps"]
    assert steps[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # log 2: policy = reference at the start
    for s in steps:  # the margin is the difference of the two rewards
        assert s["margin"] == pytest.approx(s["reward_chosen"] - s["reward_rejected"], abs=1e-6)
    table = next(d.value for d in at.dataframe if "Mean words" in d.value.columns)
    assert list(table["Model"]) == [EN["alignment.sft.base"], "DPO"]
    answers = at.table[0].value
    assert list(answers.index) == rule.heldout_prompts()[:20]
    for label, row in zip(table["Model"], table.itertuples()):
        shown = list(answers[label])
        wins = [a for a in shown if a.startswith("✅")]
        assert all(rule.word_count(a[2:]) <= rule.MAX_WORDS for a in wins)
        assert row[2] == f"{len(wins) / 20:.0%}"
    assert at.session_state["alignment.adapters"]["dpo"] is not None


def test_the_kl_panel_says_when_kl_comes_before_its_first_probe():
    """KL is probed every `probe_every` steps: until the first probe its panel says so, not empty axes."""
    from components.alignment.dpo_view import charts

    steps = [
        {"step": i, "loss": 0.69, "reward_chosen": 0.0, "reward_rejected": 0.0, "margin": 0.0, "accuracy": 0.5}
        for i in (1, 2, 3)
    ]
    fig = charts(steps, probe_every=10)
    assert [a.text for a in fig.layout.annotations if a.xref == "x4 domain"] == [
        "KL is measured every 10 steps and at the last step"
    ]
    steps[-1]["kl"] = 0.002
    fig = charts(steps, probe_every=10)
    assert [a for a in fig.layout.annotations if a.xref == "x4 domain"] == []
    assert list(fig.data[-1].y) == [0.002]
