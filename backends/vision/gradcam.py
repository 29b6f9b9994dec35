"""Grad-CAM (Selvaraju et al., 2017): where in the image the evidence for one answer lies.

Take the activations A (channels x positions) of a late layer and the gradient of the score for
the chosen answer with respect to them; weight each channel by its mean gradient, sum, keep the
positive part: cam = ReLU(sum_c mean(dS/dA_c) * A_c). Upsampled to the image and scaled to [0, 1].

- EfficientNet-Lite0: the last conv block's 7 x 7 map; the score is an ImageNet logit, or the
  ConSE cosine between the image and a typed label (differentiable through the class probabilities).
- CLIP-style ViTs: the tokens entering the last transformer block (patch grid), score = the
  image-text cosine. The cached models are never changed: gradients flow to the activations only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from backends.core.scheduler import shared_scheduler
from backends.vision.classifier import preprocess
from backends.vision.conse import conse_from_probs


@dataclass(frozen=True)
class GradCam:
    heatmap: np.ndarray  # (H, W) of the original image, in [0, 1]
    grid: np.ndarray  # the layer's own resolution, before upsampling
    score: float
    target: str
    layer: str


def _finish(cam: torch.Tensor, size: tuple[int, int], score: float, target: str, layer: str) -> GradCam:
    grid = cam.detach().clamp(min=0).numpy().astype(np.float32)
    top = grid.max()
    grid = grid / top if top > 0 else grid
    big = Image.fromarray((grid * 255).astype(np.uint8), "L").resize(size, Image.BILINEAR)
    heat = np.asarray(big, dtype=np.float32) / 255.0
    return GradCam(heat, grid, score, target, layer)


def _channel_cam(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """acts, grads: (C, H, W) -> (H, W)."""
    weights = grads.mean(dim=(1, 2))
    return torch.relu((weights[:, None, None] * acts).sum(0))


def efficientnet_cam(
    model: torch.nn.Module,
    image: Image.Image,
    class_index: int | None = None,
    label_vector: np.ndarray | None = None,
    class_vectors: torch.Tensor | None = None,
    top_k: int = 10,
    target: str = "",
) -> GradCam:
    """Grad-CAM for an ImageNet class (`class_index`) or a ConSE label (`label_vector` + `class_vectors`)."""
    batch = preprocess([image])
    with shared_scheduler().turn("vision.gradcam"), torch.inference_mode(False), torch.enable_grad():
        with torch.no_grad():
            maps = model.extract_features(batch)
        maps = maps.detach().requires_grad_(True)
        logits = model._fc(maps.mean(dim=(2, 3)))
        if class_index is not None:
            score = logits[0, class_index]
        else:
            vector = conse_from_probs(logits.softmax(-1), class_vectors, top_k)[0]
            score = vector @ torch.as_tensor(label_vector, dtype=vector.dtype)
        (grads,) = torch.autograd.grad(score, maps)
    cam = _channel_cam(maps[0].detach(), grads[0])
    return _finish(cam, image.size, float(score.detach()), target, "EfficientNet-Lite0 last conv block (7 x 7)")


def vit_cam(space, image: Image.Image, text: str) -> GradCam:
    """Grad-CAM on a CLIP-style vision tower for the cosine between `image` and `text`."""
    model = space.loaded.model
    pixels = space.pixel_values([image])
    text_vector = space.embed_texts([text])[0]
    with shared_scheduler().turn("vision.gradcam"), torch.inference_mode(False), torch.enable_grad():
        text_vector = torch.tensor(text_vector)  # made here, not in a caller's inference mode
        pixels = pixels.clone().requires_grad_(True)
        out = model.get_image_features(pixel_values=pixels, output_hidden_states=True)
        tokens = out.hidden_states[-2]  # entering the last block: its attention mixes them into the output
        image_vector = torch.nn.functional.normalize(out.pooler_output.float(), dim=-1)[0]
        score = image_vector @ text_vector
        (grads,) = torch.autograd.grad(score, tokens)
    acts, grads = tokens[0].detach(), grads[0]
    count = acts.shape[0]
    side = math.isqrt(count)
    if side * side != count:  # a class token first
        acts, grads, count = acts[1:], grads[1:], count - 1
        side = math.isqrt(count)
    weights = grads.mean(0)
    cam = torch.relu(acts @ weights).reshape(side, side)
    return _finish(
        cam, image.size, float(score.detach()), text, f"vision tower, last block input ({side} x {side} patches)"
    )


def overlay(image: Image.Image, heatmap: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """The heatmap in matplotlib's 'jet' colours blended over the image."""
    from matplotlib import colormaps

    colours = (colormaps["jet"](heatmap)[..., :3] * 255).astype(np.uint8)
    return Image.blend(image.convert("RGB"), Image.fromarray(colours, "RGB"), alpha)
