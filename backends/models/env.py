"""What the Home page's environment panel reports."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from backends.core.device import available_devices
from backends.models.loaders import is_converted
from backends.models.registry import KNOWN, is_online, package_folder


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


@dataclass(frozen=True)
class EmbeddedModel:
    key: str
    hub_id: str
    kind: str
    license: str
    installed: bool
    ready: bool  # loadable without a one-time conversion


@dataclass(frozen=True)
class Environment:
    online: bool
    devices: tuple[str, ...]
    python: str
    versions: dict
    models: tuple[EmbeddedModel, ...]


def embedded_models() -> tuple[EmbeddedModel, ...]:
    rows = []
    for spec in KNOWN:
        installed = package_folder(spec) is not None
        ready = installed and (not spec.gguf_file or is_converted(spec))
        rows.append(EmbeddedModel(spec.key, spec.hub_id, spec.kind, spec.license, installed, ready))
    return tuple(rows)


def environment() -> Environment:
    dists = ("torch", "transformers", "streamlit", "tokenizers", "gguf")
    return Environment(
        online=is_online(),
        devices=available_devices(),
        python=platform.python_version(),
        versions={d: _version(d) for d in dists},
        models=embedded_models(),
    )
