"""The LoRA trainer page on the real offline SmolLM2: a small run end to end, and bad input."""

import io
import json
import time
import zipfile

import pytest

from backends.core.jobs import shared_runner
from components.i18n import strings
from components.page_registry import PAGES

from .plotly_helpers import figures, values

LORA = next(p for p in PAGES if p.key == "lora")
EN = strings("en")

# What a browser must see once the page has run (tests/e2e/test_browser.py).
BROWSER_MUST_SHOW = "text=" + EN["lora.data.loaded"].format(n=201)


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    assert at.success[0].value == "201 examples ready."
    preview = at.dataframe[0].value
    assert list(preview.columns[:2]) == ["prompt", "response"] and preview["response"].str.startswith("Arr!").all()
    assert any("<|im_start|>assistant" in c.value for c in at.code), "the formatted example"
    assert {m.label for m in at.metric} >= {"Min tokens", "Max tokens", "Median tokens"}


@pytest.fixture
def page(open_page):
    return open_page(LORA)


def open_tab(at, label):
    at.session_state["lora.tab"] = label
    return at.run()


def small_run(at):
    cfg = at.session_state["lora.cfg"]
    cfg.update(
        max_steps=3,
        batch_size=2,
        max_length=64,
        eval_every=2,
        sample_every=0,
        warmup_steps=0,
        learning_rate=3e-3,
        eval_fraction=0.05,
    )
    open_tab(at, "3 · Train")
    at.button(key="lora.start").click().run()
    job = shared_runner().get(at.session_state["lora.job"])
    assert job is not None and not job.done, "training runs off the UI thread"
    return job


def test_a_small_run_draws_its_loss_chart_and_enables_the_comparison(page, monkeypatch, tmp_path):
    monkeypatch.setenv("LLMPG_ADAPTERS_DIR", str(tmp_path))
    job = small_run(page)
    try:
        check_small_run(page, job)
        check_publish_and_remote_compare(page)
    finally:
        job.stop()
        job.wait(60)


def check_small_run(page, job):
    assert page.button(key="lora.start").disabled, "one run at a time per session"
    if not any(e.data.get("kind") == "step" for e in job.events_since(0)):  # none yet when the page was drawn
        assert any(p.proto.text.startswith("Preparing the run") for p in page.get("progress"))
        assert not [f for f in figures(page) if f.layout.title.text == "Loss while training"], "no 1-point chart"
        assert EN["lora.metric.loss"] not in [m.label for m in page.metric], "no dashes before the first step"
    deadline = time.time() + 300
    while not job.done and time.time() < deadline:  # the page keeps rerunning while the job trains
        time.sleep(2)
        page.run()
        assert not page.exception
    assert job.done and job.status == "done", job.error
    page.run()
    assert any(s.value.startswith("Finished 3 steps") for s in page.success)
    chart = next(f for f in figures(page) if f.layout.title.text == "Loss while training")
    train, evals = chart.data[0], chart.data[1]
    assert list(values(train.x)) == [1, 2, 3] and all(v > 0 for v in values(train.y))
    assert list(values(evals.x)) == [0, 2, 3]
    assert page.session_state["lora.active"]["label"].startswith("#1")
    open_tab(page, "Run history")
    history = page.dataframe[0].value
    assert list(history["Steps"]) == [3] and history["Status"][0] == "done"
    open_tab(page, "4 · Before / after")
    assert any(d.proto.label == "Download the adapter (zip)" for d in page.get("download_button"))
    data = page.session_state["lora.zip"]
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(zipfile.ZipFile(io.BytesIO(data)).namelist())


def check_publish_and_remote_compare(page):
    """Publish the adapter to `make serve`'s folder, then compare before/after on that server (our
    own, live on a free port): its answers are the page's own in-app before/after answers."""
    from backends.serving.app import ServerSettings
    from backends.serving.local import ServerThread

    page.text_input(key="lora.publish_name").input("Bad Name!")
    page.button(key="lora.publish").click().run()
    assert any("lowercase letters" in e.value for e in page.error)
    page.text_input(key="lora.publish_name").input("pirate-test")
    page.button(key="lora.publish").click().run()
    assert any("smollm2-135m-instruct+pirate-test" in s.value for s in page.success)
    page.text_area(key="lora.compare_prompts").input("What is 2 plus 3?")
    page.slider(key="lora.compare_max_new").set_value(12)
    page.button(key="lora.compare_run").click().run()
    local = page.session_state["lora.answers"][0]
    with ServerThread(ServerSettings(gradio=False, max_tokens=64)) as url:
        page.toggle(key="engine.remote").set_value(True).run()
        page.text_input(key="engine.base_url").input(url + "/v1").run()
        assert page.text_input(key="lora.remote_adapter").value == "smollm2-135m-instruct+pirate-test"
        page.text_area(key="lora.remote_prompts").input("What is 2 plus 3?")
        page.slider(key="lora.remote_max_new").set_value(12)
        page.button(key="lora.remote_run").click().run()
    assert not page.exception and not page.error
    remote = page.session_state["lora.remote_answers"][0]
    assert (remote.base, remote.lora) == (local.base, local.lora) and remote.base


