"""The "Try this" panel as a learner uses it: set the page up, predict, measure, and read the verdict."""

import pytest

from backends.experiments import EXPERIMENTS, find
from backends.tokenizers import tokenization as tz
from components.page_registry import PAGES

PAGE = {p.key: p for p in PAGES}


def panel_texts(at) -> str:
    return "\n".join(
        [m.value for m in at.markdown]
        + [c.value for c in at.caption]
        + [s.value for s in at.success]
        + [w.value for w in at.warning]
        + [i.value for i in at.info]
        + [e.value for e in at.error]
    )


def pick(at, page: str, experiment_id: str):
    index = [e.id for e in EXPERIMENTS[page]].index(experiment_id)
    return at.selectbox(key=f"exp.{page}.pick").select_index(index).run()


@pytest.fixture
def tokenizers(open_page):
    return open_page(PAGE["tokenizers"])


def test_tokenizers_set_up_puts_the_sentence_and_tokenizers_on_the_page(tokenizers):
    at = pick(tokenizers, "tokenizers", "chinese")
    at.button(key="exp.tokenizers.chinese.setup").click().run()
    exp = find("tokenizers", "chinese")
    assert at.text_area(key="tok.text").value == exp.params["text"]
    frame = at.dataframe[0].value
    counts = dict(zip(frame["Tokenizer"], frame["Tokens"]))
    gpt2, qwen = tz.tokenize("gpt2", exp.params["text"]), tz.tokenize("qwen3", exp.params["text"])
    assert counts == {gpt2.label: gpt2.n_tokens, qwen.label: qwen.n_tokens}
    assert "The page is set up." in panel_texts(at)


def test_tokenizers_a_right_prediction_is_confirmed_with_the_measured_counts(tokenizers):
    at = pick(tokenizers, "tokenizers", "chinese")
    at.radio(key="exp.tokenizers.chinese.guess").set_value("first").run()
    at.button(key="exp.tokenizers.chinese.check").click().run()
    n_gpt2 = tz.tokenize("gpt2", find("tokenizers", "chinese").params["text"]).n_tokens
    assert f"**{n_gpt2}** tokens" in panel_texts(at)
    assert [s.value for s in at.success] == ["Your prediction was right: GPT-2 needs more."]


def test_tokenizers_a_wrong_prediction_is_corrected_in_chinese(open_page):
    at = open_page(PAGE["tokenizers"], **{"app.lang": "zh"})
    at = pick(at, "tokenizers", "space")
    at.radio(key="exp.tokenizers.space.guess").set_value("same").run()
    at.button(key="exp.tokenizers.space.check").click().run()
    assert [w.value for w in at.warning] == [
        "你预测的是“是，同一个 token id”，但测量结果是：不是，两个不同的 token id。"
    ]
    assert "的 id 是 **" in panel_texts(at)


def test_lora_set_up_changes_the_plan_and_the_panel_states_the_ratio(open_page):
    at = open_page(PAGE["lora"])
    at = pick(at, "lora", "rank")
    at.button(key="exp.lora.rank.setup").click().run()
    assert at.session_state["lora.cfg"]["rank"] == 16
    assert at.number_input(key="lora.w.rank").value == 16  # the Configure tab is open, drawn from the new value
    metrics = {m.label: m.value for m in at.metric}
    assert "921,600" in metrics.values()
    at.radio(key="exp.lora.rank.guess").set_value("x4").run()
    at.button(key="exp.lora.rank.check").click().run()
    assert "rank 16: **921,600**" in panel_texts(at)
    assert [w.value for w in at.warning] == [
        ('You predicted "4 times as large", but the measurement says: 16 times as large.')
    ]


def test_decoding_set_up_makes_the_experiments_columns(open_page):
    at = open_page(PAGE["decoding"])
    at = pick(at, "decoding", "temperature")
    at.button(key="exp.decoding.temperature.setup").click().run()
    columns = at.session_state["dec.columns"]
    assert [c["config"].temperature for c in columns] == [0.3, 1.5]
    assert at.text_area(key="dec.prompt").value == find("decoding", "temperature").params["prompt"]
    assert at.number_input(key="dec.max_new").value == 16 and at.number_input(key="dec.seed").value == 7
    assert [s.value for s in at.slider if s.key and s.key.endswith("temperature")] == [0.3, 1.5]


def test_home_shows_where_to_start_until_dismissed(open_page):
    at = open_page(PAGE["home"])
    assert any("Where to start" in m.value for m in at.markdown)
    assert any("Tokenizer explorer" in m.value for m in at.markdown)
    at.button(key="exp.home.tip_dismiss").click().run()
    assert not any("Where to start" in m.value for m in at.markdown)
    at.run()
    assert not any("Where to start" in m.value for m in at.markdown), "dismissed for the rest of the session"


def test_scratch_gpt_set_up_widens_the_model_the_plan_counts(open_page):
    at = open_page(PAGE["scratch_gpt"])
    at = pick(at, "scratch_gpt", "width")
    at.button(key="exp.scratch_gpt.width.setup").click().run()
    assert at.session_state["scratch_gpt.cfg"]["n_embd"] == 256
    at.button(key="exp.scratch_gpt.width.check").click().run()
    large = find("scratch_gpt", "width").run().values["large"]
    assert any(c.value.startswith(f"{large} parameters") for c in at.caption), "the page's plan counts the same model"
    assert f"**{large}**" in panel_texts(at)
    assert [i.value for i in at.info][-1].startswith("The measurement says: 4.")
