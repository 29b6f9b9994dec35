"""The suite's own cache folder, and a guard that the user's is left alone.

tests/conftest.py calls `start()` before any test module is imported. It makes a fresh folder
for the run (removed at the end) and points at it, for this process and every process the tests
start (they inherit the environment):
- LLMPG_CACHE_DIR: what the app writes (the converted SmolLM2, ConSE class vectors, VQA
  features, RAG embeddings, saved runs, adapters), so every first use runs cold in every run;
- HF_HOME: Hugging Face's own cache, empty, so a hub model the user happens to have cached does
  not change what a test sees (the embedded models are found as installed Python packages,
  backends/models/registry.package_folder, not through this cache);
- LLMPG_VQA_IMAGES=300: the tiny VQA trains on 300 + 75 easy-vqa images, so its features,
  computed cold, take seconds instead of minutes (backends/vision/tiny_vqa/data.py).

The guard watches the folder the app would use without LLMPG_CACHE_DIR ($XDG_CACHE_HOME or
~/.cache, /llm-playground), and the one LLMPG_CACHE_DIR named before the run, if any, two ways:
- an audit hook (sys.addaudithook) records every open, listing, creation, rename or removal of a
  path inside them by this process, reads included, with where it came from; nothing another
  process does can show up here;
- a listing of each tree (type, size, mtime, inode of every entry) taken at the start is compared
  at the end: it also sees what a subprocess wrote there. A bench or `make run` writing there
  during the run shows up too: the message says so.
A touch fails the run (pytest_sessionfinish in tests/conftest.py) and
tests/test_user_cache_untouched.py.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
import threading
from pathlib import Path

from backends.core.paths import ENV_VAR, default_cache_dir

REPO = str(Path(__file__).resolve().parents[1])
PREFIX = "llmpg-tests-"
VQA_IMAGES = "300"
HF_CACHE_VARS = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE", "SENTENCE_TRANSFORMERS_HOME")
# Audited events that name a path, and where in their arguments (docs.python.org: audit events table).
EVENTS = {
    "open": (0,),
    "os.listdir": (0,),
    "os.scandir": (0,),
    "os.walk": (0,),
    "os.mkdir": (0,),
    "os.rmdir": (0,),
    "os.remove": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (0, 1),
    "os.chmod": (0,),
    "os.utime": (0,),
    "os.truncate": (0,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (0, 1),
    "shutil.copytree": (0, 1),
    "shutil.move": (0, 1),
    "glob.glob": (0,),
    "tempfile.mkstemp": (0,),
    "tempfile.mkdtemp": (0,),
}
KEEP = 20  # touches remembered (the first ones tell where it happened)
_armed: list[Guard] = []
_local = threading.local()


def _audit(event: str, args: tuple) -> None:
    if event in EVENTS and _armed:
        for guard in _armed:
            guard.audit(event, args)


sys.addaudithook(_audit)  # once per process; a hook cannot be removed, so it only dispatches


def _callers(count: int = 5) -> list[str]:
    """The innermost frames outside this file, as file:line (relative to the repository when inside it)."""
    found, frame = [], sys._getframe(1)
    while frame is not None and len(found) < count:
        name = frame.f_code.co_filename
        if name != __file__:
            found.append(f"{name.removeprefix(REPO + os.sep)}:{frame.f_lineno}")
        frame = frame.f_back
    return found


def _as_path(value) -> str | None:
    if isinstance(value, int) or value is None:  # a file descriptor
        return None
    try:
        text = os.fsdecode(value)
    except TypeError:
        return None
    return os.path.abspath(text)


def _entry(path: Path) -> tuple:
    try:
        st = path.lstat()
    except OSError:  # gone between the listing and now
        return ()
    size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    return (stat.S_IFMT(st.st_mode), size, st.st_mtime_ns, st.st_ino)


def tree(folder: Path) -> dict[str, tuple] | None:
    """Every entry under `folder` (itself included): type, size (files), mtime, inode; None if absent."""
    _local.busy = True  # the guard's own listing is no touch
    try:
        if not folder.exists():
            return None
        entries = {".": _entry(folder)}
        for top, dirs, files in os.walk(folder):  # symbolic links are listed, not followed
            for name in dirs + files:
                path = Path(top, name)
                entries[str(path.relative_to(folder))] = _entry(path)
        return entries
    finally:
        _local.busy = False


def differences(before: dict | None, after: dict | None, limit: int = 10) -> list[str]:
    if before is None or after is None:
        return [] if before == after else ["the folder was " + ("created" if before is None else "removed")]
    lines = [f"added {name}" for name in sorted(set(after) - set(before))]
    lines += [f"removed {name}" for name in sorted(set(before) - set(after))]
    lines += [f"changed {name}" for name in sorted(set(before) & set(after)) if before[name] != after[name]]
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


class Guard:
    """Watches folders: `arm()` starts recording this process's touches, `problems()` says what changed."""

    def __init__(self, folders: list[Path]):
        self.folders = list(dict.fromkeys(Path(os.path.abspath(f)) for f in folders))
        roots = {str(f) for f in self.folders} | {os.path.realpath(f) for f in self.folders}
        self._roots = tuple(sorted(roots))
        self._prefixes = tuple(r + os.sep for r in self._roots)
        self.touches: list[str] = []
        self.before = {str(f): tree(f) for f in self.folders}

    def arm(self) -> Guard:
        _armed.append(self)
        return self

    def disarm(self) -> None:
        if self in _armed:
            _armed.remove(self)

    def audit(self, event: str, args: tuple) -> None:
        for position in EVENTS[event]:
            path = _as_path(args[position]) if position < len(args) else None
            if path is None or not (path in self._roots or path.startswith(self._prefixes)):
                continue
            if getattr(_local, "busy", False) or len(self.touches) >= KEEP:
                return
            thread = threading.current_thread().name
            self.touches.append(f"{event} {path} (thread {thread}, in {' < '.join(_callers())})")
            return

    def problems(self) -> list[str]:
        found = [f"this process: {touch}" for touch in self.touches]
        for folder in self.folders:
            changes = differences(self.before[str(folder)], tree(folder))
            if changes:
                found.append(
                    f"{folder} changed during the run (a bench or `make run` writing there at the same time "
                    f"would show up here too): " + "; ".join(changes)
                )
        return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(parent: Path) -> None:
    """Remove the folders of earlier runs whose pytest is gone (killed before it could clean up)."""
    for folder in parent.glob(PREFIX + "*"):
        try:
            pid = int((folder / "pid").read_text())
        except (OSError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


class SuiteCache:
    """The run's own folder: `cache` (LLMPG_CACHE_DIR) and `hf_home` (HF_HOME), plus the guard."""

    def __init__(self):
        parent = Path(tempfile.gettempdir())
        sweep_stale(parent)
        watched = [default_cache_dir()]
        if os.environ.get(ENV_VAR):
            watched.append(Path(os.environ[ENV_VAR]))
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
        (self.root / "pid").write_text(str(os.getpid()))
        self.cache = self.root / "llm-playground"
        self.hf_home = self.root / "huggingface"
        self.guard = Guard(watched)
        self.problems: list[str] = []  # what finish() found

    def start(self) -> SuiteCache:
        os.environ[ENV_VAR] = str(self.cache)
        os.environ["HF_HOME"] = str(self.hf_home)
        for name in HF_CACHE_VARS:
            os.environ.pop(name, None)
        os.environ["LLMPG_VQA_IMAGES"] = VQA_IMAGES
        self.guard.arm()
        return self

    def finish(self) -> list[str]:
        """What touched the user's folders (empty when nothing did); removes the run's folder."""
        problems = self.guard.problems()
        self.guard.disarm()
        shutil.rmtree(self.root, ignore_errors=True)
        return problems


def start() -> SuiteCache:
    return SuiteCache().start()
