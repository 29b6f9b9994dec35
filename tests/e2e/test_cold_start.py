"""Six learners open six pages at once on a freshly started server (the launcher, a cold cache).

The issue: on a fresh `streamlit run app.py`, six people opening pages at once saw empty pages for
33-37 s (the heavy imports ran in the first page run) and their first results after 41-127 s. Now
scripts/launch.py imports the libraries before the port opens and warms the models on a thread
after it, with the status in the sidebar. Here:
- the server is started the way `make run` starts it, with its own empty LLMPG_CACHE_DIR (under
  the run's folder), so SmolLM2's conversion, MiniLM, ConSE's class vectors... all warm cold;
- as soon as it answers its health check, six browser contexts (six sessions) open six pages at once;
- each page's title and one of its controls must reach the browser within 5 s of the tab asking
  for its page (the `rerun_script` message its frontend sends once connected): the messages are
  read off each tab's own websocket, timed by Chromium's network stack (CDP), and the time from
  the handshake is reported too;
- when the browser drew them is timed as well (a MutationObserver notes `performance.now()` from
  the start of the page's load) and reported, not held to 5 s: a fresh Chromium tab spends 4-5 s
  of CPU loading and running Streamlit's frontend (measured with the server idle), so six of them
  need most of a 2-core machine's first 15 s, which they share with the server; in a class each
  learner's own machine does that work;
- the decoding page, whose model is still converting, shows the warm-up in its sidebar;
- then each page's main action runs (Generate, a RAG question) or its default result is awaited,
  and every page must show it with no exception and no error.
Timings go to artifacts/e2e/cold_start.json and the test's output.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from components.i18n import strings

from .conftest import ARTIFACTS, ROOT, _free_port, shoot, wait_until_idle

pytestmark = pytest.mark.e2e
EN = strings("en")
SENT_WITHIN_S = 5.0
RESULTS_WITHIN_S = 240
WARMING = EN["app.warm.running"].split(":")[0]
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'

# Notes when the page's title (an h1 holding it) and a control (a CSS selector) are first in the
# document, in ms since this page started loading.
WATCH = """
(() => {
  const want = %s;
  const seen = (window.__drawn = {});
  const check = () => {
    const now = performance.now();
    if (seen.title === undefined && [...document.querySelectorAll('h1')].some(h => h.textContent.includes(want.title)))
      seen.title = now;
    if (seen.control === undefined && document.querySelector(want.control)) seen.control = now;
    return seen.title !== undefined && seen.control !== undefined;
  };
  const observer = new MutationObserver(() => { if (check()) observer.disconnect(); });
  observer.observe(document, {childList: true, subtree: true});
})();
"""


class Wire:
    """What the server sent one tab over its websocket, timed by Chromium's network stack (CDP).

    `times`: seconds from the tab's first request for a script run (the BackMsg `rerun_script` its
    frontend sends once connected) to the first frame with the page's title, and with one of its
    main-area controls; `connect_times`: the same from the websocket handshake, which adds the time
    the tab's own frontend took to send that request."""

    def __init__(self, page, title: str, control: str):
        self.title, self.control = title, control
        self.connected: float | None = None
        self.asked: float | None = None
        self.warm_status: float | None = None
        self.times: dict[str, float] = {}
        self.connect_times: dict[str, float] = {}
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.on("Network.webSocketHandshakeResponseReceived", self._connected)
        self.cdp.on("Network.webSocketFrameSent", self._sent)
        self.cdp.on("Network.webSocketFrameReceived", self._received)
        self.cdp.send("Network.enable")

    def _connected(self, event: dict) -> None:
        if self.connected is None:
            self.connected = event["timestamp"]

    def _sent(self, event: dict) -> None:
        if self.asked is not None or event["response"]["opcode"] != 2:
            return
        msg = BackMsg()
        msg.ParseFromString(base64.b64decode(event["response"]["payloadData"]))
        if msg.WhichOneof("type") == "rerun_script":
            self.asked = event["timestamp"]

    def _received(self, event: dict) -> None:
        frame = event["response"]
        if self.asked is None or frame["opcode"] != 2 or (len(self.times) == 2 and self.warm_status):
            return
        msg = ForwardMsg()
        msg.ParseFromString(base64.b64decode(frame["payloadData"]))
        if msg.WhichOneof("type") != "delta" or msg.delta.WhichOneof("type") != "new_element":
            return
        element = msg.delta.new_element
        if msg.metadata.delta_path[0] != 0:  # the sidebar (1): widgets of its own, and the warm-up
            if element.WhichOneof("type") == "progress" and WARMING in element.progress.text:
                self.warm_status = event["timestamp"] - self.asked
            return
        kind = element.WhichOneof("type")
        what = "title" if kind == "heading" and self.title in element.heading.body else "control"
        if what == "title" or kind == self.control:
            self.times.setdefault(what, event["timestamp"] - self.asked)
            self.connect_times.setdefault(what, event["timestamp"] - self.connected)


