"""The run writes to its own cache folder and never touches the user's (tests/user_cache.py).

The guard also fails the whole run at its end (tests/conftest.py, pytest_sessionfinish), whatever
ran after this file.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from backends.core.paths import cache_dir, default_cache_dir, models_dir
from tests.user_cache import Guard

ROOT = Path(__file__).resolve().parents[1]
SHOW = (
    "import json; from huggingface_hub import constants; from backends.core.paths import cache_dir; "
    "from backends.vision.tiny_vqa import load_easy_vqa; d = load_easy_vqa(); "
    "print(json.dumps([str(cache_dir()), constants.HF_HUB_CACHE, len(d.train.paths), len(d.test.paths)]))"
)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve() == folder.resolve() or folder.resolve() in path.resolve().parents


def test_the_run_and_the_processes_it_starts_use_the_runs_own_folders(suite_cache):
    assert cache_dir() == suite_cache.cache and models_dir().parent == suite_cache.cache
    assert _inside(suite_cache.cache, Path(tempfile.gettempdir()))
    assert not any(_inside(suite_cache.cache, f) or _inside(f, suite_cache.cache) for f in suite_cache.guard.folders)
    assert default_cache_dir() in suite_cache.guard.folders
    from huggingface_hub import constants

    assert _inside(Path(constants.HF_HUB_CACHE), suite_cache.hf_home), "HF_HOME was set after huggingface_hub loaded"
    # A process started the way the tests start theirs (the e2e server, the cold-start race) inherits them.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    folder, hub, train, test = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(folder) == suite_cache.cache and _inside(Path(hub), suite_cache.hf_home)
    assert (train, test) == (300, 75), "the tests' small easy-vqa (LLMPG_VQA_IMAGES)"


def test_nothing_has_touched_the_users_cache_folder_so_far(suite_cache):
    assert suite_cache.guard.problems() == []


def test_the_guard_sees_reads_and_writes_of_this_process_and_files_another_process_adds(tmp_path, monkeypatch):
    watched = tmp_path / "home" / ".cache" / "llm-playground"
    (watched / "vision").mkdir(parents=True)
    (watched / "vision" / "old.npy").write_bytes(b"x")
    guard = Guard([watched])
    assert guard.problems() == [], "listing the folder is no touch"
    guard.arm()
    try:
        assert (watched / "vision" / "old.npy").read_bytes() == b"x"  # a read
        monkeypatch.delenv("LLMPG_CACHE_DIR")
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert cache_dir() == watched  # the app's fallback, when nothing names a folder
    finally:
        guard.disarm()
    touches = guard.problems()
    assert len(touches) == 2 and all(t.startswith("this process: ") for t in touches), touches
    here = str(Path(__file__).relative_to(ROOT))  # where the read happened
    assert touches[0].startswith(f"this process: open {watched / 'vision' / 'old.npy'} ") and here in touches[0]
    assert touches[1].startswith(f"this process: os.mkdir {watched} ") and "paths.py" in touches[1]

    other = Guard([watched])
    write = f"open({str(watched / 'vision' / 'new.npy')!r}, 'w').write('y')"
    subprocess.run([sys.executable, "-c", write], check=True, timeout=60)
    assert other.touches == [], "another process's writes are not seen by this process's hook"
    (problem,) = other.problems()
    assert "changed during the run" in problem and "added vision/new.npy" in problem
    assert "changed ." not in problem, "the folder itself did not change, its subfolder did"


@pytest.mark.parametrize("state", ["absent", "present"])
def test_a_folder_that_did_not_exist_must_not_appear(tmp_path, state):
    watched = tmp_path / "llm-playground"
    if state == "present":
        watched.mkdir()
    guard = Guard([watched])
    watched.mkdir(exist_ok=True)
    assert bool(guard.problems()) == (state == "absent")
