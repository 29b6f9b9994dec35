"""The offline path on the real models and real photos: EfficientNet-Lite0 + MiniLM (ConSE),
zero-shot labels, text search over the samples, and Grad-CAM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backends import vision as V
from backends.core.jobs import shared_runner
from backends.models.cache import shared_cache
from backends.models.env import embedded_models
from backends.vision import conse
from backends.vision.samples import SAMPLES, all_samples, sample

TEMPLATES = list(V.DEFAULT_TEMPLATES)


@pytest.fixture(scope="module")
def space():
    torch.set_num_threads(1)
    classifier = shared_cache().get(V.CLASSIFIER, variant="image-classifier")
    encoder = shared_cache().get(V.ENCODER, variant="sentence")
    return V.ConseSpace(classifier, encoder)


@pytest.fixture(scope="module")
def gallery(space):
    job = shared_runner().submit("test.vision.index", V.index_job, space, all_samples())
    assert job.wait(300) and job.status == "done", job.error
    return job.result


def test_the_classifier_is_registered_with_its_licence_and_loads_imagenet_names():
    row = next(m for m in embedded_models() if m.key == "efficientnet-lite0")
    assert row.installed and row.kind == "image-classifier" and row.license.startswith("Apache-2.0")
    loaded = shared_cache().get("efficientnet-lite0", variant="image-classifier")
    assert len(loaded.tokenizer) == 1000 and loaded.tokenizer[285] == "Egyptian cat"
    assert not any(p.requires_grad for p in loaded.model.parameters())


def test_the_class_vectors_are_computed_once_then_read_from_the_cache_folder(space, suite_cache, monkeypatch):
    # The run's cache folder starts empty: the first ConseSpace of the run embedded the 1,000 names.
    saved = [np.load(f) for f in (suite_cache.cache / "vision").glob("class_names_*.npy")]
    assert space.class_vectors.shape == (1000, 384)
    assert any(np.array_equal(v, space.class_vectors.numpy()) for v in saved)
    monkeypatch.setattr(conse, "_names_memo", {})  # as a new process would start
    monkeypatch.setattr(conse, "embed_texts", lambda *a: pytest.fail("the class names were embedded again"))
    again = V.ConseSpace(space.classifier, space.encoder)
    assert torch.equal(again.class_vectors, space.class_vectors)


def test_chelsea_the_cat_is_an_egyptian_cat_for_efficientnet(space):
    probs = space.probs([sample("chelsea").image])[0].numpy()
    top = V.top_classes(probs, space.class_names, 3)
    assert {c.name for c in top} <= {"Egyptian cat", "tiger cat", "tabby"} and top[0].prob > 0.5


def test_zero_shot_cat_beats_dog_and_car_and_coffee_beats_cat(space):
    cat = space.embed_images([sample("chelsea").image])[0]
    result = V.zero_shot(space, cat, ["cat", "dog", "car"], TEMPLATES)
    assert result.probs[0] > result.probs[1] and result.probs[0] > result.probs[2]
    assert result.per_template.shape == (len(TEMPLATES), 3) and np.allclose(result.per_template.sum(1), 1)
    coffee = space.embed_images([sample("coffee").image])[0]
    result = V.zero_shot(space, coffee, ["coffee", "cat"], TEMPLATES)
    assert result.probs[0] > result.probs[1]


def test_conse_text_search_ranks_the_coffee_photo_first(space, gallery):
    assert len(gallery) == len(SAMPLES) and gallery.method == "conse"
    np.testing.assert_allclose(np.linalg.norm(gallery.vectors, axis=1), 1, atol=1e-5)
    hits = V.search_text(space, gallery, "a cup of coffee", k=3)
    assert hits[0].name == "coffee"
    assert V.search_text(space, gallery, "a cat", k=1)[0].name == "chelsea"
    like = V.search_image(space, gallery, sample("coffee").image, k=1)
    assert like[0].name == "coffee" and like[0].score == pytest.approx(1.0, abs=1e-4)
    points, query = V.pca_2d(gallery.vectors, gallery.vectors[:1])
    assert points.shape == (len(SAMPLES), 2) and np.allclose(query, points[:1], atol=1e-5)
    with pytest.raises(ValueError, match="search"):
        V.search_text(space, gallery, "  ")


def test_gradcam_maps_are_normalised_and_non_constant(space):
    image = sample("chelsea").image
    cam = V.efficientnet_cam(space.classifier.model, image, class_index=285, target="Egyptian cat")
    assert cam.heatmap.shape == (image.size[1], image.size[0]) and cam.grid.shape == (7, 7)
    assert cam.heatmap.min() >= 0 and cam.heatmap.max() == pytest.approx(1.0, abs=0.01)
    assert cam.heatmap.std() > 0.05
    # The ConSE score of a typed label is explained the same way, through the class probabilities.
    label = space.embed_texts(["cat"])[0]
    conse = V.efficientnet_cam(
        space.classifier.model, image, label_vector=label, class_vectors=space.class_vectors, target="cat"
    )
    assert conse.heatmap.std() > 0.05 and 0 < conse.score <= 1
    assert V.overlay(image, cam.heatmap).size == image.size


def test_bad_labels_and_templates_are_quoted():
    with pytest.raises(V.LabelError, match="'cat'"):
        V.clean_labels("cat")
    assert V.clean_labels("cat, Cat, dog,, car\n") == ["cat", "dog", "car"]
    with pytest.raises(V.LabelError, match="'a photo'"):
        V.check_templates(["a photo"])
    with pytest.raises(V.LabelError, match="at least one"):
        V.check_templates(["  "])
