"""Every guided experiment, run on the real offline models: its stated observation holds, and its texts
render with their placeholders filled in English and in Chinese (so a tour never teaches what the app does
not show)."""

import string

import pytest

from backends.experiments import EXPERIMENTS, Observation, find
from backends.experiments.base import trend
from backends.experiments.lora import nearest
from components.i18n import LANGS, strings

ALL = [exp for exps in EXPERIMENTS.values() for exp in exps]
_RESULTS: dict[str, Observation] = {}


def observed(exp) -> Observation:
    """Each experiment runs once for the whole module (the text tests reuse its numbers)."""
    if exp.key not in _RESULTS:
        _RESULTS[exp.key] = exp.run("cpu")
    return _RESULTS[exp.key]


def test_every_page_of_the_brief_has_three_to_five_experiments():
    assert set(EXPERIMENTS) >= {"tokenizers", "attention", "decoding", "lora", "rag", "scratch_gpt"}
    for page, exps in EXPERIMENTS.items():
        assert 3 <= len(exps) <= 5, page
        assert len({e.id for e in exps}) == len(exps), page
        for exp in exps:
            assert exp.expected in exp.choices and len(exp.choices) >= 2, exp.key
    assert sum(len(e) for e in EXPERIMENTS.values()) >= 20


@pytest.mark.parametrize("exp", ALL, ids=lambda e: e.key)
def test_the_stated_observation_holds_on_the_real_models(exp):
    result = observed(exp)
    assert result.experiment == exp.key
    assert result.outcome in exp.choices
    assert result.holds, f"{exp.key}: measured {result.outcome!r}, stated {exp.expected!r}: {result.values}"


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("lang", sorted(LANGS))
def test_every_text_exists_and_renders_with_its_numbers(lang):
    table = strings(lang)
    for exp in ALL:
        base = f"exp.{exp.page}.{exp.id}."
        for part in ("title", "question", "then", "observed", *(f"choice.{c}" for c in exp.choices)):
            assert base + part in table, (lang, base + part)
        values = observed(exp).values
        assert _placeholders(table[base + "observed"]) <= set(values), (lang, exp.key)
        text = table[base + "observed"].format(**values)
        question = table[base + "question"].format(**exp.params)
        for rendered in (text, question):
            assert "{" not in rendered and "}" not in rendered, (lang, exp.key, rendered)
        # the numbers the observation states are the measured ones
        for name in _placeholders(table[base + "observed"]):
            assert str(values[name]) in text
    assert not [k for k in table if k.startswith("exp.") and not table[k].strip()]


def test_outcomes_are_read_off_the_numbers():
    assert trend(0.41, 0.83, 0.02) == "rises" and trend(0.62, 0.21, 0.05) == "falls" and trend(1, 1.01, 0.02) == "same"
    assert (
        nearest(16.0, {"x16": 16, "x4": 4, "x1": 1}) == "x16" and nearest(5.3, {"x2": 2, "x5": 5, "x20": 20}) == "x5"
    )
    wrong = Observation("decoding.temperature", "rises", "falls", {})
    assert not wrong.holds


def test_an_unknown_experiment_is_refused_with_the_known_ones():
    with pytest.raises(KeyError, match="decoding.temperature"):
        find("decoding", "no-such-experiment")
