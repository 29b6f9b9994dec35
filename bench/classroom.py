"""Classroom: N students open the app at once on a freshly started server, each doing one page's main action.

Each N runs on its own fresh `streamlit run app.py` (a new process on a free port, HF_HUB_OFFLINE=1)
with its own empty LLMPG_CACHE_DIR, a temporary folder removed afterwards, so the RAG sessions
embed the sample cold (no rag-embeddings/ entry, no saved collection) and nothing one server wrote
helps the next. Only the converted model files stay warm: the temporary folder's models/ is a
link to the usual cache's models/ (SmolLM2's float32 copy, converted once before any server
starts, in a subprocess), so SmolLM2's one-time conversion is not measured; every import and
model load is. All N sessions connect at the same moment; the six actions are dealt round-robin:
- decoding: open, set max new tokens (--max-new) and press Generate; first token = the first delta
  with a generated token chip after the click; done = that run's end, with chips in the page;
- rag: open (the sample is indexed on arrival), wait for the index, open the Chat tab, ask
  (--question) with --rag-max-new; done = the answer's turn drawn;
- attention: open; done = the first run's end with its heatmap;
- tokenizers: open; done = the first run's end with its token chip rows (the default comparison);
- home: open; done = the first run's end with the learning path;
- lora: open, Train tab, Start; at the first training step press Stop; done = "Stopped after".
An error is any exception element or red st.error seen at any time, "Traceback" text, a websocket
failure, a missing result or a timeout (--timeout per session). Times are seconds from the moment
all sessions connect. p50/p95 are over all sessions: a failed one counts with the time it ended (a
timeout counts as the timeout), so they are lower bounds when there are errors. first_token is
from the click on Generate (what a student waits for after pressing it), over the decoding
sessions that clicked; one that never showed a token counts with the time it ended.

Memory: the server's RSS (psutil, with any children) is sampled every 0.2 s. The baseline is taken
on another fresh server (with its own empty cache folder) after one session of each page opened it
(loading every shared model, the RAG sample indexed; no training run) and all sessions closed: the
median RSS over 3 s after it settles. rss_mb_per_session = (peak RSS in the N run - baseline) / N.
Streamlit keeps a closed session's state for a while, so the warm-up's six sessions (without any
action) may be in the baseline; the bias is small against what an action costs and makes
per-session figures slightly low.

Why a protocol-level client (bench/st_client.py) and not Playwright browser contexts: on this
2-core machine, 30 Chromium contexts (each a renderer running Streamlit's React frontend, plotly
and Arrow decoding) would take most of the CPU the server needs, and the benchmark would measure
the browser rather than the app. The client speaks the browser's own protobuf messages over the
same websocket (rerun with widget states, deltas, script_finished, fragment auto-reruns), so the
server does exactly the work it does for a browser; what is not measured is the browser's
rendering time. tests/e2e/test_browser.py checks the pages in a real Chromium.

Usage: .venv/bin/python bench/classroom.py [--sessions 6 30] [--timeout 600] [--max-new 16] [--only lora ...]
Last line: {"sessions": N, "errors": ..., "p50_s": ..., "p95_s": ..., "first_token_p95_s": ...,
            "rss_mb_peak": ..., "rss_mb_per_session": ...} for the largest N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path, where bench/tokenizers.py would shadow `tokenizers`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import psutil
from streamlit.proto.Alert_pb2 import Alert

from bench.st_client import Session, SessionError, dump, start_server
from components.i18n import strings

EN = strings("en")
ACTIONS = ("decoding", "rag", "attention", "tokenizers", "home", "lora")
LOGS = ROOT / "artifacts" / "bench"
CHIP = re.compile(r'<span title="#\d+ · p=')  # components/decoding.probability_chips
TOKEN_CHIP = re.compile(r'<span title="#0 · id')  # components/token_chips.token_chips
STEP = re.compile(r"^Step (\d+) of")  # lora.train.progress
VERBOSE = False


@dataclass
class Result:
    sid: int
    page: str
    errors: list[str] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)  # phase -> seconds since all sessions started
    note: str = ""
    progress: str = ""  # how far the action got (tokens shown, last training step), for timeouts
    end: float = 0.0  # when the session ended, done or not
    t0: float = field(default_factory=time.monotonic)
    _phase: str = "connect"

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, name: str) -> None:
        self._phase = name
        if VERBOSE:
            print(f"  [{time.monotonic() - self.t0:7.1f} s] session {self.sid} ({self.page}): {name}", flush=True)

    @property
    def ok(self) -> bool:
        return not self.errors and "done" in self.marks

    def mark(self, name: str, t: float) -> None:
        if name not in self.marks and VERBOSE:
            print(f"  [{t:7.1f} s] session {self.sid} ({self.page}): * {name}", flush=True)
        self.marks.setdefault(name, t)


def watch(session: Session, result: Result, t0: float) -> None:
    """Record, as messages arrive, what a student would see: the title, errors, first token, first step."""
    title = EN[f"page.{result.page}.title"]
    tokens: dict[tuple, int] = {}  # decoding: chips per output slot

    def error(text: str) -> None:
        if text not in result.errors:  # a rerun draws the same message again
            result.errors.append(text)

    def on_message(msg, _t):
        now = time.monotonic() - t0
        if msg.WhichOneof("type") != "delta" or msg.delta.WhichOneof("type") != "new_element":
            return
        el = msg.delta.new_element
        kind = el.WhichOneof("type")
        if kind == "heading" and el.heading.body == title:
            result.mark("title", now)
        elif kind == "exception":
            where = next((line.strip() for line in reversed(el.exception.stack_trace) if "File " in line), "")
            error(f"exception in {result.phase}: {el.exception.type}: {el.exception.message[:200]} {where[:160]}")
        elif kind == "alert" and el.alert.format == Alert.ERROR:
            error(f"st.error in {result.phase}: {el.alert.body[:200]}")
        elif kind == "markdown":
            if "Traceback (most recent call last)" in el.markdown.body:
                error(f"traceback text in {result.phase}")
            if "clicked" in result.marks and CHIP.search(el.markdown.body):
                result.mark("first_token", now)
                tokens[tuple(msg.metadata.delta_path)] = len(CHIP.findall(el.markdown.body))
                result.progress = f"{sum(tokens.values())} tokens shown in {len(tokens)} columns"
        elif kind == "progress" and "clicked" in result.marks:
            step = STEP.match(el.progress.text)
            result.progress = el.progress.text
            if step and int(step.group(1)) >= 1:
                result.mark("first_step", now)

    session.on_message = on_message


def markdown_matching(s: Session, pattern: re.Pattern, what: str) -> list:
    """The page's markdown elements that match, or the page dumped in the error when there are none."""
    found = [n for n in s.elements("markdown") if pattern.search(n.sub.body)]
    if not found:
        raise SessionError(f"no {what} in the page: " + dump(s)[:600])
    return found


