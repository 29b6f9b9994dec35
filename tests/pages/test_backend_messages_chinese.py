"""Backend errors are said in the UI language (components/backend_text.py), their English message unchanged.

A backend raises a `CodedError` (backends/core/coded.py): the English message for the API, the JSON and
the benchmarks, plus a code and values a page words with its own strings; a code no locale file words
falls back to the English message."""

import string

import pytest
from streamlit.testing.v1 import AppTest

from backends import decoding as dec
from backends.classifier import data as classifier_data
from backends.core.coded import CodedError
from backends.lora import data as lora_data
from backends.models.registry import ModelNotAvailable, resolve
from components.i18n import strings
from components.page_registry import PAGES

EN, ZH = strings("en"), strings("zh")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _said_in(lang: str, raise_it, prefix: str) -> AppTest:
    """An app that raises with `raise_it()` and shows `said(exc, prefix)` in an error box."""

    def app(raise_it, prefix):
        import streamlit as st

        from backends.core.coded import CodedError
        from components.backend_text import said

        try:
            raise_it()
        except (CodedError, ValueError, LookupError) as exc:
            st.error(said(exc, prefix))

    at = AppTest.from_function(app, kwargs={"raise_it": raise_it, "prefix": prefix})
    at.session_state["app.lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _raise(exc_type, *args):
    def go():
        exc_type(*args)

    return go


CASES = [
    # (what raises, the locale prefix, the expected code)
    (lambda: resolve("./no-such-model-folder", online=False), "picker.error.", "no_folder"),
    (lambda: resolve("not a hub id!", online=False), "picker.error.", "bad_id"),
    (lambda: resolve("owner/not-here-at-all", online=False), "picker.error.", "offline"),
    (lambda: lora_data.parse_upload("x.txt", b"hello"), "lora.data.error.", "file_type"),
    (lambda: lora_data.parse_upload("x.jsonl", b'{"prompt": "a"}\nnot json\n'), "lora.data.error.", "bad_lines"),
    (lambda: lora_data.parse_upload("x.csv", b"\xff\xfe\xfa"), "lora.data.error.", "not_utf8"),
    (lambda: classifier_data.parse_upload("x.csv", b"  "), "classifier.data.error.", "empty_file"),
    (lambda: classifier_data.parse_upload("x.csv", b"\x00\x01binary"), "classifier.data.error.", "binary"),
    (
        lambda: classifier_data.parse_upload("x.csv", b"text,label\na,pos\nb,pos\n"),
        "classifier.data.error.",
        "one_label",
    ),
    (
        lambda: classifier_data.parse_upload("x.csv", b"text,label\na,pos\nb,pos\nc,neg\n"),
        "classifier.data.error.",
        "lonely",
    ),
]


@pytest.mark.parametrize("raise_it, prefix, code", CASES, ids=[f"{p}{c}" for _, p, c in CASES])
def test_a_coded_error_is_said_in_chinese_and_keeps_its_english_message(raise_it, prefix, code):
    with pytest.raises(CodedError) as caught:
        raise_it()
    exc = caught.value
    assert exc.code == code, (exc.code, str(exc))
    assert _placeholders(EN[prefix + code]) <= set(exc.values), "every placeholder gets a value"
    shown = _said_in("zh", raise_it, prefix).error[0].value
    assert shown == ZH[prefix + code].format(**exc.values)
    assert any("\u4e00" <= c <= "\u9fff" for c in shown)
    english = _said_in("en", raise_it, prefix).error[0].value
    assert english == EN[prefix + code].format(**exc.values)


def test_an_unknown_code_or_none_shows_the_english_message():
    at = _said_in("zh", _raise_coded("A newer backend's sentence.", "no_such_code"), "dec.error.")
    assert at.error[0].value == "A newer backend's sentence."
    at = _said_in("zh", _raise_coded("An old-style message.", None), "dec.error.")
    assert at.error[0].value == "An old-style message."


def _raise_coded(message, code):
    def go():
        raise CodedError(message, code, n=1)

    return go


def test_errors_keep_their_english_message_and_type():
    with pytest.raises(ModelNotAvailable, match="is not available offline") as caught:
        resolve("owner/not-here-at-all", online=False)
    assert isinstance(caught.value, LookupError)
    with pytest.raises(ValueError, match=r"unsupported file type; upload \.jsonl or \.csv\.$"):
        lora_data.parse_upload("x.txt", b"hello")


def _page(key):
    return next(p for p in PAGES if p.key == key)


def test_the_decoding_pages_empty_prompt_warning_is_chinese(open_page):
    at = open_page(_page("decoding"), **{"app.lang": "zh"})
    at.text_area(key="dec.prompt").set_value("   ").run()
    at.button(key="dec.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    assert ZH["dec.error.empty"] in warnings, warnings
    assert not any("The prompt is empty" in w for w in warnings)
    with pytest.raises(dec.PromptError) as caught:
        dec.encode_prompt(None, "  ", chat=False)
    assert caught.value.code == "empty" and str(caught.value).startswith("The prompt is empty")


def test_the_model_pickers_missing_folder_is_said_in_chinese():
    def app():
        from components.model_picker import load_or_explain

        load_or_explain("./no-such-model-folder")

    at = AppTest.from_function(app)
    at.session_state["app.lang"] = "zh"
    at.run()
    assert [e.value for e in at.error] == [ZH["picker.error.no_folder"].format(name="./no-such-model-folder")]
