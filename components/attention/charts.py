"""Plotly figures for attention maps. Plain plotly/numpy (no Streamlit), so the benchmark times the same code."""

from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go

LINES_MAX_ROWS = 128  # beyond this the lines view groups neighbouring tokens
SCALE = "Purples"
# Signed values (Q, K, raw scores, positional encodings): one diverging scale for every chart, centred on
# zero (white), red positive and blue negative, so side-by-side charts read the same way.
DIVERGING = "RdBu_r"


def axis_labels(tokens: list[str]) -> list[str]:
    # Plotly categories must be unique, and the index helps when tokens repeat.
    return [f"{i}:{tok}" for i, tok in enumerate(tokens)]


def _tick_step(n: int, max_ticks: int = 48) -> int:
    return max(1, int(np.ceil(n / max_ticks)))


def heatmap_figure(
    matrix: np.ndarray,
    tokens: list[str],
    title: str = "",
    masked: np.ndarray | None = None,
    x_title: str = "key",
    y_title: str = "query",
    colorscale: str = SCALE,
    zmid: float | None = None,
    value_name: str = "weight",
) -> go.Figure:
    """Query x key heatmap with token labels; `masked` cells (True = hidden) are drawn as gaps.

    `zmid=0` centres a diverging scale on zero (raw scores: 0 is white, positive and negative
    get their own colour, the same depth for the same size)."""
    z = np.asarray(matrix, dtype=np.float32)
    if masked is not None:
        z = np.where(masked, np.nan, z)
    labels = axis_labels(tokens)
    n = len(labels)
    step = _tick_step(n)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            colorscale=colorscale,
            zmid=zmid,
            hoverongaps=False,
            hovertemplate=f"{y_title}: %{{y}}<br>{x_title}: %{{x}}<br>{value_name}: %{{z:.4f}}<extra></extra>",
        )
    )
    size = int(min(900, max(420, 14 * n + 160)))
    fig.update_layout(
        title=title, height=size, margin=dict(l=10, r=10, t=40 if title else 10, b=10), plot_bgcolor="#e6e6e6"
    )
    fig.update_xaxes(title=x_title, tickangle=-60, tickvals=labels[::step], side="bottom")
    fig.update_yaxes(title=y_title, autorange="reversed", tickvals=labels[::step])
    return fig


def group_tokens(matrix: np.ndarray, tokens: list[str], max_rows: int = LINES_MAX_ROWS):
    """Merge runs of g neighbouring tokens so at most max_rows remain: keys summed, queries averaged.

    Rows still sum to 1, so the lines keep meaning "share of attention".
    """
    n = len(tokens)
    g = int(np.ceil(n / max_rows))
    if g <= 1:
        return matrix, list(tokens), 1
    pad = (-n) % g
    padded = np.pad(matrix, ((0, pad), (0, pad)))
    m = padded.shape[0] // g
    summed = padded.reshape(m, g, m, g).sum(axis=3)  # sum over keys in a group
    counts = np.minimum(g, n - np.arange(m) * g)
    grouped = summed.sum(axis=1) / counts[:, None]  # average over queries in a group
    labels = [f"{i * g}–{min(n, (i + 1) * g) - 1} {''.join(tokens[i * g : (i + 1) * g])[:14]}" for i in range(m)]
    return grouped, labels, g


