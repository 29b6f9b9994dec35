"""The attention page on the real offline models: what it shows, and that the controls change it."""

import numpy as np
import pytest

from components.page_registry import PAGES

from .plotly_helpers import figure_titled, figures, values

ATTENTION = next(p for p in PAGES if p.key == "attention")

# What a browser must see once the page has run (tests/e2e/test_browser.py).
BROWSER_MUST_SHOW = '[data-testid="stPlotlyChart"] .main-svg'


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    heatmap = next(f for f in figures(at) if f.layout.title.text == "Layer 0, head 0")
    assert heatmap.data[0].type == "heatmap" and heatmap.data[0].x[0] == "0:[CLS]"
    assert any("[CLS]" in m.value and "[SEP]" in m.value for m in at.markdown), "token chips"


@pytest.fixture
def page(open_page):
    return open_page(ATTENTION)


def head_map(at, layer=0, head=0):
    fig = figure_titled(at, f"Layer {layer}, head {head}")
    return fig.data[0], values(fig.data[0].z)


def test_default_text_shows_the_encoder_heatmap_with_token_labels(page):
    assert not page.exception
    trace, z = head_map(page)
    assert list(trace.x[:3]) == ["0:[CLS]", "1:the", "2:cat"] and trace.x[-1] == "12:[SEP]"
    assert z.shape == (13, 13)
    np.testing.assert_allclose(z.sum(axis=1), 1, atol=1e-4)
    assert any("13 tokens · 6 layers × 12 heads" in c.value for c in page.caption)


def max_diff(at) -> float:
    return float(next(m for m in at.metric if m.label.startswith("Max |by hand")).value)


def test_by_hand_attention_matches_the_model_on_both_models(page):
    open_tab(page, "Compute it by hand")
    assert max_diff(page) < 1e-4
    assert figure_titled(page, "Q") and figure_titled(page, "K")
    page.selectbox(key="attention.model").set_value("smollm2-135m-instruct").run()
    page.slider(key="attention.layer").set_value(17).run()
    page.selectbox(key="attention.head").set_value(7).run()
    assert max_diff(page) < 1e-4
    assert any("key/value head 2" in c.value for c in page.caption)


def test_layer_head_and_special_token_controls_change_the_map(page):
    _, base = head_map(page)
    page.slider(key="attention.layer").set_value(3).run()
    _, layer3 = head_map(page, layer=3)
    assert not np.allclose(base, layer3)
    page.selectbox(key="attention.head").set_value(5).run()
    _, head5 = head_map(page, layer=3, head=5)
    assert not np.allclose(layer3, head5)
    page.toggle(key="attention.hide_special").set_value(True).run()
    trace, hidden = head_map(page, layer=3, head=5)
    assert hidden.shape == (11, 11) and not any("[CLS]" in x or "[SEP]" in x for x in trace.x)
    np.testing.assert_allclose(hidden.sum(axis=1), 1, atol=1e-4)


def test_switching_to_the_decoder_shows_a_causal_map(page):
    page.selectbox(key="attention.model").set_value("smollm2-135m-instruct").run()
    assert not page.exception
    assert any("30 layers × 9 heads" in c.value for c in page.caption)
    trace, z = head_map(page)
    assert trace.x[0] == "0:The"
    upper = np.triu(np.ones_like(z, dtype=bool), k=1)
    assert np.isnan(z[upper]).all(), "the causal mask is drawn as gaps"
    page.toggle(key="attention.show_mask").set_value(False).run()
    _, unmasked = head_map(page)
    assert np.all(unmasked[upper] == 0)
    np.testing.assert_allclose(unmasked.sum(axis=1), 1, atol=1e-4)


def test_sentence_pair_marks_segment_b(page):
    page.toggle(key="attention.use_pair").set_value(True).run()
    trace, z = head_map(page)
    labels = list(trace.x)
    assert sum(x.endswith("[SEP]") for x in labels) == 2  # [CLS] A [SEP] B [SEP]
    assert any(x.endswith(":where") for x in labels) and z.shape == (len(labels), len(labels))
    chips = next(m.value for m in page.markdown if "segment B" in m.value)
    assert "segment A" in chips


def test_long_input_is_cut_with_a_message(page):
    page.number_input(key="attention.max_tokens").set_value(8).run()
    assert any("only the first 8" in w.value for w in page.warning)
    _, z = head_map(page)
    assert z.shape == (8, 8)


def test_empty_text_and_unknown_model_get_messages_not_crashes(page):
    page.text_area(key="attention.text").set_value("   ").run()
    assert not page.exception
    assert any("empty" in w.value for w in page.warning)
    page.text_area(key="attention.text").set_value("Back to normal.").run()
    page.selectbox(key="attention.model").set_value("__other__").run()
    page.text_input(key="attention.model_other").set_value("someone/not-a-real-model").run()
    assert not page.exception
    assert any("not available offline" in e.value and "all-MiniLM-L6-v2" in e.value for e in page.error)


def open_tab(at, label):
    at.session_state["attention.tab"] = label
    return at.run()


def test_rollout_and_head_summary_are_shown(page):
    open_tab(page, "Rollout")
    rollout = figure_titled(page, "Rollout for every output token")
    np.testing.assert_allclose(values(rollout.data[0].z).sum(axis=1), 1, atol=1e-4)
    open_tab(page, "Head summary")
    entropy = figure_titled(page, "Entropy (bits): low = focused, high = spread out")
    assert values(entropy.data[0].z).shape == (6, 12)
    table = page.dataframe[0].value
    assert len(table) == 72 and set(table["label"]) <= {
        "same-token",
        "previous-token",
        "first-token / sink",
        "broad",
        "mixed",
    }


def test_by_hand_charts_share_one_diverging_scale_and_the_match_is_a_check(page):
    """Q, K and the raw scores side by side read the same way (red positive, zero white); the match is a
    plain check, not a metric delta whose green arrow reads as "went up"."""
    open_tab(page, "Compute it by hand")
    traces = [figure_titled(page, title).data[0] for title in ("Q", "K", "QKᵀ/√d")]
    scales = [tuple(tuple(stop) for stop in trace.colorscale) for trace in traces]
    assert scales[0] == scales[1] == scales[2] and all(trace.zmid == 0 for trace in traces)
    top = scales[0][-1][1]  # the colour of the largest positive value
    red, _, blue = (int(c) for c in top[top.index("(") + 1 : -1].split(","))
    assert red > blue, top
    metric = next(m for m in page.metric if m.label.startswith("Max |by hand"))
    assert metric.delta == "" and float(metric.value) < 1e-4
    assert ":green-badge[:material/check: matches the model]" in [m.value for m in page.markdown]
    open_tab(page, "Positional encodings")
    sinusoidal = figures(page)[0].data[0]
    assert tuple(tuple(stop) for stop in sinusoidal.colorscale) == scales[0] and sinusoidal.zmid == 0
