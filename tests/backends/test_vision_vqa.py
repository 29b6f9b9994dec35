"""The tiny VQA model on real easy-vqa data with the real frozen encoders.

The suite trains on easy-vqa's first 300 + 75 images (LLMPG_VQA_IMAGES, set by tests/user_cache.py):
their features are computed cold in every run (about 6 s; all 5,000 images take about 3 minutes
on 2 busy cores). A short run (three epochs) must learn well above chance; the default run's >= 80%
target on the whole set is checked by bench/vision.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backends import vision as V
from backends.core.jobs import shared_runner
from backends.models.cache import shared_cache
from backends.vision.tiny_vqa import (
    VqaSettings,
    ask,
    compute_features,
    load_easy_vqa,
    train_job,
    train_vqa,
)


@pytest.fixture(scope="module")
def parts():
    torch.set_num_threads(1)
    return (
        shared_cache().get(V.CLASSIFIER, variant="image-classifier"),
        shared_cache().get(V.ENCODER, variant="sentence"),
    )


@pytest.fixture(scope="module")
def features(parts):
    return compute_features(parts[0].model, parts[1].model, load_easy_vqa())


def test_easy_vqa_loads_with_its_thirteen_answers():
    data = load_easy_vqa(0)  # the whole set, what the app uses
    assert len(data.answers) == 13 and {"yes", "no", "circle", "red"} <= set(data.answers)
    assert len(data.train.questions) == 38575 and len(data.test.questions) == 9673
    assert len(data.train.paths) == 4000 and len(data.test.paths) == 1000


def test_the_tests_small_easy_vqa_is_its_first_images_with_their_own_questions(monkeypatch):
    whole, small = load_easy_vqa(0), load_easy_vqa()
    assert (len(small.train.paths), len(small.test.paths)) == (300, 75) and small.answers == whole.answers
    for part, full in ((small.train, whole.train), (small.test, whole.test)):
        assert sorted(part.paths) == list(range(len(part.paths)))
        assert set(part.image_ids) == set(part.paths) and len(part.questions) == len(part.answers)
        keep = full.image_ids < len(part.paths)
        assert part.questions == [q for q, k in zip(full.questions, keep) if k]
        np.testing.assert_array_equal(part.answers, full.answers[keep])
    monkeypatch.setenv("LLMPG_VQA_IMAGES", "")
    assert load_easy_vqa() is whole
    monkeypatch.setenv("LLMPG_VQA_IMAGES", "all")
    with pytest.raises(ValueError, match="LLMPG_VQA_IMAGES='all'"):
        load_easy_vqa()


def test_features_are_cached_on_disk_by_content_hash(parts, features, suite_cache):
    data = load_easy_vqa()
    assert features.train_images.shape == (len(data.train.paths), 2560) and features.question_vectors.shape[1] == 384
    assert len(features.test_images) == len(data.test.paths)
    assert len(list((suite_cache.cache / "vision" / "easy_vqa").glob("*.npy"))) >= 3, "train, test, questions"
    again = compute_features(parts[0].model, parts[1].model, data)
    assert again.from_cache
    np.testing.assert_array_equal(again.test_images, features.test_images)


def test_a_short_run_learns_well_above_chance(features):
    data = load_easy_vqa()
    majority = np.bincount(data.test.answers).max() / len(data.test.answers)
    events = []
    trained = train_vqa(
        features,
        data,
        VqaSettings(epochs=3, batch_size=32, lr=2e-3),
        report=lambda p, kind, **row: events.append((kind, row)),
    )
    assert majority < 0.4
    assert trained.test_accuracy > 0.6, trained.history
    losses = [row["loss"] for kind, row in events if kind == "step"]
    assert len(losses) >= 10 and np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3])
    image = features.test_images[data.test.image_ids[0]]
    question = features.question_vectors[features.question_rows([data.test.questions[0]])[0]]
    answers = ask(trained, image, question)
    assert len(answers) == 3 and answers[0][1] >= answers[1][1] and answers[0][0] in data.answers


def test_the_background_job_reports_epochs_and_can_be_stopped(parts, features):
    job = shared_runner().submit(
        "test.vision.vqa", train_job, parts[0], parts[1], VqaSettings(epochs=100, train_questions=2000)
    )
    while not any(e.data.get("kind") == "epoch" for e in job.events_since(0)):
        assert job.wait(0.2) is False or job.status == "done", job.error
    job.stop()
    assert job.wait(120)
    assert job.status in ("done", "stopped") and job.result is not None and job.result.stopped
    assert 1 <= len(job.result.history) < 100


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="epochs = 0"):
        VqaSettings(epochs=0).validate()
    with pytest.raises(ValueError, match="learning rate 5"):
        VqaSettings(lr=5.0).validate()
