"""The extraction set, free vs constrained: the share of outputs that parse and validate, side by side."""

from __future__ import annotations

import streamlit as st

from backends.structured.extraction import compare_set, extraction_set, summary
from components.i18n import t

P = "dec.st.set."


def summary_rows(stats: dict) -> dict:
    modes = [m for m in ("free", "constrained") if m in stats]
    return {
        "": [t("dec.st." + ("free" if m == "free" else "guided")) for m in modes],
        t(P + "parses"): [f"{stats[m]['parses']:.0%}" for m in modes],
        t(P + "valid"): [f"{stats[m]['valid']:.0%}" for m in modes],
        t(P + "correct"): [f"{stats[m]['correct']:.0%}" for m in modes],
        t(P + "speed"): [f"{stats[m]['tokens_per_s']:.1f}" for m in modes],
    }


def item_rows(runs: list) -> dict:
    by_item: dict[str, dict] = {}
    for r in runs:
        by_item.setdefault(r.item["id"], {"item": r.item})[r.mode] = r
    mark = lambda run: "—" if run is None else ("✅" if run.verdict.valid else "❌ " + run.verdict.error[:80])  # noqa: E731
    return {
        t(P + "text"): [v["item"]["text"] for v in by_item.values()],
        t("dec.st.free"): [mark(v.get("free")) for v in by_item.values()],
        t("dec.st.guided"): [mark(v.get("constrained")) for v in by_item.values()],
        t(P + "fields"): [f"{v['constrained'].correct:.0%}" if "constrained" in v else "—" for v in by_item.values()],
    }


def extraction_section(loaded) -> None:
    items = extraction_set()["items"]
    st.subheader(t(P + "title"))
    st.markdown(t(P + "intro", n=len(items)))
    if st.button(t(P + "run", n=len(items)), key=P + "run"):
        bar, runs = st.progress(0.0, text=t(P + "running")), []
        for run in compare_set(loaded, items):
            runs.append(run)
            bar.progress(len(runs) / (2 * len(items)), text=t(P + "progress", done=len(runs), total=2 * len(items)))
        bar.empty()
        st.session_state[P + "runs"] = runs
    runs = st.session_state.get(P + "runs")
    if not runs:
        return
    stats = summary(runs)
    st.dataframe(summary_rows(stats), hide_index=True, key=P + "summary")
    st.markdown(t(P + "reading"))
    st.dataframe(item_rows(runs), hide_index=True, key=P + "items")
