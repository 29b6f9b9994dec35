"""Real CLIP (or SigLIP, or any transformers dual encoder with get_image_features / get_text_features).

Loaded through the shared cache with `variant="clip"` from a hub id (online), the local Hugging
Face cache or a local folder; `tokenizer` of the LoadedModel is the model's processor. CLIP was
trained contrastively on 400M image-text pairs: an image and its caption land close together, so
typed labels are compared with the image directly (no ImageNet classes in between, unlike ConSE).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from backends.core.scheduler import shared_scheduler

DEFAULT_CLIP = "openai/clip-vit-base-patch32"


def _features(output) -> torch.Tensor:
    """transformers 5 returns a ModelOutput whose pooler_output is the projected embedding; 4.x a tensor."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


@dataclass
class ClipSpace:
    loaded: object  # LoadedModel with variant "clip"
    method: str = "clip"

    @property
    def name(self) -> str:
        return f"CLIP-style model {self.loaded.key.model}"

    @property
    def logit_scale(self) -> float:
        scale = getattr(self.loaded.model, "logit_scale", None)
        return float(scale.exp()) if isinstance(scale, torch.Tensor) else 100.0

    def pixel_values(self, images: list[Image.Image]) -> torch.Tensor:
        return self.loaded.tokenizer(images=images, return_tensors="pt")["pixel_values"]

    def embed_images(self, images: list[Image.Image], batch_size: int = 16) -> np.ndarray:
        out = []
        for start in range(0, len(images), batch_size):
            pixels = self.pixel_values(images[start : start + batch_size])
            with shared_scheduler().turn("vision.clip_image"), torch.inference_mode():
                out.append(_features(self.loaded.model.get_image_features(pixel_values=pixels)).float())
        return torch.nn.functional.normalize(torch.cat(out), dim=-1).numpy()

    def text_inputs(self, texts: list[str]) -> dict:
        return dict(self.loaded.tokenizer(text=list(texts), padding=True, truncation=True, return_tensors="pt"))

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        inputs = {k: v for k, v in self.text_inputs(texts).items() if k in ("input_ids", "attention_mask")}
        with shared_scheduler().turn("vision.clip_text"), torch.inference_mode():
            feats = _features(self.loaded.model.get_text_features(**inputs)).float()
        return torch.nn.functional.normalize(feats, dim=-1).numpy()
