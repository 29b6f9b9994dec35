"""Where the app keeps files: what it ships (ASSETS) and what it writes (converted models, saved runs)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "LLMPG_CACHE_DIR"
# Files the app ships (samples, datasets, corpora, locales), read-only.
ASSETS = Path(__file__).resolve().parents[2] / "assets"


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/llm-playground, else ~/.cache/llm-playground: the folder when LLMPG_CACHE_DIR is
    unset. Not created here (the test suite names it to guard it, tests/user_cache.py)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "llm-playground"


def cache_dir() -> Path:
    """LLMPG_CACHE_DIR, else $XDG_CACHE_HOME/llm-playground, else ~/.cache/llm-playground."""
    explicit = os.environ.get(ENV_VAR)
    root = Path(explicit) if explicit else default_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_dir() -> Path:
    path = cache_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
