"""The "Try this" panel: a page's guided experiments, each predicted first, then measured and checked.

    experiments_panel("decoding", loaded)   # one line near the end of a page script

For the chosen experiment the learner picks a prediction, may set the page up for it in one
click (components/experiment_setups.py), and asks the panel to measure: the measurement runs
on the real models (backends.experiments), and the panel states what it measured, in words
with the numbers, and whether the prediction was right. Texts: assets/locales/*/experiments.json.
"""

from __future__ import annotations

import string

import streamlit as st

from backends.experiments import EXPERIMENTS, Experiment, Observation, find
from components.experiment_setups import SETUPS
from components.guard import allow, queue_status
from components.i18n import t
from components.option_labels import follow_language
from components.sidebar import current_device

P = "exp."


def text(exp: Experiment, part: str, **values) -> str:
    return t(f"exp.{exp.page}.{exp.id}.{part}", **values)


def question(exp: Experiment) -> str:
    """The question, with the experiment's parameters it names filled in (only those: a parameter
    named like one of t()'s own arguments must not reach it)."""
    raw = text(exp, "question")
    names = {name for _, name, _, _ in string.Formatter().parse(raw) if name}
    return raw.format(**{name: exp.params[name] for name in names}) if names else raw


def choice_label(exp: Experiment, choice: str) -> str:
    return text(exp, f"choice.{choice}")


def result_key(exp: Experiment) -> str:
    return f"{P}{exp.key}.result"


def set_up(page: str, experiment_id: str) -> None:
    """A callback: the page's widgets are drawn afterwards with the experiment's values."""
    exp = find(page, experiment_id)
    saved = st.session_state.get(result_key(exp))
    if page == "attention" and isinstance(saved, Observation):
        SETUPS[page](exp, saved)  # the measured head, shown in the head view
    else:
        SETUPS[page](exp)
    st.session_state[f"{P}{page}.set_up"] = experiment_id


def measure(exp: Experiment, device: str) -> Observation | str:
    """The observation, or the reason it could not be measured (shown in the page, never a crash)."""
    try:
        with st.spinner(t("exp.measuring")), queue_status():
            return exp.run(device)
    except Exception as exc:  # a model that cannot load here, a full queue...: say so, keep the page
        return t("exp.failed", error=f"{type(exc).__name__}: {exc}")


def verdict(exp: Experiment, guess: str | None, observed: Observation) -> None:
    st.markdown(text(exp, "observed", **observed.values))
    answer = choice_label(exp, observed.outcome)
    if guess is None:
        st.info(t("exp.no_guess", answer=answer))
    elif guess == observed.outcome:
        st.success(t("exp.right", answer=answer))
    else:
        st.warning(t("exp.wrong", guess=choice_label(exp, guess), answer=answer))
    if not observed.holds:
        st.caption(t("exp.unusual", expected=choice_label(exp, observed.expected)))


def experiment_view(exp: Experiment, device: str) -> None:
    st.markdown(question(exp))
    guess = st.radio(
        t("exp.predict"),
        exp.choices,
        index=None,
        key=follow_language(f"{P}{exp.key}.guess"),
        format_func=lambda c: choice_label(exp, c),
        persist_state="session",
    )
    b1, b2 = st.columns(2)
    b1.button(
        t("exp.setup"),
        key=f"{P}{exp.key}.setup",
        on_click=set_up,
        args=(exp.page, exp.id),
        icon=":material/tune:",
        help=t("exp.setup_help"),
    )
    check = b2.button(
        t("exp.check"),
        key=f"{P}{exp.key}.check",
        type="primary",
        icon=":material/science:",
        help=None if guess else t("exp.predict_first"),
    )
    if st.session_state.get(f"{P}{exp.page}.set_up") == exp.id:
        st.caption(t("exp.set_up_done", then=text(exp, "then")))
    if check and allow("experiment"):
        st.session_state[result_key(exp)] = measure(exp, device)
    observed = st.session_state.get(result_key(exp))
    if isinstance(observed, str):
        st.error(observed)
    elif observed is not None:
        verdict(exp, guess, observed)
        if exp.page == "attention" and "layer" in observed.values:
            st.button(
                t("exp.show_head", layer=observed.values["layer"], head=observed.values["head"]),
                key=f"{P}{exp.key}.show",
                on_click=set_up,
                args=(exp.page, exp.id),
            )


def experiments_panel(page: str, loaded=None) -> None:
    """The page's experiments in one expander; `loaded` (the page's model) names the device to measure on."""
    experiments = EXPERIMENTS.get(page, ())
    if not experiments:
        return
    device = loaded.key.device if loaded is not None else current_device()
    # A key gives the panel a stable identity: without one the browser places it by position, and when an
    # element above it comes or goes between runs (a first pass's placeholder) it draws a new, closed panel.
    with st.expander(t("exp.panel", n=len(experiments)), icon=":material/science:", key=f"{P}{page}.panel"):
        st.caption(t("exp.intro"))
        exp = st.selectbox(
            t("exp.pick"),
            experiments,
            key=follow_language(f"{P}{page}.pick"),
            format_func=lambda e: text(e, "title"),
            persist_state="session",
        )
        experiment_view(exp, device)
