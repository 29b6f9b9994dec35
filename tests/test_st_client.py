"""bench/st_client.py, the classroom benchmark's websocket client, against real `streamlit run` servers."""

import asyncio
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.st_client import Session, SessionError, dump, start_server
from components.i18n import strings
from components.page_registry import HOME

ROOT = Path(__file__).resolve().parents[1]
EN = strings("en")

TINY_APP = textwrap.dedent("""
    import streamlit as st

    st.title("Tiny")
    name = st.text_input("Name", "world", key="tiny.name")
    times = st.number_input("Times", 1, 10, 2, key="tiny.times")
    if st.button("Greet", key="tiny.go"):
        st.write(f"Hello {name} x{int(times)}")
    tabs = st.tabs(["First", "Second"], key="tiny.tab", on_change="rerun")
    for tab, label in zip(tabs, ("first", "second")):
        if tab.open:
            with tab:
                st.markdown(f"inside the {label} tab")
    if st.button("Fail", key="tiny.fail"):
        raise ValueError("broken on purpose")
    question = st.chat_input("Ask", key="tiny.ask")
    if question:
        st.markdown(f"asked: {question}")
""")


def run(coroutine):
    """asyncio.run in a thread of its own: after the browser tests, Playwright's sync API keeps an event
    loop running in this thread for the rest of the session, and asyncio.run refuses to start there."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "app.py").write_text(TINY_APP)
    server = start_server(folder / "app.py", folder, folder / "streamlit.log", timeout=60)
    yield server
    server.stop()


async def _tiny_session(url):
    session = Session(url)
    try:
        await session.open(timeout=30)
        assert session.heading() == "Tiny"
        assert {"tiny.name", "tiny.times", "tiny.go", "tiny.tab", "tiny.ask"} <= session.widget_keys()
        assert session.find_text("Hello") is None, "nothing greeted before the click"
        assert session.tab_labels("tiny.tab") == ["First", "Second"]
        assert session.find_text("inside the first tab") is not None

        # Values set on widgets travel with the click; the button's trigger fires once.
        session.set("tiny.name", "Ada")
        session.set("tiny.times", 3)
        before = session.finished_runs
        await session.click("tiny.go")
        await session.wait_for(lambda: session.finished_runs > before, 30, "the click's run")
        assert session.find_text("Hello Ada x3", "markdown") is not None, dump(session)

        # The next run keeps the values but not the click: the greeting is stale and dropped.
        session.set("tiny.tab", "Second")
        await session.run(timeout=30)
        assert session.find_text("Hello") is None, dump(session)
        assert session.find_text("inside the second tab") is not None, dump(session)
        assert session.find_text("inside the first tab") is None, dump(session)

        before = session.finished_runs
        await session.chat("tiny.ask", "why?")
        await session.wait_for(lambda: session.finished_runs > before, 30, "the chat's run")
        assert session.find_text("asked: why?") is not None, dump(session)
        assert session.errors() == []

        # An exception in the script reaches the client as an exception element.
        before = session.finished_runs
        await session.click("tiny.fail")
        await session.wait_for(lambda: session.finished_runs > before, 30, "the failing run")
        assert any("ValueError: broken on purpose" in e for e in session.errors()), dump(session)

        with pytest.raises(KeyError, match="no widget with key 'tiny.missing'"):
            session.widget("tiny.missing")
        with pytest.raises(SessionError, match="timed out"):
            await session.wait_for(lambda: False, 0.3, "nothing")
    finally:
        await session.close()


def test_the_client_sets_widgets_clicks_and_reads_the_result(tiny_server):
    run(_tiny_session(tiny_server.url))


def test_two_sessions_keep_their_own_values(tiny_server):
    async def both():
        one, two = Session(tiny_server.url), Session(tiny_server.url)
        try:
            await asyncio.gather(one.open(30), two.open(30))
            one.set("tiny.name", "One")
            two.set("tiny.name", "Two")
            await asyncio.gather(one.click("tiny.go"), two.click("tiny.go"))
            await asyncio.gather(
                one.wait_for(lambda: one.find_text("Hello One"), 30),
                two.wait_for(lambda: two.find_text("Hello Two"), 30),
            )
            assert one.find_text("Hello Two") is None and two.find_text("Hello One") is None
        finally:
            await asyncio.gather(one.close(), two.close())

    run(both())


def test_the_real_app_opens_a_page_by_url_and_switches_pages(tmp_path):
    server = start_server(ROOT / "app.py", ROOT, tmp_path / "streamlit.log", env={"HF_HUB_OFFLINE": "1"})

    async def visit():
        session = Session(server.url, page="tokenizers")  # as a browser opening /tokenizers
        try:
            await session.open(timeout=180)
            assert session.heading() == EN["page.tokenizers.title"], dump(session)
            # A later rerun asks for the page by the hash st.navigation named, and stays there.
            await session.run(timeout=120)
            assert session.heading() == EN["page.tokenizers.title"], dump(session)
            await session.goto(HOME.url_path if HOME.url_path in session.pages else "", timeout=120)
            assert session.heading() == EN["page.home.title"], dump(session)
            assert session.find_text(EN["home.map"]) is not None, dump(session)
            assert session.errors() == []
        finally:
            await session.close()

    try:
        run(visit())
    finally:
        server.stop()
