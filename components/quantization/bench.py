"""The benchmark tab: settings, the background run with Stop, the results (tables in table.py), charts, texts,
export and kept variants."""

from __future__ import annotations

import gc
from dataclasses import asdict

import streamlit as st

from backends.core.jobs import FAILED, shared_runner
from backends.quantization import (
    Baseline,
    BenchConfig,
    VariantResult,
    describe,
    run_job,
    snippet,
    spec,
)
from backends.quantization import report as R
from backends.quantization.catalog import SPECS, opt_in
from backends.quantization.variants import state_bytes
from components.builtin_text import file_uploader
from components.i18n import t
from components.job_status import newly_finished
from components.option_labels import follow_language
from components.quantization.charts import size_quality_figure, speed_figure
from components.quantization.table import label, lossy_note, raw_reasons, table

P = "quantization."
PPL_CHOICES = (1_024, 2_048, 5_120, 10_240, 20_480)


def baseline_note(baseline: Baseline) -> None:
    """What the baseline is and why it matters, under the model's line."""
    st.caption(
        t(
            f"quantization.baseline.note.{baseline.form}",
            weights=baseline.weights,
            mix=baseline.mix,
            location=baseline.location,
        )
    )


def cfg() -> dict:
    """Settings kept in one plain dict, so they survive lazy tabs (as on the LoRA page)."""
    if P + "cfg" not in st.session_state:
        st.session_state[P + "cfg"] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(BenchConfig()).items()
        }
    return st.session_state[P + "cfg"]


def settings(device: str, reasons: dict, baseline: Baseline) -> None:
    c = cfg()
    usable = [s.key for s in SPECS if reasons[s.key] is None]
    c["variants"] = [k for k in c["variants"] if k in usable]
    c["variants"] = st.multiselect(
        t("quantization.variants"),
        usable,
        default=c["variants"],
        format_func=lambda key: label(key, baseline),
        key=follow_language(P + "w.variants"),
        persist_state="session",
    )
    slow = [key for key in opt_in(device) if key in usable and key not in c["variants"]]
    if slow:  # off by default on the CPU (issue 33): one pick in the list above runs them
        st.caption(t("quantization.opt_in_cpu", variants=", ".join(f"“{label(key, baseline)}”" for key in slow)))
    a, b, k = st.columns(3)
    c["ppl_tokens"] = a.select_slider(
        t("quantization.ppl_tokens"),
        PPL_CHOICES + tuple([c["ppl_tokens"]] if c["ppl_tokens"] not in PPL_CHOICES else []),
        value=c["ppl_tokens"],
        key=P + "w.ppl_tokens",
        help=t("quantization.ppl_tokens_help"),
        persist_state="session",
    )
    c["runs"] = int(
        b.number_input(t("quantization.runs"), 1, 50, c["runs"], key=P + "w.runs", persist_state="session")
    )
    keepable = [key for key in c["variants"] if spec(key).family not in ("onnx",)]
    c["keep"] = k.multiselect(
        t("quantization.keep"),
        keepable,
        default=[x for x in c["keep"] if x in keepable],
        format_func=lambda key: label(key, baseline),
        key=follow_language(P + "w.keep"),
        help=t("quantization.keep_help"),
        persist_state="session",
    )
    with st.expander(t("quantization.advanced")):
        cols = st.columns(5)
        for col, name in zip(cols, ("window", "stride", "kld_tokens", "prefill_tokens", "new_tokens")):
            c[name] = int(
                col.number_input(
                    t(f"quantization.cfg.{name}"), 0, 200_000, c[name], key=P + "w." + name, persist_state="session"
                )
            )
        c["prompt"] = st.text_input(
            t("quantization.cfg.prompt"), c["prompt"], key=P + "w.prompt", persist_state="session"
        )


def config() -> BenchConfig:
    c = cfg()
    return BenchConfig(**{**c, "variants": tuple(c["variants"]), "keep": tuple(c["keep"])})


def start(loaded, name: str) -> None:
    """A callback: checks the settings first, so a bad value never starts a half-run."""
    st.session_state[P + "error"] = None
    try:
        conf = config().validate()
    except ValueError as exc:
        st.session_state[P + "error"] = str(exc)
        return
    job = shared_runner().submit(
        "quantization", run_job, loaded.model, loaded.tokenizer, conf, name, loaded.key.device, describe(loaded)
    )
    st.session_state[P + "job"] = job.id


def running() -> bool:
    job = shared_runner().get(st.session_state.get(P + "job"))
    return job is not None and not job.done


def rows_of(job) -> list[VariantResult]:
    return [VariantResult.from_dict(e.data["row"]) for e in job.events_since(0) if e.data.get("kind") == "row"]


def absorb_finished() -> None:
    """Move a finished run into the session: its report, and the variants the user asked to keep."""
    job = newly_finished(P + "job")
    if job is None:
        return
    result, job.result = job.result, None  # the shared runner keeps finished jobs; models live in the session
    if result is None:
        st.session_state[P + "failed"] = job.error or job.status
        return
    st.session_state[P + "failed"] = None
    kept = st.session_state.setdefault(P + "kept", {})
    for key, model in result.kept.items():
        kept[key] = {"model": model, "label": label(key, result.baseline), "bytes": state_bytes(model), "run": job.id}
    result.kept = {}
    st.session_state[P + "report"] = result


