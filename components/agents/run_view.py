"""The Run tab: one agent run on the in-app model (or the sidebar's remote engine), its trace, an
approval for a side-effecting call, and a branch from an edited step."""

from __future__ import annotations

import json
from contextlib import nullcontext

import streamlit as st

from backends import agents as A
from backends.serving import RemoteError
from components import engine
from components.agents.trace_view import draw_trace
from components.guard import queue_status
from components.i18n import t
from components.option_labels import follow_language

P = "agents."
TRACE = P + "trace"
RAN_ON = P + "ran_on"  # (server or None for the in-app model, model id) of the trace shown
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
    route = st.radio(
        t(P + "route"),
        [1, 2, 0],
        format_func=lambda k: t(P + "route." + str(k)),
        key=follow_language(P + "route"),
        horizontal=True,
        help=t(P + "route_help"),
        persist_state="session",
    )
    confirm = st.toggle(t(P + "confirm"), value=True, key=P + "confirm", persist_state="session")
    config = A.AgentConfig(
        tools=tuple(chosen),
        tool_choice=choice,
        max_steps=int(steps),
        confirm_side_effects=bool(confirm),
        pause_for_approval=True,  # a side-effecting call waits for the buttons below the trace
        route_k=int(route),
    )
    return question, config


def _code_span(text: str) -> str:
    return "`" + " ".join(str(text).replace("`", "'").split()) + "`"


def take_steps(loaded, work) -> bool:
    """Run `work(remote engine or None)` on the sidebar's engine (remote when it is on) and keep the
    trace it returns; a bad engine setting or a failing server is a message, never a crash."""
    model = loaded.key.model
    remote = None
    if engine.remote_on():
        model = st.session_state.get(P + "remote_model") or model
        try:
            remote = engine.make_engine(model)
        except ValueError as exc:
            st.error(t(P + "remote_bad") + " " + _code_span(str(exc)))
            return False
    try:
        with queue_status() if remote is None else nullcontext(), st.spinner(t(P + "running")):
            trace = work(remote)
    except RemoteError as exc:
        st.error(t(P + "remote_failed") + " " + _code_span(str(exc)))
        return False
    st.session_state[TRACE] = trace
    st.session_state[RAN_ON] = (engine.server_label() if remote is not None else None, model)
    return True


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
        key=follow_language(P + "edit.index"),
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
    given = result.strip() or None

    def branch(remote):
        return A.replay(loaded, trace, index, str(name), arguments, given, search=_search(device), engine=remote)

    if take_steps(loaded, branch):
        st.rerun()


def approval(loaded, trace, device: str) -> None:
    """The pending side-effecting call, with Approve / Decline: the run goes on either way."""
    step = trace.steps[-1]
    with st.container(border=True):
        st.markdown(t(P + "approve.title"))
        st.markdown(t(P + "approve.ask", tool=step.name))
        st.code(json.dumps(step.arguments or {}, ensure_ascii=False, indent=2), language="json")
        st.caption(t(P + "approve.note"))
        left, right = st.columns(2)
        yes = left.button(t(P + "approve.yes"), key=P + "approve.yes", type="primary", icon=":material/check:")
        no = right.button(t(P + "approve.no"), key=P + "approve.no", icon=":material/block:")
    if (yes or no) and take_steps(
        loaded, lambda remote: A.resume(loaded, trace, bool(yes), search=_search(device), engine=remote)
    ):
        st.rerun()


def run_tab(loaded, device: str) -> None:
    st.markdown(t(P + "run.intro"))
    question, config = settings()
    if engine.remote_on():
        engine.remote_model_input(P + "remote_model", loaded.key.model, label=t(P + "remote_model"))
        st.caption(t(P + "remote_note", server=engine.server_label()))
    if st.button(t(P + "run"), key=P + "run", type="primary"):
        try:
            config.validate()
        except ValueError as exc:
            st.error(t(P + "bad_config", error=str(exc)))
            return
        take_steps(loaded, lambda remote: A.run_agent(loaded, question, config, search=_search(device), engine=remote))
    trace = st.session_state.get(TRACE)
    if trace is None:
        st.info(t(P + "run.none"))
    else:
        server, model = st.session_state.get(RAN_ON) or (None, loaded.key.model)
        if server is None:
            st.caption(t(P + "ran_on.local", model=model))
        else:
            st.caption(t(P + "ran_on.remote", server=server, model=model))
        draw_trace(trace)
        if trace.stopped == A.AWAITING:
            approval(loaded, trace, device)
        edit_and_branch(loaded, trace, device)
    with st.expander(t(P + "code.langgraph")):
        st.caption(t(P + "code.langgraph.note"))
        st.code(A.langgraph_code(question, config if config.tools else A.AgentConfig()), language="python")
