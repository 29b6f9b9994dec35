"""Image search: a gallery embedded once in an image-text space, searched by text or by image.

Vectors are unit length, so a search is one matrix-vector product (cosine similarity); 1,000
images x 384 dimensions take well under a millisecond. The 2-D map is a PCA of the gallery
(numpy SVD), with queries projected into the same plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from backends.vision.images import LoadedImage

THUMB = 160


@dataclass
class Gallery:
    names: list[str]
    vectors: np.ndarray  # (N, D) unit vectors
    thumbnails: list[Image.Image]
    method: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Hit:
    index: int
    name: str
    score: float


def thumbnail(image: Image.Image, size: int = THUMB) -> Image.Image:
    small = image.copy()
    small.thumbnail((size, size))
    return small


def build_gallery(space, images: list[LoadedImage], batch_size: int = 32, progress=None) -> Gallery:
    """Embed every image (in batches; `progress(done, total)` after each) and keep a thumbnail of each."""
    vectors = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        vectors.append(space.embed_images([item.image for item in chunk]))
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    matrix = np.concatenate(vectors).astype(np.float32) if vectors else np.zeros((0, 1), np.float32)
    return Gallery([item.name for item in images], matrix, [thumbnail(item.image) for item in images], space.method)


def search_vector(gallery: Gallery, query: np.ndarray, k: int = 8, exclude: int | None = None) -> list[Hit]:
    if len(gallery) == 0:
        return []
    scores = gallery.vectors @ query.astype(np.float32)
    if exclude is not None:
        scores[exclude] = -np.inf
    k = min(k, len(gallery) - (exclude is not None))
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top])]
    return [Hit(int(i), gallery.names[i], float(scores[i])) for i in top[:k]]


def search_text(space, gallery: Gallery, query: str, k: int = 8) -> list[Hit]:
    query = (query or "").strip()
    if not query:
        raise ValueError("Type something to search for.")
    return search_vector(gallery, space.embed_texts([query])[0], k)


def search_image(space, gallery: Gallery, image: Image.Image, k: int = 8) -> list[Hit]:
    return search_vector(gallery, space.embed_images([image])[0], k)


def pca_2d(vectors: np.ndarray, extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Gallery points in their first two principal components, and `extra` points in the same plane."""
    if len(vectors) < 2:
        return np.zeros((len(vectors), 2)), None if extra is None else np.zeros((len(extra), 2))
    mean = vectors.mean(0)
    _, _, vt = np.linalg.svd(vectors - mean, full_matrices=False)
    axes = vt[:2].T
    if axes.shape[1] < 2:
        axes = np.pad(axes, ((0, 0), (0, 2 - axes.shape[1])))
    return (vectors - mean) @ axes, None if extra is None else (extra - mean) @ axes


def index_job(ctx, space, images: list[LoadedImage], skipped: list[tuple[str, str]] | None = None) -> Gallery:
    """Background-job form of build_gallery: reports progress per batch and can be stopped between batches."""

    def progress(done: int, total: int) -> None:
        ctx.check_stop()
        ctx.report(done / max(1, total), "indexing", done=done, total=total)

    gallery = build_gallery(space, images, progress=progress)
    gallery.skipped = list(skipped or [])
    return gallery
