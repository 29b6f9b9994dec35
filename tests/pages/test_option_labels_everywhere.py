"""Every option widget whose labels depend on the language re-sends its value after a switch.

tests/pages/test_option_labels_follow_language.py says why (components/option_labels.py). Here each page
is opened in English, every tab visited, and every keyed radio / selectbox / multiselect recorded; then
the language goes to Chinese and every tab is visited again: a widget whose options read differently
in Chinese must have re-sent its value (`set_value`), written in a Chinese label among its options. A
widget drawn with `key=...` instead of `key=follow_language(...)` fails here, whatever its tab."""

import json

import pytest

from backends.core.jobs import DONE, shared_runner
from components.i18n import strings
from components.page_registry import PAGES

EN, ZH = strings("en"), strings("zh")
KINDS = ("radio", "selectbox", "multiselect")

# page key -> (its tabs' widget key, the locale prefix of its tab labels); pages without keyed tabs: None
TABS = {
    "attention": ("attention.tab", "attention.tab."),
    "decoding": ("dec.tab", "dec.tab."),
    "rag": ("rag.tab", "rag.tab."),
    "quantization": ("quantization.tab", "quantization.tab."),
    "alignment": ("alignment.tab", "alignment.tab."),
    "agents": ("agents.tab", "agents.tab."),
    "architectures": ("architectures.tab", "architectures.tab."),
    "compression": ("compression.tab", "compression.tab."),
    "inference": ("inference.tab", "inference.tab."),
    "trust": ("trust.tab", "trust.tab."),
    "serving": None,
    "home": None,
}


def _page(key):
    return next(p for p in PAGES if p.key == key)


def option_widgets(at) -> dict:
    """key -> widget, for the page's keyed option widgets (the sidebar's `app.*` ones left out)."""
    return {w.key: w for kind in KINDS for w in getattr(at, kind) if w.key and not w.key.startswith("app.")}


def tab_labels(at, page: str, lang: dict) -> list[str]:
    """The page's tab labels in `lang` (those that are tabs of this page, in its order)."""
    if TABS[page] is None:
        return [None]
    shown = {tab.label for tab in at.tabs}
    return [v for k, v in lang.items() if k.startswith(TABS[page][1]) and v in shown]


def visit(at, page: str, lang: dict, each) -> None:
    """Open each of the page's tabs (in `lang`'s labels) and call `each(at)` on it."""
    for label in tab_labels(at, page, lang):
        if label is not None:
            at.session_state[TABS[page][0]] = label
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        each(at)


def record(seen: dict):
    def each(at):
        for key, widget in option_widgets(at).items():
            seen.setdefault(key, list(widget.proto.options))

    return each


def check(english: dict, resent: set):
    def each(at):
        for key, widget in option_widgets(at).items():
            if key not in english or key in resent or english[key] == list(widget.proto.options):
                continue  # not seen in English, already checked, or labels the same in both languages
            proto = widget.proto
            assert proto.set_value, f"{key}: still holds its English label {english[key]}"
            many = hasattr(proto, "raw_values")  # a multiselect
            chosen = list(proto.raw_values) if many else [proto.raw_value]
            values = list(widget.value) if many else [] if widget.value is None else [widget.value]
            if values:  # a radio with nothing picked yet sends no label
                assert len(chosen) == len(values), (key, chosen, values)
                assert all(c in proto.options for c in chosen), (key, chosen, list(proto.options))
            resent.add(key)

    return each


def switch_to_chinese(at):
    at.radio(key="app.lang").set_value("zh").run()
    assert not at.exception, [e.value for e in at.exception]


def prepare_decoding(at):
    """Two columns run, so that the Inspect tab draws its column picker (preset names are translated)."""
    at.number_input(key="dec.max_new").set_value(4).run()
    for column in list(at.session_state["dec.columns"])[2:]:
        at.button(key=f"dec.rm.{column['id']}").click().run()
    at.button(key="dec.run").click().run()


def prepare_rag(at):
    """The sample indexed, so the Documents tab draws its chunk inspector."""
    job = shared_runner().get(at.session_state["rag.index_job"])
    assert job.wait(300) and job.status == DONE, job.error
    at.run()


PREPARE = {"decoding": prepare_decoding, "rag": prepare_rag}


@pytest.mark.parametrize("page", list(TABS))
def test_every_translated_option_widget_follows_a_switch_to_chinese(open_page, page):
    at = open_page(_page(page))
    assert not at.exception, [e.value for e in at.exception]
    PREPARE.get(page, lambda at: None)(at)
    english: dict[str, list[str]] = {}
    visit(at, page, EN, record(english))
    switch_to_chinese(at)
    resent: set[str] = set()
    check(english, resent)(at)  # the tab open at the switch re-sends in that very run
    visit(at, page, ZH, check(english, resent))
    translated = {k for k in english if k in resent}
    print(page, json.dumps(sorted(translated), ensure_ascii=False))
    # Each page with translated option labels shows at least one (a broken finder would check nothing).
    if page not in ("serving", "home"):
        assert translated, f"no translated option widget found on {page}"
