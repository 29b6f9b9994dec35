"""The server tab: a load run (N streaming clients for S seconds) against the playground's own API server
or any OpenAI-compatible URL, its GET /metrics (vLLM's names) scraped every second and charted live:
requests running and waiting, tokens per second, time-to-first-token and inter-token percentiles from
the histograms, and the raw metric families."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from backends import inference as inf
from backends.core.jobs import shared_runner
from components.i18n import t
from components.job_status import newly_finished
from components.live_job import live_panel

P = "inference.server."
QUANTILE_DASH = {"p50": "solid", "p90": "dash", "p99": "dot"}


def controls() -> inf.LoadConfig:
    c = st.columns(3)
    clients = c[0].slider(t(P + "clients"), 1, 8, 4, key=P + "clients", persist_state="session")
    seconds = c[1].slider(t(P + "seconds"), 5, 60, 15, 5, key=P + "seconds", persist_state="session")
    tokens = c[2].slider(t(P + "max_tokens"), 4, 64, 24, 4, key=P + "max_tokens", persist_state="session")
    url = st.text_input(
        t(P + "url"), "", key=P + "url", placeholder=t(P + "url.placeholder"), persist_state="session"
    ).strip()
    return inf.LoadConfig(clients=clients, seconds=float(seconds), max_tokens=tokens, url=url or None)


def take_finished(job=None) -> None:
    job = job or newly_finished(P + "job")
    if job is not None and job.result is not None:
        st.session_state[P + "run"] = job.result


def _figure(title: str, y_title: str, height: int = 260) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        title=title,
        height=height,
        margin={"t": 40, "b": 40},
        xaxis_title=t(P + "axis.t"),
        yaxis_title=y_title,
        legend={"orientation": "h", "y": -0.35},
    )
    return fig


def charts(points: list, key: str) -> None:
    x = [p.t for p in points]
    c1, c2 = st.columns(2)
    fig = _figure(t(P + "chart.queue"), t(P + "axis.requests"))
    fig.add_scatter(x=x, y=[p.running for p in points], name=t(P + "running"), line={"shape": "hv"})
    fig.add_scatter(x=x, y=[p.waiting for p in points], name=t(P + "waiting"), line={"shape": "hv", "dash": "dot"})
    c1.plotly_chart(fig, key=key + ".queue")
    fig = _figure(t(P + "chart.tokens"), t(P + "axis.tokens"))
    fig.add_scatter(x=x, y=[p.tokens_per_s for p in points], name=t(P + "tokens"), line={"color": "#2b8a3e"})
    c2.plotly_chart(fig, key=key + ".tokens")
    c1, c2 = st.columns(2)
    for col, what in ((c1, "ttft"), (c2, "itl")):
        fig = _figure(t(P + f"chart.{what}"), t(P + "axis.ms"))
        for q, dash in QUANTILE_DASH.items():
            seconds = [p.quantiles.get(f"{what}_{q}") for p in points]
            ys = [None if s is None else 1000 * s for s in seconds]
            fig.add_scatter(x=x, y=ys, name=q, line={"dash": dash})
        col.plotly_chart(fig, key=key + f".{what}")


def totals(points: list, result: inf.LoadResult | None) -> None:
    last = points[-1]
    c = st.columns(4)
    c[0].metric(t(P + "total.requests"), f"{last.requests:.0f}")
    c[1].metric(t(P + "total.prompt"), f"{last.prompt_tokens:.0f}")
    c[2].metric(t(P + "total.generated"), f"{last.generation_tokens:.0f}")
    c[3].metric(t(P + "total.elapsed"), f"{last.t:.1f} s")
    if result is None:
        return
    answered = [r for r in result.records if r.status == 200 and r.completion_tokens is not None]
    failed = [r for r in result.records if r not in answered]
    st.caption(
        t(
            P + "clients_saw",
            url=result.url,
            model=result.model,
            n=len(answered),
            tokens=sum(r.completion_tokens for r in answered),
            failed=len(failed),
        )
    )
    if failed:
        st.warning(t(P + "failures", error=next((r.error for r in failed if r.error), "?")))


def families(table: list[dict], raw: str | None, key: str) -> None:
    with st.expander(t(P + "families"), expanded=False):
        st.dataframe(
            [
                {
                    t(P + "col.name"): row["name"],
                    t(P + "col.type"): row["type"],
                    t(P + "col.series"): len(row["samples"]),
                    t(P + "col.samples"): "  ".join(s for s in row["samples"] if "_bucket" not in s) or "–",
                    t(P + "col.help"): row["help"],
                }
                for row in table
            ],
            hide_index=True,
        )
        if raw:
            st.code(raw, language="text")


def live() -> None:
    def progress(job, events):
        if not events or events[-1].message == "warm-up":
            return 0.0, t(P + "warming")
        return job.progress or 0.0, t(P + "running_load", s=events[-1].message)

    def draw(job, events):
        points = [e.data["point"] for e in events if "point" in e.data]
        if not points:
            st.caption(t(P + "starting"))
            return
        result = job.result if job.done else st.session_state.get(P + "run")
        totals(points, result if job.done else None)
        charts(points, P + "live")
        table = next((e.data["table"] for e in reversed(events) if "table" in e.data), [])
        families(table, result.raw if job.done and result is not None else None, P + "live")

    live_panel(P, take_finished, progress, draw)


def render() -> None:
    st.markdown(t(P + "intro"))
    config = controls()
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "start"), key=P + "start", disabled=running, icon=":material/play_arrow:", type="primary"):
        st.session_state[P + "job"] = shared_runner().submit("inference.server", inf.load_job, config).id
        st.session_state.pop(P + "run", None)
        st.rerun()
    st.caption(t(P + "how"))
    if job is not None:
        live()
        return
    result = st.session_state.get(P + "run")
    if result is None or not result.points:
        st.info(t(P + "empty"))
        return
    totals(result.points, result)
    charts(result.points, P + "done")
    families(result.table, result.raw, P + "done")
