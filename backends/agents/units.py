"""Unit conversion from tables: every unit of a quantity as a factor to one base unit (SI, or the
litre and second), temperature by its own formulas. Exact definitions where there is one
(1 inch = 0.0254 m, 1 lb = 0.45359237 kg, 1 US gallon = 3.785411784 L)."""

from __future__ import annotations

from backends.core.coded import CodedError

LENGTH = {"mm": 0.001, "cm": 0.01, "m": 1.0, "km": 1000.0, "in": 0.0254, "ft": 0.3048, "yd": 0.9144, "mi": 1609.344}
MASS = {"mg": 1e-6, "g": 0.001, "kg": 1.0, "t": 1000.0, "oz": 0.028349523125, "lb": 0.45359237}
TIME = {"s": 1.0, "min": 60.0, "h": 3600.0, "day": 86400.0, "week": 604800.0}
VOLUME = {"ml": 0.001, "l": 1.0, "m3": 1000.0, "cup": 0.2365882365, "gal": 3.785411784, "floz": 0.0295735295625}
TABLES = {"length": LENGTH, "mass": MASS, "time": TIME, "volume": VOLUME}
TEMPERATURE = ("c", "f", "k")
ALIASES = {
    "meter": "m", "meters": "m", "metre": "m", "metres": "m", "kilometer": "km", "kilometers": "km",
    "centimeter": "cm", "centimeters": "cm", "millimeter": "mm", "inch": "in", "inches": "in",
    "foot": "ft", "feet": "ft", "yard": "yd", "yards": "yd", "mile": "mi", "miles": "mi",
    "gram": "g", "grams": "g", "kilogram": "kg", "kilograms": "kg", "kilo": "kg", "kilos": "kg",
    "tonne": "t", "tonnes": "t", "ounce": "oz", "ounces": "oz", "pound": "lb", "pounds": "lb", "lbs": "lb",
    "second": "s", "seconds": "s", "sec": "s", "minute": "min", "minutes": "min", "hour": "h", "hours": "h",
    "hr": "h", "days": "day", "weeks": "week", "litre": "l", "liter": "l", "litres": "l", "liters": "l",
    "millilitre": "ml", "milliliter": "ml", "gallon": "gal", "gallons": "gal", "cups": "cup",
    "celsius": "c", "°c": "c", "fahrenheit": "f", "°f": "f", "kelvin": "k",
}  # fmt: skip
ALL_UNITS = sorted({u for table in TABLES.values() for u in table} | set(TEMPERATURE))


class UnitError(CodedError, ValueError):
    """An unknown or mismatched unit: the English message, `code` and `values` (agents.err.<code>)."""


def normalize(unit: str) -> str:
    u = str(unit).strip().lower()
    return ALIASES.get(u, u)


def _to_kelvin(value: float, unit: str) -> float:
    return {"c": value + 273.15, "f": (value - 32) * 5 / 9 + 273.15, "k": value}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"c": value - 273.15, "f": (value - 273.15) * 9 / 5 + 32, "k": value}[unit]


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """`value` in `from_unit` expressed in `to_unit`; UnitError for unknown or mismatched units."""
    a, b = normalize(from_unit), normalize(to_unit)
    if a in TEMPERATURE or b in TEMPERATURE:
        if a in TEMPERATURE and b in TEMPERATURE:
            return _from_kelvin(_to_kelvin(float(value), a), b)
        raise UnitError(
            f"Cannot convert {from_unit!r} to {to_unit!r}: only one of them is a temperature.",
            "unit.temperature",
            a=str(from_unit),
            b=str(to_unit),
        )
    for table in TABLES.values():
        if a in table and b in table:
            return float(value) * table[a] / table[b]
    for name in (a, b):
        if not any(name in table for table in TABLES.values()):
            known = ", ".join(ALL_UNITS)
            raise UnitError(f"Unknown unit {name!r}; known: {known}.", "unit.unknown", unit=name, known=known)
    raise UnitError(
        f"Cannot convert {from_unit!r} to {to_unit!r}: they measure different things.",
        "unit.different",
        a=str(from_unit),
        b=str(to_unit),
    )
