"""The speculative decoding tab: a prompt from the lookup set (or your own), prompt lookup or a layer-draft
proposer, run as a background job; the text with each step's accepted guesses, the model's own token and
the rejected guesses, acceptance per step, and the measured speed-up against plain greedy."""

from __future__ import annotations

import html

import plotly.graph_objects as go
import streamlit as st

from backends import inference as inf
from backends.core.jobs import shared_runner
from components.i18n import current_lang, t
from components.job_status import newly_finished
from components.live_job import live_panel
from components.option_labels import follow_language

P = "inference.speculative."
CUSTOM = "custom"
ACCEPTED, OWN, REJECTED = "#b2f2bb", "#a5d8ff", "#ffc9c9"


def start(prompt: str, method: str, k: int, max_new: int, layers: int) -> None:
    job = shared_runner().submit("inference.speculative", inf.spec_job, prompt, method, k, max_new, layers)
    st.session_state[P + "job"] = job.id


def take_finished(job=None) -> None:
    job = job or newly_finished(P + "job")
    if job is not None and job.result is not None:
        st.session_state[P + "result"], job.result = job.result, None


def shown(text: str) -> str:
    return html.escape(text).replace("\n", "⏎<br>")


def coloured_text(steps: list[dict], show_rejected: bool = True) -> str:
    """HTML: accepted guesses green, the model's own token blue, rejected guesses struck through in red."""
    parts = []
    for s in steps:
        n_acc = min(s["accepted"], len(s["tokens"]))
        for i, piece in enumerate(s["pieces"]):
            colour = ACCEPTED if i < n_acc else OWN
            title = t(P + "hover.accepted" if i < n_acc else P + "hover.own", step=s["index"])
            parts.append(f'<span title="{html.escape(title)}" style="background:{colour}">{shown(piece)}</span>')
        rejected = s["proposed_text"][s["accepted"] :]
        if show_rejected and rejected:
            title = html.escape(t(P + "hover.rejected", step=s["index"]))
            parts.append(
                f'<del title="{title}" style="background:{REJECTED};color:#862e2e;font-size:0.8em">'
                f"{shown(''.join(rejected))}</del>"
            )
    return '<div style="line-height:1.9;font-size:1.05em">' + "".join(parts) + "</div>"


def legend() -> None:
    st.markdown(
        f'<span style="background:{ACCEPTED};padding:1px 6px">{t(P + "legend.accepted")}</span> '
        f'<span style="background:{OWN};padding:1px 6px">{t(P + "legend.own")}</span> '
        f'<del style="background:{REJECTED};padding:1px 6px">{t(P + "legend.rejected")}</del>',
        unsafe_allow_html=True,
    )


def accept_chart(steps: list[dict], key: str) -> None:
    rows = [s for s in steps if s["proposed"]]
    if not rows:
        st.caption(t(P + "chart.none"))
        return
    x = [s["index"] for s in rows]
    fig = go.Figure()
    fig.add_bar(x=x, y=[s["accepted"] for s in rows], name=t(P + "chart.accepted"), marker_color="#2b8a3e")
    fig.add_bar(
        x=x, y=[len(s["proposed"]) - s["accepted"] for s in rows], name=t(P + "chart.rejected"), marker_color="#e03131"
    )
    fig.add_scatter(
        x=x,
        y=[s["accepted"] / len(s["proposed"]) for s in rows],
        name=t(P + "chart.rate"),
        yaxis="y2",
        mode="lines+markers",
        line={"color": "#1971c2"},
    )
    fig.update_layout(
        barmode="stack",
        height=300,
        margin={"t": 30, "b": 40},
        xaxis_title=t(P + "chart.step"),
        yaxis_title=t(P + "chart.guesses"),
        yaxis2={"overlaying": "y", "side": "right", "range": [0, 1.05], "tickformat": ".0%", "showgrid": False},
        legend={"orientation": "h", "y": -0.3},
    )
    st.plotly_chart(fig, key=key)


def own_text(s: dict) -> str:
    n_acc = min(s["accepted"], len(s["tokens"]))
    return repr("".join(s["pieces"][n_acc:]))[1:-1] if len(s["tokens"]) > n_acc else "–"


def step_table(steps: list[dict]) -> None:
    rows = []
    for s in steps[1:]:
        acc = s["proposed_text"][: s["accepted"]]
        rows.append(
            {
                t(P + "table.step"): s["index"],
                t(P + "table.proposed"): " · ".join(repr(x)[1:-1] for x in s["proposed_text"]) or "–",
                t(P + "table.accepted"): f"{s['accepted']}/{len(s['proposed'])}",
                t(P + "table.kept"): " · ".join(repr(x)[1:-1] for x in acc) or "–",
                t(P + "table.own"): own_text(s),
                t(P + "table.verify_ms"): round(1000 * s["verify_s"], 1),
                t(P + "table.propose_ms"): round(1000 * s["propose_s"], 1),
            }
        )
    st.dataframe(rows, hide_index=True, height=min(400, 38 + 35 * len(rows)))


