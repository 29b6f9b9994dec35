"""The GPT-from-scratch page in AppTest: data on arrival, a real small run with its loss chart, inspection,
export into a folder the other pages' picker loads, and bad uploads."""

import math
import time
from collections import Counter
from itertools import pairwise

import pytest

from backends.core.jobs import shared_runner
from backends.models.cache import shared_cache
from backends.scratch_gpt import load_corpus, prepare
from components.i18n import strings
from components.page_registry import PAGES

from .plotly_helpers import figure_titled, values

PAGE = next(p for p in PAGES if p.key == "scratch_gpt")
EN = strings("en")

# The loss chart (with its two baselines) is drawn on arrival, before any run.
BROWSER_MUST_SHOW = f'[data-testid="stPlotlyChart"] .gtitle:has-text("{EN["scratch_gpt.chart.title"]}")'


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    ready = at.success[0].value
    assert ready.startswith("940,081 characters, 77 distinct tokens"), ready
    assert any(c.value.startswith("HAMLET, PRINCE OF DENMARK") for c in at.code)
    chart = figure_titled(at, EN["scratch_gpt.chart.title"])
    lines = sorted(shape.y0 for shape in chart.layout.shapes)
    assert math.isclose(lines[1], math.log(77), rel_tol=1e-6) and 3.0 < lines[0] < 3.5, lines
    assert at.number_input(key="scratch_gpt.w.n_layer").value == 4 and at.button(key="scratch_gpt.start")


@pytest.fixture
def page(open_page):
    return open_page(PAGE)


def open_tab(at, label):
    at.session_state["scratch_gpt.tab"] = label
    return at.run()


def wait_for(at, job, seconds=240):
    deadline = time.time() + seconds
    while not job.done and time.time() < deadline:  # the fragment keeps polling while the job trains
        time.sleep(1)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert job.done and job.status == "done", job.error
    return at.run()


def small_run(at, steps=60):
    for key, value in {
        "n_layer": 1,
        "n_embd": 32,
        "n_head": 2,
        "block_size": 32,
        "max_iters": steps,
        "eval_interval": 30,
        "eval_iters": 4,
        "sample_interval": 30,
        "warmup_iters": 5,
        "lr_decay_iters": steps,
        "learning_rate": 3e-3,
    }.items():
        at.number_input(key=f"scratch_gpt.w.{key}").set_value(value)
    at.run()
    at.button(key="scratch_gpt.start").click().run()
    job = shared_runner().get(at.session_state["scratch_gpt.job"])
    assert job is not None and at.button(key="scratch_gpt.start").disabled, "one run at a time per session"
    return wait_for(at, job), job


def test_a_run_draws_its_loss_chart_then_the_model_is_inspected_and_exported(page):
    at, _job = small_run(page)
    assert any(s.value.startswith("Run #1: 60 steps, validation loss") for s in at.success)
    chart = figure_titled(at, EN["scratch_gpt.chart.title"])
    train, val = chart.data[0], chart.data[1]
    assert list(values(train.x)) == list(range(1, 61)) and list(values(val.x)) == [0, 30, 60]
    assert values(val.y)[-1] < values(val.y)[0]
    assert at.dataframe[0].value["Steps"][0] == 60
    # resume to 90 steps continues the same run
    at.number_input(key="scratch_gpt.w.max_iters").set_value(90).run()
    at.button(key="scratch_gpt.resume").click().run()
    at = wait_for(at, shared_runner().get(at.session_state["scratch_gpt.job"]))
    assert list(at.dataframe[0].value["Steps"]) == [60, 90]

    at = open_tab(at, EN["scratch_gpt.tab.inspect"])
    next_chart = figure_titled(at, EN["scratch_gpt.inspect.next_title"])
    assert math.isclose(sum(values(next_chart.data[0].x)), 1.0, rel_tol=0.2)  # the top 20 hold most of it
    attn = figure_titled(at, "Attention, layer 0, head 0")
    grid = values(attn.data[0].z)
    assert grid.shape[0] == grid.shape[1] == len("ROMEO:\nBut soft, what light")
    at.button(key="scratch_gpt.generate").click().run()
    assert at.code[-1].value.startswith("ROMEO:\nBut soft, what light") and len(at.code[-1].value) > 300

    at = open_tab(at, EN["scratch_gpt.tab.save"])
    at.text_input(key="scratch_gpt.save_name").set_value("page-test").run()
    at.button(key="scratch_gpt.save").click().run()
    folder = at.session_state["scratch_gpt.exported"]
    assert any(c.value == folder for c in at.code) and folder.endswith("scratch_gpt/page-test")
    # The other pages' pickers offer it for the rest of the session: the decoding page generates with it.
    at.switch_page("app_pages/decoding.py").run()
    picker = at.selectbox(key="decoding.model")
    assert "scratch_gpt/page-test (yours)" in picker.options
    picker.set_value(folder).run()
    at.number_input(key="dec.max_new").set_value(8).run()
    at.text_area(key="dec.prompt").input("ROMEO:").run()
    chat = at.toggle(key="dec.chat")  # a GPT of ours has no chat template: the page turns chat off itself
    assert chat.value is False and chat.disabled
    at.button(key="dec.run").click().run()
    assert not at.exception and not at.error
    texts = [r["text"] for r in at.session_state["dec.results"].values() if r["beam"] is None]
    assert texts and all(len(text) > 0 for text in texts)
    loaded = shared_cache().get(folder)
    try:
        assert type(loaded.model).__name__ == "GPT2LMHeadModel" and loaded.tokenizer.decode([1, 2]) is not None
        # Its position table ends at its context: every column stops there, and the page says so.
        limit, prompt = loaded.model.config.n_positions, len(at.session_state["dec.prompt_ids"])
        at.number_input(key="dec.max_new").set_value(200).run()
        at.button(key="dec.run").click().run()
        assert not at.exception and not at.error
        note = f"This model reads at most {limit} tokens and the prompt has {prompt}"
        assert any(c.value.startswith(note) for c in at.caption), [c.value for c in at.caption]
        lengths = [len(r["ids"]) for r in at.session_state["dec.results"].values()]
        assert lengths and max(lengths) == limit - prompt, "a column ran to the end of the context, none past it"
        at.text_area(key="dec.prompt").input("ROMEO: " * limit).run()
        at.button(key="dec.run").click().run()
        assert any("shorten the prompt" in w.value for w in at.warning) and not at.exception
    finally:
        shared_cache().unload(loaded.key)


