"""Grad-CAM against a Grad-CAM computed by hand on tiny seeded models.

The reference never calls `backends.vision.gradcam`: it runs its own forward (written out layer by
layer, the activations kept as an intermediate of the graph, not re-made into a leaf as the app
does), takes their gradient with `torch.autograd.grad`, weights each channel (or token feature) by
its mean gradient, keeps the positive part of the weighted sum (Selvaraju et al., 2017), scales it
by its maximum and upsamples it bilinearly to the image (8-bit, PIL), as the page shows it.

- EfficientNet path: a two-conv trunk + global average pool + linear head, the shape of
  EfficientNet-Lite0's (`extract_features`, `_fc`). With a pooled linear head the gradient is known
  in closed form, dScore/dA_c = W[k, c] / (H * W), so Grad-CAM is CAM (Zhou et al., 2016): checked too.
  The ConSE score (cosine of the top-k-mixed class vectors with a label vector) is written out here.
- ViT path: a tiny random CLIP; the tokens entering the last encoder layer, score = the cosine of the
  projected CLS output with a fixed text vector; the class token is left out of the 4 x 4 patch grid.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from backends.vision import efficientnet_cam, vit_cam

SIZE = (40, 28)  # not square: the heatmap is (28, 40), rows then columns


def photo(seed: int, size=SIZE) -> Image.Image:
    """A dark noisy background with a bright rectangle somewhere: a map with places to point at."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8), "RGB")
    x, y = int(rng.integers(0, size[0] // 2)), int(rng.integers(0, size[1] // 2))
    colour = tuple(int(v) for v in rng.integers(150, 256, 3))
    ImageDraw.Draw(image).rectangle([x, y, x + size[0] // 3, y + size[1] // 3], fill=colour)
    return image


def upsample(grid: np.ndarray, size) -> tuple[np.ndarray, np.ndarray]:
    """What the page shows: the map scaled to [0, 1] by its maximum, bilinear to the image, 8-bit."""
    scaled = grid / grid.max()
    big = Image.fromarray((scaled * 255).astype(np.uint8), "L").resize(size, Image.BILINEAR)
    return scaled, np.asarray(big, dtype=np.float32) / 255.0


def cam_from(acts: torch.Tensor, grads: torch.Tensor) -> np.ndarray:
    """acts, grads: (C, H, W). Channel weight = spatial mean of its gradient; ReLU of the weighted sum."""
    weights = grads.mean(dim=(1, 2))
    weighted = sum(weights[c] * acts[c] for c in range(acts.shape[0]))
    return torch.clamp(weighted, min=0).numpy()


class TinyNet(torch.nn.Module):
    """EfficientNet-Lite0's interface on a 224 x 224 input: a 7 x 7 map of 6 channels, 10 classes."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():  # seeded weights, the process-wide generator left as it was
            torch.manual_seed(0)
            self.stem = torch.nn.Conv2d(3, 8, 3, stride=4, padding=1)  # 56 x 56
            self.block = torch.nn.Conv2d(8, 6, 3, stride=8, padding=1)  # 7 x 7
            self._fc = torch.nn.Linear(6, 10)

    def extract_features(self, x):
        return self.block(F.silu(self.stem(x)))

    def forward(self, x):
        return self._fc(self.extract_features(x).mean(dim=(2, 3)))


def pixels_by_hand(image: Image.Image) -> torch.Tensor:
    """224 x 224 squashed (bilinear), RGB in [0, 1], then (x - 0.5) / 0.5: EfficientNet-Lite0's input."""
    array = np.asarray(image.convert("RGB").resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255.0
    return ((torch.from_numpy(array) - 0.5) / 0.5).permute(2, 0, 1)[None]


def tiny_forward(model: TinyNet, x: torch.Tensor):
    """The network written out: (activations of the last conv, logits). `x` requires grad, so the
    activations are an intermediate of the graph (the app instead re-makes them into a leaf)."""
    hidden = F.silu(F.conv2d(x, model.stem.weight, model.stem.bias, stride=4, padding=1))
    acts = F.conv2d(hidden, model.block.weight, model.block.bias, stride=8, padding=1)
    pooled = acts.sum(dim=(2, 3)) / (acts.shape[2] * acts.shape[3])
    return acts, pooled @ model._fc.weight.T + model._fc.bias


@pytest.fixture(scope="module")
def tiny():
    model = TinyNet().eval()
    for p in model.parameters():
        p.requires_grad_(False)  # like the shared model in inference: no gradient flows to weights
    return model


@pytest.mark.parametrize("seed, class_index", [(1, 5), (2, 7), (3, 9), (4, 8)])
def test_efficientnet_grad_cam_equals_the_hand_computation_and_cam(tiny, seed, class_index):
    image = photo(seed)
    with torch.enable_grad():
        acts, logits = tiny_forward(tiny, pixels_by_hand(image).requires_grad_(True))
        score = logits[0, class_index]
        (grads,) = torch.autograd.grad(score, acts)
    h, w = acts.shape[2:]
    # the closed form of a pooled linear head: the same gradient at every position
    closed = (tiny._fc.weight[class_index] / (h * w))[:, None, None].expand(-1, h, w)
    assert torch.allclose(grads[0], closed, atol=1e-7)
    grid = cam_from(acts[0].detach(), grads[0])
    assert (grid == 0).any() and (grid > 0).sum() >= 3, "the ReLU must cut and keep something here"
    scaled, heat = upsample(grid, image.size)

    ours = efficientnet_cam(tiny, image, class_index=class_index, target="c")
    assert ours.score == pytest.approx(float(score.detach()), abs=1e-5)
    assert ours.grid.shape == (7, 7) and np.allclose(ours.grid, scaled, atol=1e-5)
    assert ours.heatmap.shape == (SIZE[1], SIZE[0]) and np.abs(ours.heatmap - heat).max() <= 1 / 255 + 1e-6
    cam = np.maximum(np.einsum("c,chw->hw", tiny._fc.weight[class_index].numpy(), acts[0].detach().numpy()), 0)
    assert np.allclose(ours.grid, cam / cam.max(), atol=1e-5), "Grad-CAM on a pooled head is CAM"


def test_conse_grad_cam_equals_the_hand_computation(tiny):
    """The score is the cosine between a label vector and the ConSE image vector: the top-k class
    probabilities renormalised, mixing unit class vectors, normalised (written out here)."""
    image, top_k = photo(4), 3
    generator = torch.Generator().manual_seed(7)  # a label the map has something (23 of 49 places) for
    class_vectors = F.normalize(torch.randn(10, 12, generator=generator), dim=-1)
    label = F.normalize(torch.randn(12, generator=generator), dim=0).numpy()
    with torch.enable_grad():
        acts, logits = tiny_forward(tiny, pixels_by_hand(image).requires_grad_(True))
        probs = torch.exp(logits - logits.logsumexp(-1, keepdim=True))[0]
        order = sorted(range(10), key=lambda i: -float(probs[i].detach()))[:top_k]
        mixed = sum(probs[i] / sum(probs[j] for j in order) * class_vectors[i] for i in order)
        score = (mixed / mixed.norm()) @ torch.from_numpy(label)
        (grads,) = torch.autograd.grad(score, acts)
    grid = cam_from(acts[0].detach(), grads[0])
    assert (grid == 0).any() and (grid > 0).sum() >= 5
    scaled, heat = upsample(grid, image.size)
    ours = efficientnet_cam(tiny, image, label_vector=label, class_vectors=class_vectors, top_k=top_k, target="l")
    assert ours.score == pytest.approx(float(score.detach()), abs=1e-5)
    assert np.allclose(ours.grid, scaled, atol=1e-5) and np.abs(ours.heatmap - heat).max() <= 1 / 255 + 1e-6


@pytest.fixture(scope="module")
def tiny_clip():
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config={"vocab_size": 40, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
                     "num_attention_heads": 4, "max_position_embeddings": 16},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37,
                       "num_hidden_layers": 3, "num_attention_heads": 4},
        projection_dim=16,
    )  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return CLIPModel(config).eval()


def clip_forward(model, pixels: torch.Tensor):
    """The vision tower written out: (tokens entering the last layer, projected image vector)."""
    tower = model.vision_model
    hidden = tower.pre_layrnorm(tower.embeddings(pixels))
    for layer in tower.encoder.layers[:-1]:
        hidden = layer(hidden, attention_mask=None)
    tokens = hidden
    out = tower.encoder.layers[-1](tokens, attention_mask=None)
    return tokens, model.visual_projection(tower.post_layernorm(out[:, 0]))


@pytest.mark.parametrize("seed", [6, 7])
def test_vit_grad_cam_equals_the_hand_computation(tiny_clip, seed):
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randn(1, 3, 32, 32, generator=generator)
    text = F.normalize(torch.randn(16, generator=generator), dim=0).numpy()
    with torch.no_grad():  # the written-out tower is the model's own
        expected = tiny_clip.get_image_features(pixel_values=pixels).pooler_output
        assert torch.allclose(clip_forward(tiny_clip, pixels)[1], expected, atol=1e-5)
    with torch.enable_grad():
        tokens, image_vector = clip_forward(tiny_clip, pixels)
        score = F.normalize(image_vector, dim=-1)[0] @ torch.from_numpy(text)
        (grads,) = torch.autograd.grad(score, tokens)
    patches, patch_grads = tokens[0, 1:].detach(), grads[0, 1:]  # the class token is not a place
    assert patches.shape == (16, 32)
    weights = patch_grads.mean(dim=0)  # one weight per feature, averaged over the 16 patches
    grid = torch.clamp(sum(weights[c] * patches[:, c] for c in range(32)), min=0).reshape(4, 4).numpy()
    assert (grid == 0).any() and (grid > 0).sum() >= 3
    scaled, heat = upsample(grid, SIZE)

    space = SimpleNamespace(
        loaded=SimpleNamespace(model=tiny_clip), pixel_values=lambda images: pixels, embed_texts=lambda texts: [text]
    )
    ours = vit_cam(space, photo(seed), "a cat")
    assert ours.score == pytest.approx(float(score.detach()), abs=1e-5)
    assert ours.grid.shape == (4, 4) and np.allclose(ours.grid, scaled, atol=1e-5)
    assert ours.heatmap.shape == (SIZE[1], SIZE[0]) and np.abs(ours.heatmap - heat).max() <= 1 / 255 + 1e-6