def live() -> None:
    def progress(job, events):
        last = events[-1].message if events else "speculative"
        return job.progress or 0.0, t(P + ("running.greedy" if last == "greedy" else "running.spec"))

    def draw(job, events):
        if job.done:
            return
        steps = [e.data for e in events if e.data.get("kind") == "step"]
        if steps:
            st.markdown(coloured_text(steps), unsafe_allow_html=True)

    live_panel(P, take_finished, progress, draw)


def results(run: dict) -> None:
    spec = run["spec"]
    steps = [inf.step_record(s) for s in spec.steps]
    c = st.columns(5)
    c[0].metric(t(P + "metric.identical"), t(P + ("yes" if run["identical"] else "no")))
    c[1].metric(t(P + "metric.speedup"), f"×{run['speedup']:.2f}")
    rate = run["accept_rate"]
    c[2].metric(t(P + "metric.accept"), "–" if rate != rate else f"{rate:.0%}")
    passes, plain_passes = run["forward_passes"], run["plain_forward_passes"]
    c[3].metric(t(P + "metric.passes"), f"{passes}", f"{passes - plain_passes}", delta_color="inverse")
    plain_tps = f"{run['plain_tokens_per_s']:.1f} " + t(P + "metric.plain")
    c[4].metric(t(P + "metric.tps"), f"{run['spec_tokens_per_s']:.1f}", plain_tps, delta_color="off")
    draft = spec.method == "draft"
    method = t(P + "draft_name", n=run["draft_layers"]) if draft else t(P + "method." + spec.method)
    st.caption(
        t(
            P + "measured",
            method=method,
            k=spec.k,
            tokens=run["tokens"],
            spec=f"{1000 * run['spec_decode_s']:.0f}",
            plain=f"{1000 * run['plain_decode_s']:.0f}",
            threads=run["threads"],
        )
    )
    if not run["identical"]:
        st.warning(t(P + "not_identical"))
    legend()
    show_rejected = st.toggle(t(P + "show_rejected"), value=True, key=P + "show_rejected", persist_state="session")
    st.markdown(coloured_text(steps, show_rejected), unsafe_allow_html=True)
    st.markdown(t(P + "chart.title"))
    accept_chart(steps, P + "chart")
    with st.expander(t(P + "table.title")):
        step_table(steps)


def controls() -> tuple[str, str, int, int, int]:
    prompts = inf.lookup_prompts()
    by_id = {p["id"]: p for p in prompts}
    options = [p["id"] for p in prompts] + [CUSTOM]
    choice = st.selectbox(
        t(P + "prompt"),
        options,
        key=follow_language(P + "prompt"),
        format_func=lambda i: t(P + "custom") if i == CUSTOM else by_id[i][TITLE[current_lang()]],
        persist_state="session",
    )
    if choice == CUSTOM:
        text = st.text_area(t(P + "custom_text"), "", key=P + "custom_text", height=160, persist_state="session")
    else:
        text = by_id[choice]["text"]
        with st.expander(t(P + "prompt_text")):
            st.text(text)
    c = st.columns(4)
    with c[0]:
        method = st.radio(
            t(P + "method"),
            list(inf.METHODS),
            key=follow_language(P + "method"),
            format_func=lambda m: t(P + "method." + m),
            persist_state="session",
        )
    k = c[1].slider(t(P + "k"), 1, 8, inf.DEFAULT_K, key=P + "k", persist_state="session")
    layers = c[2].select_slider(
        t(P + "layers"),
        list(inf.DRAFT_LAYERS),
        inf.DEFAULT_DRAFT_LAYERS,
        key=P + "layers",
        disabled=method != "draft",
        persist_state="session",
    )
    max_new = c[3].slider(t(P + "max_new"), 16, 192, 96, 16, key=P + "max_new", persist_state="session")
    if method == "draft":
        st.caption(t(P + "draft_note", n=layers))
    return text, method, int(k), int(max_new), int(layers)


TITLE = {"en": "title", "zh": "title_zh"}


def render() -> None:
    st.markdown(t(P + "intro"))
    take_finished()
    text, method, k, max_new, layers = controls()
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "run"), key=P + "run", type="primary", disabled=running, icon=":material/play_arrow:"):
        if not text.strip():
            st.warning(t(P + "empty"))
        else:
            start(text, method, k, max_new, layers)
            st.rerun()
    live()
    run = st.session_state.get(P + "result")
    if run is None:
        st.info(t(P + "no_run"))
        return
    results(run)
