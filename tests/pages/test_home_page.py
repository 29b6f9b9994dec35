"""Home: the learning map from the page registry, what this machine has, and preparing SmolLM2."""

import os
import shutil
import threading
from pathlib import Path

from backends.core.device import resolve_device
from components.i18n import strings
from components.page_registry import HOME, STAGES

from .plotly_helpers import texts

EN = strings("en")

# What a browser must see once the page has run (tests/e2e/test_browser.py).
BROWSER_MUST_SHOW = "text=" + EN["home.map"]


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    body = texts(at)
    for number, stage in enumerate(STAGES, 1):
        assert f"**{number}. {EN[f'stage.{stage}']}**" in body
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Network"] == "offline"
    assert metrics["Device"] == resolve_device("auto"), "the device the app picks (cuda on a GPU machine)"
    assert metrics["torch"].startswith("2.") and metrics["transformers"].startswith("5.")
    table = at.dataframe[0].value
    assert list(table["Model"][:3]) == [
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "google/gemma-3-270m",
        "sentence-transformers/all-MiniLM-L6-v2",
    ]
    assert list(table["Licence"][:3]) == ["Apache-2.0", "Gemma Terms of Use", "Apache-2.0"]
    assert set(table["Installed"]) == {True}, "every embedded model's package is installed"
    assert set(table["Ready"]) <= {EN["home.ready"], EN["home.needs_prepare"]}


def test_prepare_button_appears_when_the_conversion_is_missing(open_page, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMPG_CACHE_DIR", str(tmp_path))
    at = open_page(HOME)
    table = at.dataframe[0].value
    ready = dict(zip(table["Model"], table["Ready"]))  # the GGUF models need converting, MiniLM is ready
    assert ready["HuggingFaceTB/SmolLM2-135M-Instruct"] == ready["google/gemma-3-270m"] == EN["home.needs_prepare"]
    assert ready["sentence-transformers/all-MiniLM-L6-v2"] == EN["home.ready"]
    assert at.button(key="home.prepare_button").label.startswith("Prepare HuggingFaceTB/SmolLM2-135M-Instruct")


def _link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:  # another filesystem
        shutil.copy2(source, target)


def test_prepare_button_converts_smollm2_in_the_background(open_page, tmp_path, monkeypatch):
    """The button's job, its progress and the table, on an empty cache folder. The conversion itself is
    the run's own (made once per run in the suite's cold cache folder; its logits are checked by
    tests/backends/test_conversion.py), linked into place: a second GGUF load would cost about 30 s."""
    from backends.core.jobs import shared_runner
    from backends.models import gguf_convert
    from backends.models.registry import SMOLLM2, package_folder

    made = gguf_convert.ensure_converted(SMOLLM2, package_folder(SMOLLM2))
    calls, release = [], threading.Event()

    def link_the_runs_conversion(folder, gguf_file, out_dir, pre_tokenizer=None):
        calls.append((Path(folder), gguf_file, pre_tokenizer is not None))
        assert release.wait(120), "the test never saw the job running"
        shutil.copytree(made, out_dir, copy_function=_link_or_copy)

    monkeypatch.setattr(gguf_convert, "convert_gguf", link_the_runs_conversion)
    monkeypatch.setenv("LLMPG_CACHE_DIR", str(tmp_path))
    at = open_page(HOME)
    at.button(key="home.prepare_button").click().run()
    job = shared_runner().get(at.session_state["home.prepare_job"])
    assert not job.done, "the conversion runs off the UI thread"
    assert any(p.proto.text.startswith("Converting the GGUF") for p in at.get("progress"))
    release.set()
    assert job.wait(300) and job.status == "done"
    at.run()
    assert any(s.value.startswith("Ready: converted in") for s in at.success)
    table = at.dataframe[0].value
    ready = dict(zip(table["Model"], table["Ready"]))
    assert ready["HuggingFaceTB/SmolLM2-135M-Instruct"] == ready["sentence-transformers/all-MiniLM-L6-v2"]
    assert ready["HuggingFaceTB/SmolLM2-135M-Instruct"] == EN["home.ready"]
    assert ready["google/gemma-3-270m"] == EN["home.needs_prepare"], "the next one the button offers"
    assert at.button(key="home.prepare_button").label.startswith("Prepare google/gemma-3-270m")
    assert (tmp_path / "models" / "smollm2-135m-instruct" / "model.safetensors").exists()
    assert calls == [(package_folder(SMOLLM2), SMOLLM2.gguf_file, True)], "with its digit pre-tokenizer"


def test_the_map_says_the_gpt_trains_on_the_server_not_in_the_browser(open_page):
    """Issue 25: Home said the GPT trains "in your browser"; the job runs in the server's process."""
    for lang, server, browser in (("en", "on the server", "browser"), ("zh", "服务器", "浏览器")):
        blurb = strings(lang)["page.scratch_gpt.blurb"]
        assert server in blurb and browser not in blurb, blurb
        assert blurb in texts(open_page(HOME, **{"app.lang": lang}))
