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
