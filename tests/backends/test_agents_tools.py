"""The agent's tools against independent references: Python's own arithmetic, hand-computed unit
constants, `datetime`, the shipped JSON; and the schema checks every call goes through."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from backends.agents import TOOLS, Context, run_tool, validate_arguments
from backends.agents.calculator import CalculatorError, calculate
from backends.agents.facts import FACTS_FILE, FactError, date_add, date_diff, lookup_fact
from backends.agents.units import UnitError, convert

EXPRESSIONS = [
    "1+2",
    "17*23",
    "2**10",
    "-3**2",
    "(-3)**2",
    "7/2",
    "7//2",
    "-7//2",
    "7%3",
    "-7%3",
    "(15+27)*3",
    "1.5*4-0.25",
    "2**-2",
    "100-(3*(4+5))/2",
    "10**6/7",
    "+5--3",
    "3*(2+(4-1)*2)**2",
    "0.1+0.2",
    "1e3*2",
    "123456789*987654321",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_calculator_equals_pythons_own_arithmetic(expression):
    assert calculate(expression) == eval(expression, {"__builtins__": {}})


def test_calculator_functions_and_caret():
    assert calculate("sqrt(729)") == 27.0
    assert calculate("round(2.567, 2)") == 2.57
    assert calculate("abs(-4)+max(1, 9)") == 13
    assert calculate("2^8") == 256
    assert calculate("log(exp(2))") == pytest.approx(2.0)
    assert calculate("floor(2.7)+ceil(2.1)") == math.floor(2.7) + math.ceil(2.1)


@pytest.mark.parametrize(
    "expression, message",
    [
        ("__import__('os').system('ls')", "Unknown function"),
        ("os", "Names are not allowed"),
        ("x + 1", "Names are not allowed"),
        ("(1).__class__", "Not allowed"),
        ("'a' * 3", "Only numbers"),
        ("[1, 2]", "Not allowed"),
        ("9**9**9", "exponent"),
        ("10**400", "too large"),
        ("2**5000", "exponent"),
        ("1/0", "Division by zero"),
        ("sqrt(-1)", "sqrt"),
        ("lambda: 1", "Not allowed in an expression: Lambda"),
        ("1 +", "Not an arithmetic expression"),
        ("", "empty"),
        ("1+" * 150 + "1", "longer than"),
        ("True + 1", "Only numbers"),
        ("round(x=1)", "positional"),
    ],
)
def test_calculator_refuses(expression, message):
    with pytest.raises(CalculatorError, match=message):
        calculate(expression)


@pytest.mark.parametrize(
    "value, a, b, expected",
    [
        (5, "km", "mi", 5000 / 1609.344),
        (10, "kg", "lb", 10 / 0.45359237),
        (12, "in", "cm", 30.48),
        (1, "mi", "ft", 5280),
        (100, "c", "f", 212),
        (-40, "f", "c", -40),
        (0, "c", "k", 273.15),
        (3, "hours", "minutes", 180),
        (1, "week", "h", 168),
        (2, "gallons", "liters", 7.570823568),
        (16, "oz", "lb", 1),
        (1, "cup", "ml", 236.5882365),
    ],
)
def test_units_match_hand_computed_constants(value, a, b, expected):
    assert convert(value, a, b) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "a, b, message", [("km", "kg", "different things"), ("c", "m", "temperature"), ("zz", "m", "Unknown")]
)
def test_units_refuse_mismatches(a, b, message):
    with pytest.raises(UnitError, match=message):
        convert(1, a, b)


@pytest.mark.parametrize(
    "start, end", [("2024-01-01", "2024-03-01"), ("2020-02-01", "2020-03-01"), ("2025-12-31", "2024-01-01")]
)
def test_date_diff_matches_datetime(start, end):
    days = (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days
    assert date_diff(start, end) == days
    assert date_diff(start, end, "weeks") == pytest.approx(days / 7, abs=1e-4)


@pytest.mark.parametrize(
    "date, days", [("2024-02-28", 1), ("2023-12-28", 10), ("2025-01-01", 100), ("2024-03-01", -1)]
)
def test_date_add_matches_datetime(date, days):
    assert date_add(date, days) == (dt.date.fromisoformat(date) + dt.timedelta(days=days)).isoformat()


def test_dates_refuse_bad_input():
    with pytest.raises(FactError, match="YYYY-MM-DD"):
        date_diff("yesterday", "2024-01-01")
    with pytest.raises(FactError, match="limited"):
        date_add("2024-01-01", 10**9)


def test_fact_lookup_reads_the_shipped_json():
    table = json.loads(FACTS_FILE.read_text(encoding="utf-8"))["countries"]
    assert len(table) >= 20
    for country, row in table.items():
        for field, value in row.items():
            assert lookup_fact(country, field) == value
            assert lookup_fact(country.upper(), field) == value
    assert lookup_fact("Japan", "capital") == "Tokyo" and lookup_fact("Australia", "capital") == "Canberra"
    with pytest.raises(FactError, match="No country 'Atlantis'"):
        lookup_fact("Atlantis", "capital")
    with pytest.raises(FactError, match="No field 'anthem'"):
        lookup_fact("France", "anthem")


@pytest.mark.parametrize(
    "name, arguments, where",
    [
        ("calculator", {}, "'expression' is a required property"),
        ("calculator", {"expression": 12}, "12 is not of type 'string'"),
        ("calculator", {"expression": "1", "extra": 1}, "Additional properties"),
        ("lookup_fact", {"country": "Atlantis", "field": "capital"}, "at country"),
        ("date_add", {"date": "2024-1-1", "days": 3}, "does not match"),
        ("date_add", {"date": "2024-01-01", "days": 1.5}, "not of type 'integer'"),
        ("convert_units", {"value": "ten", "from_unit": "m", "to_unit": "ft"}, "not of type 'number'"),
    ],
)
def test_schema_validation_names_the_problem(name, arguments, where):
    problem = validate_arguments(TOOLS[name], arguments)
    assert problem is not None and where in problem
    outcome = run_tool(name, arguments, Context())
    assert outcome.code == "bad_arguments" and outcome.result is None and where in outcome.error


def test_run_tool_never_raises():
    assert run_tool("nope", {}, Context()).code == "unknown_tool"
    failed = run_tool("calculator", {"expression": "1/0"}, Context())
    assert failed.code == "tool_error" and "Division by zero" in failed.error
    assert run_tool("search_documents", {"query": "x"}, Context()).code == "tool_error"  # no collection open
    ctx = Context()
    sent = run_tool("send_message", {"to": "bob", "text": "hi"}, ctx)
    assert sent.code == "ok" and ctx.outbox == [{"to": "bob", "text": "hi"}] and TOOLS["send_message"].side_effect
    assert run_tool("calculator", {"expression": "2**10"}, Context()).result == "1024"


# Every refusal carries a code the page words in both languages (agents.err.<code>), with the
# values its sentence needs; library text travels as "detail", shown untranslated.
def _sentence_fits(code: str, values: dict) -> None:
    import string

    from components.i18n import strings

    for lang in ("en", "zh"):
        text = strings(lang)["agents.err." + code]
        needed = {name for _, name, _, _ in string.Formatter().parse(text) if name}
        assert needed <= set(values) - {"detail"}, (lang, code, needed, values)


REFUSALS = [
    (lambda: calculate("__import__('os')"), "calc.unknown_function", {"name": "__import__"}),
    (lambda: calculate("x + 1"), "calc.name", {"name": "x"}),
    (lambda: calculate("(1).__class__"), "calc.not_allowed", {"node": "Attribute"}),
    (lambda: calculate("'a' * 3"), "calc.only_numbers", {"value": "'a'"}),
    (lambda: calculate("2**5000"), "calc.exponent", {"value": "5000", "limit": 1000}),
    (lambda: calculate("10**400"), "calc.power", {"power": "10 ** 400"}),
    (lambda: calculate("1/0"), "calc.div_zero", {}),
    (lambda: calculate("sqrt(-1)"), "calc.function", {"name": "sqrt", "detail": "math domain error"}),
    (lambda: calculate("1 +"), "calc.syntax", {"expression": "1 +"}),
    (lambda: calculate(" "), "calc.empty", {}),
    (lambda: calculate("1+" * 150 + "1"), "calc.too_long", {"limit": 200}),
    (lambda: calculate("round(x=1)"), "calc.positional", {}),
    (lambda: calculate("-" * 45 + "1"), "calc.too_deep", {}),
    (lambda: calculate("(-8)**0.5"), "calc.not_number", {}),
    (lambda: calculate("1e300*10"), "calc.too_large", {"limit": "1e+300"}),
    (lambda: calculate("1e300*1e300"), "calc.not_finite", {}),
    (lambda: convert(1, "km", "kg"), "unit.different", {"a": "km", "b": "kg"}),
    (lambda: convert(1, "c", "m"), "unit.temperature", {"a": "c", "b": "m"}),
    (lambda: lookup_fact("France", "anthem"), "fact.no_field", {"field": "anthem"}),
    (lambda: date_diff("yesterday", "2024-01-01"), "fact.not_date", {"text": "yesterday"}),
    (lambda: date_diff("2024-01-01", "2024-01-02", "months"), "fact.date_unit", {"unit": "months"}),
    (lambda: date_add("2024-01-01", 10**9), "fact.days_limit", {"limit": 100_000}),
    (lambda: date_add("9999-12-31", 1), "fact.date_range", {}),
    (lambda: date_add("2024-01-01", 1.5), "fact.days_whole", {"value": "1.5"}),
]


@pytest.mark.parametrize("call, code, values", REFUSALS)
def test_refusals_carry_a_code_and_the_values_their_sentence_needs(call, code, values):
    with pytest.raises((CalculatorError, UnitError, FactError)) as refused:
        call()
    assert refused.value.code == code
    assert values.items() <= refused.value.values.items()
    _sentence_fits(code, refused.value.values)


def test_unknown_units_and_countries_name_what_exists():
    table = json.loads(FACTS_FILE.read_text(encoding="utf-8"))
    with pytest.raises(FactError) as refused:
        lookup_fact("Atlantis", "capital")
    assert refused.value.code == "fact.no_country" and refused.value.values == {
        "country": "Atlantis",
        "n": len(table["countries"]),
    }
    with pytest.raises(UnitError) as refused:
        convert(1, "zz", "m")
    assert refused.value.code == "unit.unknown" and refused.value.values["unit"] == "zz"
    assert "km" in refused.value.values["known"].split(", ")


def test_run_tool_codes_its_errors_and_keeps_library_text_as_detail():
    import jsonschema

    unknown = run_tool("nope", {}, Context(), {"calculator": TOOLS["calculator"]})
    assert unknown.error_code == "tool.unknown" and unknown.error_values == {"name": "nope", "tools": "calculator"}
    bad = run_tool("calculator", {"expression": 12}, Context())
    library = next(jsonschema.Draft202012Validator(TOOLS["calculator"].parameters).iter_errors({"expression": 12}))
    assert bad.error_code == "tool.schema_at"
    assert bad.error_values == {"tool": "calculator", "where": "expression", "detail": library.message}
    missing = run_tool("calculator", {}, Context())
    assert (
        missing.error_code == "tool.schema" and missing.error_values["detail"] == "'expression' is a required property"
    )
    refused = run_tool("calculator", {"expression": "1/0"}, Context())
    assert refused.error_code == "calc.div_zero" and refused.error_values == {"tool": "calculator"}
    no_docs = run_tool("search_documents", {"query": "x"}, Context())
    assert no_docs.error_code == "search.no_collection" and no_docs.error == (
        "search_documents failed: ToolError: No document collection is open."
    )

    def broken(query):
        raise OSError("the index is gone")

    failed = run_tool("search_documents", {"query": "x"}, Context(search=broken))
    assert failed.error_code == "tool.failed"
    assert failed.error_values == {"tool": "search_documents", "detail": "OSError: the index is gone"}
    for outcome in (unknown, bad, missing, refused, no_docs, failed):
        _sentence_fits(outcome.error_code, outcome.error_values)
