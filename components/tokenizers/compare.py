"""The tokenizer page's Compare tab: the chosen tokenizers on one text, a table, counts and token chips."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backends.models.registry import ModelNotAvailable
from backends.tokenizers import tokenization as tz
from components.i18n import t
from components.token_chips import token_chips
from components.tokenizers.session import label, resolve

P = "tok."
PER_PAGE = 400


def tokenized_all(chosen: list[str], text: str):
    """One encode per (tokenizer, text), kept for reruns that only change the view."""
    cache = st.session_state.setdefault(P + "results", {})
    results, errors = {}, {}
    for key in chosen:
        sig = (key, hash(text), len(text))
        if sig not in cache:
            try:
                cache[sig] = tz.tokenize(resolve(key), text)
            except (ModelNotAvailable, ValueError, OSError) as exc:
                errors[key] = str(exc)
                continue
        results[key] = cache[sig]
    # Forget texts that are no longer on screen (a 5 MB paste should not stay in memory twice).
    for sig in [s for s in cache if (s[1], s[2]) != (hash(text), len(text))]:
        del cache[sig]
    return results, errors


def compare_tab(text: str, chosen: list[str]) -> None:
    """The chosen tokenizers on one text: a table, token counts, and each one's tokens as chips."""
    if not text.strip():
        st.info(t("tok.empty"))
        return
    if not chosen:
        st.info(t("tok.none_chosen"))
        return
    results, errors = tokenized_all(chosen, text)
    for key, message in errors.items():
        st.error(t("tok.failed", name=label(key), error=message))
    if not results:
        return
    columns = {
        "tokenizer": "tok.col.tokenizer",
        "tokens": "tok.col.tokens",
        "chars_per_token": "tok.col.chars",
        "bytes_per_token": "tok.col.bytes",
        "unknown": "tok.col.unknown",
        "round_trips": "tok.col.roundtrip",
    }
    table = pd.DataFrame([tz.summary(r) for r in results.values()])[list(columns)]
    table["tokenizer"] = [label(k) for k in results]  # trained tokenizers carry session labels
    st.caption(t("tok.table_help", chars=len(text), bytes=len(text.encode("utf-8", "surrogatepass"))))
    st.dataframe(
        table.rename(columns={k: t(v) for k, v in columns.items()}),
        hide_index=True,
        key=P + "table",
        column_config={t("tok.col.roundtrip"): st.column_config.CheckboxColumn()},
    )
    ordered = sorted(results.items(), key=lambda kv: kv[1].n_tokens)
    bars = go.Figure(
        go.Bar(
            x=[r.n_tokens for _, r in ordered],
            y=[label(k) for k, _ in ordered],
            orientation="h",
            marker_color="#6c4cf4",
            text=[t("tok.bar_text", tokens=r.n_tokens, cpt=f"{r.chars_per_token:.2f}") for _, r in ordered],
            hovertemplate="%{y}: " + t("tok.bar_hover", n="%{x:,}") + "<extra></extra>",
        )
    )
    bars.update_layout(
        height=60 + 34 * len(ordered), margin=dict(l=10, r=10, t=10, b=10), xaxis_title=t("tok.col.tokens")
    )
    st.plotly_chart(bars, key=P + "bars")

    v1, v2 = st.columns(2)
    whitespace = v1.toggle(t("tok.whitespace"), key=P + "whitespace", persist_state="session")
    show_ids = v2.toggle(t("tok.show_ids"), key=P + "show_ids", persist_state="session")
    cols = st.columns(2)
    for n, (key, result) in enumerate(results.items()):
        with cols[n % 2].container(border=True):
            token_card(key, result, whitespace, show_ids)


def token_card(key, result, whitespace, show_ids):
    st.markdown(f"**{label(key)}**")
    flagged = sum(result.unknown)
    st.caption(
        t("tok.card", tokens=result.n_tokens, cpt=f"{result.chars_per_token:.2f}", bpt=f"{result.bytes_per_token:.2f}")
        + (" · " + t("tok.flagged", n=flagged) if flagged else "")
    )
    pages = max(1, -(-result.n_tokens // PER_PAGE))
    page = 1
    if pages > 1:
        page = st.number_input(t("tok.page", pages=pages), 1, pages, 1, key=P + f"page.{key}", persist_state="session")
    start = (page - 1) * PER_PAGE
    rows = result.rows(start, start + PER_PAGE)
    token_chips(
        [r.string for r in rows],
        [r.id for r in rows],
        [r.special for r in rows],
        unknown=[r.unknown for r in rows],
        palette=True,
        show_whitespace=whitespace,
        start=start,
        details=[
            f"bytes {r.piece.hex(' ')}"
            + (" · special" if r.special else "")
            + (" · unknown/byte-fallback" if r.unknown else "")
            for r in rows
        ],
        max_tokens=PER_PAGE,
    )
    if show_ids:
        st.code(", ".join(str(r.id) for r in rows), language=None, wrap_lines=True)
