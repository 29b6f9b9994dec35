"""The Run tab: one agent run on the in-app model, its trace, and a branch from an edited step."""

from __future__ import annotations

import json

import streamlit as st

from backends import agents as A
from components.agents.trace_view import draw_trace
from components.guard import queue_status
from components.i18n import t
from components.option_labels import follow_language

P = "agents."
TRACE = P + "trace"
DEFAULT_TOOLS = ("calculator", "convert_units", "lookup_fact", "date_diff")


def _search(device: str):
    """The RAG page's open collection when there is one, else the sample PDF's (built on first use)."""
    collection = st.session_state.get("rag.collection")

    def search(query: str):
        return A.collection_search(collection if collection is not None else A.sample_collection(device))(query)

    return search


def settings() -> tuple[str, A.AgentConfig]:
    question = st.text_input(
        t(P + "question"), value=t(P + "question.default"), key=P + "question", persist_state="session"
    )
    st.markdown(t(P + "tools"))
    cols = st.columns(4)
    chosen = []
    for i, name in enumerate(A.TOOL_NAMES):
        with cols[i % 4]:
            on = st.checkbox(
                f"`{name}`",
                value=name in DEFAULT_TOOLS,
                key=P + "tool." + name,
                help=t(P + "tool_help." + name),
                persist_state="session",
            )
        if on:
            chosen.append(name)
    a, b = st.columns(2)
    choice = a.radio(
        t(P + "choice"),
        ["required", "auto"],
        format_func=lambda c: t(P + "choice." + c),
        key=follow_language(P + "choice"),
        horizontal=True,
        persist_state="session",
    )
    steps = b.slider(t(P + "max_steps"), 1, 6, 3, key=P + "max_steps", persist_state="session")
    confirm = st.toggle(t(P + "confirm"), value=True, key=P + "confirm", persist_state="session")
    config = A.AgentConfig(
        tools=tuple(chosen), tool_choice=choice, max_steps=int(steps), confirm_side_effects=bool(confirm)
    )
    return question, config


def edit_and_branch(loaded, trace, device: str) -> None:
    calls = [s for s in trace.steps if s.is_call]
    if not calls:
        return
    st.subheader(t(P + "edit.title"))
    st.caption(t(P + "edit.note"))
    index = st.selectbox(
        t(P + "edit.step"),
        [s.index for s in calls],
        format_func=lambda i: t(P + "edit.step_n", n=i + 1),
        key=P + "edit.index",
        persist_state="session",
    )
    step = trace.steps[index]
    call = st.text_area(
        t(P + "edit.call"),
        value=json.dumps({"name": step.name, "arguments": step.arguments}, ensure_ascii=False),
        key=P + f"edit.call.{index}",
        height=80,
        persist_state="session",
    )
    result = st.text_area(
        t(P + "edit.result"), value="", key=P + f"edit.result.{index}", height=80, persist_state="session"
    )
    if not st.button(t(P + "edit.branch"), key=P + "edit.go"):
        return
    try:
        edited = json.loads(call)
        name, arguments = edited["name"], edited.get("arguments", {})
    except (json.JSONDecodeError, KeyError, TypeError):
        st.error(t(P + "edit.bad_json"))
        return
    with queue_status(), st.spinner(t(P + "running")):
        branch = A.replay(loaded, trace, index, str(name), arguments, result.strip() or None, search=_search(device))
    st.session_state[TRACE] = branch
    st.rerun()


def run_tab(loaded, device: str) -> None:
    st.markdown(t(P + "run.intro"))
    question, config = settings()
    if st.button(t(P + "run"), key=P + "run", type="primary"):
        try:
            config.validate()
        except ValueError as exc:
            st.error(t(P + "bad_config", error=str(exc)))
            return
        with queue_status(), st.spinner(t(P + "running")):
            st.session_state[TRACE] = A.run_agent(loaded, question, config, search=_search(device))
    trace = st.session_state.get(TRACE)
    if trace is None:
        st.info(t(P + "run.none"))
    else:
        draw_trace(trace)
        edit_and_branch(loaded, trace, device)
    with st.expander(t(P + "code.langgraph")):
        st.caption(t(P + "code.langgraph.note"))
        st.code(A.langgraph_code(question, config if config.tools else A.AgentConfig()), language="python")
