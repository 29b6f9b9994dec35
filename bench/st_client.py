"""A small protocol-level Streamlit client: one session over `/_stcore/stream`, as the browser talks.

What the frontend does, and this client after it (Streamlit 1.67, its own protobuf messages):
- connect the websocket with the "streamlit" subprotocol; the server creates a session;
- send a BackMsg `rerun_script` whose ClientState carries the page (`page_name` = the page's url
  path on the first run, then `page_script_hash`), the query string and the WidgetStates;
- read ForwardMsgs: `new_session` starts a run (full or fragment), `delta` messages put an element
  or a block at `metadata.delta_path`, `session_status_changed` says whether a script runs,
  `script_finished` ends a run, `auto_rerun` asks the client to rerun a fragment every `interval`
  seconds (the pages' job polling) until `stop_auto_rerun`;
- after a full run, elements the run did not touch are stale and dropped (what the frontend does).

A widget is found by its user key: its element id is "$$ID-<hash>-<key>". Values the client set
are sent on every rerun (as the frontend sends every widget's state); a button press or a chat
message is a trigger, sent once. Nothing here imports the app: it only speaks the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.Common_pb2 import ChatInputValue
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

ID_PREFIX = "$$ID-"
# Fields of an element's proto that hold what a reader sees.
TEXT_FIELDS = ("body", "label", "text", "message", "code_text", "value")


class SessionError(RuntimeError):
    """The websocket failed, the server closed it, or a wait ran out."""


@dataclass
class Node:
    """One element or block on the page, at its delta path."""

    path: tuple[int, ...]
    kind: str  # "element" or "block"
    type: str  # the proto's oneof: "markdown", "heading", "button", "tab_container", ...
    proto: Any  # the Element or Block message
    run_id: str
    fragment_id: str

    @property
    def sub(self):
        return getattr(self.proto, self.type) if self.type else None

    @property
    def widget_id(self) -> str | None:
        sub = self.sub
        wid = getattr(sub, "id", "") if sub is not None and hasattr(sub, "id") else ""
        if not wid and self.kind == "block":
            wid = getattr(self.proto, "id", "")
        return wid if wid.startswith(ID_PREFIX) else None

    @property
    def key(self) -> str | None:
        """The widget's user key ("None" in the id when the widget has none)."""
        wid = self.widget_id
        if wid is None:
            return None
        parts = wid.split("-", 2)
        return parts[2] if len(parts) == 3 and parts[2] != "None" else None

    @property
    def text(self) -> str:
        sub = self.sub
        if sub is None:
            return ""
        if self.type == "exception":
            return "\n".join([f"{sub.type}: {sub.message}", *sub.stack_trace])
        pieces = [getattr(sub, name) for name in TEXT_FIELDS if hasattr(sub, name)]
        return "\n".join(p for p in pieces if isinstance(p, str) and p)


@dataclass
class Event:
    t: float  # seconds since the session was created
    what: str  # "new_session", "finished", "delta", "status", "closed", ...
    detail: str = ""


