"""Every UI string exists in both languages, with the same placeholders."""

import ast
import string
from pathlib import Path

from components.i18n import LANGS, strings
from components.page_registry import PAGES, STAGES

ROOT = Path(__file__).resolve().parent.parent


def _literal_keys() -> set[str]:
    keys = set()
    sources = [ROOT / "app.py", *(ROOT / "app_pages").glob("*.py"), *(ROOT / "components").rglob("*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "t"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                keys.add(node.args[0].value)
    return keys


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_keys():
    en, zh = strings("en"), strings("zh")
    assert set(LANGS) == {"en", "zh"}
    assert sorted(set(en) - set(zh)) == [], "missing in zh"
    assert sorted(set(zh) - set(en)) == [], "missing in en"


def test_placeholders_match_and_no_string_is_empty():
    en, zh = strings("en"), strings("zh")
    for key in en:
        assert en[key].strip() and zh[key].strip(), key
        assert _placeholders(en[key]) == _placeholders(zh[key]), key


def test_every_key_used_in_the_code_exists():
    used = _literal_keys()
    assert len(used) > 20
    for page in PAGES:
        used |= {f"page.{page.key}.title", f"page.{page.key}.blurb"}
    for stage in STAGES:
        used |= {f"stage.{stage}", f"stage.{stage}.blurb"}
    missing = sorted(used - set(strings("en")))
    assert missing == []


# Code-like strings that read the same in both languages. Sample prompts are translated too
# (SmolLM2 was trained mostly on English: what it does with a Chinese prompt is part of the lesson).
SAME_IN_BOTH = {"tok.col.roundtrip"}


def test_chinese_strings_are_really_translated():
    en, zh = strings("en"), strings("zh")
    same = [
        k
        for k in en
        if en[k] == zh[k] and any(c.isalpha() for c in en[k]) and len(en[k]) > 12 and k not in SAME_IN_BOTH
    ]
    assert same == []


def test_every_page_has_its_own_locale_files_with_its_title():
    for page in PAGES:
        for lang in LANGS:
            own = ROOT / "assets" / "locales" / lang / f"{page.key}.json"
            assert own.exists(), own
            assert f"page.{page.key}.title" in own.read_text(encoding="utf-8"), own