def lines_figure(
    matrix: np.ndarray, tokens: list[str], focus: int | None = None, min_weight: float = 0.02, bins: int = 8
) -> tuple[go.Figure, int]:
    """bertviz-style lines: query tokens left, key tokens right, line opacity = attention weight.

    Returns the figure and the group size (1 = every token drawn).
    """
    mat, labels, group = group_tokens(np.asarray(matrix, dtype=np.float32), tokens)
    n = len(labels)
    rows = [focus // group] if focus is not None else range(n)
    edges = [[[], []] for _ in range(bins)]
    for i in rows:
        js = np.nonzero(mat[i] >= min_weight)[0]
        for j in js:
            b = min(bins - 1, int(mat[i, j] * bins))
            edges[b][0] += [0, 1, None]
            edges[b][1] += [-i, -j, None]
    fig = go.Figure()
    for b, (xs, ys) in enumerate(edges):
        if xs:
            fig.add_trace(
                go.Scattergl(
                    x=xs,
                    y=ys,
                    mode="lines",
                    hoverinfo="skip",
                    showlegend=False,
                    line=dict(color=f"rgba(90,60,220,{(b + 1) / bins:.2f})", width=1 + 3 * b / bins),
                )
            )
    ys = [-i for i in range(n)]
    for x, anchor, weights in ((0, "left", mat), (1, "right", mat.T)):
        verb = "looks at" if x == 0 else "is looked at by"
        fig.add_trace(
            go.Scatter(
                x=[x] * n,
                y=ys,
                mode="text",
                text=labels,
                showlegend=False,
                textposition=f"middle {anchor}",
                textfont=dict(family="monospace", size=12),
                hovertext=[_top_links(labels, i, weights[i], verb) for i in range(n)],
                hoverinfo="text",
            )
        )
    fig.update_layout(height=int(max(300, 18 * n + 60)), margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor="white")
    fig.update_xaxes(visible=False, range=[-0.9, 1.9])
    fig.update_yaxes(visible=False, range=[-n + 0.3, 0.7])
    return fig, group


def _top_links(labels: list[str], i: int, weights: np.ndarray, verb: str, k: int = 4) -> str:
    """Hover text: the strongest links of one token, with their exact weights."""
    top = np.argsort(weights)[::-1][:k]
    return f"{labels[i]} {verb}<br>" + "<br>".join(f"{labels[j]}: {weights[j]:.4f}" for j in top if weights[j] > 0)


def thumbnails(attentions: np.ndarray, size: int = 24) -> np.ndarray:
    """[L, H, S, S] -> [L, H, size', size'] by block-averaging, for the model view."""
    L, H, S, _ = attentions.shape
    g = int(np.ceil(S / size))
    if g == 1:
        return attentions
    pad = (-S) % g
    padded = np.pad(attentions, ((0, 0), (0, 0), (0, pad), (0, pad)))
    m = padded.shape[-1] // g
    return padded.reshape(L, H, m, g, m, g).mean(axis=(3, 5))


def model_view_figure(
    thumbs: np.ndarray, selected: tuple[int, int] | None = None, head_title: str = "head", layer_title: str = "layer"
) -> go.Figure:
    """Every layer (rows) x head (columns) as one tiled image (from `thumbnails`); a point per tile
    makes it clickable."""
    L, H, m, _ = thumbs.shape
    gap = max(1, m // 8)
    cell = m + gap
    canvas = np.full((L * cell, H * cell), np.nan, dtype=np.float32)
    for layer in range(L):
        for head in range(H):
            tile = thumbs[layer, head]
            peak = tile.max()
            canvas[layer * cell : layer * cell + m, head * cell : head * cell + m] = tile / peak if peak > 0 else tile
    fig = go.Figure(go.Heatmap(z=canvas, colorscale=SCALE, showscale=False, hoverinfo="skip"))
    centers = [(layer, head) for layer in range(L) for head in range(H)]
    fig.add_trace(
        go.Scatter(
            x=[h * cell + m / 2 for _, h in centers],
            y=[layer * cell + m / 2 for layer, _ in centers],
            mode="markers",
            marker=dict(size=max(8, m), opacity=0.01, symbol="square"),
            showlegend=False,
            customdata=centers,
            hovertemplate="layer %{customdata[0]} · head %{customdata[1]}<extra></extra>",
        )
    )
    if selected is not None:
        layer, head = selected
        fig.add_shape(
            type="rect",
            x0=head * cell - 0.5,
            x1=head * cell + m - 0.5,
            y0=layer * cell - 0.5,
            y1=layer * cell + m - 0.5,
            line=dict(color="#f28c28", width=3),
        )
    fig.update_xaxes(
        tickvals=[h * cell + m / 2 for h in range(H)],
        ticktext=[str(h) for h in range(H)],
        title=head_title,
        side="top",
        showgrid=False,
        zeroline=False,
    )
    fig.update_yaxes(
        tickvals=[layer * cell + m / 2 for layer in range(L)],
        ticktext=[str(layer) for layer in range(L)],
        title=layer_title,
        autorange="reversed",
        showgrid=False,
        zeroline=False,
    )
    # Tiles about 56 px tall (30 layers: 1,760 px): big enough to see and to click.
    fig.update_layout(
        height=int(min(2400, max(360, 56 * L + 80))),
        margin=dict(l=10, r=10, t=40, b=10),
        plot_bgcolor="white",
        clickmode="event+select",
        dragmode=False,
    )
    return fig


def layer_head_figure(
    values: np.ndarray,
    labels: list[list[str]] | None,
    title: str,
    colorscale: str = "Viridis",
    head_title: str = "head",
    layer_title: str = "layer",
):
    L, H = values.shape
    text = labels if labels is not None else None
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=list(range(H)),
            y=list(range(L)),
            colorscale=colorscale,
            text=text,
            hovertemplate="layer %{y} · head %{x}<br>%{z:.3f}" + ("<br>%{text}" if text else "") + "<extra></extra>",
        )
    )
    fig.update_layout(title=title, height=int(max(260, 22 * L + 80)), margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title=head_title, dtick=1)
    fig.update_yaxes(title=layer_title, autorange="reversed", dtick=1 if L <= 32 else None)
    return fig


