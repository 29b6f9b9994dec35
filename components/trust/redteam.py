"""The Red team tab: NVIDIA's garak attacking our own API server, first the plain route, then the guarded one
(the guardrails in front of the model), as a background job; each probe's attack success rate on both, a bar
chart, example attacks with the model's reply and the detector's score, and the same run as a command line."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import streamlit as st

from backends import trust
from backends.core.jobs import shared_runner
from components import engine
from components.backend_text import said
from components.i18n import t
from components.live_job import live_panel
from components.option_labels import follow_language

P = "trust.redteam."
COLOURS = {"plain": "#e03131", "guarded": "#2b8a3e"}
KIND_OF = {probe: kind for kind, probes in trust.OFFLINE_PROBES.items() for probe in probes}


def own_server():
    """A server of this run's own, on a free port, sharing the app's model cache: its token limit bounds each
    reply (garak sends none, see backends/trust/redteam_garak.py), which the Serving page's server (512 by
    default) would not."""
    from backends.serving import api_server

    return api_server(max_tokens=trust.REDTEAM_MAX_TOKENS)


def redteam_job(ctx, probes: list[str], cap: int) -> dict:
    """An API server of this run's own, then garak against its plain route and (when it has one) its guarded one."""
    ctx.report(0.0, "server")
    own = own_server()
    url = own.start()
    try:
        targets = list(trust.REDTEAM_TARGETS)
        try:
            trust.check_server(trust.target_url(url, "guarded"))
        except trust.RedTeamError as exc:
            if exc.code != "no_route":
                raise
            targets.remove("guarded")
        report = trust.run_redteam(ctx, url, probes, cap, targets)
        return {"report": report, "url": url, "guarded_missing": "guarded" not in targets}
    except trust.RedTeamError as exc:
        return {"error": exc}
    finally:
        own.stop()


def remote_job(ctx, probes: list[str], cap: int, url: str, api_key: str | None, model: str) -> dict:
    """garak against the sidebar's remote engine (any OpenAI-compatible server): its /v1 route only, as a
    remote server has no guarded copy of ours; its own token limit bounds the replies."""
    root = url.rstrip("/")
    if not root.endswith("/v1"):
        return {"error": trust.RedTeamError(f"{url} does not end in /v1.", "remote_url", url=url)}
    try:
        report = trust.run_redteam(ctx, root[: -len("/v1")], probes, cap, ["plain"], model=model, api_key=api_key)
        return {"report": report, "url": url, "guarded_missing": True, "remote": True}
    except trust.RedTeamError as exc:
        return {"error": exc}


def take_finished(job=None) -> None:
    if job is not None and job.result is not None:
        st.session_state[P + "result"], job.result = job.result, None


def pct(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.0%}"


def target_name(target: str) -> str:
    return t(P + "target." + target)


def probe_label(probe: str) -> str:
    kind = KIND_OF.get(probe)
    return f"{probe} · {t(P + 'kind.' + kind)}" if kind else probe


def live() -> None:
    def progress(job, events):
        data = events[-1].data if events else {}
        if not data.get("target"):
            return job.progress or 0.0, t(P + "running.server")
        if not data.get("probe"):
            return job.progress or 0.0, t(P + "running.start", target=target_name(data["target"]))
        text = t(
            P + "running.probe",
            target=target_name(data["target"]),
            probe=data["probe"],
            done=data["done"],
            total=data["total"],
        )
        return job.progress or 0.0, text

    live_panel(P, take_finished, progress, lambda job, events: None)


def chart(report) -> None:
    probes = [*report.probes, t(P + "all")]
    fig = go.Figure()
    for target, run in report.runs.items():
        values = [run.row(p).asr if run.row(p) else math.nan for p in report.probes] + [run.asr]
        fig.add_bar(
            x=probes,
            y=values,
            name=target_name(target),
            marker_color=COLOURS.get(target),
            text=[pct(v) for v in values],
            textposition="outside",
        )
    fig.update_layout(
        barmode="group",
        height=360,
        margin={"t": 30, "b": 40},
        yaxis={"title": t(P + "chart.asr"), "range": [0, 1.15], "tickformat": ".0%"},
        legend={"orientation": "h", "y": -0.35},
    )
    st.plotly_chart(fig, key=P + "chart")


