"""easy-vqa, and its frozen features computed once.

Images go through EfficientNet-Lite0's convolutional trunk (pooled mean and max of the last
block, 2 x 1280 numbers); questions through MiniLM (384 numbers; easy-vqa has 107 distinct
questions). Both encoders stay frozen, as BLIP's image encoder does when its text side learns.
The features are saved as .npy under the cache folder, keyed by a sha256 of the image files'
bytes and the settings, so a second run (or another session) starts training at once.

LLMPG_VQA_IMAGES=N keeps the first N train images and N/4 test images (easy-vqa's own ratio) with
their questions: the test suite sets 300, so the features it computes cold in every run take
seconds (all 5,000 images take about 3 minutes on 2 cores). Unset, the app uses the whole set.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from backends.core.paths import cache_dir
from backends.vision.classifier import features_of, preprocess

FEATURE_VERSION = 1
IMAGE_SIZE = 96  # easy-vqa's 64 x 64 images, upsampled so the trunk's last block keeps a 3 x 3 map
IMAGES_ENV = "LLMPG_VQA_IMAGES"
_lock = threading.Lock()


@dataclass(frozen=True)
class Split:
    questions: list[str]
    answers: np.ndarray  # answer index per question
    image_ids: np.ndarray
    paths: dict[int, str]


@dataclass(frozen=True)
class EasyVqa:
    answers: list[str]
    train: Split
    test: Split


def load_easy_vqa(images: int | None = None) -> EasyVqa:
    """easy-vqa: all of it, or its first `images` train images and a quarter as many test images,
    each with its own questions only. None reads $LLMPG_VQA_IMAGES; unset or 0 is the whole set."""
    if images is None:
        raw = os.environ.get(IMAGES_ENV, "").strip() or "0"
        if not raw.isdigit():
            raise ValueError(f"{IMAGES_ENV}={raw!r}: expected a number of train images (0 for all).")
        images = int(raw)
    return _load(images)


@lru_cache(maxsize=2)
def _load(images: int) -> EasyVqa:
    import easy_vqa

    answers = easy_vqa.get_answers()
    index = {a: i for i, a in enumerate(answers)}

    def split(questions, paths, keep: int) -> Split:
        texts, said, ids = questions
        rows = [i for i, image_id in enumerate(ids) if not keep or image_id < keep]
        return Split(
            [texts[i] for i in rows],
            np.array([index[said[i]] for i in rows]),
            np.array([ids[i] for i in rows]),
            {image_id: path for image_id, path in dict(paths).items() if not keep or image_id < keep},
        )

    return EasyVqa(
        answers,
        split(easy_vqa.get_train_questions(), easy_vqa.get_train_image_paths(), images),
        split(easy_vqa.get_test_questions(), easy_vqa.get_test_image_paths(), max(1, images // 4) if images else 0),
    )


@dataclass(frozen=True)
class VqaFeatures:
    train_images: np.ndarray  # (max id + 1, D), row = image id
    test_images: np.ndarray
    questions: list[str]  # distinct questions, train and test
    question_vectors: np.ndarray  # (len(questions), 384)
    image_size: int
    from_cache: bool

    def question_rows(self, texts: list[str]) -> np.ndarray:
        where = {q: i for i, q in enumerate(self.questions)}
        return np.array([where[t] for t in texts])


def _digest(paths: dict[int, str], extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for image_id in sorted(paths):
        h.update(str(image_id).encode())
        h.update(Path(paths[image_id]).read_bytes())
    return h.hexdigest()[:20]


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f"{path.stem}.{threading.get_ident()}.tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)


def _image_features(model, paths: dict[int, str], size: int, batch: int, progress, should_stop) -> np.ndarray:
    ids = sorted(paths)
    out = np.zeros((max(ids) + 1, 2560), dtype=np.float32)
    for start in range(0, len(ids), batch):
        if should_stop is not None and should_stop():
            raise InterruptedError("stopped while computing image features")
        chunk = ids[start : start + batch]
        images = [Image.open(paths[i]).convert("RGB") for i in chunk]
        out[chunk] = features_of(model, preprocess(images, size)).numpy()
        if progress is not None:
            progress(min(start + batch, len(ids)), len(ids))
    return out


def compute_features(
    classifier_model,
    encoder,
    data: EasyVqa,
    image_size: int = IMAGE_SIZE,
    batch: int = 100,
    progress=None,
    should_stop=None,
) -> VqaFeatures:
    """Frozen features of every easy-vqa image and question, from the disk cache when present.

    `progress(stage, done, total)` reports images; `should_stop()` is checked between batches.
    """
    from backends.vision.conse import embed_texts

    folder = cache_dir() / "vision" / "easy_vqa"
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"efficientnet-lite0|{image_size}|v{FEATURE_VERSION}"
    arrays, hit = {}, True
    for name, split in (("train", data.train), ("test", data.test)):
        path = folder / f"{name}_{_digest(split.paths, tag)}.npy"
        try:
            arrays[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            hit = False
            report = None if progress is None else (lambda done, total, n=name: progress(n, done, total))
            arrays[name] = _image_features(classifier_model, split.paths, image_size, batch, report, should_stop)
            with _lock:
                _atomic_save(path, arrays[name])
    questions = sorted(set(data.train.questions) | set(data.test.questions))
    qpath = folder / f"questions_{hashlib.sha256(json.dumps(questions).encode()).hexdigest()[:20]}.npy"
    try:
        vectors = np.load(qpath, allow_pickle=False)
    except (OSError, ValueError):
        vectors = embed_texts(encoder, questions)
        with _lock:
            _atomic_save(qpath, vectors)
    return VqaFeatures(arrays["train"], arrays["test"], questions, vectors, image_size, hit)
