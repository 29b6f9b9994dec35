"""`make space-check`: the Hugging Face Space's contract, checked without Docker.

No registry for base images is reachable here, so instead of building the image this runs what the
image would run, the way a Space runs it:
  1. the README's front matter says `sdk: docker`, an `app_port`, `suggested_hardware: cpu-basic`,
     a title, an emoji and a licence; the Dockerfile creates UID 1000, switches to it, and its start
     command (CMD) listens on `app_port` on all interfaces;
  2. the app folder is copied as the image would get it (the working tree minus .dockerignore),
     owned by root and read-only; HOME is a fresh empty folder owned by an unprivileged user;
  3. as that user, with the Dockerfile's ENV (paths under /home/user moved to the fresh HOME) and
     this machine's .venv standing in for the image's Python: the `# space-check: build` step
     (SmolLM2's conversion), then the CMD itself;
  4. headless Chromium opens every registered page on `app_port` and needs its title and no
     exception on screen;
  5. the vision page's switch to real models (issue 32), without the network: HOME's Hugging Face
     cache is seeded with tiny random CLIP / BLIP models under the default ids
     (scripts/space_seed.py), as the image's unmarked download step leaves the real ones there; the
     vision page must default to them (AppTest, and the served page's caption in Chromium), and with
     an empty cache to ConSE and the tiny VQA;
  6. it prints the start command's time to its port and to the first page rendered, and the
     memory (RSS of the server and its children) once every page has run with its default models.
When run as root the user is created with useradd and entered with setpriv, keeping only
CAP_DAC_READ_SEARCH (read anything, write nothing it does not own): this machine's Python lives
under /root, which the image's does not.

To stay within a few minutes on 2 cores, models this machine has already converted are copied
into the fresh HOME first (the build step then runs and finds them; `--convert` makes it convert
from scratch), and pages are opened four tabs at a time.

Usage: .venv/bin/python scripts/space_check.py [--convert]   (exit status 0 when the contract holds)
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
IMAGE_HOME = "/home/user"
USER = "spacecheck"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
BUILD_MARK = "# space-check: build"
REQUIRED_META = {"title", "emoji", "sdk", "app_port", "suggested_hardware", "license"}


def front_matter(readme: Path) -> dict:
    text = readme.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    if not match:
        raise SystemExit(f"{readme} does not start with a '---' YAML front matter block.")
    return yaml.safe_load(match.group(1))


def dockerfile(path: Path) -> dict:
    """ENV values, the marked build steps, the USER, the useradd line and the CMD of a Dockerfile."""
    lines = path.read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    out = {"env": {}, "build": [], "cmd": None, "user": None, "useradd": ""}
    marked = False
    for line in lines:
        stripped = line.strip()
        if stripped == BUILD_MARK:
            marked = True
            continue
        word, _, rest = stripped.partition(" ")
        if word == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", rest):
                out["env"][key] = value
        elif word == "RUN":
            if marked:
                out["build"].append(rest.strip())
            if "useradd" in rest:
                out["useradd"] = rest
        elif word == "USER":
            out["user"] = rest.strip()
        elif word == "CMD":
            out["cmd"] = json.loads(rest)
        if not stripped.startswith("#"):
            marked = False
    return out


def contract_problems(meta: dict, docker: dict) -> list[str]:
    problems = [f"front matter lacks {key!r}" for key in sorted(REQUIRED_META - set(meta))]
    if meta.get("sdk") != "docker":
        problems.append(f"sdk is {meta.get('sdk')!r}: Streamlit Spaces are Docker Spaces now (sdk: docker)")
    if meta.get("suggested_hardware") != "cpu-basic":
        problems.append(f"suggested_hardware is {meta.get('suggested_hardware')!r}, not cpu-basic")
    if "--uid 1000" not in docker["useradd"] and "-u 1000" not in docker["useradd"]:
        problems.append("the Dockerfile does not create a user with UID 1000 (Spaces run as 1000)")
    if docker["user"] in (None, "root", "0"):
        problems.append(f"the Dockerfile runs as {docker['user'] or 'root'}; Spaces run as UID 1000")
    cmd = docker["cmd"] or []
    if f"--server.port={meta.get('app_port')}" not in cmd:
        problems.append(f"CMD {cmd} does not listen on app_port {meta.get('app_port')}")
    if "--server.address=0.0.0.0" not in cmd:
        problems.append("CMD does not listen on all interfaces (--server.address=0.0.0.0)")
    return problems


def image_files() -> list[str]:
    """The working tree's files (tracked and new, not git-ignored) minus .dockerignore's patterns."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True
        )
        .stdout.decode()
        .split("\0")
    )
    patterns = [
        p.strip().removeprefix("**/")
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]

    def ignored(path: str) -> bool:
        parts = path.split("/")
        return any(fnmatch.fnmatch(part, p) for p in patterns for part in parts) or any(
            fnmatch.fnmatch(path, p) for p in patterns
        )

    return [p for p in listed if p and (ROOT / p).is_file() and not ignored(p)]