def test_bad_settings_and_empty_uploads_are_explained_and_start_nothing(page):
    open_tab(page, "2 · Configure")
    page.number_input(key="lora.w.rank").set_value(1000).run()
    assert any("rank = 1000 is not allowed" in e.value and "(192)" in e.value for e in page.error)
    page.number_input(key="lora.w.rank").set_value(8).run()
    page.number_input(key="lora.w.max_length").set_value(0).run()
    assert any("max_length = 0 is not allowed" in e.value for e in page.error)
    open_tab(page, "3 · Train")
    page.button(key="lora.start").click().run()
    assert any("max_length = 0" in e.value for e in page.error)
    assert "lora.job" not in page.session_state, "nothing started"


def test_uploads_malformed_lines_and_foreign_adapters_get_clear_messages(page):
    page.radio(key="lora.source").set_value("upload").run()
    assert any("Upload a .jsonl or .csv" in i.value for i in page.info)
    body = '{"prompt": "hi", "response": "Arr!"}\n{"prompt": "oops"\n{"text": ""}\n'
    page.file_uploader(key="lora.upload").upload("bad.jsonl", body.encode(), "application/json").run()
    message = page.error[0].value
    assert "line 2: not valid JSON" in message and "line 3: no usable columns (found: text)" in message
    page.file_uploader(key="lora.upload").set_value(("ok.csv", b"prompt,response\nHi,Arr! Ahoy.\n", "text/csv"))
    page.run()
    assert page.success[0].value == "1 examples ready."

    open_tab(page, "4 · Before / after")
    foreign = io.BytesIO()
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("adapter_config.json", json.dumps({"peft_type": "LORA", "base_model_name_or_path": "gpt2"}))
        zf.writestr("adapter_model.safetensors", b"")
    page.file_uploader(key="lora.adapter_upload").upload("gpt2-lora.zip", foreign.getvalue(), "application/zip")
    page.button(key="lora.adapter_load").click().run()
    assert any("trained on 'gpt2'" in e.value and "HuggingFaceTB/SmolLM2-135M-Instruct" in e.value for e in page.error)
    assert "lora.active" not in page.session_state


def test_compare_tab_explains_what_to_do_first(page):
    open_tab(page, "4 · Before / after")
    assert any("Train a run" in i.value for i in page.info)
    assert page.session_state["lora.cfg"]["rank"] == 8


def test_settings_json_loads_back_into_the_widgets(page):
    open_tab(page, "2 · Configure")
    body = json.dumps({"rank": 4, "alpha": 8, "max_steps": 12, "target_modules": ["q_proj", "k_proj"]})
    page.file_uploader(key="lora.import_settings").upload("s.json", body.encode(), "application/json").run()
    assert page.number_input(key="lora.w.rank").value == 4
    assert page.multiselect(key="lora.w.target_modules").value == ["q_proj", "k_proj"]
    assert page.session_state["lora.cfg"]["max_steps"] == 12
    page.file_uploader(key="lora.import_settings").set_value(("bad.json", b'{"rank": "x"}', "application/json"))
    page.run()
    assert any("rank = 'x': expected int" in e.value for e in page.error)


def test_switching_tabs_or_the_language_keeps_the_choices_made(page):
    """Tabs are lazy: only the open one is drawn, and Streamlit forgets a widget it did not draw
    (the data source went back to "shipped" after a visit to another tab). Every keyed widget of
    the app persists for the session (`persist_state="session"`, tests/test_layout.py holds it),
    so choices survive tab switches, page switches and a change of language."""
    page.radio(key="lora.source").set_value("upload").run()
    open_tab(page, "2 · Configure")
    page.radio(key="lora.w.unit").set_value("epochs").run()
    open_tab(page, "1 · Data")
    assert page.radio(key="lora.source").value == "upload"
    page.radio(key="app.lang").set_value("zh").run()
    assert not page.exception
    assert page.radio(key="lora.source").value == "upload" and page.radio(key="lora.source").label != "Training data"
    assert page.session_state["lora.w.unit"] == "epochs"
