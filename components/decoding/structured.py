"""The decoding page's Structured output tab: a grammar (JSON Schema, regex, choice list, EBNF),
the same prompt decoded free and under it side by side, and what the grammar did at each step."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import streamlit as st

from backends import decoding as dec
from backends import structured as S
from backends.structured.extraction import check_json, extraction_set, prompt_text
from components.backend_text import said
from components.decoding.charts import probability_chips
from components.decoding.extraction import extraction_section
from components.i18n import t
from components.option_labels import follow_language

P = "dec.st."
KINDS = ("json_schema", "regex", "choice", "ebnf", "json_object")
EXAMPLES = {
    "json_schema": json.dumps(extraction_set()["schemas"]["person"]["schema"], indent=1),
    "regex": r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "choice": "Madrid\nParis\nLisbon\nQuito",
    "ebnf": 'root ::= "Name: " name ", age " age\nname ::= [A-Z] [a-z]+ (" " [A-Z] [a-z]+)?\nage ::= [1-9] [0-9]?',
    "json_object": "",
}


def constraint_editor() -> S.Constraint | None:
    left, right = st.columns([1, 2])
    with left:
        kind = st.radio(
            t(P + "kind"),
            KINDS,
            format_func=lambda k: t(P + "kind." + k),
            key=follow_language(P + "kind"),
            persist_state="session",
        )
        spacing = st.radio(
            t(P + "whitespace"),
            S.WHITESPACE,
            format_func=lambda w: t(P + "ws." + w, n=S.MAX_WHITESPACE),
            key=follow_language(P + "ws"),
            help=t(P + "ws_help", n=S.MAX_WHITESPACE),
            persist_state="session",
            disabled=kind not in ("json_schema", "json_object"),
        )
    with right:
        if kind == "json_object":
            st.caption(t(P + "json_object_note"))
            source = ""
        else:
            source = st.text_area(
                t(P + "source." + kind),
                EXAMPLES[kind],
                height=220,
                key=P + "src." + kind,
                help=t(P + "source_help." + kind),
                persist_state="session",
            )
    constraint = S.Constraint(kind, source, whitespace=spacing)
    try:
        return constraint.validate()
    except S.ConstraintError as exc:
        st.error(said(exc, P + "error."))
        return None


def verdict(constraint: S.Constraint, text: str, finished: bool) -> tuple[bool, str]:
    """(whether `text` is what the constraint asks for, by the independent check for its kind, the sentence)."""
    import re

    if constraint.kind in ("json_schema", "json_object"):
        v = check_json(text, constraint.schema() if constraint.kind == "json_schema" else None)
        ok, why = v.valid, v.error
    elif constraint.kind == "regex":
        ok, why = re.fullmatch(str(constraint.source), text) is not None, t(P + "no_match")
    elif constraint.kind == "choice":
        ok, why = text in constraint.choices(), t(P + "not_a_choice")
    else:  # EBNF: only the grammar itself can say; a finished run is in its language by construction
        ok, why = finished, t(P + "unfinished")
    return (True, t(P + "valid." + constraint.kind)) if ok else (False, t(P + "invalid", why=why))


def show_verdict(constraint: S.Constraint, text: str, finished: bool) -> None:
    ok, sentence = verdict(constraint, text, finished)
    (st.success if ok else st.error)(sentence)


def steps_figure(steps: list[S.GuidedStep]) -> go.Figure:
    x = [s.step.index for s in steps]
    fig = go.Figure()
    fig.add_bar(x=x, y=[s.allowed for s in steps], name=t(P + "chart.allowed"), marker_color="#4C78A8")
    fig.add_scatter(
        x=x,
        y=[100 * s.removed_mass for s in steps],
        name=t(P + "chart.removed"),
        yaxis="y2",
        mode="lines+markers",
        line_color="#E45756",
    )
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=40, b=10),
        title=t(P + "chart.title", vocab=steps[0].vocab if steps else 0),
        xaxis_title=t(P + "chart.step"),
        yaxis=dict(title=t(P + "chart.allowed"), type="log"),
        yaxis2=dict(title=t(P + "chart.removed"), overlaying="y", side="right", range=[0, 100], dtick=25),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def step_rows(steps: list[S.GuidedStep]) -> dict:
    show = lambda text: repr(text)[1:-1] or "∅"  # noqa: E731 — tokens as escaped text (↵ would hide "\n")
    return {
        t(P + "col.step"): [s.step.index for s in steps],
        t(P + "col.taken"): [show(s.step.text) for s in steps],
        t(P + "col.allowed"): [f"{s.allowed:,} / {s.vocab:,}" for s in steps],
        t(P + "col.removed"): [f"{s.removed_mass:.1%}" for s in steps],
        t(P + "col.free"): [f"{show(s.free_text)} ({s.free_prob:.0%})" for s in steps],
        t(P + "col.steered"): ["✓" if s.steered else "" for s in steps],
    }


def run_pair(loaded, ids: list[int], constraint: S.Constraint, config: dec.DecodingConfig) -> None:
    free_col, guided_col = st.columns(2)
    free_col.markdown("**" + t(P + "free") + "**")
    guided_col.markdown("**" + t(P + "guided") + "**")
    free_out, guided_out = free_col.empty(), guided_col.empty()
    free_steps, guided_steps = [], []
    for s in dec.generate_stream(loaded, ids, config):
        free_steps.append(s)
        free_out.markdown(probability_chips(free_steps), unsafe_allow_html=True)
    run = S.GuidedRun(S.guided_stream(loaded, ids, config, constraint))
    for g in run:
        guided_steps.append(g)
        guided_out.markdown(probability_chips([g.step for g in guided_steps]), unsafe_allow_html=True)
    finished = run.finished
    stops = dec.eos_ids(loaded)
    free_text = loaded.tokenizer.decode([s.token_id for s in free_steps if s.token_id not in stops])
    guided_text = loaded.tokenizer.decode([g.step.token_id for g in guided_steps if g.step.token_id not in stops])
    st.session_state[P + "result"] = dict(
        constraint=constraint,
        free_steps=free_steps,
        free_text=free_text,
        free_finished=bool(free_steps) and free_steps[-1].token_id in stops,
        guided_steps=guided_steps,
        guided_text=guided_text,
        finished=finished,
    )


def show_result(result: dict) -> None:
    constraint = result["constraint"]
    free_col, guided_col = st.columns(2)
    with free_col:
        st.markdown("**" + t(P + "free") + "**")
        st.markdown(probability_chips(result["free_steps"]), unsafe_allow_html=True)
        st.code(result["free_text"] or " ", language=None, wrap_lines=True)
        show_verdict(constraint, result["free_text"], result["free_finished"])
    with guided_col:
        st.markdown("**" + t(P + "guided") + "**")
        st.markdown(probability_chips([g.step for g in result["guided_steps"]]), unsafe_allow_html=True)
        st.code(result["guided_text"] or " ", language=None, wrap_lines=True)
        show_verdict(constraint, result["guided_text"], result["finished"])
        if not result["finished"]:
            st.warning(t(P + "cut", n=len(result["guided_steps"])))
    steps = result["guided_steps"]
    if not steps:
        return
    steered = sum(s.steered for s in steps)
    st.markdown(t(P + "steered_summary", n=steered, total=len(steps)))
    st.plotly_chart(steps_figure(steps), key=P + "chart")
    st.dataframe(step_rows(steps), hide_index=True, key=P + "table")


def structured_tab(loaded, chat: bool, max_new: int, seed: int) -> None:
    st.markdown(t(P + "intro"))
    with st.expander(t(P + "how")):
        st.markdown(t(P + "how_body", n=S.MAX_WHITESPACE))
    constraint = constraint_editor()
    first = extraction_set()["items"][1]  # its free run writes a second JSON block: not valid
    prompt = st.text_area(t(P + "prompt"), prompt_text(first), height=90, key=P + "prompt", persist_state="session")
    run = st.button(t(P + "run"), type="primary", key=P + "run", disabled=constraint is None)
    if run and constraint is not None:
        try:
            ids = dec.encode_prompt(loaded, prompt, chat)
            dec.new_token_budget(loaded, len(ids), 1)
            config = dec.DecodingConfig(strategy="greedy", max_new_tokens=int(max_new), seed=int(seed))
            run_pair(loaded, ids, constraint, config)
        except S.ConstraintError as exc:
            st.error(said(exc, P + "error."))
        except ValueError as exc:
            st.warning(said(exc, "dec.error."))
        st.rerun()
    result = st.session_state.get(P + "result")
    if result is not None:
        show_result(result)
    st.divider()
    extraction_section(loaded)