@dataclass
class Session:
    """One browser tab's worth of Streamlit session, spoken at the protocol level."""

    url: str  # http://host:port
    page: str = ""  # the page's url path ("decoding"); "" for the default page
    query: str = ""  # the query string, without "?"
    headers: dict[str, str] = field(default_factory=dict)  # extra handshake headers (Cookie, Origin)
    nodes: dict[tuple[int, ...], Node] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def __post_init__(self):
        self.t0 = time.monotonic()
        self.ws = None
        self.page_hash = ""
        self.pages: dict[str, str] = {}  # url path -> page script hash, from st.navigation
        self.run_id = ""
        self.run_fragments: tuple[str, ...] = ()
        self.running = False
        self.finished_runs = 0  # full runs finished (successfully or with a compile error)
        self.fragment_runs = 0
        self.values: dict[str, WidgetState] = {}  # widget id -> last value set, resent every rerun
        self.closed: str | None = None
        self.exceptions: list[str] = []  # script-level exceptions (session_event), besides elements
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task | None = None
        self._auto: dict[str, asyncio.Task] = {}
        self.on_message: Callable[[ForwardMsg, float], None] | None = None

    # -- connection -------------------------------------------------------------------------
    async def connect(self, open_timeout: float = 60) -> None:
        ws_url = self.url.replace("http://", "ws://").replace("https://", "wss://") + "/_stcore/stream"
        try:
            # No client pings (a browser sends none); no frame size cap (plotly specs, tables).
            self.ws = await websockets.connect(
                ws_url,
                subprotocols=["streamlit"],
                max_size=None,
                ping_interval=None,
                open_timeout=open_timeout,
                additional_headers=self.headers or None,
            )
        except (TimeoutError, OSError, websockets.WebSocketException) as exc:
            raise SessionError(f"websocket connect failed: {exc!r}") from exc
        self._log("connected")
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        for task in self._auto.values():
            task.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def _log(self, what: str, detail: str = "") -> None:
        self.events.append(Event(self.elapsed(), what, detail))

    # -- sending ----------------------------------------------------------------------------
    async def rerun(self, fragment_id: str = "", auto: bool = False, triggers: list[WidgetState] = ()) -> None:
        """Send rerun_script with every value set so far plus one-shot triggers (button, chat)."""
        if self.ws is None:
            raise SessionError("not connected")
        state = ClientState(
            query_string=self.query,
            page_script_hash=self.page_hash,
            page_name="" if self.page_hash else self.page,
            fragment_id=fragment_id,
            is_auto_rerun=auto,
        )
        trigger_ids = {t.id for t in triggers}
        state.widget_states.widgets.extend(v for k, v in self.values.items() if k not in trigger_ids)
        state.widget_states.widgets.extend(triggers)
        msg = BackMsg(rerun_script=state)
        try:
            await self.ws.send(msg.SerializeToString())
        except websockets.WebSocketException as exc:
            raise SessionError(f"send failed: {exc!r}") from exc
        self._log("rerun", fragment_id or "full")

    async def goto(self, url_path: str, timeout: float) -> None:
        """Switch to another page of the app's navigation, as a click on its link; waits for its run."""
        if url_path not in self.pages:
            raise KeyError(f"no page {url_path!r} in the navigation ({sorted(self.pages)})")
        self.page_hash, self.page = self.pages[url_path], url_path
        self.values.clear()  # the other page's widgets are not on this one
        await self.run(timeout)

    def widget(self, key: str) -> Node:
        for node in self.nodes.values():
            if node.key == key:
                return node
        raise KeyError(f"no widget with key {key!r} on the page (keys: {sorted(self.widget_keys())})")

    def widget_keys(self) -> set[str]:
        return {n.key for n in self.nodes.values() if n.key}

    def set(self, key: str, value: Any) -> None:
        """Set a widget's value (kept and resent with every rerun), in the proto its kind expects."""
        node = self.widget(key)
        ws = WidgetState(id=node.widget_id)
        kind = node.type
        if kind in ("number_input",):
            ws.double_value = float(value)
        elif kind in ("slider",):
            values = value if isinstance(value, (list, tuple)) else [value]
            ws.double_array_value.data.extend(float(v) for v in values)
        elif kind in ("checkbox",) or isinstance(value, bool):
            ws.bool_value = bool(value)
        elif kind in ("multiselect",) or isinstance(value, (list, tuple)):
            ws.string_array_value.data.extend(str(v) for v in value)
        else:  # text_input, text_area, selectbox, radio (their shown label), tab_container (a tab's label)
            ws.string_value = str(value)
        self.values[node.widget_id] = ws

    async def click(self, key: str) -> None:
        node = self.widget(key)
        await self.rerun(triggers=[WidgetState(id=node.widget_id, trigger_value=True)])

    async def chat(self, key: str, text: str) -> None:
        node = self.widget(key)
        await self.rerun(triggers=[WidgetState(id=node.widget_id, chat_input_value=ChatInputValue(data=text))])

    # -- receiving --------------------------------------------------------------------------
    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = ForwardMsg()
                msg.ParseFromString(raw)
                now = self.elapsed()
                self._handle(msg)
                if self.on_message is not None:
                    self.on_message(msg, now)
                async with self._changed:
                    self._changed.notify_all()
        except websockets.ConnectionClosed as exc:
            self.closed = f"websocket closed: {exc!r}"
        except Exception as exc:  # a dead reader must wake its waiters with the reason
            self.closed = f"reader failed: {exc!r}"
        else:
            self.closed = "websocket closed by the server"
        self._log("closed", self.closed)
        async with self._changed:
            self._changed.notify_all()

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            if not self.pages:  # without st.navigation, the run's script is the page
                self.page_hash = msg.new_session.page_script_hash or self.page_hash
            self.run_id = msg.metadata.run.script_run_id if msg.metadata.HasField("run") else ""
            self.run_fragments = tuple(msg.metadata.run.fragment_ids) if msg.metadata.HasField("run") else ()
            self.running = True
            if not self.run_fragments:  # a full run draws its fragments afresh: their polls start again
                for task in self._auto.values():
                    task.cancel()
                self._auto.clear()
            self._log("new_session", ",".join(self.run_fragments) or "full")
        elif kind == "delta":
            self._delta(msg)
        elif kind == "session_status_changed":
            self.running = msg.session_status_changed.script_is_running
            self._log("status", "running" if self.running else "idle")
        elif kind == "script_finished":
            status = msg.script_finished
            # A fragment run sends no session_status_changed at its end: its script_finished is the end.
            self.running = status == ForwardMsg.FINISHED_EARLY_FOR_RERUN
            if status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                self.fragment_runs += 1
                self._drop_stale(fragments=set(self.run_fragments))
                self._log("fragment_finished")
            elif status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                self._log("finished_early")
            else:
                self.finished_runs += 1
                if status == ForwardMsg.FINISHED_SUCCESSFULLY and not self.run_fragments:
                    self._drop_stale(fragments=None)
                self._log("finished", ForwardMsg.ScriptFinishedStatus.Name(status))
        elif kind == "navigation":  # st.navigation names the page it ran: later reruns ask for it by hash
            self.page_hash = msg.navigation.page_script_hash
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            self._start_auto(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids or list(self._auto):
                task = self._auto.pop(fid, None)
                if task is not None:
                    task.cancel()
        elif kind == "session_event":
            event = msg.session_event
            which = event.WhichOneof("type")
            if which == "script_compilation_exception":
                self.exceptions.append(event.script_compilation_exception.message)
            self._log("session_event", which or "")
        elif kind == "page_not_found":
            self.exceptions.append(f"page not found: {msg.page_not_found.page_name!r}")

    def _delta(self, msg: ForwardMsg) -> None:
        delta = msg.delta
        path = tuple(msg.metadata.delta_path)
        which = delta.WhichOneof("type")
        if which == "new_element":
            el = delta.new_element
            node = Node(path, "element", el.WhichOneof("type") or "", el, self.run_id, delta.fragment_id)
        elif which == "add_block":
            block = delta.add_block
            old = self.nodes.get(path)
            node = Node(path, "block", block.WhichOneof("type") or "", block, self.run_id, delta.fragment_id)
            if old is not None and old.kind == "block" and old.type != node.type:
                self._drop_under(path)  # a different container here: its old children go
        else:  # arrow_add_rows and the like change no element this client reads
            return
        self.nodes[path] = node
        if node.type == "exception":
            self._log("exception", node.text[:300])

    def _drop_under(self, path: tuple[int, ...]) -> None:
        n = len(path)
        for p in [p for p in self.nodes if len(p) > n and p[:n] == path]:
            del self.nodes[p]

    def _drop_stale(self, fragments: set[str] | None) -> None:
        """After a run, what it did not (re)draw is gone: for a fragment run, only that fragment's."""
        for path, node in list(self.nodes.items()):
            if node.run_id == self.run_id:
                continue
            if fragments is None or node.fragment_id in fragments:
                del self.nodes[path]

    def _start_auto(self, fragment_id: str, interval: float) -> None:
        old = self._auto.pop(fragment_id, None)
        if old is not None:
            old.cancel()

        async def tick():
            while True:
                await asyncio.sleep(interval)
                if self.running or self.ws is None:  # no pile-up of polls behind a run (as the frontend)
                    continue
                with contextlib.suppress(SessionError):
                    await self.rerun(fragment_id=fragment_id, auto=True)

        self._auto[fragment_id] = asyncio.create_task(tick())

    # -- waiting and reading ----------------------------------------------------------------
    async def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str = "condition") -> Any:
        """Wait until predicate() is truthy (checked after every message); its value is returned."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                if self.closed:
                    raise SessionError(f"{self.closed} while waiting for {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SessionError(f"timed out after {timeout:.0f} s waiting for {what}")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)

    async def run(self, timeout: float, **rerun) -> None:
        """Send a rerun (or nothing when rerun is empty and the caller sent one) and wait for its full run's end."""
        before = self.finished_runs
        await self.rerun(**rerun)
        await self.wait_for(lambda: self.finished_runs > before, timeout, "the run to finish")

    async def open(self, timeout: float) -> None:
        """Connect and run the page once, as a browser opening its url."""
        await self.connect()
        await self.run(timeout)

    def elements(self, type_: str | None = None) -> list[Node]:
        return [n for _, n in sorted(self.nodes.items()) if type_ is None or n.type == type_]

    def texts(self) -> list[str]:
        return [n.text for n in self.elements() if n.text]

    def find_text(self, needle: str, type_: str | None = None) -> Node | None:
        return next((n for n in self.elements(type_) if needle in n.text), None)

    def heading(self) -> str | None:
        node = next((n for n in self.elements("heading")), None)
        return node.sub.body if node is not None else None

    def errors(self) -> list[str]:
        """Exception elements and script-level exceptions: what a user would see as a crash."""
        found = [n.text for n in self.elements("exception")] + list(self.exceptions)
        return found

    def tab_labels(self, key: str) -> list[str]:
        """The labels of a keyed st.tabs: its tab blocks sit right under its container."""
        container = self.widget(key)
        n = len(container.path)
        tabs = [
            node
            for p, node in sorted(self.nodes.items())
            if len(p) == n + 1 and p[:n] == container.path and node.type == "tab"
        ]
        return [node.sub.label for node in tabs]


# -- a real server ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(
    script: str | Path,
    cwd: str | Path,
    log_path: str | Path,
    env: dict | None = None,
    timeout: float = 120,
    extra_args: tuple[str, ...] = (),
) -> Server:
    """`streamlit run <script>` on a free port, in a fresh process; returns once /_stcore/health answers."""
    port = free_port()
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        *extra_args,
    ]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=str(cwd), env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(server.url + "/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise SessionError(f"streamlit did not start; see {log_path}: {log_path.read_text()[-2000:]}")
        time.sleep(0.3)


def dump(session: Session) -> str:
    """The page as text, one element a line (for failure messages)."""
    return json.dumps([[list(n.path), n.type, n.key, n.text[:120]] for n in session.elements()], ensure_ascii=False)
