"""Real CLIP and BLIP models already in the local Hugging Face cache, found without the network.

The vision page runs them by default when they are there (the Space downloads them at build time;
a learner may have downloaded them once), and the offline stand-ins (ConSE, the tiny VQA) otherwise.
The cache is huggingface_hub's layout, the same one `backends.models.registry.resolve` reads:

    <HF_HUB_CACHE>/models--<org>--<name>/refs/main              the commit the name points at
                                        /snapshots/<commit>/    config.json, *.safetensors, processor files

A repo counts when `refs/main` names a snapshot that holds a `config.json` of the right kind
(`model_type` "clip" with a CLIPModel; "blip" with BlipForConditionalGeneration for captions or
BlipForQuestionAnswering for questions), safetensors weights (a repo with only pytorch_model.bin
is skipped: no pickles are loaded) and a processor config. The project's defaults come first,
then any other such repo in name order. Only the file system is read; the answer is remembered per
cache folder until a repo folder or its `refs/main` changes.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from backends.models.registry import SPACE_VISION_LICENCES
from backends.vision.blip import DEFAULT_CAPTIONER, DEFAULT_VQA
from backends.vision.clip import DEFAULT_CLIP

KINDS = ("clip", "blip-caption", "blip-vqa")
DEFAULTS = {"clip": DEFAULT_CLIP, "blip-caption": DEFAULT_CAPTIONER, "blip-vqa": DEFAULT_VQA}
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
COMMIT = re.compile(r"[0-9a-f]{40}")
# The real models the Space's image downloads at build time (Dockerfile, scripts/space_seed.py FETCH)
# and the project's defaults, with their licences (their model cards), for Home.
LICENCES = SPACE_VISION_LICENCES  # named on Home (kept in the registry: Home need not import vision)


@dataclass(frozen=True)
class CachedModel:
    repo_id: str
    kind: str  # one of KINDS: the cache variant it loads as
    revision: str  # the commit refs/main names
    folder: str  # its snapshot folder


def hub_cache_dir() -> Path:
    """The folder huggingface_hub (and so `resolve`) reads: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def kind_of(config: dict) -> str | None:
    """The cache variant a config.json's model_type and architectures load as ("clip", "blip-caption",
    "blip-vqa"), or None."""
    archs = config.get("architectures") or []
    model_type = config.get("model_type")
    if model_type == "clip" and (not archs or "CLIPModel" in archs):
        return "clip"
    if model_type == "blip":
        if "BlipForConditionalGeneration" in archs:
            return "blip-caption"
        if "BlipForQuestionAnswering" in archs:
            return "blip-vqa"
    return None


def _repo_id(folder_name: str) -> str | None:
    if not folder_name.startswith("models--"):
        return None
    org, sep, name = folder_name.removeprefix("models--").partition("--")
    return f"{org}/{name}" if sep else org


def _has_weights(snapshot: Path) -> bool:
    """Some *.safetensors file whose blob is really there (a dangling link is an interrupted download)."""
    return any(path.is_file() for path in snapshot.glob("*.safetensors"))


def inspect_repo(repo_folder: Path) -> CachedModel | None:
    """The repo as a usable vision model, or None (not a model repo, no refs/main, wrong kind, no safetensors)."""
    repo_id = _repo_id(repo_folder.name)
    ref = repo_folder / "refs" / "main"
    if repo_id is None or not ref.is_file():
        return None
    try:
        revision = ref.read_text(encoding="utf-8").strip()
        if not COMMIT.fullmatch(revision):  # a commit id, never a path
            return None
        snapshot = repo_folder / "snapshots" / revision
        config = json.loads((snapshot / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable, half-written, or refs/main names no snapshot
        return None
    kind = kind_of(config) if isinstance(config, dict) else None
    if kind is None or not _has_weights(snapshot):
        return None
    if not any((snapshot / name).is_file() for name in PROCESSOR_FILES):
        return None
    return CachedModel(repo_id, kind, revision, str(snapshot))


def _stamp(cache: Path) -> tuple:
    """What changes when a repo is added or its refs/main moves: the folder's and each ref's mtime."""
    try:
        top = cache.stat().st_mtime_ns
        repos = sorted(e.name for e in os.scandir(cache) if e.name.startswith("models--") and e.is_dir())
    except OSError:
        return ()
    refs = []
    for name in repos:
        try:
            refs.append((name, (cache / name / "refs" / "main").stat().st_mtime_ns))
        except OSError:
            refs.append((name, 0))
    return (top, tuple(refs))


_memo: dict[str, tuple[tuple, tuple[CachedModel, ...]]] = {}
_lock = threading.Lock()


def cached_vision_models(cache_dir: str | Path | None = None) -> tuple[CachedModel, ...]:
    """Every usable CLIP / BLIP repo in the cache: per kind, the project's default first, then by name."""
    cache = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    stamp = _stamp(cache)
    with _lock:
        hit = _memo.get(str(cache))
        if hit is not None and hit[0] == stamp:
            return hit[1]
    found = [m for m in (inspect_repo(cache / name) for name, _ in (stamp[1] if stamp else ())) if m]
    found.sort(key=lambda m: (KINDS.index(m.kind), m.repo_id != DEFAULTS[m.kind], m.repo_id.lower()))
    result = tuple(found)
    with _lock:
        _memo[str(cache)] = (stamp, result)
    return result


def preferred(kind: str, cache_dir: str | Path | None = None) -> CachedModel | None:
    """The model of `kind` the page should run by default, or None when the cache holds none."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return next((m for m in cached_vision_models(cache_dir) if m.kind == kind), None)
