"""ConSE: a zero-shot image-text space built from two pretrained parts, the offline stand-in for CLIP.

Norouzi et al., "Zero-Shot Learning by Convex Combination of Semantic Embeddings" (ICLR 2014):
an image's embedding is the probability-weighted mean of the text embeddings of its top-k
ImageNet classes (EfficientNet-Lite0 gives the probabilities, MiniLM embeds the class names);
any text is embedded by MiniLM into the same space, so "a cup of coffee" can be compared with a
photo the classifier calls "espresso, cup, coffee mug". Unlike CLIP nothing here was trained on
image-text pairs: the image side only knows ImageNet's 1,000 classes.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from backends.core.paths import cache_dir
from backends.core.scheduler import shared_scheduler
from backends.vision.classifier import logits_of

ENCODER = "all-minilm-l6-v2"
TOP_K = 10
_names_lock = threading.Lock()
_names_memo: dict[str, np.ndarray] = {}


def embed_texts(encoder, texts: list[str]) -> np.ndarray:
    """MiniLM sentence embeddings (N, 384), L2-normalised; `encoder` is the cached SentenceTransformer."""
    if not texts:
        return np.zeros((0, encoder.get_sentence_embedding_dimension()), dtype=np.float32)
    with shared_scheduler().turn("vision.embed_text"):
        vectors = encoder.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return vectors.astype(np.float32)


def class_name_embeddings(encoder, encoder_key: str, names: list[str]) -> np.ndarray:
    """Embeddings of the 1,000 class names, computed once per encoder (kept on disk as .npy)."""
    digest = hashlib.sha256(("\n".join(names) + "|" + encoder_key).encode()).hexdigest()[:16]
    with _names_lock:
        if digest in _names_memo:
            return _names_memo[digest]
        path = cache_dir() / "vision" / f"class_names_{digest}.npy"
        try:
            vectors = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            vectors = embed_texts(encoder, names)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(path)
        _names_memo[digest] = vectors
        return vectors


def conse_from_probs(probs: torch.Tensor, class_vectors: torch.Tensor, top_k: int = TOP_K) -> torch.Tensor:
    """(N, 1000) probabilities -> (N, D) unit vectors: sum over the top-k classes of p_i / sum(p) * e_i.

    Differentiable in `probs` (the top-k choice is not), so Grad-CAM can explain a ConSE score.
    """
    weights, index = probs.topk(top_k, dim=-1)
    weights = weights / weights.sum(-1, keepdim=True)
    mixed = (weights.unsqueeze(-1) * class_vectors[index]).sum(1)
    return torch.nn.functional.normalize(mixed, dim=-1)


@dataclass
class ConseSpace:
    """Images and texts in MiniLM's space. `classifier` and `encoder` are LoadedModels from the cache."""

    classifier: object
    encoder: object
    top_k: int = TOP_K
    method: str = "conse"
    logit_scale: float = 10.0  # cosine -> softmax temperature (CLIP learns about 100)

    def __post_init__(self):
        names = self.classifier.tokenizer
        self.class_names: list[str] = list(names)
        key = getattr(self.encoder, "key", None)
        self.class_vectors = torch.from_numpy(
            class_name_embeddings(self.encoder.model, str(getattr(key, "model", ENCODER)), self.class_names)
        )

    @property
    def name(self) -> str:
        return f"ConSE (EfficientNet-Lite0 top-{self.top_k} + all-MiniLM-L6-v2)"

    def probs(self, images: list[Image.Image]) -> torch.Tensor:
        return logits_of(self.classifier.model, images).softmax(-1)

    def embed_images(self, images: list[Image.Image]) -> np.ndarray:
        return conse_from_probs(self.probs(images), self.class_vectors, self.top_k).numpy().astype(np.float32)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return embed_texts(self.encoder.model, texts)
