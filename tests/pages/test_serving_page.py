"""The serving page: start the API server from the app, send real requests, read the raw answers."""

import contextlib
import io
import json

import pytest

from backends.serving.app import ServerSettings
from backends.serving.local import ServerThread, free_port, local_server
from backends.serving.snippets import request_body, snippets
from components.i18n import strings
from components.page_registry import PAGES
from tests.backends.test_serving import LM, in_app_greedy, live_server

SERVING = next(p for p in PAGES if p.key == "serving")
EN = strings("en")

# What a browser must see once the page has run (tests/e2e/test_browser.py).
BROWSER_MUST_SHOW = "text=" + EN["serving.snippets.header"]


def check_page(at):
    """On arrival: the server is stopped, and the default chat request is written out as curl, openai and LangChain."""
    assert any(EN["serving.server.stopped"][:30] in i.value for i in at.info)
    code = [c.value for c in at.code]
    assert any(c.startswith("curl http://127.0.0.1:8000/v1/chat/completions") for c in code)
    assert any("client.chat.completions.create(" in c and "What is the capital of France?" in c for c in code)
    assert any("ChatOpenAI(model='smollm2-135m-instruct'" in c for c in code)
    assert at.button(key="serving.send") is not None


@pytest.fixture
def page(open_page):
    local_server().stop()
    yield open_page(SERVING)
    local_server().stop()


def test_start_send_stream_and_stop(page):
    at = page
    at.session_state["serving.port"] = free_port()
    at.button(key="serving.start").click().run()
    assert local_server().running and any("Running on http://127.0.0.1:" in s.value for s in at.success)
    at.number_input(key="serving.max_tokens").set_value(6).run()
    at.button(key="serving.send").click().run()
    answer = at.json[0].value
    answer = json.loads(answer) if isinstance(answer, str) else answer
    assert answer["choices"][0]["message"]["content"] == in_app_greedy("What is the capital of France?", 6)[0]
    assert at.metric[0].value == "200"

    at.toggle(key="serving.stream").set_value(True).run()
    at.button(key="serving.send").click().run()
    events = next(c.value for c in at.code if "data: [DONE]" in c.value)
    assert '"chat.completion.chunk"' in events and "ms] data:" in events
    assert any(t.value == in_app_greedy("What is the capital of France?", 6)[0] for t in at.text)

    # A bad request shows the server's OpenAI-shaped error as it came.
    at.text_area(key="serving.text.chat").set_value("   ").run()
    at.toggle(key="serving.stream").set_value(False).run()
    at.button(key="serving.send").click().run()
    assert at.metric[0].value == "400" and at.warning
    assert "empty" in json.dumps(at.json[0].value)

    at.button(key="serving.stop").click().run()
    assert not local_server().running and at.info


def test_a_busy_port_is_named_and_nothing_breaks(page):
    with ServerThread(ServerSettings(gradio=False)) as url:  # another program holds the port
        port = int(url.rsplit(":", 1)[1])
        page.session_state["serving.port"] = port
        page.button(key="serving.start").click().run()
        assert any(f"port {port}" in e.value and "already in use" in e.value for e in page.error)
        assert not page.exception and not local_server().running


def test_snippets_run_against_a_live_server_and_the_models_endpoint_lists_models():
    with live_server(ServerSettings(gradio=False)) as url:
        body = request_body("chat", LM, "Name a colour.", max_tokens=5, temperature=0)
        code = snippets(url, "chat", body)["openai"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "snippet", "exec"), {})
        assert out.getvalue().startswith(in_app_greedy("Name a colour.", 5)[0])
        stream_code = snippets(url, "chat", request_body("chat", LM, "Name a colour.", 5, 0.0, stream=True))["openai"]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(stream_code, "snippet", "exec"), {})
        assert (
            out.getvalue().startswith(in_app_greedy("Name a colour.", 5)[0]) and "completion_tokens" in out.getvalue()
        )
        for endpoint in ("completions", "embeddings", "models"):
            code = snippets(url, endpoint, request_body(endpoint, LM, "Hi"))
            assert code["curl"].startswith(f"curl {url}/v1/{endpoint}")
            compile(code["openai"], "snippet", "exec")
            compile(code["langchain"], "snippet", "exec")


def test_switching_the_language_keeps_the_request(page):
    page.radio(key="serving.endpoint").set_value("completions").run()
    page.radio(key="app.lang").set_value("zh").run()
    assert page.title[0].value == strings("zh")["page.serving.title"]
    assert page.radio(key="serving.endpoint").value == "completions"
    assert page.text_input(key="serving.url").value == "http://127.0.0.1:8000"
    assert any(c.value.startswith("curl http://127.0.0.1:8000/v1/completions") for c in page.code)
