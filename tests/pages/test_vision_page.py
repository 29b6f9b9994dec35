"""The vision page on the real offline models (ConSE = EfficientNet-Lite0 + MiniLM), tab by tab,
plus the CLIP route on a tiny random model saved to a folder (plumbing, not quality)."""

import re
import time

import pytest

from backends.core.jobs import shared_runner
from components.i18n import strings
from components.page_registry import PAGES

from .plotly_helpers import figures, texts, values

VISION = next(p for p in PAGES if p.key == "vision")
EN = strings("en")

# What a browser must see once the page has run (tests/e2e/test_browser.py): the classification chart.
BROWSER_MUST_SHOW = f'[data-testid="stPlotlyChart"] .gtitle:has-text("{EN["vision.zs.chart"].split("(")[0].strip()}")'


def _bars(at):
    fig = next(f for f in figures(at) if f.layout.title.text.startswith("Zero-shot probabilities"))
    bar = fig.data[0]
    return dict(zip(bar.y, values(bar.x)))


def _table(at, first_column):
    return next(d.value for d in at.dataframe if d.value.columns[0] == first_column)


def check_page(at):
    """A user arrives: the sample cat, five labels, ConSE named as the running method, a real chart."""
    probs = _bars(at)
    assert set(probs) == {"cat", "dog", "car", "coffee", "rocket"}
    assert max(probs, key=probs.get) == "cat" and probs["cat"] > probs["dog"] + 0.2
    assert any(s.value.startswith("Best label: cat") for s in at.success)
    assert "Running ConSE, the offline stand-in" in texts(at)
    classes = _table(at, EN["vision.col.class"])
    assert "Egyptian cat" in set(classes.iloc[:, 0])


@pytest.fixture(scope="module")
def page():
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page(VISION.path).run()
    return at


def open_tab(at, label):
    at.session_state["vision.tab"] = EN[label]
    return at.run()


def test_zero_shot_bad_labels_and_templates_are_quoted_and_ensembling_shows(page):
    at = open_tab(page, "vision.tab.zeroshot")
    check_page(at)
    table = _table(at, EN["vision.zs.label"])
    assert list(table.columns) == ["Label", "#1", "#2", "#3", "#4", "#5", "ensemble of all"]
    # the text names where the ensemble is: its last column (it said "last row")
    assert "(last column)" in EN["vision.zs.ensemble"] and EN["vision.zs.ensemble"] in texts(at)
    assert "（最后一列）" in strings("zh")["vision.zs.ensemble"]
    cat = table[table["Label"] == "cat"].iloc[0]
    assert all(float(cat[f"#{i}"].rstrip("%")) > 50 for i in range(1, 6))
    assert any("#1 `a photo of a {}.`" in c.value for c in at.caption)
    at.text_input(key="vision.zs.labels").set_value("cat").run()
    assert "at least two labels" in at.error[0].value and "'cat'" in at.error[0].value
    at.text_input(key="vision.zs.labels").set_value("coffee, cat").run()
    at.text_area(key="vision.zs.templates").set_value("a photo of a cat").run()
    assert "'a photo of a cat'" in at.error[0].value
    at.text_area(key="vision.zs.templates").set_value("a photo of {}.").run()
    at.selectbox(key="vision.zs.sample").set_value("coffee").run()
    probs = _bars(at)
    assert probs["coffee"] > probs["cat"]


def test_a_bad_upload_is_named_and_the_page_keeps_working(page):
    at = open_tab(page, "vision.tab.zeroshot")
    at.radio(key="vision.zs.source").set_value("upload").run()
    assert at.info[0].value == EN["vision.image.none"]
    at.radio(key="vision.zs.source").set_value("sample").run()
    assert _bars(at)


def test_unknown_clip_id_offline_is_explained_and_a_tiny_clip_folder_runs(page, tmp_path):
    from tests.backends.test_vision_tiny_models import build_tiny_clip

    at = open_tab(page, "vision.tab.zeroshot")
    at.radio(key="vision.method").set_value("clip").run()
    assert "not available offline" in at.error[0].value and "openai/clip-vit-base-patch32" in at.error[0].value
    folder = build_tiny_clip(tmp_path / "clip")
    at.text_input(key="vision.clip_name").set_value(folder).run()
    assert not at.error, [e.value for e in at.error]
    assert "Running real CLIP-style model" in texts(at)
    assert abs(sum(_bars(at).values()) - 1) < 1e-4  # plumbing only: a random model's probabilities
    at.radio(key="vision.method").set_value("conse").run()


def test_search_tab_indexes_the_samples_and_finds_the_coffee(page):
    at = open_tab(page, "vision.tab.search")
    at.button(key="vision.search.build").click().run()
    job = shared_runner().get(at.session_state["vision.search.job"])
    assert job.wait(240) and job.status == "done"
    time.sleep(0.2)
    at.run()
    assert at.caption and any("12 images indexed" in c.value for c in at.caption)
    captions = [c for image in at.image for c in image.captions]
    grid = [c for c in captions if " · " in c]
    assert len(grid) == 8 and grid[0].startswith("coffee · "), grid
    fig = next(f for f in figures(at) if f.layout.title.text.startswith("The gallery's embedding space"))
    assert len(fig.data[0].x if not isinstance(fig.data[0].x, dict) else values(fig.data[0].x)) == 12
    at.text_input(key="vision.search.query").set_value("").run()
    assert at.warning[0].value == EN["vision.search.empty"]


