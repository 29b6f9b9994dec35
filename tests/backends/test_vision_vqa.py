"""The tiny VQA model on real easy-vqa data with the real frozen encoders.

A short run here (one epoch on a quarter of the questions) must learn well above chance; the
default run's >= 80% target is checked by bench/vision.py (it takes a few minutes on 2 cores).
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
    data = load_easy_vqa()
    assert len(data.answers) == 13 and {"yes", "no", "circle", "red"} <= set(data.answers)
    assert len(data.train.questions) == 38575 and len(data.test.questions) == 9673
    assert len(data.train.paths) == 4000 and len(data.test.paths) == 1000


def test_features_are_cached_on_disk_by_content_hash(parts, features):
    assert features.train_images.shape == (4000, 2560) and features.question_vectors.shape[1] == 384
    again = compute_features(parts[0].model, parts[1].model, load_easy_vqa())
    assert again.from_cache
    np.testing.assert_array_equal(again.test_images, features.test_images)


def test_a_short_run_learns_well_above_chance(features):
    data = load_easy_vqa()
    majority = np.bincount(data.test.answers).max() / len(data.test.answers)
    events = []
    trained = train_vqa(
        features,
        data,
        VqaSettings(epochs=1, train_questions=10000),
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
        "test.vision.vqa", train_job, parts[0], parts[1], VqaSettings(epochs=50, train_questions=2000)
    )
    while not any(e.data.get("kind") == "epoch" for e in job.events_since(0)):
        assert job.wait(0.2) is False or job.status == "done", job.error
    job.stop()
    assert job.wait(120)
    assert job.status in ("done", "stopped") and job.result is not None and job.result.stopped
    assert 1 <= len(job.result.history) < 50


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="epochs = 0"):
        VqaSettings(epochs=0).validate()
    with pytest.raises(ValueError, match="learning rate 5"):
        VqaSettings(lr=5.0).validate()
