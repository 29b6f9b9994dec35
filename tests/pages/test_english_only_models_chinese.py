"""A Chinese-speaking learner on the pages whose models read English only (issue: what a Chinese
learner meets): the sample inputs stay ones the model can handle and the page says why in Chinese;
the scratch GPT's inspect prompt is a line of the corpus its model learned (a Tang-poem model was
given "ROMEO:", all unknown characters)."""

from backends.core.jobs import shared_runner
from components.i18n import strings
from components.page_registry import PAGES

from .test_classifier_page import SMALL
from .test_scratch_gpt_page import open_tab, small_run

ZH = strings("zh")
EN = strings("en")


def _page(key):
    return next(p for p in PAGES if p.key == key)


def test_lora_says_in_chinese_why_its_data_and_prompts_are_english(open_page):
    at = open_page(_page("lora"), query={"lang": "zh"})
    assert not at.exception, [e.value for e in at.exception]
    assert ZH["lora.english_only"] in [i.value for i in at.info]
    assert "SmolLM2-135M-Instruct" in ZH["lora.english_only"]
    en = open_page(_page("lora"))
    assert EN["lora.english_only"] not in [i.value for i in en.info], "English needs no explanation"


def test_the_classifier_try_box_keeps_an_english_text_and_says_why_in_chinese(open_page):
    at = open_page(_page("classifier"), **SMALL, **{"app.lang": "zh"})
    assert not at.exception, [e.value for e in at.exception]
    assert ZH["classifier.english_only"] in [i.value for i in at.info]
    text = at.text_area(key="classifier.try_text").value
    assert text.isascii() and "flight" in text


def test_a_tang_poem_model_is_inspected_with_a_line_of_tang_poems(open_page):
    at = open_page(_page("scratch_gpt"))
    at.radio(key="scratch_gpt.corpus").set_value("tang_song").run()
    at, _job = small_run(at, steps=10)
    at = open_tab(at, EN["scratch_gpt.tab.inspect"])
    prompt = at.text_input(key="scratch_gpt.prompt.tang_song").value
    assert prompt.startswith("《夜思》") and "床前明月光" in prompt
    assert not any(w.value.startswith("Characters the model never saw") for w in at.warning), [
        w.value for w in at.warning
    ]
    assert shared_runner().get(at.session_state["scratch_gpt.job"]).status == "done"
