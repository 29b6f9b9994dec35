"""What Chromium draws from the figures issue 25 found misleading: plotly.js, not our layout, decides
where a log axis's annotations land and which ticks an overlaying axis gets. Each figure is rendered
alone in a page with the plotly.js that plotly ships; screenshots go to artifacts/e2e/."""

import itertools
import math
from pathlib import Path

import plotly
import pytest

from components.classifier.charts import training_figure
from components.decoding.charts import beam_tree_figure
from components.lora.charts import loss_figure as lora_loss_figure
from components.scratch_gpt.charts import loss_figure
from components.vision.charts import training_curves
from tests.test_chart_axes import BASELINES, fake_beam_search, scratch_run

from .conftest import ARTIFACTS

pytestmark = pytest.mark.e2e
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@pytest.fixture
def draw(page, tmp_path):
    def _draw(fig, name: str, width: int = 1000):
        html = tmp_path / f"{name}.html"
        fig.write_html(html, include_plotlyjs=PLOTLY_JS.as_uri(), default_width=f"{width}px")
        page.goto(html.as_uri())
        page.wait_for_selector(".main-svg")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"chart-{name}.png"), full_page=True)
        return page

    return _draw


def tick_values(page, axis: str) -> list[float]:
    labels = page.eval_on_selector_all(f".{axis}tick text", "els => els.map(e => e.textContent)")
    values = []
    for label in labels:
        scale = {"%": 0.01, "k": 1e3, "M": 1e6}.get(label[-1], 1.0)  # plotly's suffixes
        values.append(float(label.rstrip("%kM").replace("\u2212", "-")) * scale)
    return values


def boxes(page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(
        selector,
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, text: e.textContent}; })",
    )


def test_scratch_loss_chart_log_view_labels_sit_on_their_lines(draw):
    page = draw(loss_figure(scratch_run(), [], BASELINES, log_scale=True), "scratch-loss-log")
    ticks = tick_values(page, "y")
    assert ticks and max(ticks) < 6, f"the axis spans the losses, not ~50,000: {ticks}"
    lines = sorted(b["top"] for b in boxes(page, ".shapelayer path"))
    labels = sorted(boxes(page, ".annotation"), key=lambda b: b["bottom"])
    assert len(lines) == len(labels) == len(BASELINES)
    for line, label in zip(lines, labels):
        off = label["bottom"] - line
        assert abs(off) < 8, f"{label['text']!r} drawn {off:+.0f} px off its line"
    assert labels[0]["text"].startswith("uniform"), "the higher loss, ln(77), is the higher line"


def round_step(values: list[float]) -> float:
    steps = {round(b - a, 12) for a, b in itertools.pairwise(values)}
    assert len(steps) == 1, values
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5)), f"odd tick step {step}: {values}"
    assert all(math.isclose(v / step, round(v / step), abs_tol=1e-6) for v in values), values
    return step


def test_secondary_axes_show_round_ticks(draw):
    lr = [{"step": s, "loss": 2.5 - s / 100, "lr": 2e-4 * min(1, s / 10) * (1 - s / 250)} for s in range(1, 201)]
    page = draw(lora_loss_figure(lr, [{"step": 100, "eval_loss": 1.6}], log_scale=False), "lora-lr-axis")
    assert round_step(tick_values(page, "y2")) <= 1e-4
    history = [{"kind": "step", "step": s, "loss": 1.2 / s**0.3, "accuracy": 0.3 + s / 400} for s in range(1, 201)]
    history += [
        {"kind": "eval", "step": s, "val_loss": 1.0 / s**0.2, "val_accuracy": 0.5, "val_macro_f1": 0.4}
        for s in (50, 100, 150, 200)
    ]
    page = draw(training_figure(history), "classifier-share-axis")
    assert tick_values(page, "y2") == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    steps = [{"step": s, "loss": 2.4 / (1 + s / 50)} for s in range(5, 400, 5)]
    epochs = [{"step": 50 * e, "train_acc": 0.3 + 0.08 * e, "test_acc": 0.28 + 0.07 * e} for e in range(1, 9)]
    page = draw(training_curves(steps, epochs, "Tiny VQA"), "vqa-accuracy-axis")
    assert tick_values(page, "y2") == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])


WORDS = (" lighthouses", " glittering", " the", " against", " moonlight,", " waves", " shoreline", " and")


def test_beam_tree_labels_do_not_overlap_at_40_tokens_and_5_beams(draw):
    decode = lambda ids: "".join(WORDS[i % len(WORDS)] for i in ids)  # noqa: E731 - real tokens' lengths
    page = draw(beam_tree_figure(fake_beam_search(40), decode), "beam-tree-40")
    # Each label's visible box: the plot area when its layer is clipped to it, else the whole figure.
    labels = page.eval_on_selector_all(
        ".scatterlayer .textpoint text",
        """els => els.map(e => {
            const r = e.getBoundingClientRect(), clipped = e.closest("[clip-path]");
            const area = (clipped ? document.querySelector(".nsewdrag") : document.querySelector(".main-svg"))
                .getBoundingClientRect();
            const inside = area.left <= r.left && r.right <= area.right
                && area.top <= r.top && r.bottom <= area.bottom;
            return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, text: e.textContent, visible: inside};
        })""",
    )
    assert len(labels) == 40
    assert all(label["visible"] for label in labels), [label["text"] for label in labels if not label["visible"]]
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            rows_apart = a["bottom"] <= b["top"] or b["bottom"] <= a["top"]
            columns_apart = a["right"] <= b["left"] or b["right"] <= a["left"]
            assert rows_apart or columns_apart, f"{a['text']!r} overlaps {b['text']!r}"
