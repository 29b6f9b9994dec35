"""A 2-D map of chunk embeddings with the question placed among them (PCA by SVD).

The axes are the two directions along which the chunks differ most; the
question is projected with the same centre and axes, so its position is
comparable with the chunks' (it is not part of the fit).
"""
from __future__ import annotations

import numpy as np


class ProjectionError(ValueError):
    """Embeddings and query that cannot be projected together."""


def project_2d(embeddings: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chunk points of shape (n, 2), question point of shape (2,)); signs fixed so the map is stable."""
    x = np.asarray(embeddings, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64).ravel()
    if x.ndim != 2 or x.shape[0] == 0:
        raise ProjectionError(f"Need a non-empty 2-D array of chunk embeddings, got shape {x.shape}.")
    if q.shape[0] != x.shape[1]:
        raise ProjectionError(f"The question vector has {q.shape[0]} dimensions, the chunks {x.shape[1]}: "
                              "embed it with the collection's own model.")
    centre = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - centre, full_matrices=False)
    axes = np.zeros((2, x.shape[1]))
    axes[: min(2, len(vt))] = vt[:2]
    # an SVD axis may come out as +v or -v; make the largest loading positive so reruns agree
    for axis in axes:
        if axis.any() and axis[np.argmax(np.abs(axis))] < 0:
            axis *= -1
    points = (x - centre) @ axes.T
    return points.astype(np.float32), ((q - centre) @ axes.T).astype(np.float32)
