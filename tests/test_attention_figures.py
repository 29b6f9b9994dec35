"""The figure builders: shapes, aggregation that keeps rows summing to 1, and the PNG export."""

import numpy as np
import plotly.io as pio

from components.attention import (
    LINES_MAX_ROWS,
    group_tokens,
    heatmap_figure,
    heatmap_png,
    lines_figure,
    model_view_figure,
    thumbnails,
)


def _random_attention(n, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, n))
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def test_grouping_long_inputs_keeps_rows_summing_to_one():
    matrix = _random_attention(512)
    grouped, labels, g = group_tokens(matrix, [f"t{i}" for i in range(512)])
    assert g == 4 and grouped.shape == (128, 128) and len(labels) == 128
    np.testing.assert_allclose(grouped.sum(axis=1), 1, atol=1e-6)
    assert labels[1].startswith("4–7 ")
    uneven, _, g = group_tokens(_random_attention(300), [str(i) for i in range(300)])
    assert g == 3 and uneven.shape == (100, 100)
    np.testing.assert_allclose(uneven.sum(axis=1), 1, atol=1e-6)


def test_lines_view_draws_each_token_when_short_and_groups_when_long():
    short, g = lines_figure(_random_attention(12), [f"t{i}" for i in range(12)])
    assert g == 1 and list(short.data[-1].text) == [f"t{i}" for i in range(12)]
    long, g = lines_figure(_random_attention(512), [f"t{i}" for i in range(512)])
    assert g > 1 and len(long.data[-1].text) <= LINES_MAX_ROWS
    hover, _ = lines_figure(np.array([[1.0, 0.0], [0.3, 0.7]]), ["a", "b"])
    assert hover.data[-2].hovertext[1] == "b looks at<br>b: 0.7000<br>a: 0.3000"
    assert hover.data[-1].hovertext[0] == "a is looked at by<br>a: 1.0000<br>b: 0.3000"
    focused, _ = lines_figure(np.eye(6), list("abcdef"), focus=2)
    segments = [trace for trace in focused.data if trace.mode == "lines"]
    assert len(segments) == 1 and list(segments[0].y) == [-2, -2, None]


def test_model_view_tiles_every_head_and_can_be_clicked():
    attentions = np.stack(
        [np.stack([_random_attention(40, seed=layer * 10 + h) for h in range(3)]) for layer in range(2)]
    )
    thumbs = thumbnails(attentions, size=16)
    assert thumbs.shape == (2, 3, 14, 14)
    fig = model_view_figure(thumbs, selected=(1, 2))
    points = fig.data[1]
    assert [list(c) for c in points.customdata] == [[layer, h] for layer in range(2) for h in range(3)]
    assert len(fig.layout.shapes) == 1


def test_heatmap_hides_masked_cells_and_labels_every_token():
    fig = heatmap_figure(np.tril(np.ones((3, 3))) / 3, ["a", "b", "a"], masked=np.triu(np.ones((3, 3), bool), 1))
    trace = pio.from_json(fig.to_json()).data[0]
    assert list(trace.x) == ["0:a", "1:b", "2:a"]
    assert np.isnan(np.asarray(fig.data[0].z, dtype=float)[0, 1])


def test_png_export_is_a_png_even_with_chinese_tokens():
    png = heatmap_png(_random_attention(5), ["我", "喜欢", "猫", "[SEP]", "。"], "Layer 0, head 0")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
