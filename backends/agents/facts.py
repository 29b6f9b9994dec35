"""The fact table (assets/datasets/agent_facts.json: 25 countries) and date arithmetic.

`lookup_fact(country, field)` reads the shipped table (case-insensitive country names);
`date_diff` and `date_add` do calendar arithmetic with the standard library's `datetime`.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache

from backends.core.coded import CodedError
from backends.core.paths import ASSETS

FACTS_FILE = ASSETS / "datasets" / "agent_facts.json"
DATE_UNITS = ("days", "weeks")
MAX_DAYS = 100_000


class FactError(CodedError, ValueError):
    """A missing fact or a bad date: the English message, `code` and `values` (agents.err.<code>)."""


@cache
def fact_table() -> dict:
    """{"source", "fields", "countries": {name: {field: value}}} as shipped."""
    return json.loads(FACTS_FILE.read_text(encoding="utf-8"))


def countries() -> list[str]:
    return list(fact_table()["countries"])


def fields() -> list[str]:
    return list(fact_table()["fields"])


def lookup_fact(country: str, field: str):
    """One value of the table; FactError naming what exists when the country or field is unknown."""
    by_name = {name.lower(): row for name, row in fact_table()["countries"].items()}
    row = by_name.get(str(country).strip().lower())
    if row is None:
        raise FactError(
            f"No country {country!r} in the fact table; it has {len(by_name)} countries.",
            "fact.no_country",
            country=str(country),
            n=len(by_name),
        )
    if field not in row:
        known = ", ".join(fields())
        raise FactError(f"No field {field!r}; fields: {known}.", "fact.no_field", field=str(field), known=known)
    return row[field]


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise FactError(f"Not a date in YYYY-MM-DD form: {text!r}.", "fact.not_date", text=str(text)) from None


def date_diff(start: str, end: str, unit: str = "days") -> int | float:
    """end - start in days (or weeks, as a float)."""
    if unit not in DATE_UNITS:
        known = ", ".join(DATE_UNITS)
        raise FactError(f"Unknown unit {unit!r}; use one of {known}.", "fact.date_unit", unit=str(unit), known=known)
    days = (parse_date(end) - parse_date(start)).days
    return days if unit == "days" else round(days / 7, 4)


def date_add(date: str, days: int) -> str:
    """The ISO date `days` days after `date` (before it when negative)."""
    if not isinstance(days, int) or isinstance(days, bool):
        raise FactError(f"days must be a whole number, not {days!r}.", "fact.days_whole", value=repr(days))
    if abs(days) > MAX_DAYS:
        raise FactError(f"days is limited to ±{MAX_DAYS}.", "fact.days_limit", limit=MAX_DAYS)
    try:
        return (parse_date(date) + dt.timedelta(days=days)).isoformat()
    except OverflowError:
        raise FactError("The date is out of range.", "fact.date_range") from None
