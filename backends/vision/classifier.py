"""EfficientNet-Lite0, the ImageNet classifier the offline path stands on.

The model and its 1,000 class names come from the shared cache
(`shared_cache().get("efficientnet-lite0", variant="image-classifier")`: `.model` and `.tokenizer`).
It expects 224 x 224 RGB normalised with mean = std = 0.5 (the TF-Lite recipe), not the usual
ImageNet mean/std.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from backends.core.scheduler import shared_scheduler
from backends.vision.images import to_array

CLASSIFIER = "efficientnet-lite0"
IMAGE_SIZE = 224
MEAN = STD = 0.5


def preprocess(images: list[Image.Image], size: int = IMAGE_SIZE) -> torch.Tensor:
    """A batch (N, 3, size, size): each image squashed to a square (nothing cropped), normalised."""
    arrays = np.stack([to_array(im, size) for im in images])
    batch = torch.from_numpy(arrays).permute(0, 3, 1, 2)
    return (batch - MEAN) / STD


def logits_of(model: torch.nn.Module, images: list[Image.Image], batch_size: int = 32) -> torch.Tensor:
    """ImageNet logits (N, 1000), one scheduler turn per batch."""
    out = []
    for start in range(0, len(images), batch_size):
        batch = preprocess(images[start : start + batch_size])
        with shared_scheduler().turn("vision.classify"), torch.inference_mode():
            out.append(model(batch).float())
    return torch.cat(out) if out else torch.zeros(0, 1000)


def features_of(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The last conv block's pooled features (N, 1280): mean and max over positions, concatenated (N, 2560)."""
    with shared_scheduler().turn("vision.features"), torch.inference_mode():
        maps = model.extract_features(batch)
    return torch.cat([maps.mean((2, 3)), maps.amax((2, 3))], dim=1)


@dataclass(frozen=True)
class TopClass:
    name: str
    index: int
    prob: float


def top_classes(probs: np.ndarray, names: list[str], k: int = 5) -> list[TopClass]:
    order = np.argsort(-probs)[:k]
    return [TopClass(names[i], int(i), float(probs[i])) for i in order]