async def open_page(s: Session, r: Result, timeout: float, t0: float) -> None:
    r.phase = "open"
    await s.connect()
    await s.run(timeout)
    r.mark("loaded", time.monotonic() - t0)


async def decoding(s: Session, r: Result, args, t0: float) -> None:
    await open_page(s, r, args.timeout, t0)
    s.set("dec.max_new", args.max_new)
    r.phase = "generate"
    before = s.finished_runs
    r.mark("clicked", time.monotonic() - t0)
    await s.click("dec.run")
    await s.wait_for(lambda: s.finished_runs > before, args.timeout, "generation to finish")
    r.note = f"{len(markdown_matching(s, CHIP, 'generated tokens'))} columns"


async def rag(s: Session, r: Result, args, t0: float) -> None:
    await open_page(s, r, args.timeout, t0)
    r.phase = "index"
    indexed = EN["rag.collection_title"].split("{")[0]
    await s.wait_for(lambda: not s.running and s.find_text(indexed), args.timeout, "the sample's index")
    r.mark("indexed", time.monotonic() - t0)
    r.phase = "chat tab"
    s.set("rag.tab", EN["rag.tab.chat"])
    s.set("rag.max_new", args.rag_max_new)
    await s.run(args.timeout)
    r.phase = "answer"
    before = s.finished_runs
    r.mark("clicked", time.monotonic() - t0)
    await s.chat("rag.ask", args.question)
    # The page reruns once the turn is stored: the question then sits in a drawn chat turn.
    await s.wait_for(
        lambda: s.finished_runs > before and s.find_text(args.question, "markdown"), args.timeout, "the answer"
    )
    r.note = f"{len(s.elements('chat_message'))} chat blocks"