@dataclass
class Visit:
    key: str
    path: str
    control: str  # the proto type of one of the page's own widgets ("text_area", "selectbox"...)
    drawn: str  # a CSS selector for it in the browser
    result: str  # a Playwright selector: what the page shows once its main action has run
    page: object = None
    wire: Wire | None = None
    opened: float = 0.0
    times: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        return EN[f"page.{self.key}.title"]


def visits() -> list[Visit]:
    return [
        Visit(
            "tokenizers",
            "/tokenizers",
            "text_area",
            '[data-testid="stTextArea"] textarea',
            '[data-testid="stMarkdownContainer"] span[title^="#0 · id"]',
        ),
        Visit(
            "attention",
            "/attention",
            "selectbox",
            '[data-testid="stMain"] [data-testid="stSelectbox"]',
            '[data-testid="stPlotlyChart"] .main-svg',
        ),
        Visit(
            "decoding",
            "/decoding",
            "number_input",
            '[data-testid="stNumberInput"] input',
            '[data-testid="stCaptionContainer"]:has-text("tokens/s")',
        ),
        Visit(
            "rag",
            "/rag",
            "slider",
            '[data-testid="stSlider"]',
            f'[data-testid="stExpander"] summary:has-text("{EN["rag.prompt"]}")',
        ),
        Visit(
            "classifier",
            "/classifier",
            "radio",
            '[data-testid="stMain"] [data-testid="stRadio"] input',
            '[data-testid="stPlotlyChart"] text.gtitle:has-text("Confusion matrix")',
        ),
        Visit(
            "vision",
            "/vision",
            "radio",
            '[data-testid="stMain"] [data-testid="stRadio"] input',
            "text=" + EN["vision.zs.best"].split("{")[0].strip(),
        ),
    ]


def _busy_share(window: float = 1.0) -> float:
    """The share of all cores' time spent busy over `window` seconds (/proc/stat)."""

    def sample():
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    idle0, total0 = sample()
    time.sleep(window)
    idle1, total1 = sample()
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_for_a_quiet_machine(limit_s: float = 120, busy: float = 0.3) -> float:
    """Start the measurement on a quiet machine: in a full run, the server an earlier e2e module
    started (a session fixture) may still be finishing work its pages began, and its threads would
    be timed here as the cold server's. Returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s and _busy_share() > busy:
        pass
    return time.monotonic() - started


@pytest.fixture(scope="module")
def cold_server(suite_cache):
    """`make run`'s launcher on a free port with an empty cache folder; (url, seconds until it answered)."""
    waited = wait_for_a_quiet_machine()
    print(f"waited {waited:.1f} s for a quiet machine")
    port = _free_port()
    cache = suite_cache.root / "cold-start"
    cache.mkdir()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LLMPG_CACHE_DIR": str(cache), "LLMPG_WARM_GEMMA": "0"}
    cmd = [sys.executable, "scripts/launch.py", "--server.port", str(port), "--server.address", "127.0.0.1"]
    cmd += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with open(ARTIFACTS / "cold_start_server.log", "w") as log:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() - started > 240:
                proc.kill()
                pytest.fail(f"the launcher did not start; see {log.name}")
            time.sleep(0.2)
        yield url, time.monotonic() - started
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


INDEXED = '[data-testid="stDataFrame"] [role="gridcell"]:has-text("how_language_models_work.pdf")'


