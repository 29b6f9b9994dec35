"""Where a registered page declares what it must show: its own test module,
tests/pages/test_<key>_page.py, with `check_page(at)` (AppTest) and `BROWSER_MUST_SHOW`
(a Playwright selector). Found from the page registry, so adding a page edits no test list."""

import importlib
from types import ModuleType


def page_checks(key: str) -> ModuleType:
    """The test module of a registered page, which declares what the page must show."""
    try:
        return importlib.import_module(f"tests.pages.test_{key}_page")
    except ModuleNotFoundError as exc:
        if exc.name != f"tests.pages.test_{key}_page":
            raise
        raise AssertionError(f"page {key!r} is registered but tests/pages/test_{key}_page.py is missing") from exc