def table(report) -> None:
    rows = []
    for entry in report.table():
        row = {t(P + "col.probe"): entry["probe"], t(P + "col.kind"): probe_label(entry["probe"]).split(" · ")[-1]}
        for target in report.runs:
            name = target_name(target)
            row[t(P + "col.asr", target=name)] = pct(entry[target + "_asr"])
            row[t(P + "col.hits", target=name)] = f"{entry[target + '_hits']}/{entry[target + '_attempts']}"
        rows.append(row)
    st.dataframe(rows, hide_index=True)


def examples(report) -> None:
    with st.expander(t(P + "examples")):
        for target, run in report.runs.items():
            st.markdown(f"**{target_name(target)}**")
            for row in run.rows:
                for ex in row.examples:
                    verdict = t(P + ("hit" if ex.hit else "miss"))
                    score = "–" if ex.score is None else f"{ex.score:.2f}"
                    st.markdown(f"`{row.probe}` · {ex.detector} = {score} · {verdict}")
                    if ex.system:
                        st.text(t(P + "system") + ": " + ex.system)
                    st.text(t(P + "prompt") + ": " + ex.prompt[:600])
                    st.text(t(P + "output") + ": " + (ex.output if ex.output is not None else t(P + "no_output")))


def results(result: dict) -> None:
    if "error" in result:
        st.error(said(result["error"], P + "error."))
        return
    report = result["report"]
    if not report.runs:
        st.info(t(P + "stopped"))
        return
    cols = st.columns(3)
    cols[0].metric(t(P + "metric.plain"), pct(report.asr_plain))
    cols[1].metric(t(P + "metric.guarded"), pct(report.asr_guarded))
    cols[2].metric(t(P + "metric.time"), f"{report.seconds:.0f} s")
    if result.get("remote"):
        st.info(t(P + "remote_plain_only"))
    elif result["guarded_missing"]:
        st.warning(t(P + "guarded_missing"))
    values = {"cap": report.prompt_cap, "n": len(report.probes), "tokens": trust.REDTEAM_MAX_TOKENS}
    st.caption(t(P + "measured", url=result["url"], **values))
    table(report)
    chart(report)
    examples(report)


def controls() -> tuple[list[str], int]:
    options = list(trust.REDTEAM_ALL_OFFLINE)
    probes = st.multiselect(
        t(P + "probes"),
        options,
        default=list(trust.REDTEAM_DEFAULT_PROBES),
        format_func=probe_label,
        key=follow_language(P + "probes"),
        persist_state="session",
    )
    cap = st.slider(
        t(P + "cap"), 1, 16, trust.REDTEAM_DEFAULT_CAP, key=P + "cap", help=t(P + "cap_help"), persist_state="session"
    )
    return probes, int(cap)


def render() -> None:
    st.markdown(t(P + "intro"))
    st.caption(t(P + "limits"))
    probes, cap = controls()
    remote = None
    if engine.remote_on():
        where = st.radio(
            t(P + "where"),
            ("own", "remote"),
            format_func=lambda w: t(P + "where." + w),
            help=t(P + "where_help", url=engine.server_label()),
            key=follow_language(P + "where"),
            horizontal=True,
            persist_state="session",
        )
        if where == "remote":
            model = engine.remote_model_input(P + "remote_model", trust.REDTEAM_MODEL)
            remote = (*engine.settings(), model)
    job = shared_runner().get(st.session_state.get(P + "job"))
    running = job is not None and not job.done
    if st.button(t(P + "run"), key=P + "run", type="primary", disabled=running, icon=":material/play_arrow:"):
        if not probes:
            st.warning(t(P + "error.no_probes"))
        else:
            if remote is None:
                job = shared_runner().submit("trust.redteam", redteam_job, probes, cap)
            else:
                job = shared_runner().submit("trust.redteam", remote_job, probes, cap, *remote)
            st.session_state[P + "job"] = job.id
            st.rerun()
    live()
    result = st.session_state.get(P + "result")
    if result is None:
        st.info(t(P + "no_run"))
    else:
        results(result)
    with st.expander(t(P + "cli")):
        st.caption(t(P + "cli_note"))
        st.code(trust.redteam_command_line(probes or list(trust.REDTEAM_DEFAULT_PROBES), cap), language="bash")