def test_chinese_poems_uploads_and_bad_settings(page):
    at = page
    at.radio(key="scratch_gpt.corpus").set_value("tang_song").run()
    assert at.success[0].value.startswith("39,232 characters")
    at.radio(key="scratch_gpt.corpus").set_value("upload").run()
    assert not at.exception and at.info[0].value == EN["scratch_gpt.data.upload_first"]
    at.file_uploader(key="scratch_gpt.upload").upload("photo.txt", bytes(range(256)) * 40, "text/plain").run()
    assert at.error[0].value == "'photo.txt' looks like a binary file, not text."
    poem = "床前明月光，疑是地上霜。举头望明月，低头思故乡。\n" * 60
    at.file_uploader(key="scratch_gpt.upload").upload("poem.txt", poem.encode("gb18030"), "text/plain").run()
    assert at.success[0].value.startswith("1,500 characters") and any("gb18030" in c.value for c in at.caption)
    at.number_input(key="scratch_gpt.w.n_head").set_value(3).run()
    assert at.error[0].value == ("These settings cannot train: n_embd (128) must be divisible by n_head (3).")
    assert not any(b.key == "scratch_gpt.start" for b in at.button), "no run can start with bad settings"


def test_ladder_shows_each_rung_and_the_bigram_as_its_table_of_counts(page):
    at = page
    for key, value in {"n_layer": 1, "n_embd": 32, "n_head": 2, "block_size": 32, "eval_iters": 2}.items():
        at.number_input(key=f"scratch_gpt.w.{key}").set_value(value)
    at = open_tab(at.run(), EN["scratch_gpt.tab.ladder"])
    at.number_input(key="scratch_gpt.ladder_steps.shakespeare").set_value(20).run()
    at.button(key="scratch_gpt.ladder_start").click().run()
    job = shared_runner().get(at.session_state["scratch_gpt.ladder_job"])
    at = wait_for(at, job)
    chart = figure_titled(at, EN["scratch_gpt.ladder.chart"])
    bars = chart.data[0]
    assert list(bars.x) == ["bigram table", "MLP (8 characters)", "one attention layer", "full GPT"]
    assert all(0 < v < math.log(77) for v in values(bars.y))
    # the bigram's table: counts of neighbouring characters in the training split, counted here by hand
    prepared = prepare("shakespeare", load_corpus("shakespeare"), 32)
    train, itos = prepared.train.tolist(), prepared.tokenizer.itos
    pairs = Counter(pairwise(train))
    [line] = chart.layout.shapes
    assert 3.0 < line.y0 < 3.5 and values(bars.y)[0] < line.y0, "the bigram is below the unigram line"
    heat = figure_titled(at, EN["scratch_gpt.ladder.table_title"]).data[0]
    shown = {"␣": " ", "⏎": "\n"}
    chars = [shown.get(label, label) for label in heat.x]
    ids = [itos.index(c) for c in chars]
    assert ids == [i for i, _ in Counter(train[:-1]).most_common(12)], "the most frequent characters first"
    assert values(heat.text).astype(int).tolist() == [[pairs[(a, b)] for b in ids] for a in ids]
    table = at.dataframe[-1].value
    assert table["How"][0].startswith("counted, add-k with k = ")
    assert list(table["How"][1:]) == ["trained, peak learning rate 0.01"] * 3
    assert any(m.value.startswith("**The bigram is this table.**") for m in at.markdown)