def shown(page, selector: str) -> bool:
    return page.locator(selector).count() > 0


def step_rag(visit: Visit) -> None:
    """Once the sample is indexed (the Documents tab adopts it), ask in the Chat tab."""
    page = visit.page
    box = page.locator('[data-testid="stChatInput"] textarea')
    if box.count():
        box.fill("What does LoRA freeze?")
        box.press("Enter")
        visit.times["asked_s"] = time.monotonic() - visit.opened
    elif shown(page, INDEXED) and shown(page, IDLE):
        page.get_by_role("tab", name=EN["rag.tab.chat"]).click()


def step_decoding(visit: Visit) -> None:
    """Press Generate once the model is loaded (the button is drawn after it) and the run has ended."""
    button = visit.page.get_by_role("button", name=EN["dec.run"])
    if button.count() and shown(visit.page, IDLE):
        button.click()
        visit.times["asked_s"] = time.monotonic() - visit.opened


ACTIONS = {"rag": step_rag, "decoding": step_decoding}


def await_results(plan: list[Visit]) -> None:
    """Round-robin over the pages: act where a page is ready for its action, note when each shows its result."""
    deadline = time.monotonic() + RESULTS_WITHIN_S
    while time.monotonic() < deadline:
        for visit in plan:
            if "drawn_control_s" not in visit.times:
                drawn = visit.page.evaluate("() => window.__drawn")
                if drawn and "title" in drawn and "control" in drawn:
                    visit.times["drawn_title_s"] = drawn["title"] / 1000
                    visit.times["drawn_control_s"] = drawn["control"] / 1000
        waiting = [v for v in plan if "result_s" not in v.times or "drawn_control_s" not in v.times]
        if not waiting:
            return
        for visit in waiting:
            if "result_s" in visit.times:
                continue
            if visit.key in ACTIONS and "asked_s" not in visit.times:
                ACTIONS[visit.key](visit)
            elif shown(visit.page, visit.result):
                visit.times["result_s"] = time.monotonic() - visit.opened
        time.sleep(0.5)
    pytest.fail(f"no result within {RESULTS_WITHIN_S} s on: {[v.key for v in plan if 'result_s' not in v.times]}")


def test_six_pages_at_once_on_a_fresh_server_draw_at_once_then_give_results(browser, cold_server):
    url, ready_s = cold_server
    plan = visits()
    for visit in plan:  # one browser context each: six separate sessions
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(WATCH % json.dumps({"title": visit.title, "control": visit.drawn}))
        visit.page = context.new_page()
        visit.page.set_default_timeout(RESULTS_WITHIN_S * 1000)
        visit.wire = Wire(visit.page, visit.title, visit.control)
    for visit in plan:
        visit.opened = time.monotonic()
        visit.page.goto(url + visit.path, wait_until="commit")
    try:
        await_results(plan)
        for visit in plan:
            wait_until_idle(visit.page)
    finally:
        for visit in plan:
            visit.times |= {f"sent_{what}_s": s for what, s in visit.wire.times.items()}
            visit.times |= {f"sent_{what}_from_connect_s": s for what, s in visit.wire.connect_times.items()}
        report = {
            "server_ready_s": round(ready_s, 1),
            **{v.key: {k: round(s, 2) for k, s in v.times.items()} for v in plan},
        }
        (ARTIFACTS / "cold_start.json").write_text(json.dumps(report, indent=1))
        print("\n" + json.dumps(report))
        for visit in plan:
            shoot(visit.page, f"cold-start-{visit.key}")
    for visit in plan:
        errors = visit.page.locator(ERRORS)
        assert errors.count() == 0, f"{visit.key}: {errors.first.inner_text()[:300]}"
    decoding = next(v for v in plan if v.key == "decoding")
    assert decoding.wire.warm_status is not None, "the sidebar did not show the warm-up while SmolLM2 converted"
    late = {
        v.key: v.wire.times
        for v in plan
        if set(v.wire.times) != {"title", "control"} or max(v.wire.times.values()) > SENT_WITHIN_S
    }
    assert not late, f"title or control sent later than {SENT_WITHIN_S} s after the tab asked for its page: {late}"
    for visit in plan:
        visit.page.context.close()