def read_only_copy(files: list[str], dest: Path) -> None:
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    for path in sorted(dest.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    dest.chmod(0o555)


def as_user() -> tuple[list[str], int | None]:
    """The command prefix that drops to the unprivileged user (nothing when we are not root)."""
    if os.geteuid() != 0:
        return [], None
    if subprocess.run(["id", "-u", USER], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
    uid = int(subprocess.run(["id", "-u", USER], capture_output=True, text=True, check=True).stdout)
    return [
        "setpriv",
        f"--reuid={USER}",
        f"--regid={USER}",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
    ], uid


def container_env(docker: dict, home: Path) -> dict:
    path = f"{ROOT / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    env = {"PATH": path, "LANG": "C.UTF-8", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    for key, value in docker["env"].items():
        env[key] = value.replace("$PATH", path).replace(IMAGE_HOME, str(home))
    env["HOME"] = str(home)
    return env


def wait_for(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the start command exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def check_pages(
    base: str, must_show: dict[str, list[tuple[str | None, str]]], at_once: int = 4
) -> list[tuple[str, str, float, float]]:
    """Open the pages `at_once` tabs at a time (one browser session each), then wait for each one and
    its `must_show` texts, each after a click on its tab (None: as opened); (key, verdict, seconds,
    perf_counter when its title was drawn)."""
    from playwright.sync_api import sync_playwright

    from components.i18n import strings
    from components.page_registry import HOME, PAGES

    english, results = strings("en"), []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        for start in range(0, len(PAGES), at_once):
            opened = []
            for info in PAGES[start : start + at_once]:
                page = browser.new_page(viewport={"width": 1300, "height": 900})
                page.set_default_timeout(150_000)
                page.goto(base + ("/" if info is HOME else f"/{info.url_path}"), wait_until="commit")
                opened.append((info, page, time.perf_counter()))
            for info, page, started in opened:
                title = english[f"page.{info.key}.title"]
                drawn = float("nan")
                try:
                    page.wait_for_selector(f'h1:has-text("{title}")')
                    drawn = time.perf_counter()
                    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
                    for tab, text in must_show.get(info.key, []):
                        if tab is not None:
                            page.get_by_role("tab", name=tab).click()
                        page.get_by_text(text).first.wait_for()
                    errors = page.locator('[data-testid="stException"]')
                    verdict = "ok" if errors.count() == 0 else f"exception: {errors.first.inner_text()[:200]!r}"
                except Exception as exc:  # one page failing must not hide the others
                    verdict = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                results.append((info.key, verdict, time.perf_counter() - started, drawn))
                page.close()
        browser.close()
    return results


def seed_converted_models(env: dict, uid: int | None) -> str:
    """Put this machine's converted models where the image's build step leaves them, if there are any.

    The build step then still runs (as the user, with the image's environment) but finds the
    conversion done instead of redoing it (30 s to 2 min on 2 busy cores); `--convert` redoes it.
    """
    from backends.core.paths import models_dir
    from backends.models.registry import KNOWN

    target = Path(env["LLMPG_CACHE_DIR"]) / "models"
    seeded = []
    for spec in KNOWN:
        source = models_dir() / spec.key
        if spec.gguf_file and (source / "CONVERTED.json").exists():
            shutil.copytree(source, target / spec.key)
            seeded.append(spec.key)
    if uid is not None:
        for path in [Path(env["HOME"]), *Path(env["HOME"]).rglob("*")]:
            os.chown(path, uid, -1)
    return ", ".join(seeded) or "nothing"


def tree_rss_mb(pid: int) -> tuple[float, int]:
    """Resident memory of a process and all its children, in MB, and how many processes that is."""
    import psutil

    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):  # a child that has just exited
            total += proc.memory_info().rss
    return total / 2**20, len(procs)


def check_vision_switch(hf_home: Path, uid: int | None, cache_dir: Path) -> list[str]:
    """Seed `hf_home` with tiny CLIP / BLIP under the default ids; problems with the page's defaults
    (AppTest runs with `cache_dir` as LLMPG_CACHE_DIR, never the user's)."""
    from backends import vision as V
    from scripts.space_seed import page_defaults, seed_hf_cache

    t0 = time.perf_counter()
    seed_hf_cache(hf_home)
    if uid is not None:
        for path in [hf_home, *hf_home.rglob("*")]:
            os.chown(path, uid, -1, follow_symlinks=False)
    env = {"LLMPG_CACHE_DIR": str(cache_dir)}
    seeded = page_defaults(hf_home, env=env)
    empty = page_defaults(cache_dir / "empty-hf-home", env=env)
    got = {
        "seeded": (seeded["method"], seeded["clip"], seeded["vqa_mode"], seeded["captioner"], seeded["vqa"]),
        "empty": (empty["method"], empty["clip"], empty["vqa_mode"], empty["captioner"], empty["vqa"]),
    }
    want = {
        "seeded": ("clip", V.DEFAULT_CLIP, "blip", V.DEFAULT_CAPTIONER, V.DEFAULT_VQA),
        "empty": ("conse", None, "tiny", None, None),
    }
    problems = [f"{c} cache: the page chose {got[c]}, not {want[c]}" for c in want if got[c] != want[c]]
    problems += [f"vision page error: {e}" for e in seeded["errors"] + seeded["vqa_errors"] + empty["errors"]]
    took = time.perf_counter() - t0
    print(f"vision switch checked in {took:.0f} s: seeded cache -> {got['seeded']}; empty -> {got['empty']}")
    return problems


def main() -> int:
    started = time.perf_counter()
    meta, docker = front_matter(ROOT / "README.md"), dockerfile(ROOT / "Dockerfile")
    problems = contract_problems(meta, docker)
    if problems:
        print("Space contract broken:\n  " + "\n  ".join(problems))
        return 1
    port = int(meta["app_port"])
    prefix, uid = as_user()
    work = Path(tempfile.mkdtemp(prefix="space-check-"))
    work.chmod(0o755)
    app, home = work / "app", work / "home"
    home.mkdir()
    if uid is not None:
        os.chown(home, uid, -1)
    read_only_copy(image_files(), app)
    env = container_env(docker, home)
    if "--convert" not in sys.argv:
        print(f"seeded from this machine's converted models: {seed_converted_models(env, uid)}")
    print(f"app copy {app} (read-only), HOME {home}, user {USER if uid is not None else os.getuid()}, port {port}")
    problems = check_vision_switch(Path(env["HF_HOME"]), uid, work / "apptest-cache")
    if problems:
        print("Vision page switch broken:\n  " + "\n  ".join(problems))
        return 1
    from backends import vision as V
    from components.i18n import strings

    english = strings("en")  # the vision page names the cached CLIP, then (VQA tab) the BLIP captioner
    must_show = {
        "vision": [
            (None, english["vision.cached.clip"].format(model=V.DEFAULT_CLIP)),
            (english["vision.tab.vqa"], english["vision.cached.captioner"].format(model=V.DEFAULT_CAPTIONER)),
        ]
    }
    proc, log_path = None, work / "server.log"
    try:
        for step in docker["build"]:
            t0 = time.perf_counter()
            subprocess.run([*prefix, "sh", "-c", step], cwd=app, env=env, check=True)
            print(f"build step ok in {time.perf_counter() - t0:.0f} s: {step[:90]}")
        with open(log_path, "w") as log:
            launched = time.perf_counter()
            proc = subprocess.Popen(
                [*prefix, *docker["cmd"]],
                cwd=app,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # The start command (scripts/launch.py) opens the port once the heavy libraries are imported.
        wait_for(f"http://127.0.0.1:{port}/_stcore/health", proc, 180)
        port_open = time.perf_counter() - launched
        results = check_pages(f"http://127.0.0.1:{port}", must_show)
        first_page = min((r[3] for r in results if r[3] == r[3]), default=float("nan")) - launched
        memory = [tree_rss_mb(proc.pid)]
        time.sleep(15)  # the background warm-up may still be loading: take the larger of two readings
        memory.append(tree_rss_mb(proc.pid))
    except SystemExit as exc:
        print(f"{exc}\nserver log ({log_path}):\n" + (log_path.read_text()[-3000:] if log_path.exists() else ""))
        return 1
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    failed = [r for r in results if r[1] != "ok"]
    print(f"\n{'page':<14} {'seconds':>8}  result")
    for key, verdict, seconds, _ in results:
        print(f"{key:<14} {seconds:8.1f}  {verdict}")
    rss, count = max(memory)
    print(
        f"\nstart-up: port open {port_open:.1f} s after the start command, first page drawn {first_page:.1f} s "
        f"(headless Chromium, opened once the port answered); memory with every page's default models: "
        f"{rss:.0f} MB RSS over {count} processes (server and children; {memory[0][0]:.0f} MB right after the pages)"
    )
    if failed:
        print(f"\nserver log ({log_path}):\n" + log_path.read_text()[-3000:])
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print(f"\nSpace contract holds: {len(results)} pages rendered in {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
