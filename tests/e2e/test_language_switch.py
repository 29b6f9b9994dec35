"""Switching the language redraws the option widgets' chosen labels in the new language (Chromium).

Before components/option_labels.py, after English -> 简体中文 on the vision page the radios showed no
option selected and the sample selectbox still read "Chelsea the cat" among Chinese options: the
browser keeps a radio's or selectbox's value as its label, under an id the key fixes."""

import time

import pytest

from components.i18n import strings

from .conftest import shoot, wait_until_idle

pytestmark = pytest.mark.e2e
EN, ZH = strings("en"), strings("zh")
SAMPLE = '[data-testid="stMain"] .st-key-vision-zs-sample input'


def _chosen(page) -> tuple[list[list[str]], str, list[str]]:
    """(each main radio's checked labels, the sample selectbox's text, its options when opened).

    Waits for both radios to show a checked option first: under a loaded machine (the CI run) the
    sample selectbox was found while the radios were not yet in the page, and the list came back
    empty."""
    page.wait_for_function(
        """() => document.querySelectorAll('[data-testid="stMain"] [data-testid="stRadio"]'
        + ' label:has(input:checked)').length >= 2""",
        timeout=60_000,
    )
    wait_until_idle(page)
    radios = page.locator('[data-testid="stMain"] [data-testid="stRadio"]').all()
    checked = [r.locator("label:has(input:checked)").all_inner_texts() for r in radios]
    shown = page.locator(SAMPLE).input_value()
    page.locator(SAMPLE).click()
    page.wait_for_selector('[role="option"]')
    options = page.locator('[role="option"]').all_inner_texts()
    page.keyboard.press("Escape")
    return checked, shown, options


def _switch(page, language: str) -> None:
    page.locator('[data-testid="stSidebar"]').get_by_text(language, exact=True).click()
    time.sleep(0.5)
    wait_until_idle(page)


def test_switching_the_language_relabels_the_chosen_options(page, app_url):
    page.goto(f"{app_url}/vision")
    wait_until_idle(page)
    page.wait_for_selector(SAMPLE)
    checked, shown, options = _chosen(page)
    assert checked == [[EN["vision.method.conse"]], [EN["vision.image.source.sample"]]]
    assert shown == EN["vision.sample.chelsea"] and shown in options

    _switch(page, "简体中文")
    page.wait_for_selector(f'h1:has-text("{ZH["page.vision.title"].split("：")[0]}")')
    checked, shown, options = _chosen(page)
    shoot(page, "vision-switched-to-zh")
    assert checked == [[ZH["vision.method.conse"]], [ZH["vision.image.source.sample"]]], checked
    assert shown == ZH["vision.sample.chelsea"] and shown in options, (shown, options)

    _switch(page, "English")
    checked, shown, _ = _chosen(page)
    assert checked == [[EN["vision.method.conse"]], [EN["vision.image.source.sample"]]], checked
    assert shown == EN["vision.sample.chelsea"]
