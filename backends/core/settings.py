"""Settings dataclasses read back from JSON: one checker for every topic's `from_dict`."""

from __future__ import annotations

import dataclasses


def settings_from_dict(cls, values, error: type[Exception]):
    """An instance of the frozen settings dataclass `cls` from a dict its `to_dict()` wrote.

    Unknown keys and wrong types are refused with their names (as `error`); an int is accepted for a
    float field, a list of strings for a tuple field (JSON has no tuples); a bool is never a number."""
    if not isinstance(values, dict):
        raise error(f"Expected a JSON object of settings, got {type(values).__name__}.")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise error(f"Unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}.")
    defaults, clean = cls(), {}
    for name, value in values.items():
        expected = type(getattr(defaults, name))
        if expected is tuple:
            if not isinstance(value, (list, tuple)) or not all(isinstance(m, str) for m in value):
                raise error(f"{name} = {value!r}: expected a list of layer names.")
            value = tuple(value)
        elif expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, expected):
            raise error(f"{name} = {value!r}: expected {expected.__name__}.")
        clean[name] = value
    return cls(**clean)
