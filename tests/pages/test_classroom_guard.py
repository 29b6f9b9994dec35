"""A shared classroom server: the passcode gate, the page error boundary, per-session rate limits,
and links that reopen the same view (attention)."""

from streamlit.testing.v1 import AppTest

from components.i18n import strings
from components.page_registry import HOME, PAGES

from .plotly_helpers import figure_titled

EN = strings("en")
ATTENTION = next(p for p in PAGES if p.key == "attention")
DECODING = next(p for p in PAGES if p.key == "decoding")


def test_with_a_passcode_nothing_runs_until_it_is_typed(open_page, monkeypatch):
    monkeypatch.setenv("LLMPG_PASSCODE", "owl-42")
    at = open_page(HOME)
    assert at.title[0].value == "LLM Playground"
    assert not at.metric, "the page itself did not run"
    at.text_input(key="app.passcode").input("owl")
    at.button[0].click().run()
    assert at.error[0].value == EN["app.passcode_wrong"] and not at.metric
    at.text_input(key="app.passcode").input("owl-42")
    at.button[0].click().run()
    assert at.title[0].value == EN["page.home.title"]
    assert {m.label for m in at.metric} >= {"Network", "Device"}, "home ran once the passcode was right"


def test_without_a_passcode_the_app_opens_directly(open_page, monkeypatch):
    monkeypatch.delenv("LLMPG_PASSCODE", raising=False)
    at = open_page(HOME)
    assert at.title[0].value == EN["page.home.title"]


def _failing_page():
    import streamlit as st

    from components.guard import show_failure

    st.session_state["kept"] = st.session_state.get("kept", 0) + 1
    try:
        raise KeyError("missing-column")
    except Exception as exc:
        show_failure(exc)


def test_an_unexpected_error_shows_a_message_a_retry_and_folded_details():
    at = AppTest.from_function(_failing_page).run()
    assert at.error[0].value == EN["app.page_failed"].format(error="KeyError")
    assert at.exception and "missing-column" in at.exception[0].value, "details are in the page, folded"
    assert at.expander[0].label == EN["app.details"]
    at.button(key="app.retry").click().run()
    assert at.session_state["kept"] == 2, "the session survives and runs again"


def test_heavy_actions_are_rate_limited_per_session(open_page, monkeypatch):
    monkeypatch.setenv("LLMPG_RATE_PER_MIN", "2")
    at = open_page(DECODING)
    at.number_input(key="dec.max_new").set_value(2).run()
    for column in list(at.session_state["dec.columns"])[1:]:
        at.button(key=f"dec.rm.{column['id']}").click().run()
    for _ in range(2):
        at.button(key="dec.run").click().run()
        assert not at.warning
    at.session_state["dec.results"].clear()
    at.button(key="dec.run").click().run()
    assert at.warning[0].value.startswith(EN["app.rate_limited"].split("{")[0])
    assert at.session_state["dec.results"] == {}, "the third run did not generate"
    assert not at.exception


def test_a_link_reopens_the_attention_view(open_page):
    at = open_page(ATTENTION, query={"text": "Dogs bark at night.", "layer": "3", "head": "5"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_area(key="attention.text").value == "Dogs bark at night."
    assert at.slider(key="attention.layer").value == 3 and at.selectbox(key="attention.head").value == 5
    assert figure_titled(at, "Layer 3, head 5").data[0].type == "heatmap"
    at.slider(key="attention.layer").set_value(1).run()
    assert at.query_params["layer"] == "1" and at.query_params["text"] == "Dogs bark at night."
