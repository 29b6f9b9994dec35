"""Vision: our ConSE embedding path vs the direct model call, indexing 1,000 images, text-search
latency over them, and the tiny VQA model's test accuracy after its default run.

- embed: the same 32 PIL images embedded by `ConseSpace.embed_images` (our preprocessing, the
  scheduler turn, the ConSE mix) and by a direct path written inline: the same preprocessing as
  backends/vision/classifier.preprocess (a square bilinear PIL resize to 224 x 224, nothing
  cropped, /255, (x - 0.5) / 0.5, the batch left in numpy's N x H x W x C memory order, which
  torch sees as channels-last), one EfficientNet call under inference_mode, the same mix. Before
  timing, the bench checks that the two preprocessed batches are equal in values and memory
  layout (the same values as a contiguous N x C x H x W batch, what torchvision's ToTensor
  gives, ran ~1.3x slower through EfficientNet on this CPU: the layout is part of the work);
  after timing, that the two paths' vectors agree (max |difference| <= 1e-5), else it stops
  with an error and no JSON line. Interleaved, order swapped per repeat; medians. The ratio is ours / direct images per
  second (>= 0.95 is the target).
- index_1000_s: from the PNG files on disk to a searchable gallery: reading each of easy-vqa's
  1,000 test images, decoding it with `load_image` (as an upload is), and `build_gallery`
  (ConSE, batches of 32, thumbnails); the reading + decoding share is shown. The OS page cache
  may hold the files. `--images N` indexes the first N only (a quick check; the key becomes
  index_N_s).
- search_p95_ms: 95th percentile of `search_text` over that index (MiniLM encodes the query, then
  one matrix-vector product), 60 different queries; the product alone is shown too (the rest is
  MiniLM encoding the query on one thread, which a loaded CPU slows down).
- vqa_acc: `train_vqa` with the default VqaSettings on the cached frozen features (computed first
  if missing) -> accuracy on easy-vqa's 9,673 test questions (target >= 0.8).

Everything runs on --threads torch threads, in this process's main thread (train_vqa sets its
own count from LLMPG_JOB_THREADS, which the bench sets to --threads).

Usage: .venv/bin/python bench/vision.py [--repeats 5] [--threads 1] [--images 1000]
Last line: {"embed_ratio": ..., "index_1000_s": ..., "search_p95_ms": ..., "vqa_acc": ...}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
from PIL import Image

from backends import vision as V
from backends.core.jobs import THREADS_ENV
from backends.models.cache import shared_cache
from backends.vision.classifier import preprocess
from backends.vision.samples import all_samples
from backends.vision.tiny_vqa import (
    VqaSettings,
    compute_features,
    load_easy_vqa,
    train_vqa,
)

QUERIES = [
    "a red circle",
    "a blue square",
    "a green triangle",
    "a cup of coffee",
    "a cat",
    "a rocket",
    "a shape",
    "something round",
    "a yellow object",
    "a black rectangle",
]


def direct_batch(images) -> torch.Tensor:
    """EfficientNet-Lite0's input, written out: square bilinear resize, [0, 1], mean = std = 0.5."""
    arrays = np.stack([np.asarray(im.resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255.0 for im in images])
    return (torch.from_numpy(arrays).permute(0, 3, 1, 2) - 0.5) / 0.5  # N x C x H x W, channels-last in memory


def direct_embed(space, images) -> np.ndarray:
    batch = direct_batch(images)
    with torch.inference_mode():
        probs = space.classifier.model(batch).softmax(-1)
        weights, index = probs.topk(space.top_k, dim=-1)
        weights = weights / weights.sum(-1, keepdim=True)
        mixed = (weights.unsqueeze(-1) * space.class_vectors[index]).sum(1)
    return torch.nn.functional.normalize(mixed, dim=-1).numpy()


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=1000, help="index the first N test images (1000: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ[THREADS_ENV] = str(args.threads)  # train_vqa's own count (backends/core/jobs.job_threads)
    classifier = shared_cache().get(V.CLASSIFIER, variant="image-classifier")
    encoder = shared_cache().get(V.ENCODER, variant="sentence")
    space = V.ConseSpace(classifier, encoder)

    photos = [s.image for s in all_samples()]
    images = (photos * 3)[:32]
    ours_batch, direct = preprocess(images), direct_batch(images)
    if not (torch.equal(ours_batch, direct) and ours_batch.stride() == direct.stride()):
        raise SystemExit(
            f"the direct path's preprocessing differs from ours: max |difference| "
            f"{(ours_batch - direct).abs().max().item():.2e}, strides {direct.stride()} vs {ours_batch.stride()}."
        )
    space.embed_images(images[:4])  # warm-up both paths
    direct_embed(space, images[:4])
    ours_s, direct_s = [], []
    for repeat in range(args.repeats):
        order = [("ours", lambda: space.embed_images(images)), ("direct", lambda: direct_embed(space, images))]
        for name, fn in order if repeat % 2 == 0 else order[::-1]:
            seconds, vectors = timed(fn)
            (ours_s if name == "ours" else direct_s).append(seconds)
            if name == "ours":
                ours_vectors = vectors
            else:
                direct_vectors = vectors
    agree = float(np.mean(np.sum(ours_vectors * direct_vectors, axis=1)))
    worst = float(np.abs(ours_vectors - direct_vectors).max())
    if worst > 1e-5:
        raise SystemExit(f"ours and the direct path gave different vectors (max |difference| {worst:.2e} > 1e-5).")
    ours_ips, direct_ips = len(images) / statistics.median(ours_s), len(images) / statistics.median(direct_s)

    data = load_easy_vqa()
    paths = [Path(data.test.paths[i]) for i in sorted(data.test.paths)][: args.images]

    def index():
        """PNG files on disk -> decoded images -> gallery; returns (read + decode seconds, gallery)."""
        started = time.perf_counter()
        files = [V.load_image(path.read_bytes(), path.name) for path in paths]
        return time.perf_counter() - started, V.build_gallery(space, files)

    index_s, (decode_s, gallery) = timed(index)
    latencies = []
    for i in range(60):
        query = f"{QUERIES[i % len(QUERIES)]} {i // len(QUERIES)}".strip()
        seconds, _ = timed(lambda q=query: V.search_text(space, gallery, q, k=8))
        latencies.append(seconds * 1000)
    p95 = float(np.percentile(latencies, 95))
    query_vector = space.embed_texts(["a red circle"])[0]
    products = [timed(lambda: V.search_vector(gallery, query_vector, k=8))[0] * 1000 for _ in range(60)]

    features_s, features = timed(lambda: compute_features(classifier.model, encoder.model, data))
    trained = train_vqa(features, data, VqaSettings())

    rows = [
        ("embed, ours (images/s)", f"{ours_ips:.1f}"),
        ("embed, direct (images/s)", f"{direct_ips:.1f}"),
        ("embed ratio (ours / direct)", f"{ours_ips / direct_ips:.3f}"),
        ("mean cosine / max |difference| ours vs direct vectors", f"{agree:.4f} / {worst:.1e}"),
        (f"index {len(paths):,} easy-vqa PNG files (s)", f"{index_s:.1f}"),
        ("  of which reading + decoding the files (s)", f"{decode_s:.2f}"),
        ("text search p50 / p95 (ms)", f"{np.percentile(latencies, 50):.1f} / {p95:.1f}"),
        (f"  of which the {len(paths):,} x 384 product + top-8, p95 (ms)", f"{np.percentile(products, 95):.2f}"),
        (f"VQA features (s, cached: {features.from_cache})", f"{features_s:.1f}"),
        ("VQA default run: train time (s)", f"{trained.seconds:.1f}"),
        ("VQA test accuracy (9,673 questions)", f"{trained.test_accuracy:.3f}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"vision bench, {args.threads} torch thread(s), medians of {args.repeats}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(
        json.dumps(
            {
                "embed_ratio": round(ours_ips / direct_ips, 3),
                f"index_{len(paths)}_s": round(index_s, 2),
                "search_p95_ms": round(p95, 2),
                "vqa_acc": round(trained.test_accuracy, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