def matrix_figure(
    matrix: np.ndarray,
    row_labels: list[str],
    title: str,
    colorscale: str = DIVERGING,
    x_title: str = "dimension",
    midpoint: float | None = 0.0,
) -> go.Figure:
    z = np.asarray(matrix, dtype=np.float32)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            y=axis_labels(row_labels),
            colorscale=colorscale,
            zmid=midpoint,
            hovertemplate="%{y}<br>" + x_title + " %{x}<br>%{z:.4f}<extra></extra>",
        )
    )
    step = _tick_step(len(row_labels), 32)
    fig.update_layout(
        title=title, height=int(min(700, max(260, 12 * len(row_labels) + 80))), margin=dict(l=10, r=10, t=40, b=10)
    )
    fig.update_yaxes(autorange="reversed", tickvals=axis_labels(row_labels)[::step])
    fig.update_xaxes(title=x_title)
    return fig


def _fonts() -> list[str]:
    """DejaVu for Latin, plus any CJK font installed, so Chinese tokens are not drawn as boxes."""
    from matplotlib import font_manager

    wanted = ("WenQuanYi", "Noto Sans CJK", "Source Han Sans", "SimHei", "PingFang", "Microsoft YaHei")
    cjk = [f.name for f in font_manager.fontManager.ttflist if f.name.startswith(wanted)]
    return ["DejaVu Sans", *dict.fromkeys(cjk)]


def heatmap_png(matrix: np.ndarray, tokens: list[str], title: str) -> bytes:
    """A static PNG of one attention map, for reports and slides."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(tokens)
    side = min(16, max(5, 0.22 * n + 2))
    step = _tick_step(n, 64)
    ticks = list(range(0, n, step))
    with plt.rc_context({"font.family": _fonts()}):
        fig, ax = plt.subplots(figsize=(side, side), dpi=110)
        image = ax.imshow(np.asarray(matrix, dtype=np.float32), cmap="Purples", interpolation="nearest")
        ax.set_xticks(ticks, [tokens[i] for i in ticks], rotation=90, fontsize=7)
        ax.set_yticks(ticks, [tokens[i] for i in ticks], fontsize=7)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        ax.set_title(title)
        fig.colorbar(image, ax=ax, fraction=0.046)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
    return buffer.getvalue()
