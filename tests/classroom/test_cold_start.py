"""A cold server: many sessions' first uses of the heavy libraries at the same instant."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_eight_threads_hit_every_first_use_path_at_once_in_a_fresh_process():
    # The run's own cache folder comes along (tests/user_cache.py): SmolLM2 is converted here when
    # no test before this one loaded it.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("cold_start_race.py"))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "errors: 0", done.stdout[-5000:]


def test_the_warm_up_imports_every_library_the_backends_use():
    # A library imported lazily somewhere in backends/ but not warmed up could race again.
    import ast

    from backends.core.warmup import HEAVY, NOT_IN_APP

    warmed = {module.split(".")[0] for module, _ in HEAVY}
    used = set()
    for path in (ROOT / "backends").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                used.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                used |= {a.name.split(".")[0] for a in node.names}
    third_party = used - set(sys.stdlib_module_names) - {"backends", "__future__"}
    assert sorted(third_party - warmed - NOT_IN_APP) == []
