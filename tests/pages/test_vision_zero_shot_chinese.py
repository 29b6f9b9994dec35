"""A Chinese-speaking learner on the vision page's zero-shot tab (ConSE is English-only): the labels
stay English and the page says why in Chinese, Chinese labels get a warning in Chinese, and a tie
between 猫 and 狗 (the same [UNK] vector) names no "best label"."""

from components.i18n import strings
from components.page_registry import PAGES

from .plotly_helpers import figures, values

VISION = next(p for p in PAGES if p.key == "vision")
ZH = strings("zh")


def _bars(at):
    fig = next(f for f in figures(at) if f.layout.title.text.startswith(ZH["vision.zs.chart"].split("（")[0]))
    return dict(zip(fig.data[0].y, values(fig.data[0].x)))


def test_chinese_mode_keeps_english_labels_says_why_and_warns_about_chinese_ones(open_page):
    at = open_page(VISION, query={"lang": "zh"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="vision.zs.labels").value == "cat, dog, car, coffee, rocket"
    assert ZH["vision.zs.english_only"] in [i.value for i in at.info]
    assert any(s.value.startswith("最佳标签：“cat”") for s in at.success)
    assert not at.warning

    at.text_input(key="vision.zs.labels").set_value("猫, 狗, 汽车, 咖啡, 火箭").run()
    probs = _bars(at)
    assert abs(probs["猫"] - probs["狗"]) < 1e-6  # the same vector: no winner to name
    assert not at.success, [s.value for s in at.success]
    shown = [w.value for w in at.warning]
    assert ZH["vision.zs.cjk.conse"].format(labels="猫、狗、汽车、咖啡、火箭") in shown
    assert any(w.startswith("没有明确的赢家") and "“猫”" in w and "“狗”" in w for w in shown), shown

    at.text_input(key="vision.zs.labels").set_value("猫").run()
    assert at.error[0].value == ZH["vision.zs.error.too_few"].format(got="'猫'")
    at.text_input(key="vision.zs.labels").set_value("cat, dog").run()
    at.text_area(key="vision.zs.templates").set_value("a photo of a cat").run()
    assert at.error[0].value == ZH["vision.zs.error.bad_template"].format(template="'a photo of a cat'")
