"""BLIP captions and visual questions, called through the model classes (transformers 5 removed the
image-to-text and visual-question-answering pipelines).

Models come from the shared cache: `variant="blip-caption"` (BlipForConditionalGeneration, for
instance Salesforce/blip-image-captioning-base) and `variant="blip-vqa"` (BlipForQuestionAnswering,
Salesforce/blip-vqa-base); `tokenizer` holds the BlipProcessor. No BLIP weights exist offline.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from backends.core.scheduler import shared_scheduler

DEFAULT_CAPTIONER = "Salesforce/blip-image-captioning-base"
DEFAULT_VQA = "Salesforce/blip-vqa-base"
# The decoding page's three ideas, side by side: pick the best token, keep the best few
# sequences, or sample from the smallest set of tokens holding top_p of the probability.
STRATEGIES = {
    "greedy": {"do_sample": False, "num_beams": 1},
    "beam": {"do_sample": False, "num_beams": 3},
    "nucleus": {"do_sample": True, "top_p": 0.9, "top_k": 0},
}


@dataclass(frozen=True)
class Caption:
    strategy: str
    text: str
    tokens: int


def _decode(processor, ids: torch.Tensor) -> str:
    return processor.decode(ids, skip_special_tokens=True).strip()


def captions(
    loaded,
    image: Image.Image,
    prompt: str = "",
    max_new_tokens: int = 30,
    strategies: tuple[str, ...] = tuple(STRATEGIES),
    seed: int = 0,
) -> list[Caption]:
    """One caption per decoding strategy; `prompt` (e.g. "a photo of") is continued, as in BLIP's paper."""
    processor, model = loaded.tokenizer, loaded.model
    inputs = processor(images=image, text=prompt.strip() or None, return_tensors="pt")
    out = []
    for name in strategies:
        torch.manual_seed(seed)
        with shared_scheduler().turn("vision.caption"), torch.inference_mode():
            ids = model.generate(**inputs, max_new_tokens=max_new_tokens, **STRATEGIES[name])
        out.append(Caption(name, _decode(processor, ids[0]), int(ids.shape[-1])))
    return out


def answer(loaded, image: Image.Image, question: str, max_new_tokens: int = 10) -> str:
    question = (question or "").strip()
    if not question:
        raise ValueError("Type a question about the image.")
    processor, model = loaded.tokenizer, loaded.model
    inputs = processor(images=image, text=question, return_tensors="pt")
    with shared_scheduler().turn("vision.vqa"), torch.inference_mode():
        ids = model.generate(**inputs, max_new_tokens=max_new_tokens)
    return _decode(processor, ids[0])
