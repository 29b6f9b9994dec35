"""Switching the language re-sends each keyed option widget's value in the new language's label.

Streamlit's wire value for a radio or selectbox is the option's formatted label, and the browser keeps
it under the widget's id, which a key fixes whatever the labels: after a switch to Chinese the radios
showed nothing selected and the sample selectbox still read "Chelsea the cat" among Chinese options
(seen in Chromium; tests/e2e/test_language_switch.py). The fix (components/option_labels.py) makes the
first run in the new language send the value again (`set_value`, `raw_value` in the new label); AppTest
shows that message, which the browser acts on."""

import pytest
from streamlit.testing.v1 import AppTest

from components.i18n import strings
from components.page_registry import PAGES

ZH, EN = strings("zh"), strings("en")


def _page(key):
    return next(p for p in PAGES if p.key == key)


def _switch(at, lang):
    at.radio(key="app.lang").set_value(lang).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_vision_pages_choices_are_resent_in_chinese_then_in_english(open_page):
    at = open_page(_page("vision"))
    at.selectbox(key="vision.zs.sample").set_value("coffee").run()
    at.run()
    assert not at.radio(key="vision.method").proto.set_value, "no re-send without a switch"
    at = _switch(at, "zh")
    method, source = at.radio(key="vision.method").proto, at.radio(key="vision.zs.source").proto
    sample = at.selectbox(key="vision.zs.sample").proto
    assert method.set_value and method.raw_value == ZH["vision.method.conse"]
    assert source.set_value and source.raw_value == ZH["vision.image.source.sample"]
    assert sample.set_value and sample.raw_value == ZH["vision.sample.coffee"], "the choice is kept"
    at.run()
    assert not at.radio(key="vision.method").proto.set_value, "once per switch"
    at = _switch(at, "en")
    sample = at.selectbox(key="vision.zs.sample").proto
    assert sample.set_value and sample.raw_value == EN["vision.sample.coffee"]


@pytest.mark.parametrize(
    "page, keys",
    [
        ("lora", ["lora.source"]),
        ("scratch_gpt", ["scratch_gpt.corpus", "scratch_gpt.tokenizer"]),
        ("tokenizers", ["tok.sample"]),
    ],
)
def test_other_pages_option_widgets_follow_the_language(open_page, page, keys):
    at = _switch(open_page(_page(page)), "zh")
    for key in keys:
        widget = next(w for w in (*at.radio, *at.selectbox) if w.key == key)
        assert widget.proto.set_value, key
        assert widget.proto.raw_value == widget.proto.options[widget.index], key


def test_follow_language_keeps_the_value_and_marks_the_language():
    def app():
        import streamlit as st

        from components.i18n import current_lang
        from components.option_labels import follow_language

        st.radio("x", ["a", "b"], key=follow_language("t.x"), format_func=lambda v: f"{current_lang()}:{v}")

    at = AppTest.from_function(app)
    at.run()
    at.radio(key="t.x").set_value("b").run()
    assert at.radio(key="t.x").value == "b" and at.session_state["app.option_langs"] == {"t.x": "en"}
    at.session_state["app.lang"] = "zh"
    at.run()
    assert at.radio(key="t.x").value == "b" and at.radio(key="t.x").proto.raw_value == "zh:b"
    assert at.session_state["app.option_langs"] == {"t.x": "zh"}
