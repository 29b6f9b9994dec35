"""What every experiment is: a stated observation the learner predicts, and a measurement that checks it.

An `Experiment` names its choices (the answers the learner may predict, e.g. "rises" /
"falls" / "same"), the choice its stated observation expects, the plain parameters the
page is set up with (the same ones the measurement uses, so the page shows what was
measured) and the function that measures it on the real models. The measurement returns
an `Observation`: the numbers, the choice those numbers support (`outcome`), and `holds`,
whether that is the stated observation. Nothing here hard-codes an outcome: it is always
read off the numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DEVICE = "cpu"


@dataclass(frozen=True)
class Observation:
    experiment: str  # "<page>.<id>"
    outcome: str  # the choice the measured numbers support
    expected: str  # the choice the stated observation expects
    values: dict[str, Any] = field(default_factory=dict)  # the numbers, ready to fill the text's placeholders

    @property
    def holds(self) -> bool:
        return self.outcome == self.expected


@dataclass(frozen=True)
class Experiment:
    page: str
    id: str
    choices: tuple[str, ...]
    expected: str
    params: dict[str, Any]
    measure: Callable[..., Observation]  # measure(params, device) -> Observation

    @property
    def key(self) -> str:
        return f"{self.page}.{self.id}"

    def run(self, device: str = DEFAULT_DEVICE) -> Observation:
        observed = self.measure(self.params, device)
        if observed.outcome not in self.choices:
            raise ValueError(f"{self.key}: outcome {observed.outcome!r} is not one of {self.choices}.")
        return observed


def observation(experiment_key: str, outcome: str, expected: str, **values) -> Observation:
    return Observation(experiment_key, outcome, expected, values)


def trend(before: float, after: float, tolerance: float) -> str:
    """ "rises", "falls" or "same": whether `after` differs from `before` by more than `tolerance`."""
    if after > before + tolerance:
        return "rises"
    if after < before - tolerance:
        return "falls"
    return "same"


def fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"
