"""The decoding page's Structured output tab on the offline SmolLM2: a grammar's run beside the free
one, each output checked by the independent reference for its kind (jsonschema, re)."""

import json
import re

import jsonschema
import pytest

from backends.models.cache import shared_cache
from backends.structured.extraction import compare_set, extraction_set, summary
from components.page_registry import PAGES

from .plotly_helpers import figures

DECODING = next(p for p in PAGES if p.key == "decoding")


@pytest.fixture
def page(open_page):
    at = open_page(DECODING)
    at.number_input(key="dec.max_new").set_value(60).run()
    at.session_state["dec.tab"] = "Structured output"
    at.run()
    return at


def test_schema_run_is_valid_and_the_steps_are_tabled(page):
    schema = json.loads(page.text_area(key="dec.st.src.json_schema").value)
    page.button(key="dec.st.run").click().run()
    assert not page.exception
    result = page.session_state["dec.st.result"]
    jsonschema.validate(json.loads(result["guided_text"]), schema)
    assert result["finished"]
    steps = result["guided_steps"]
    table = next(d.value for d in page.dataframe if "Allowed tokens" in d.value.columns)
    assert len(table) == len(steps)
    assert [str(v) for v in table.iloc[:, 2]] == [f"{s.allowed:,} / {s.vocab:,}" for s in steps]
    chart = figures(page)[-1]
    assert list(chart.data[0].y) == [s.allowed for s in steps]
    assert [e.value for e in page.success][-1].startswith("Parses and is valid against the schema")


def test_regex_output_matches(page):
    page.radio(key="dec.st.kind").set_value("regex").run()
    pattern = page.text_area(key="dec.st.src.regex").value
    page.button(key="dec.st.run").click().run()
    assert re.fullmatch(pattern, page.session_state["dec.st.result"]["guided_text"])


def test_a_bad_schema_is_a_message_and_nothing_runs(page):
    page.text_area(key="dec.st.src.json_schema").set_value('{"type": "strang"}').run()
    assert not page.exception
    assert any("Not a valid JSON Schema" in e.value for e in page.error)
    assert page.button(key="dec.st.run").disabled


def test_extraction_summary_shows_the_runs(page):
    lm = shared_cache().get("smollm2-135m-instruct")
    runs = list(compare_set(lm, extraction_set()["items"][:1]))  # real runs, one text
    page.session_state["dec.st.set.runs"] = runs
    page.run()
    table = next(d.value for d in page.dataframe if "Valid against the schema" in d.value.columns)
    stats = summary(runs)
    assert list(table.iloc[:, 2]) == [f"{stats['free']['valid']:.0%}", f"{stats['constrained']['valid']:.0%}"]
    assert stats["constrained"]["valid"] == 1.0
