"""Labels a Chinese walkthrough found in English (issue 25, item 6): the tokenizer chart's bar texts, and
the RAG Evaluate tab's method names and answers table. (Streamlit's own texts, which only a browser
draws, are checked in tests/e2e/test_browser.py.)"""

from types import SimpleNamespace

from streamlit.testing.v1 import AppTest

from backends.core.jobs import DONE, shared_runner
from components.i18n import strings
from components.page_registry import PAGES

from .plotly_helpers import figures

ZH = strings("zh")
ZH_QUERY = {"lang": "zh"}


def test_the_tokenizer_chart_speaks_chinese(open_page):
    at = open_page(next(p for p in PAGES if p.key == "tokenizers"), query=ZH_QUERY)
    bars = next(f for f in figures(at) if f.data and f.data[0].type == "bar").data[0]
    assert all("每 token" in text and "chars" not in text for text in bars.text), bars.text
    assert "tokens" not in bars.hovertemplate and "个 token" in bars.hovertemplate


def test_the_rag_evaluate_tab_names_its_methods_in_chinese(open_page):
    at = open_page(next(p for p in PAGES if p.key == "rag"), query=ZH_QUERY)
    assert shared_runner().get(at.session_state["rag.index_job"]).wait(300)
    at.session_state["rag.tab"] = ZH["rag.tab.evaluate"]
    at.run()
    names = [ZH[f"rag.method.{m}"] for m in ("dense", "sparse", "hybrid")]
    summary = at.dataframe[0].value
    assert list(summary[ZH["rag.eval.col.method"]]) == names
    chart = next(f for f in figures(at) if f.layout.title.text.startswith(ZH["rag.eval.chart"].split("（")[0]))
    assert list(chart.data[0].x) == names
    per_question = at.dataframe[1].value
    assert [f"{name} #" for name in names] == list(per_question.columns[-3:])


def _answers_table():
    """The answers table of a finished job, drawn alone in Chinese."""
    import streamlit as st

    from components.rag.evaluate import answers_done

    st.session_state["app.lang"] = "zh"
    answers_done(st.session_state["job"])  # a finished job (a stand-in: its rows as the backend writes them)


def test_the_rag_answers_table_has_chinese_column_names():
    at = AppTest.from_function(_answers_table)
    row_keys = (
        "question",
        "reference",
        "answer",
        "token_f1",
        "forced",
        "cited_pages",
        "model_cited_pages",
        "expected_pages",
        "extractive",
        "extractive_f1",
        "extractive_page",
    )
    row = dict.fromkeys(row_keys, 1)
    row.update(question="q", reference="r", answer="a", cited_pages=[1], model_cited_pages=[], expected_pages=[1])
    at.session_state["job"] = SimpleNamespace(status=DONE, result=[row], error=None)
    at.run()
    assert not at.exception
    assert list(at.dataframe[0].value.columns) == [ZH[f"rag.eval.answer_col.{k}"] for k in row_keys]