async def attention(s: Session, r: Result, args, t0: float) -> None:
    await open_page(s, r, args.timeout, t0)
    if not any('"heatmap"' in n.sub.spec for n in s.elements("plotly_chart")):
        raise SessionError("no attention heatmap: " + dump(s)[:600])


async def tokenizers(s: Session, r: Result, args, t0: float) -> None:
    await open_page(s, r, args.timeout, t0)
    r.note = f"{len(markdown_matching(s, TOKEN_CHIP, 'token chips'))} tokenizers"


async def home(s: Session, r: Result, args, t0: float) -> None:
    await open_page(s, r, args.timeout, t0)
    if s.find_text(EN["home.map"]) is None:
        raise SessionError("no learning path: " + dump(s)[:600])


async def lora(s: Session, r: Result, args, t0: float) -> None:
    await open_page(s, r, args.timeout, t0)
    r.phase = "train tab"
    s.set("lora.tab", EN["lora.tab.train"])
    await s.run(args.timeout)
    r.phase = "first step"
    r.mark("clicked", time.monotonic() - t0)
    await s.click("lora.start")
    await s.wait_for(lambda: "first_step" in r.marks, args.timeout, "the first training step")
    r.phase = "stop"
    await s.wait_for(lambda: "lora.stop" in s.widget_keys(), args.timeout, "the Stop button")
    await s.click("lora.stop")
    stopped = EN["lora.train.end.stopped"].split("{")[0]
    await s.wait_for(lambda: s.find_text(stopped), args.timeout, "the run to stop")
    r.note = s.find_text(stopped).text[:60]


DO = {"decoding": decoding, "rag": rag, "attention": attention, "tokenizers": tokenizers, "home": home, "lora": lora}


async def one_session(sid: int, page: str, url: str, args, t0: float) -> Result:
    r = Result(sid, page, t0=t0)
    s = Session(url, page="" if page == "home" else page)
    watch(s, r, t0)
    try:
        await asyncio.wait_for(DO[page](s, r, args, t0), args.timeout)
        r.errors.extend(f"exception on the page: {e[:200]}" for e in s.exceptions)
        r.mark("done", time.monotonic() - t0)
    except (SessionError, KeyError) as exc:
        r.errors.append(f"{r.phase}: {exc}"[:400])
    except TimeoutError:
        r.errors.append(f"{r.phase}: timed out after {args.timeout:.0f} s")
    finally:
        r.end = time.monotonic() - t0
        await s.close()
    if r.errors and r.progress:
        r.errors[-1] += f" (got as far as: {r.progress})"
    return r


class RssSampler:
    """The server's RSS (with children) every `every` seconds, in a thread."""

    def __init__(self, pid: int, every: float = 0.2):
        self.proc, self.every = psutil.Process(pid), every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                rss = self.proc.memory_info().rss + sum(c.memory_info().rss for c in self.proc.children(True))
            except psutil.Error:
                return
            self.samples.append((time.monotonic(), rss / 2**20))
            self._stop.wait(self.every)

    def since(self, t: float) -> list[float]:
        return [mb for when, mb in self.samples if when >= t]

    def stop(self):
        self._stop.set()
        self._thread.join(5)


