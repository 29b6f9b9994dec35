"""In Chinese the decoding and attention pages open on Gemma 3 270M, the offline model that reads and
writes Chinese, and say what each model can do in which language; Home passes on Gemma's terms."""

import pytest

from backends.models.registry import GEMMA3, package_folder
from components.i18n import strings
from components.page_registry import HOME, PAGES

ZH, EN = strings("zh"), strings("en")
DECODING = next(p for p in PAGES if p.key == "decoding")
ATTENTION = next(p for p in PAGES if p.key == "attention")
QUANTIZATION = next(p for p in PAGES if p.key == "quantization")

pytestmark = pytest.mark.skipif(package_folder(GEMMA3) is None, reason="requirements-models.txt installs it")


def cjk(text: str) -> int:
    return sum("\u4e00" <= ch <= "\u9fff" for ch in text)


def captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


def test_chinese_decoding_continues_a_chinese_prompt_with_gemma(open_page):
    at = open_page(DECODING, **{"app.lang": "zh"})
    assert not at.exception
    assert at.selectbox(key="decoding.model").value == GEMMA3.key
    assert at.text_area(key="dec.prompt").value == ZH["dec.prompt_default_base"]
    chat = at.toggle(key="dec.chat")
    assert chat.value is False and chat.disabled, "a base model has no chat template"
    assert ZH["picker.lang.multi"] in captions(at) and ZH["picker.style.base"] in captions(at)
    assert ZH["dec.no_template"] in captions(at)
    first = at.session_state["dec.columns"][0]
    for column in list(at.session_state["dec.columns"])[1:]:
        at.button(key=f"dec.rm.{column['id']}").click().run()
    assert first["config"].strategy == "greedy"
    at.number_input(key="dec.max_new").set_value(12).run()
    at.button(key="dec.run").click().run()
    assert not at.exception
    result = next(iter(at.session_state["dec.results"].values()))
    text = "".join(step.piece for step in result["steps"])
    assert cjk(text) >= 6, text  # the model answers in Chinese


def test_english_decoding_keeps_smollm2_and_says_it_is_english_only_in_chinese(open_page):
    at = open_page(DECODING)
    assert at.selectbox(key="decoding.model").value == "smollm2-135m-instruct"
    assert at.text_area(key="dec.prompt").value == EN["dec.prompt_default"]
    assert at.toggle(key="dec.chat").value is True
    assert EN["picker.lang.en"] in captions(at) and EN["picker.english_only_zh"] not in captions(at)
    zh = open_page(DECODING, **{"app.lang": "zh", "decoding.model": "smollm2-135m-instruct"})
    assert zh.selectbox(key="decoding.model").value == "smollm2-135m-instruct"
    assert ZH["picker.english_only_zh"] in captions(zh)


def test_chinese_attention_opens_on_gemma_and_its_hand_computation_matches(open_page):
    at = open_page(ATTENTION, **{"app.lang": "zh"})
    assert not at.exception
    assert at.selectbox(key="attention.model").value == GEMMA3.key
    assert at.text_area(key="attention.text").value == ZH["attention.text_default"]
    at.session_state["attention.tab"] = ZH["attention.tab.hand"]
    at.run()
    diff = next(m for m in at.metric if m.label == ZH["attention.max_diff"])
    assert any(ZH["attention.match"] in m.value for m in at.markdown)
    assert float(diff.value) < 1e-4


def test_chinese_quantization_defaults_to_gemmas_own_gguf(open_page):
    at = open_page(QUANTIZATION, **{"app.lang": "zh"})
    assert not at.exception
    assert at.selectbox(key="quantization.model").value == GEMMA3.key
    assert "Q4_K_M" in captions(at) + "\n".join(m.value for m in at.markdown)


def test_home_passes_on_gemmas_notice_restrictions_and_terms(open_page):
    for lang in ("en", "zh"):
        at = open_page(HOME, **{"app.lang": lang})
        body = "\n".join(m.value for m in at.markdown)
        assert (
            "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms" in body
        )
        assert "prohibited_use_policy" in body
        assert strings(lang)["home.gemma.download"] in [b.label for b in at.get("download_button")]
