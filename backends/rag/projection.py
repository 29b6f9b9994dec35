"""A 2-D map of chunk embeddings with the question placed among them (PCA).

The axes are the two directions along which the chunks differ most; the
question is projected with the same centre and axes, so its position is
comparable with the chunks' (it is not part of the fit).
"""

from __future__ import annotations

import numpy as np

FIT_ROWS = 5000  # the axes of a larger collection are fitted on this many rows (fixed seed)


class ProjectionError(ValueError):
    """Embeddings and query that cannot be projected together."""


def project_2d(embeddings: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chunk points of shape (n, 2), question point of shape (2,)); signs fixed so the map is stable."""
    x = np.asarray(embeddings, dtype=np.float32)
    q = np.asarray(query, dtype=np.float32).ravel()
    if x.ndim != 2 or x.shape[0] == 0:
        raise ProjectionError(f"Need a non-empty 2-D array of chunk embeddings, got shape {x.shape}.")
    if q.shape[0] != x.shape[1]:
        raise ProjectionError(
            f"The question vector has {q.shape[0]} dimensions, the chunks {x.shape[1]}: "
            "embed it with the collection's own model."
        )
    centre = x.mean(axis=0)
    centred = x - centre
    # eigenvectors of the d x d covariance = right singular vectors of the centred data; a
    # sample of rows gives the same picture for a big collection at a fixed cost
    fit = centred
    if len(x) > FIT_ROWS:
        fit = centred[np.sort(np.random.default_rng(0).choice(len(x), FIT_ROWS, replace=False))]
    values, vectors = np.linalg.eigh((fit.T @ fit).astype(np.float64))
    axes = vectors[:, np.argsort(values)[::-1][:2]].T.astype(np.float32)
    if axes.shape[0] < 2:
        axes = np.vstack([axes, np.zeros((2 - axes.shape[0], x.shape[1]), dtype=np.float32)])
    # an axis may come out as +v or -v; make the largest loading positive so reruns agree
    for axis in axes:
        if axis.any() and axis[np.argmax(np.abs(axis))] < 0:
            axis *= -1
    points = centred @ axes.T
    return points.astype(np.float32), ((q - centre) @ axes.T).astype(np.float32)