def test_search_from_uploads_asks_for_files_first(page):
    at = open_tab(page, "vision.tab.search")
    at.radio(key="vision.search.source").set_value("upload").run()
    at.button(key="vision.search.build").click().run()
    assert at.warning[0].value == EN["vision.search.no_files"]
    at.radio(key="vision.search.source").set_value("samples").run()


def test_why_tab_draws_a_heatmap_for_the_label(page):
    at = open_tab(page, "vision.tab.why")
    assert any(c.startswith('Grad-CAM for "cat"') for image in at.image for c in image.captions)
    assert "EfficientNet-Lite0's last conv block (7 x 7 positions)" in texts(at)
    at.text_input(key="vision.why.label").set_value("  ").run()
    assert at.warning[0].value == EN["vision.why.empty"]
    at.text_input(key="vision.why.label").set_value("cat").run()


def test_vqa_tab_blip_offline_explains_and_the_tiny_model_trains(page):
    at = open_tab(page, "vision.tab.vqa")
    assert at.info[0].value == EN["vision.vqa.none"]
    at.radio(key="vision.vqa.mode").set_value("blip").run()
    assert any(
        "Salesforce/blip-image-captioning-base" in e.value and "not available offline" in e.value for e in at.error
    )
    at.radio(key="vision.vqa.mode").set_value("tiny").run()
    # One epoch on the suite's small easy-vqa (300 + 75 images, LLMPG_VQA_IMAGES from tests/user_cache.py):
    # the page computes their features cold unless tests/backends/test_vision_vqa.py ran first.
    at.number_input(key="vision.vqa.epochs").set_value(1).run()
    at.button(key="vision.vqa.start").click().run()
    job = shared_runner().get(at.session_state["vision.vqa.job"])
    assert job.wait(900) and job.status == "done", job.error
    time.sleep(1.2)
    at.run()
    assert any(s.value.startswith("Trained:") for s in at.success)
    assert any("Tiny VQA" in f.layout.title.text for f in figures(at))
    assert at.markdown and any(m.value.startswith("**Answer:") for m in at.markdown)


def test_a_stopped_vqa_run_says_how_far_it_got_and_never_trained(page):
    """Issue 25: Stop kept the model so far but the page still said "Trained"."""
    at = open_tab(page, "vision.tab.vqa")
    at.radio(key="vision.vqa.mode").set_value("tiny").run()
    at.number_input(key="vision.vqa.epochs").set_value(60).run()
    at.button(key="vision.vqa.start").click().run()
    job = shared_runner().get(at.session_state["vision.vqa.job"])
    deadline = time.time() + 600
    while not any(e.data.get("kind") == "step" for e in job.events_since(0)) and time.time() < deadline:
        assert not job.done, job.error
        time.sleep(0.2)
    job.stop()
    assert job.wait(300) and job.status == "stopped", job.error
    time.sleep(1.2)
    at.run()
    shown = [m.value for m in (*at.success, *at.warning)]
    assert not any(m.startswith("Trained") for m in shown), shown
    epochs = [e.data for e in job.events_since(0) if e.data.get("kind") == "epoch"]
    end = next(e.data for e in job.events_since(0) if e.data.get("kind") == "end")
    stopped = [m for m in shown if re.match(rf"Stopped after {len(epochs)} of 60 epochs \(\d+ s\)", m)]
    assert stopped and f"answers {end['test_acc']:.1%} of" in stopped[0], shown


def test_open_clip_plumbing_offline_default_is_explained_and_a_tiny_folder_runs_zero_shot_and_gradcam(page, tmp_path):
    from tests.backends.test_vision_open_clip import build_tiny_open_clip

    at = open_tab(page, "vision.tab.zeroshot")
    at.radio(key="vision.method").set_value("open_clip").run()
    assert "open_clip weights need the network" in at.error[0].value
    assert "ViT-B-32/laion2b_s34b_b79k" in at.error[0].value and at.info[0].value == EN["vision.clip.fallback"]
    folder = build_tiny_open_clip(tmp_path / "open_clip").removeprefix("open_clip:")
    at.text_input(key="vision.open_clip_name").set_value(folder).run()  # the prefix may be left out
    assert not at.error, [e.value for e in at.error]
    assert f"Running open_clip model {folder} (from local-path)." in texts(at)
    assert abs(sum(_bars(at).values()) - 1) < 1e-4  # plumbing only: a random model's probabilities
    at = open_tab(at, "vision.tab.why")
    assert not at.error, [e.value for e in at.error]
    assert any(c.startswith('Grad-CAM for "cat"') for image in at.image for c in image.captions)
    assert EN["vision.why.layer.vit"].format(h=4, w=4) in texts(at)
    at = open_tab(at, "vision.tab.zeroshot")
    at.radio(key="vision.method").set_value("conse").run()


def test_open_clip_plumbing_a_resnet_tower_says_grad_cam_needs_a_vit(page, tmp_path):
    from tests.backends.test_vision_open_clip import (
        TINY_RESNET_CFG,
        build_tiny_open_clip,
    )

    at = open_tab(page, "vision.tab.why")
    at.radio(key="vision.method").set_value("open_clip").run()
    name = build_tiny_open_clip(tmp_path / "rn", TINY_RESNET_CFG)
    at.text_input(key="vision.open_clip_name").set_value(name).run()
    assert not at.error, [e.value for e in at.error]
    assert at.warning[0].value == EN["vision.open_clip.no_gradcam"].format(model=name)
    at.radio(key="vision.method").set_value("conse").run()
