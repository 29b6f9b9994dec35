"""One AppTest run per registered page, each checking what that page must show."""
import pytest

from backends.cache import shared_cache
from components.i18n import strings
from components.page_registry import HOME, PAGES, STAGES

from .plotly_helpers import figures

EN = strings("en")


def _texts(at) -> str:
    return "\n".join(str(e.value) for e in (*at.markdown, *at.caption))


def check_home(at):
    body = _texts(at)
    for number, stage in enumerate(STAGES, 1):
        assert f"**{number}. {EN[f'stage.{stage}']}**" in body
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Network"] == "offline"
    assert metrics["Device"] == "cpu"
    assert metrics["torch"].startswith("2.") and metrics["transformers"].startswith("5.")
    table = at.dataframe[0].value
    assert list(table["Model"]) == ["HuggingFaceTB/SmolLM2-135M-Instruct", "sentence-transformers/all-MiniLM-L6-v2"]
    assert set(table["Installed"]) == {"✅"}


def check_attention(at):
    heatmap = next(f for f in figures(at) if f.layout.title.text == "Layer 0, head 0")
    assert heatmap.data[0].type == "heatmap" and heatmap.data[0].x[0] == "0:[CLS]"
    assert any("[CLS]" in m.value and "[SEP]" in m.value for m in at.markdown), "token chips"


def check_tokenizers(at):
    frame = at.dataframe[0].value
    assert len(frame) == 5 and (frame["Tokens"] > 0).all()
    assert sum("<span title=" in m.value for m in at.markdown) == 5, "one row of token chips per tokenizer"


def check_decoding(at):
    names = [m.value for m in at.markdown if m.value.startswith("**")]
    assert names[:4] == ["**greedy**", "**beam 5**", "**sampling t=0.7 top-k 50**", "**nucleus top-p 0.9**"]
    assert at.button(key="dec.run").label == "Generate"


def check_rag(at):
    from backends.jobs import shared_runner

    assert [tab.label for tab in at.tabs][:4] == [EN[f"rag.tab.{k}"] for k in ("documents", "chat", "retrieval", "evaluate")]
    job = shared_runner().get(at.session_state["rag.index_job"])  # the sample is indexed on arrival
    assert job.wait(300) and job.error is None
    at.run()
    collection = at.session_state["rag.collection"]
    assert len(collection.chunks) > 5
    assert EN["rag.collection_title"].format(n=len(collection.chunks), docs=1) in _texts(at) + str(
        [s.value for s in at.subheader])


def check_lora(at):
    assert at.success[0].value == "201 examples ready."
    preview = at.dataframe[0].value
    assert list(preview.columns[:2]) == ["prompt", "response"] and preview["response"].str.startswith("Arr!").all()
    assert any("<|im_start|>assistant" in c.value for c in at.code), "the formatted example"
    assert {m.label for m in at.metric} >= {"Min tokens", "Max tokens", "Median tokens"}


PAGE_CHECKS = {"home": check_home, "attention": check_attention, "tokenizers": check_tokenizers,
               "decoding": check_decoding, "rag": check_rag, "lora": check_lora}


def test_every_registered_page_has_a_check():
    assert set(PAGE_CHECKS) == {p.key for p in PAGES}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.key)
def test_page_renders_its_content(page, open_page):
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == EN[f"page.{page.key}.title"]
    PAGE_CHECKS[page.key](at)


def test_chinese_ui_translates_the_page_and_sidebar(open_page):
    at = open_page(HOME, **{"app.lang": "zh"})
    assert at.title[0].value == strings("zh")["page.home.title"]
    assert "**1. 基础**" in _texts(at)
    assert at.selectbox(key="app.device_choice").label == "设备"


def test_device_picker_shows_what_auto_resolved_to(open_page):
    at = open_page(HOME)
    picker = at.selectbox(key="app.device_choice")
    assert picker.options[0] == "auto" and "cpu" in picker.options
    assert any("**cpu**" in c.value for c in at.sidebar.caption)


def test_prepare_button_appears_when_the_conversion_is_missing(open_page, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMPG_CACHE_DIR", str(tmp_path))
    at = open_page(HOME)
    table = at.dataframe[0].value
    assert list(table["Ready"]) == [EN["home.needs_prepare"], "✅"]
    assert at.button(key="home.prepare_button").label.startswith("Prepare HuggingFaceTB/SmolLM2-135M-Instruct")


@pytest.mark.slow
def test_prepare_button_converts_smollm2_in_the_background(open_page, tmp_path, monkeypatch):
    from backends.jobs import shared_runner

    monkeypatch.setenv("LLMPG_CACHE_DIR", str(tmp_path))
    at = open_page(HOME)
    at.button(key="home.prepare_button").click().run()
    job = shared_runner().get(at.session_state["home.prepare_job"])
    assert not job.done, "the conversion runs off the UI thread"
    assert any(p.proto.text.startswith("Converting the GGUF") for p in at.get("progress"))
    assert job.wait(300) and job.status == "done"
    at.run()
    assert any(s.value.startswith("Ready: converted in") for s in at.success)
    assert list(at.dataframe[0].value["Ready"]) == ["✅", "✅"]
    assert (tmp_path / "models" / "smollm2-135m-instruct" / "model.safetensors").exists()


def test_loaded_models_panel_lists_and_unloads(open_page):
    cache = shared_cache()
    entry = cache.get("all-minilm-l6-v2")
    key = entry.key
    del entry
    at = open_page(HOME)
    panel = "\n".join(m.value for m in at.sidebar.markdown)
    assert "`all-minilm-l6-v2`" in panel and "**cpu**" in panel
    button_key = f"app.unload.{key.model}.{key.device}.{key.dtype}.{key.variant}"
    at.button(key=button_key).click().run()
    assert key not in cache.keys()
    assert button_key not in [b.key for b in at.sidebar.button]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.key)
def test_every_page_renders_in_chinese(page, open_page):
    at = open_page(page, **{"app.lang": "zh"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == strings("zh")[f"page.{page.key}.title"]
