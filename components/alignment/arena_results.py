"""What the arena's votes add up to: this voter's own votes, the class totals, Bradley-Terry ratings
with their interval, the win-rate matrix, and (for the set's creator) every vote of the set."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backends.alignment import RatingError, win_rates
from backends.alignment import arena as A
from backends.alignment import ratings as R
from components.i18n import t
from components.show_code import show_code

P = "alignment.arena."


def source_label(source: A.Source) -> str:
    """A source in the UI language ("Base model · greedy"); votes store `source.id`, in English."""
    if source.kind == "base":
        who = t(P + "src.base")
    elif source.kind == "adapter":
        who = t(P + "src.adapter", name=source.name)
    else:
        who = t(P + "src.remote_named", model=source.name)
    how = t(P + "src.greedy") if source.greedy else f"T={float(source.temperature):g}"
    return f"{who} · {how}"


def id_label(source_id: str) -> str:
    """A stored source id ("base · greedy", "sft · T=0.8", "remote m · greedy") worded like
    `source_label` in the UI language; an id of another shape is shown as stored."""
    who, sep, how = source_id.rpartition(" · ")
    if not sep or not who:
        return source_id
    if who == "base":
        who = t(P + "src.base")
    elif who.startswith("remote "):
        who = t(P + "src.remote_named", model=who.removeprefix("remote "))
    else:
        who = t(P + "src.adapter", name=who)
    return f"{who} · " + (t(P + "src.greedy") if how == "greedy" else how)


def _verdict(v) -> str:
    return t(P + "verdict." + v.verdict)


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def my_votes_view(votes, prompts) -> None:
    st.markdown(t(P + "mine.header", n=len(votes)))
    if not votes:
        st.caption(t(P + "mine.none"))
        return
    rows = [
        {
            t(P + "col.prompt"): _short(prompts[v.prompt_id]),
            t(P + "col.a"): id_label(v.source_a),
            t(P + "col.b"): id_label(v.source_b),
            t(P + "col.verdict"): _verdict(v),
        }
        for v in votes
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=P + "mine.table")


def totals_view(totals) -> None:
    st.markdown(t(P + "totals.header"))
    cols = st.columns(6)
    cols[0].metric(t(P + "totals.votes"), totals.votes)
    cols[1].metric(t(P + "totals.voters"), totals.voters)
    for column, verdict in zip(cols[2:], ("A", "B", "tie", "both_bad")):
        column.metric(t(P + "verdict." + verdict), totals.by_verdict.get(verdict, 0))
    if totals.by_source:
        names = ("wins", "losses", "ties", "both_bad", "shown")
        rows = [
            {t(P + "col.source"): id_label(s), **{t(P + "totals." + k): c[k] for k in names}}
            for s, c in totals.by_source.items()
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key=P + "totals.table")


def ratings_figure(ratings) -> go.Figure:
    xs = [id_label(s) for s in ratings.sources]
    elo = [ratings.elo[s] for s in ratings.sources]
    up = [ratings.high[s] - ratings.elo[s] if math.isfinite(ratings.high[s]) else 0.0 for s in ratings.sources]
    down = [ratings.elo[s] - ratings.low[s] if math.isfinite(ratings.low[s]) else 0.0 for s in ratings.sources]
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=elo,
            mode="markers",
            marker={"size": 12},
            error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down},
            name=t(P + "rating.score"),
            showlegend=False,
        )
    )
    fig.update_layout(
        title=t(P + "rating.chart", level=f"{100 * ratings.level:g}"),
        xaxis_title=t(P + "col.source"),
        yaxis_title=t(P + "rating.score"),
        height=340,
        margin={"t": 50, "b": 40},
    )
    return fig


def win_rate_figure(rates) -> go.Figure:
    xs = [id_label(s) for s in rates.sources]
    z = [[math.nan if x is None else x for x in row] for row in rates.observed]
    text = [
        ["" if x is None else f"{x:.2f} (n={n})" for x, n in zip(row, counts)]
        for row, counts in zip(rates.observed, rates.counts)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=xs,
            y=xs,
            zmin=0,
            zmax=1,
            colorscale="RdBu",
            text=text,
            texttemplate="%{text}",
            colorbar={"title": {"text": t(P + "winrate.scale")}},
        )
    )
    fig.update_layout(
        title=t(P + "winrate.title"),
        xaxis_title=t(P + "winrate.against"),
        yaxis_title=t(P + "winrate.row"),
        yaxis_autorange="reversed",
        height=340,
        margin={"t": 50, "b": 40},
    )
    return fig


def ratings_view(votes) -> None:
    st.markdown(t(P + "rating.header"))
    st.session_state.setdefault(P + "prior", 1.0)
    prior = st.number_input(
        t(P + "rating.prior"),
        0.0,
        10.0,
        step=0.5,
        key=P + "prior",
        help=t(P + "rating.prior_help"),
        persist_state="session",
    )
    problem = A.rating_problem(votes, float(prior))
    if problem is not None:
        code, values = problem
        st.info(t(P + "rating.problem." + code, **values))
        return
    try:
        ratings = A.ratings(votes, float(prior))
    except RatingError as exc:  # a case the checks above do not name: the backend's own words
        st.warning(str(exc))
        return
    total = sum(ratings.strength.values())
    rows = [
        {
            t(P + "rating.col.rank"): rank,
            t(P + "col.source"): id_label(s),
            t(P + "rating.score"): round(ratings.elo[s], 1),
            t(P + "rating.col.low"): round(ratings.low[s], 1),
            t(P + "rating.col.high"): round(ratings.high[s], 1),
            t(P + "rating.col.strength"): round(ratings.strength[s], 4),
            t(P + "rating.col.share"): round(ratings.strength[s] / total, 4),
        }
        for rank, s in enumerate(ratings.sources, 1)
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=P + "rating.table")
    st.caption(
        t(
            P + "rating.note",
            n=ratings.votes,
            resamples=ratings.resamples,
            skipped=ratings.skipped,
            level=f"{100 * ratings.level:g}",
        )
    )
    st.plotly_chart(ratings_figure(ratings), key=P + "rating.chart")
    st.plotly_chart(win_rate_figure(win_rates(votes, ratings)), key=P + "winrate.chart")
    st.caption(t(P + "winrate.note"))
    show_code(R.outcomes, R.fit_strengths)


def teacher_view(votes, prompts) -> None:
    if not st.toggle(t(P + "teacher.toggle"), key=P + "teacher", persist_state="session"):
        st.caption(t(P + "teacher.note"))
        return
    if not votes:
        st.caption(t(P + "teacher.none"))
        return
    rows = [
        {
            t(P + "col.voter"): v.voter[:6],
            t(P + "col.prompt"): _short(prompts[v.prompt_id]),
            t(P + "col.a"): id_label(v.source_a),
            t(P + "col.b"): id_label(v.source_b),
            t(P + "col.verdict"): _verdict(v),
            t(P + "col.answer_a"): _short(v.answer_a, 80),
            t(P + "col.answer_b"): _short(v.answer_b, 80),
        }
        for v in votes
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=P + "teacher.table")


def results_view(current, voter: str, teacher: bool) -> None:
    """`current`: the set votes go to (None: no vote yet); `teacher`: this session created the set."""
    st.subheader(t(P + "results.header"))
    if current is None:
        st.info(t(P + "results.none"))
        return
    store = A.shared_store()
    votes = store.votes(current.code)
    my_votes_view(store.my_votes(current.code, voter), current.prompts)
    totals_view(store.totals(current.code))
    ratings_view(votes)
    if teacher:
        st.markdown(t(P + "teacher.header"))
        teacher_view(votes, current.prompts)