def live(baseline: Baseline) -> None:
    job = shared_runner().get(st.session_state.get(P + "job"))
    if job is None or job.done:
        return

    @st.fragment(run_every=1.0)
    def panel():
        current = shared_runner().get(st.session_state.get(P + "job"))
        if current.done:
            st.rerun(scope="app")
        events = current.events_since(0)
        last = events[-1].message if events else t("quantization.starting")
        st.progress(
            min(current.progress or 0.0, 1.0), text=t("quantization.progress", step=last, s=f"{current.elapsed:.0f}")
        )
        if st.button(t("quantization.stop"), key=P + "stop", icon=":material/stop:"):
            current.stop()
            st.caption(t("quantization.stopping"))
        done = rows_of(current)
        if done:
            table(done, "live_table", baseline)

    panel()


def results(hub_id: str) -> None:
    if st.session_state.get(P + "failed"):
        st.error(t("quantization.failed", error=st.session_state[P + "failed"]))
    report = st.session_state.get(P + "report")
    if report is None:
        if not running():
            st.info(t("quantization.none_yet"))
        return
    ok = [r for r in report.rows if r.status == "ok"]

    def name(r: VariantResult) -> str:
        return label(r.key, report.baseline)

    (st.warning if report.stopped else st.success)(
        t(
            "quantization.stopped" if report.stopped else "quantization.done",
            n=len(ok),
            total=len(report.rows),
            s=f"{report.seconds:.0f}",
            model=report.model,
            bw=f"{report.bandwidth / 1e9:.1f}",
            threads=report.threads,
        )
    )
    table(report.rows, "results_table", report.baseline)
    lossy_note(report.rows, report.model, report.baseline)
    raw_reasons([(name(r), r.error) for r in report.rows if r.status in ("unavailable", "failed") and r.error])
    if report.fitted:
        c = report.config
        st.info(
            t(
                "quantization.fitted",
                n=report.context,
                window=c.window,
                stride=c.stride,
                prefill=c.prefill_tokens,
                new=c.new_tokens,
            )
        )
    st.caption(
        t(
            "quantization.table_note",
            tokens=report.config.ppl_tokens,
            kld=report.config.kld_tokens,
            window=report.config.window,
            stride=report.config.stride,
            baseline=label("fp32", report.baseline),
        )
    )
    overlays = [(o["label"], o["rows"]) for o in st.session_state.get(P + "overlays", [])]
    c1, c2 = st.columns(2)
    c1.plotly_chart(size_quality_figure(ok, overlays, name), key=P + "chart_size")
    c2.plotly_chart(speed_figure(ok, overlays, name), key=P + "chart_speed")
    st.caption(t("quantization.speed_note"))
    st.markdown(t("quantization.texts", prompt=report.config.prompt))
    cols = st.columns(min(4, max(1, len(ok))))
    for i, r in enumerate(ok):
        with cols[i % len(cols)]:
            st.markdown(f"**{name(r)}**")
            st.text(r.continuation)
    st.download_button(
        t("quantization.export"),
        R.to_json(report),
        file_name="quantization-benchmark.json",
        mime="application/json",
        key=P + "export",
    )
    with st.expander(t("quantization.code")):
        for r in report.rows:
            st.caption(name(r))
            st.code(snippet(r.key, hub_id), language="python")


def overlay_upload() -> None:
    file_uploader(t("quantization.overlay"), type=["json"], key=P + "overlay_file", on_change=load_overlay)
    if st.session_state.get(P + "overlay_error"):
        st.error(st.session_state[P + "overlay_error"])
    for o in st.session_state.get(P + "overlays", []):
        st.caption(t("quantization.overlay_loaded", label=o["label"], n=len(o["rows"])))


def load_overlay() -> None:
    upload = st.session_state.get(P + "overlay_file")
    st.session_state[P + "overlay_error"] = None
    if upload is None:
        return
    try:
        doc = R.from_json(upload.getvalue(), upload.name)
    except R.ReportError as exc:
        st.session_state[P + "overlay_error"] = str(exc)
        return
    overlays = st.session_state.setdefault(P + "overlays", [])
    overlays.append({"label": f"{upload.name} ({doc['model']})", "rows": [r for r in doc["rows"] if r.status == "ok"]})


def kept_panel() -> None:
    kept = st.session_state.get(P + "kept", {})
    if not kept:
        return
    st.markdown(t("quantization.kept_title"))
    for key, item in list(kept.items()):
        c1, c2 = st.columns([4, 1])
        c1.caption(t("quantization.kept_item", label=item["label"], mb=f"{item['bytes'] / 2**20:,.0f}"))
        if c2.button(t("quantization.free"), key=P + "free." + key, type="tertiary"):
            del kept[key]
            gc.collect()
            st.rerun()


def status_line() -> None:
    if st.session_state.get(P + "error"):
        st.error(st.session_state[P + "error"])
    job = shared_runner().get(st.session_state.get(P + "job"))
    if job is not None and job.done and job.status == FAILED and not st.session_state.get(P + "failed"):
        st.error(t("quantization.failed", error=job.error))
