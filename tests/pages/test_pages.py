"""One AppTest run per registered page, each checking what that page must show.

A page declares its own checks in its test module (see tests/page_checks.py); they are
discovered from the page registry, so adding a page edits no list here.
"""

import pytest

from backends.models.cache import shared_cache
from components.i18n import strings
from components.page_registry import HOME, PAGES
from tests.page_checks import page_checks

from .plotly_helpers import texts

EN = strings("en")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.key)
def test_every_registered_page_declares_its_checks(page):
    module = page_checks(page.key)
    assert callable(getattr(module, "check_page", None)), f"{module.__name__} declares no check_page(at)"
    assert isinstance(getattr(module, "BROWSER_MUST_SHOW", None), str), f"{module.__name__} lacks BROWSER_MUST_SHOW"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.key)
def test_page_renders_its_content(page, open_page):
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == EN[f"page.{page.key}.title"]
    page_checks(page.key).check_page(at)


def test_chinese_ui_translates_the_page_and_sidebar(open_page):
    at = open_page(HOME, **{"app.lang": "zh"})
    assert at.title[0].value == strings("zh")["page.home.title"]
    assert "**1. 基础**" in texts(at)
    assert at.selectbox(key="app.device_choice").label == "设备"


def test_device_picker_shows_what_auto_resolved_to(open_page):
    at = open_page(HOME)
    picker = at.selectbox(key="app.device_choice")
    assert picker.options[0] == "auto" and "cpu" in picker.options
    assert any("**cpu**" in c.value for c in at.sidebar.caption)


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


def test_a_registered_page_without_its_test_module_fails():
    with pytest.raises(AssertionError, match="tests/pages/test_nosuchpage_page.py is missing"):
        page_checks("nosuchpage")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.key)
def test_a_link_with_lang_zh_opens_every_page_in_chinese(page, open_page):
    at = open_page(page, query={"lang": "zh"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == strings("zh")[f"page.{page.key}.title"]
    assert at.query_params["lang"] == "zh", "the language stays in the link"


def test_present_mode_from_the_link_enlarges_the_text(open_page):
    at = open_page(HOME, query={"present": "1"})
    assert at.toggle(key="app.present").value is True
    assert any("font-size" in h.proto.body for h in at.get("html"))
    at.toggle(key="app.present").set_value(False).run()
    assert "present" not in at.query_params
    assert not any("font-size" in h.proto.body for h in at.get("html"))
