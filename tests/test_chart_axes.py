"""Figures whose axes misled a learner (issue 25): baselines on a log axis, secondary axes' ticks, the
beam tree at 40 tokens. What the browser then draws is checked in tests/e2e/test_chart_rendering.py."""

import math
import random

import pytest

from backends.decoding.beam_search import Beam, BeamResult, BeamStep
from components.classifier.charts import training_figure
from components.decoding.charts import beam_tree_figure
from components.lora.charts import loss_figure as lora_loss_figure
from components.scratch_gpt.charts import loss_figure
from components.vision.charts import training_curves

BASELINES = {"uniform": math.log(77), "unigram": 3.311}


def scratch_run(steps=300):
    return {
        "label": "Run #1",
        "steps": [{"step": s, "loss": 1.6 + 2.8 * math.exp(-s / 60)} for s in range(1, steps + 1)],
        "evals": [{"step": s, "val_loss": 1.8 + 2.6 * math.exp(-s / 60)} for s in range(0, steps + 1, 50)],
    }


@pytest.mark.parametrize("run", [None, scratch_run()], ids=["before a run", "after a run"])
def test_scratch_loss_chart_on_a_log_axis_puts_each_baseline_at_its_value(run):
    """Plotly takes a log axis's range and annotations in log10 units, its shapes in data units."""
    fig = loss_figure(run, [], BASELINES, log_scale=True)
    assert fig.layout.yaxis.type == "log"
    shown = [*BASELINES.values()] + ([s["loss"] for s in run["steps"]] if run else [])
    low, high = (10**v for v in fig.layout.yaxis.range)
    assert low < min(shown) and max(shown) < high < 2 * max(shown), (low, high)  # not ~50,000
    labels = {a.text.rsplit(" ", 1)[0]: a for a in fig.layout.annotations}
    lines = {round(s.y0, 6) for s in fig.layout.shapes}
    for name, value in BASELINES.items():
        assert math.isclose(labels[name].y, math.log10(value), rel_tol=1e-9), (name, labels[name].y)
        assert labels[name].text == f"{name} {value:.2f}"
        assert round(value, 6) in lines, "the dashed line itself stays in data units"


def test_scratch_loss_chart_on_a_linear_axis_uses_the_values_themselves():
    fig = loss_figure(scratch_run(), [], BASELINES, log_scale=False)
    assert fig.layout.yaxis.type == "linear"
    low, high = fig.layout.yaxis.range
    assert low < 1.6 and 4.4 < high < 5.0
    for a in fig.layout.annotations:
        name = a.text.rsplit(" ", 1)[0]
        assert math.isclose(a.y, BASELINES[name], rel_tol=1e-9)


def test_secondary_axes_tick_on_their_own_round_values():
    """An overlaying axis left alone takes plotly.js's "sync" tick mode: ticks at the primary axis's
    gridlines, which on a learning-rate or 0..1 axis are odd numbers (0.000241, 0.262)."""
    lora = lora_loss_figure(
        [{"step": s, "loss": 2.0 - s / 100, "lr": 2e-4 * min(1, s / 10)} for s in range(1, 101)],
        [{"step": 50, "eval_loss": 1.6}],
        log_scale=False,
    )
    assert lora.layout.yaxis2.overlaying == "y" and lora.layout.yaxis2.tickmode == "auto"
    assert lora.layout.yaxis2.exponentformat == "e"
    history = [{"kind": "step", "step": s, "loss": 1 / s, "accuracy": 0.5} for s in range(1, 21)]
    history += [{"kind": "eval", "step": 20, "val_loss": 0.3, "val_accuracy": 0.8, "val_macro_f1": 0.7}]
    share = training_figure(history).layout.yaxis2
    vqa = training_curves(
        [{"step": 5, "loss": 2.0}], [{"step": 5, "train_acc": 0.4, "test_acc": 0.3}], "VQA"
    ).layout.yaxis2
    for axis in (share, vqa):
        assert axis.overlaying == "y" and axis.tickmode == "linear"
        ticks = [axis.tick0 + i * axis.dtick for i in range(round((axis.range[1] - axis.range[0]) / axis.dtick) + 1)]
        assert [round(v, 9) for v in ticks] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def fake_beam_search(steps=40, n=5, seed=0):
    """A beam search's record of `steps` steps of `n` beams; the best hypothesis is always beam 0."""
    rng = random.Random(seed)
    previous, record = [Beam(ids=[], score=0.0, parent=-1, token_id=-1)], []
    for step in range(steps):
        kept = []
        for rank in range(n):
            parent = 0 if rank == 0 else rng.randrange(len(previous))
            token = 100 * rank + step  # distinct ids: only beam 0's line is the best hypothesis
            ids = [*previous[parent].ids, token]
            kept.append(Beam(ids=ids, score=-rank - step, parent=parent if step else -1, token_id=token))
        dropped = [Beam(ids=[*kept[0].ids[:-1], 999], score=-99.0, parent=0, token_id=999) for _ in range(n)]
        record.append(BeamStep(kept=kept, dropped=dropped))
        previous = kept
    return BeamResult(best_ids=previous[0].ids, best_score=-1.0, hypotheses=[], steps=record)


def test_beam_tree_gives_each_token_of_the_best_hypothesis_its_own_row():
    """40 tokens x 5 beams: the labels used to alternate above and below one line, 25 px apart at
    most, and overlapped; the first was cut by the plot's edge."""
    decode = lambda ids: "".join(f" word{i}" for i in ids)  # noqa: E731 - labels of 7 characters
    short, long = beam_tree_figure(fake_beam_search(5), decode), beam_tree_figure(fake_beam_search(40), decode)
    best = next(trace for trace in long.data if trace.name == "best hypothesis")
    assert list(best.y) == list(range(1, 41)), "one labelled node per step, each on its own row"
    assert list(best.text) == [f" word{step}" for step in range(40)]
    assert best.textposition == "middle right" and best.cliponaxis is False
    top, bottom = sorted(long.layout.yaxis.range)
    assert top < 1 - 0.25 and bottom > 40 + 0.25, "the first and last rows lie inside the plot"
    row_px = (long.layout.height - long.layout.margin.t - long.layout.margin.b) / (bottom - top)
    assert row_px >= 18, f"a 12 px label needs its row: {row_px:.1f} px"
    assert long.layout.height > short.layout.height, "the tree grows taller with more tokens"
