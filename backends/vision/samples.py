"""The sample gallery: scikit-image's sample photos, read from the installed package at run time
(nothing is copied into this repository). Each one's licence is in its `skimage.data` docstring:
public domain or CC0 for most (Chelsea the cat: CC0, Stefan van der Walt; the coffee cup: CC0,
Rachel Michetti; astronaut and rocket: NASA, public domain)."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from backends.vision.images import LoadedImage

# skimage.data functions (the page shows translated names); all ship inside the scikit-image wheel
# (no download), and all state CC0, public domain or no known copyright restrictions (moon and clock:
# scikit-image's own).
SAMPLES = (
    "chelsea",
    "coffee",
    "astronaut",
    "rocket",
    "camera",
    "coins",
    "moon",
    "clock",
    "hubble_deep_field",
    "retina",
    "horse",
    "text",
)
_lock = threading.Lock()
_memo: dict[str, LoadedImage] = {}


def sample(name: str) -> LoadedImage:
    """One sample photo as 8-bit RGB (read once per process; PIL images are never modified here)."""
    if name not in SAMPLES:
        raise KeyError(f"No sample called {name!r}; samples: {', '.join(SAMPLES)}.")
    with _lock:
        if name not in _memo:
            import skimage.data

            array = getattr(skimage.data, name)()
            if array.dtype == bool:
                array = np.where(array, 0, 255).astype(np.uint8)  # the horse: black on white
            _memo[name] = LoadedImage(name, Image.fromarray(array).convert("RGB"))
        return _memo[name]


def all_samples() -> list[LoadedImage]:
    return [sample(name) for name in SAMPLES]
