"""The tokenizer explorer on the real offline tokenizers."""

import pytest
from streamlit.testing.v1 import AppTest

from backends.tokenizers import tokenization as tz
from components.page_registry import PAGES

from .conftest import APP

TOKENIZERS = next(p for p in PAGES if p.key == "tokenizers")

# What a browser must see once the page has run (tests/e2e/test_browser.py).
BROWSER_MUST_SHOW = '[data-testid="stMarkdownContainer"] span[title^="#0 · id"]'


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    frame = at.dataframe[0].value
    assert len(frame) == 5 and (frame["Tokens"] > 0).all()
    assert sum("<span title=" in m.value for m in at.markdown) == 5, "one row of token chips per tokenizer"


@pytest.fixture
def page(open_page):
    return open_page(TOKENIZERS)


def table(at):
    frame = at.dataframe[0].value
    return dict(zip(frame["Tokenizer"], frame["Tokens"]))


def open_tab(at, label):
    at.session_state["tok.tab"] = label
    return at.run()


def test_default_text_is_compared_across_tokenizers_with_official_counts(page):
    assert not page.exception
    counts = table(page)
    text = page.text_area(key="tok.text").value
    for key in ("gpt2", "cl100k_base", "o200k_base", "qwen3", "bert-wordpiece"):
        result = tz.tokenize(key, text)
        assert counts[result.label] == result.n_tokens
    chips = [m.value for m in page.markdown if "<span title=" in m.value]
    assert len(chips) == 5


def test_loading_the_chinese_sample_changes_the_counts(page):
    before = table(page)
    page.selectbox(key="tok.sample").set_value("chinese").run()
    assert page.text_area(key="tok.text").value.startswith("分词器")
    after = table(page)
    assert after != before
    # Chinese costs more tokens per character in GPT-2's byte-level BPE than in o200k_base.
    assert after["GPT-2 (r50k_base)"] > after["o200k_base (GPT-4o)"]


def test_the_link_reopens_the_same_comparison():
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["text"] = "hello 世界"
    at.query_params["tok"] = "gpt2,llama3"
    at.run()
    at.switch_page(TOKENIZERS.path).run()
    assert at.text_area(key="tok.text").value == "hello 世界"
    assert at.multiselect(key="tok.chosen").value == ["gpt2", "llama3"]
    assert set(table(at)) == {"GPT-2 (r50k_base)", "Llama 3"}
    at.multiselect(key="tok.chosen").select("smollm2").run()
    assert at.query_params["tok"] == "gpt2,llama3,smollm2"
    assert at.query_params["text"] == "hello 世界"


def test_training_a_tokenizer_adds_a_column(page):
    open_tab(page, "Train your own")
    page.selectbox(key="tok.kind").set_value("bpe").run()
    page.button(key="tok.train_button").click().run()
    from backends.core.jobs import shared_runner

    shared_runner().get(page.session_state["tok.train_job"]).wait(60)
    page.run()
    assert any("Trained a bpe tokenizer" in s.value for s in page.success)
    merges = page.dataframe[0].value
    assert len(merges) == 50 and merges["count"].iloc[0] >= merges["count"].iloc[-1]
    assert any("·" in pair for pair in merges["pair"]), "merges with a space show it (·)"
    add = next(b for b in page.button if b.key.startswith("tok.add."))
    add.click().run()
    assert page.session_state["tok.tab"] == "Side by side", "adding switches to the comparison"
    trained_name = next(iter(page.session_state["tok.trained"]))
    assert page.session_state["tok.chosen"][-1] == trained_name and len(page.session_state["tok.chosen"]) == 6
    counts = table(page)
    assert len(counts) == 6 and any(name.endswith("trained)") for name in counts)


def test_empty_text_and_unknown_hub_id_get_messages(page):
    page.text_area(key="tok.text").set_value("").run()
    assert not page.exception
    assert any("empty" in i.value for i in page.info)
    page.text_input(key="tok.hub_id").set_value("someone/no-such-tokenizer").run()
    assert not page.exception
    assert any("gpt2" in e.value for e in page.error)


def test_chat_template_marks_the_tokens_it_added(page):
    open_tab(page, "Chat templates")
    caption = next(c.value for c in page.caption if c.value.startswith("The template added"))
    added, total = [int(w) for w in caption.replace(".", "").split() if w.isdigit()]
    assert 0 < added < total
    assert "<|im_start|>" in page.code[0].value


def test_batch_padding_side_moves_the_padding(page):
    open_tab(page, "Batches & padding")
    page.selectbox(key="tok.batch_tok").set_value("gpt2").run()
    right = page.dataframe[1].value.to_numpy()
    assert right[0, 0] == 1 and right[0, -1] == 0
    page.radio(key="tok.batch_side").set_value("left").run()
    left = page.dataframe[1].value.to_numpy()
    assert left[0, 0] == 0 and left[0, -1] == 1
    page.number_input(key="tok.batch_cut").set_value(3).run()
    assert page.dataframe[0].value.shape[1] == 3


def test_long_text_is_tokenized_fully_and_shown_in_pages(page):
    long = "Tokenizers are fast. " * 40000  # 840 kB
    page.text_area(key="tok.text").set_value(long).run()
    assert not page.exception
    counts = table(page)
    assert counts["GPT-2 (r50k_base)"] == tz.tokenize("gpt2", long).n_tokens > 100_000
    pager = page.number_input(key="tok.page.gpt2")
    assert "of " in pager.label
    assert any("too long" in c.value or "longer than" in c.value for c in page.caption)
