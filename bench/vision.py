"""Vision: our ConSE embedding path vs the direct model call, indexing 1,000 images, text-search
latency over them, and the tiny VQA model's test accuracy after its default run.

- embed: the same 32 PIL images embedded by `ConseSpace.embed_images` (our preprocessing, the
  scheduler turn, the ConSE mix) and by a direct path (torchvision transforms, one EfficientNet
  call under inference_mode, the same mix written inline). Interleaved, order swapped per repeat;
  medians. The ratio is ours / direct images per second (>= 0.95 is the target); the two paths'
  vectors are checked to agree.
- index_1000_s: `build_gallery` on easy-vqa's 1,000 test images (real PNG files, decoded by
  `load_image`), ConSE, batches of 32.
- search_p95_ms: 95th percentile of `search_text` over that index (MiniLM encodes the query, then
  one matrix-vector product), 60 different queries; the product alone is shown too (the rest is
  MiniLM encoding the query on one thread, which a loaded CPU slows down).
- vqa_acc: `train_vqa` with the default VqaSettings on the cached frozen features (computed first
  if missing) -> accuracy on easy-vqa's 9,673 test questions (target >= 0.8).

Usage: .venv/bin/python bench/vision.py [--repeats 5] [--threads 1]
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
from torchvision import transforms

from backends import vision as V
from backends.models.cache import shared_cache
from backends.vision.samples import all_samples
from backends.vision.tiny_vqa import (
    VqaSettings,
    compute_features,
    load_easy_vqa,
    train_vqa,
)

DIRECT = transforms.Compose(
    [transforms.Resize((224, 224)), transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)]
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


def direct_embed(space, images) -> np.ndarray:
    batch = torch.stack([DIRECT(im) for im in images])
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classifier = shared_cache().get(V.CLASSIFIER, variant="image-classifier")
    encoder = shared_cache().get(V.ENCODER, variant="sentence")
    space = V.ConseSpace(classifier, encoder)

    photos = [s.image for s in all_samples()]
    images = (photos * 3)[:32]
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
    ours_ips, direct_ips = len(images) / statistics.median(ours_s), len(images) / statistics.median(direct_s)

    data = load_easy_vqa()
    files = [V.load_image(Path(data.test.paths[i]).read_bytes(), f"{i}.png") for i in sorted(data.test.paths)]
    index_s, gallery = timed(lambda: V.build_gallery(space, files))
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
        ("mean cosine ours vs direct vectors", f"{agree:.4f}"),
        ("index 1,000 easy-vqa images (s)", f"{index_s:.1f}"),
        ("text search p50 / p95 (ms)", f"{np.percentile(latencies, 50):.1f} / {p95:.1f}"),
        ("  of which the 1,000 x 384 product + top-8, p95 (ms)", f"{np.percentile(products, 95):.2f}"),
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
                "index_1000_s": round(index_s, 2),
                "search_p95_ms": round(p95, 2),
                "vqa_acc": round(trained.test_accuracy, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
