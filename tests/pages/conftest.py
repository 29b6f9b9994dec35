from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components.page_registry import PageInfo

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def open_page():
    """Run app.py (sidebar + navigation) and switch to a registered page, as a user arriving there."""

    def _open(page: PageInfo, timeout: float = 240, query: dict | None = None, **state) -> AppTest:
        """`query`: the link's parameters (?key=value), as a shared link would carry them."""
        at = AppTest.from_file(APP, default_timeout=timeout)
        for key, value in (query or {}).items():
            at.query_params[key] = value
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
        if page.key != "home":
            at.switch_page(page.path).run()
        return at

    return _open
