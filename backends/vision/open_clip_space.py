"""Any open_clip model (`open_clip_torch`): LAION's and others' CLIPs in open_clip's own format.

Loaded through the shared cache with `variant="clip"` and an `open_clip:` name (see
backends/models/open_clip_loader.py): `open_clip:ViT-B-32/laion2b_s34b_b79k` (architecture and
pretrained tag), `open_clip:hf-hub:owner/repo`, or `open_clip:/path/to/folder` holding
open_clip_config.json + open_clip_model.safetensors. The cached model wraps open_clip's CLIP in the
methods of a transformers CLIPModel, so Grad-CAM (vit_cam) runs on ViT towers as it does for CLIP;
`tokenizer` of the LoadedModel holds open_clip's image transform and tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from backends.core.scheduler import shared_scheduler
from backends.vision.clip import ClipSpace

DEFAULT_OPEN_CLIP = "open_clip:ViT-B-32/laion2b_s34b_b79k"


@dataclass
class OpenClipSpace(ClipSpace):
    method: str = "open_clip"

    @property
    def name(self) -> str:
        return f"open_clip model {self.loaded.key.model.removeprefix('open_clip:')}"

    @property
    def has_vit_tower(self) -> bool:
        """Grad-CAM reads the tokens entering the last block: only open_clip's own ViT towers have them."""
        visual = self.loaded.model.clip.visual
        return hasattr(getattr(visual, "transformer", None), "resblocks") and hasattr(visual, "_embeds")

    def pixel_values(self, images: list[Image.Image]) -> torch.Tensor:
        return self.loaded.tokenizer.images(images)

    def embed_images(self, images: list[Image.Image], batch_size: int = 16) -> np.ndarray:
        out = []
        for start in range(0, len(images), batch_size):
            pixels = self.pixel_values(images[start : start + batch_size])
            with shared_scheduler().turn("vision.open_clip_image"), torch.inference_mode():
                out.append(self.loaded.model.clip.encode_image(pixels).float())
        return torch.nn.functional.normalize(torch.cat(out), dim=-1).numpy()

    def text_inputs(self, texts: list[str]) -> dict:
        return {"input_ids": self.loaded.tokenizer.texts(texts)}

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        tokens = self.loaded.tokenizer.texts(texts)
        with shared_scheduler().turn("vision.open_clip_text"), torch.inference_mode():
            feats = self.loaded.model.clip.encode_text(tokens).float()
        return torch.nn.functional.normalize(feats, dim=-1).numpy()
