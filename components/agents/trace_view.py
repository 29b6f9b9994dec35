"""A trace drawn step by step: what was sent, what the model wrote, the call, what came back.

A step's error is worded here from its code (agents.err.<code>); what a library wrote (jsonschema's
message, a Python exception's text) is shown as it is, in a code span after that sentence. A step
without a code (a trace from before codes) shows its English message in a code span."""

from __future__ import annotations

import json

import streamlit as st

from components.i18n import t

P = "agents."


def call_text(step) -> str:
    return f"{step.name}({json.dumps(step.arguments or {}, ensure_ascii=False)})" if step.is_call else ""


def _span(text) -> str:
    """Text as an inline code span (model or library text: never translated, never markdown)."""
    return "`" + " ".join(str(text).replace("`", "'").split()) + "`"


def _value(value) -> str:
    return str(value).replace("`", "'")


def error_text(step) -> str:
    """The step's error in the page's language: the translated sentence, then any library text."""
    values = dict(getattr(step, "error_values", None) or {})
    detail = values.pop("detail", None)
    code = getattr(step, "error_code", None)
    if not code:
        return _span(step.error)
    try:
        headline = t(P + "err." + code, **{k: _value(v) for k, v in values.items()})
    except (KeyError, IndexError, ValueError):  # a value the sentence needs is missing: the message as sent
        return _span(step.error)
    return headline + (" " + _span(detail) if detail else "")


def step_label(step) -> str:
    what = call_text(step) if step.is_call else t(P + "trace.answer_step")
    edited = t(P + "trace.edited") if step.edited else ""
    code = t(P + "code." + step.code)
    return t(P + "trace.step", n=step.index + 1, what=what, code=code, s=f"{step.seconds:.1f}") + edited


def draw_step(step, expanded: bool = False) -> None:
    with st.expander(step_label(step), expanded=expanded):
        st.markdown(t(P + "trace.messages", n=len(step.messages), tokens=step.prompt_tokens))
        st.json(step.messages, expanded=False)
        st.markdown(t(P + "trace.raw"))
        st.code(step.raw or t(P + "trace.raw_edited"), language="text")
        if step.is_call:
            st.markdown(t(P + "trace.call"))
            st.code(call_text(step), language="text")
        if step.error:
            st.error(t(P + "trace.error", error=error_text(step)))
        elif step.result is not None:
            st.markdown(t(P + "trace.result"))
            st.code(step.result, language="text")
        elif step.content:
            st.success(step.content)


def draw_routing(trace) -> None:
    """Tool retrieval before the first step: each chosen tool's MiniLM score, the kept ones first."""
    if not trace.routing:
        return
    kept = set(trace.config.tools)
    st.markdown(t(P + "trace.routing", k=len(kept), n=len(trace.routing)))
    rows = [
        {
            t(P + "routing.tool"): s.name,
            t(P + "routing.score"): round(s.score, 3),
            t(P + "routing.nearest"): s.nearest,
            t(P + "routing.kept"): "✓" if s.name in kept else "",
        }
        for s in trace.routing
    ]
    st.dataframe(rows, hide_index=True)


def draw_trace(trace) -> None:
    draw_routing(trace)
    if trace.branched_from is not None:
        st.caption(t(P + "trace.branched", n=trace.branched_from + 1))
    for step in trace.steps:
        draw_step(step, expanded=step.index == len(trace.steps) - 1)
    stop = t(P + "stop." + trace.stopped) if trace.stopped else ""
    if trace.answer is not None:
        st.success(t(P + "trace.final", answer=trace.answer or "—"))
    elif trace.stopped == "awaiting_approval":
        pass  # the Run tab asks for the approval below the trace
    else:
        st.warning(t(P + "trace.stopped", why=stop))
    if trace.outbox:
        st.caption(t(P + "trace.outbox", n=len(trace.outbox)))
        st.json(trace.outbox, expanded=False)