def server_env(cache: Path) -> dict:
    # the passcode gate stays off (its default); the cache folder is the server's own (cold_cache)
    return {"HF_HUB_OFFLINE": "1", "LLMPG_PASSCODE": "", "LLMPG_CACHE_DIR": str(cache)}


def warm_models_dir() -> Path:
    """The usual cache's models/, every offline GGUF package converted (now if missing); in a subprocess,
    so this client process never imports torch."""
    code = (
        "from backends.core.paths import models_dir\nfrom backends.models import gguf_convert as g, registry as r\n"
        "[g.ensure_converted(s, r.package_folder(s)) for s in r.installed_offline() if s.gguf_file]\n"
        "print(models_dir())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return Path(out.stdout.strip().splitlines()[-1])


@contextmanager
def cold_cache(models: Path):
    """An empty LLMPG_CACHE_DIR for one server but for models/, a link to the converted models."""
    folder = Path(tempfile.mkdtemp(prefix="llmpg-classroom-"))
    try:
        (folder / "models").symlink_to(models, target_is_directory=True)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # removes the link, never what it points to


async def run_all(url: str, n: int, args) -> list[Result]:
    t0 = time.monotonic()
    pages = args.only or ACTIONS
    return await asyncio.gather(*(one_session(i, pages[i % len(pages)], url, args, t0) for i in range(n)))


def baseline_mb(args, cache: Path) -> float:
    """RSS of a fresh server once every page has been opened by one session, all sessions closed."""
    server = start_server(ROOT / "app.py", ROOT, LOGS / "classroom-baseline.log", env=server_env(cache))
    sampler = RssSampler(server.pid)
    try:
        for page in ACTIONS:  # one after another: this is the warm-up, not the measurement
            result = asyncio.run(warm_one(server.url, page, args))
            print(
                f"warm-up: {page} opened in {fmt(result.marks.get('done'))} s"
                + ("" if result.ok else f", FAILED: {result.errors}"),
                flush=True,
            )
        time.sleep(3)
        start = time.monotonic()
        time.sleep(3)
        return statistics.median(sampler.since(start))
    finally:
        sampler.stop()
        server.stop()


async def warm_one(url: str, page: str, args) -> Result:
    """Open one page in one session (its first run) and, for RAG, wait for the sample's index."""
    t0 = time.monotonic()
    r = Result(0, page, t0=t0)
    s = Session(url, page="" if page == "home" else page)
    watch(s, r, t0)
    try:
        await open_page(s, r, args.timeout, t0)
        if page == "rag":
            indexed = EN["rag.collection_title"].split("{")[0]
            await s.wait_for(lambda: not s.running and s.find_text(indexed), args.timeout, "the sample's index")
        r.mark("done", time.monotonic() - t0)
    except (SessionError, TimeoutError) as exc:
        r.errors.append(repr(exc))
    finally:
        await s.close()
    return r


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def report(n: int, results: list[Result], peak: float, base: float) -> dict:
    print(f"\n== {n} sessions at once on a fresh server ==")
    print(
        f"{'page':<11}{'n':>3}{'ok':>4}{'title':>8}{'loaded':>8}{'indexed':>8}{'clicked':>8}{'1st tok':>8}"
        f"{'1st step':>9}{'done':>8}{'action':>8}"
    )
    for page in ACTIONS:
        rs = [r for r in results if r.page == page]
        if not rs:
            continue

        def med(mark, rs=rs):
            vals = [r.marks[mark] for r in rs if mark in r.marks]
            return statistics.median(vals) if vals else None

        action = [r.marks["done"] - r.marks["clicked"] for r in rs if "done" in r.marks and "clicked" in r.marks]
        print(
            f"{page:<11}{len(rs):>3}{sum(r.ok for r in rs):>4}{fmt(med('title')):>8}{fmt(med('loaded')):>8}"
            f"{fmt(med('indexed')):>8}{fmt(med('clicked')):>8}{fmt(med('first_token')):>8}{fmt(med('first_step')):>9}"
            f"{fmt(med('done')):>8}{fmt(statistics.median(action) if action else None):>8}"
        )
    print(
        "medians in s from the moment all sessions connected: title = the page's title arrived, loaded = its "
        "first run ended,\nclicked = the action was sent (Generate, the question, Start training), 1st tok = first "
        "generated token,\n1st step = first LoRA step shown, done = action complete; action = done - clicked"
    )
    errors = [(r.sid, r.page, e) for r in results for e in r.errors]
    for sid, page, e in errors[:40]:
        print(f"  error: session {sid} ({page}): {e}")
    # A session that failed counts with the time it ended (a timeout: the timeout), a lower bound of its time.
    done = [r.marks["done"] if r.ok else r.end for r in results]
    first = [
        r.marks.get("first_token", r.end) - r.marks["clicked"]
        for r in results
        if r.page == "decoding" and "clicked" in r.marks
    ]
    failed = sum(not r.ok for r in results)
    summary = {
        "sessions": n,
        "errors": failed,
        "p50_s": round(pct(done, 0.5), 1) if done else None,
        "p95_s": round(pct(done, 0.95), 1) if done else None,
        "first_token_p95_s": round(pct(first, 0.95), 1) if first else None,
        "rss_mb_peak": round(peak),
        "rss_mb_per_session": round((peak - base) / n, 1),
    }
    print(f"first token after the click (decoding): {', '.join(f'{v:.1f}' for v in sorted(first)) or '-'} s")
    print(
        f"RSS: peak {peak:.0f} MB, baseline {base:.0f} MB (models loaded, no session), "
        f"{(peak - base) / n:.1f} MB per session; {failed} of {n} sessions failed"
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[6, 30])
    parser.add_argument("--timeout", type=float, default=600, help="seconds per session")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=ACTIONS,
        default=None,
        help="deal only these pages (to see what one page's sessions cost); default: all six",
    )
    parser.add_argument("--max-new", type=int, default=16, help="decoding: max new tokens per column")
    parser.add_argument("--rag-max-new", type=int, default=48, help="RAG: max new tokens of the answer")
    parser.add_argument("--question", default="What does LoRA freeze?")
    parser.add_argument("--baseline-mb", type=float, help="skip the baseline server and use this RSS (debugging)")
    parser.add_argument("--verbose", action="store_true", help="print every session's phases as they happen")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    # Ended with SIGTERM (timeout, kill), the servers started here are still stopped by the `finally`s.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    LOGS.mkdir(parents=True, exist_ok=True)
    print(
        f"cpu cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f} "
        "(other work on this machine makes figures pessimistic)"
    )
    models = warm_models_dir()
    print(f"converted models (kept warm, linked into each server's empty cache folder): {models}")
    if args.baseline_mb is None:
        with cold_cache(models) as cache:
            args.baseline_mb = baseline_mb(args, cache)
    base = args.baseline_mb
    print(f"baseline RSS after one session of each page, all closed: {base:.0f} MB")
    summaries = []
    for n in sorted(args.sessions):
        with cold_cache(models) as cache:
            server = start_server(ROOT / "app.py", ROOT, LOGS / f"classroom-{n}.log", env=server_env(cache))
            sampler = RssSampler(server.pid)
            try:
                start = time.monotonic()
                results = asyncio.run(run_all(server.url, n, args))
                peak = max(sampler.since(start))
            finally:
                sampler.stop()
                server.stop()
            embedded = sum(1 for _ in (cache / "rag-embeddings").glob("*/*/meta.json"))
        summaries.append(report(n, results, peak, base))
        print(f"the server's cache folder started empty; it embedded {embedded} file(s) into rag-embeddings/")
        print(f"server log: {LOGS / f'classroom-{n}.log'}; load average now {os.getloadavg()[0]:.1f}")
    print(json.dumps(summaries[-1]))


if __name__ == "__main__":
    main()
