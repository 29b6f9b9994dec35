"""The open_clip code path on a tiny randomly initialised open_clip model built from its config.

No open_clip weights exist offline, so (as for CLIP and BLIP in test_vision_tiny_models.py) we build
a model with two-layer towers of width 64 on 32 x 32 images, save it in open_clip's hub layout
(open_clip_config.json + open_clip_model.safetensors) and load it through the shared cache with an
`open_clip:<folder>` name. The tokenizer is open_clip's default BPE, shipped inside the wheel. These
tests check plumbing (loading, shapes, our calls against open_clip's own), not quality: the model is random.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from backends import vision as V
from backends.models.cache import ModelCache
from backends.models.registry import ModelNotAvailable
from backends.vision.images import LoadedImage

TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
# The same text tower with open_clip's ModifiedResNet image tower (as in RN50): no ViT tokens for Grad-CAM.
TINY_RESNET_CFG = {**TINY_CFG, "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 16, "head_width": 16}}


def build_tiny_open_clip(folder, cfg: dict = TINY_CFG) -> str:
    """A random open_clip CLIP saved as open_clip_config.json + open_clip_model.safetensors; returns its name."""
    import open_clip
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = open_clip.CLIP(**cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    return f"open_clip:{folder}"


def _images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (40 + 8 * i, 48, 3), dtype=np.uint8)) for i in range(5)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cache = ModelCache()
    name = build_tiny_open_clip(tmp_path_factory.mktemp("oc") / "tiny")
    return name, cache, cache.get(name, variant="clip")


def test_open_clip_plumbing_loads_once_through_the_cache_from_a_folder(tiny):
    name, cache, loaded = tiny
    assert loaded.source == "local-path" and loaded.kind == "vision-language"
    assert cache.get(name, variant="clip") is loaded and cache.loads == 1
    assert not any(p.requires_grad for p in loaded.model.parameters())
    space = V.OpenClipSpace(loaded)
    assert space.method == "open_clip" and space.has_vit_tower
    assert space.logit_scale == pytest.approx(float(loaded.model.clip.logit_scale.exp()))


def test_open_clip_plumbing_embeddings_equal_direct_open_clip_calls(tiny):
    import open_clip

    name, _, loaded = tiny
    folder = name.removeprefix("open_clip:")
    direct, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{folder}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    images, texts = _images(), ["a photo of a cat.", "a dog", "coffee"]
    space = V.OpenClipSpace(loaded)
    ours_img, ours_txt = space.embed_images(images, batch_size=2), space.embed_texts(texts)
    direct.eval()
    with torch.no_grad():
        want_img = direct.encode_image(torch.stack([preprocess(im) for im in images]), normalize=True).numpy()
        want_txt = direct.encode_text(tokenizer(texts), normalize=True).numpy()
    assert ours_img.shape == (5, 32) and ours_txt.shape == (3, 32)
    np.testing.assert_allclose(ours_img, want_img, atol=1e-5)
    np.testing.assert_allclose(ours_txt, want_txt, atol=1e-5)
    # The transformers-style methods the Grad-CAM code calls give the same vectors, and the last hidden
    # state path (run block by block) matches open_clip's own forward.
    pixels = space.pixel_values(images[:2])
    with torch.no_grad():
        plain = loaded.model.get_image_features(pixels).pooler_output
        stepped = loaded.model.get_image_features(pixels, output_hidden_states=True)
    torch.testing.assert_close(stepped.pooler_output, plain)
    assert len(stepped.hidden_states) == 3 and stepped.hidden_states[-2].shape == (2, 17, 64)


def test_open_clip_plumbing_zero_shot_search_and_gradcam(tiny):
    _, _, loaded = tiny
    space = V.OpenClipSpace(loaded)
    images = _images()
    labels, templates = ["cat", "dog", "car"], ["a photo of a {}.", "{}"]
    result = V.zero_shot(space, space.embed_images(images[:1])[0], labels, templates)
    assert result.method == "open_clip" and result.probs.shape == (3,) and result.per_template.shape == (2, 3)
    assert result.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(result.per_template.sum(1), 1.0, atol=1e-5)

    gallery = V.build_gallery(space, [LoadedImage(f"img{i}", im) for i, im in enumerate(images)], batch_size=2)
    assert gallery.vectors.shape == (5, 32) and gallery.method == "open_clip"
    assert np.allclose(np.linalg.norm(gallery.vectors, axis=1), 1.0, atol=1e-5)
    hits = V.search_text(space, gallery, "a cat", k=3)
    assert len(hits) == 3 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    by_image = V.search_image(space, gallery, images[3], k=2)
    assert by_image[0].name == "img3" and by_image[0].score == pytest.approx(1.0, abs=1e-5)

    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    cam = V.vit_cam(space, images[0], "cat")
    assert cam.grid.shape == (4, 4) and cam.heatmap.shape == (images[0].height, images[0].width)
    assert cam.heatmap.min() >= 0.0 and cam.heatmap.max() <= 1.0
    after = loaded.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the cached model is never changed


def test_open_clip_plumbing_a_resnet_tower_embeds_and_says_it_has_no_vit_tokens(tmp_path):
    space = V.OpenClipSpace(ModelCache().get(build_tiny_open_clip(tmp_path / "rn", TINY_RESNET_CFG), variant="clip"))
    assert not space.has_vit_tower
    result = V.zero_shot(space, space.embed_images(_images()[:1])[0], ["cat", "dog"], ["a photo of a {}."])
    assert result.probs.sum() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="ModifiedResNet"):
        V.vit_cam(space, _images()[0], "cat")


def test_open_clip_plumbing_pickled_weights_are_refused(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG}))
    (folder / "open_clip_pytorch_model.bin").write_bytes(b"\x80\x04 never unpickled")
    with pytest.raises(ModelNotAvailable, match=r"only pickled weights \(open_clip_pytorch_model.bin\)"):
        ModelCache().get(f"open_clip:{folder}", variant="clip")
    (folder / "open_clip_pytorch_model.bin").unlink()
    with pytest.raises(ModelNotAvailable, match="has no open_clip_model.safetensors"):
        ModelCache().get(f"open_clip:{folder}", variant="clip")


@pytest.mark.parametrize(
    "name, message",
    [
        (V.DEFAULT_OPEN_CLIP, "open_clip weights need the network"),
        ("open_clip:hf-hub:nobody/no-such-open-clip", "open_clip weights need the network"),
        ("open_clip:NoSuchNet-9/laion", "open_clip knows no architecture 'NoSuchNet-9'"),
        ("open_clip:ViT-B-32/no_such_tag", "has no pretrained tag 'no_such_tag'"),
        ("open_clip:/no/such/open_clip/folder", "does not exist"),
        ("open_clip:", "give an open_clip model"),
    ],
)
def test_open_clip_plumbing_unavailable_names_offline_are_explained(monkeypatch, name, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailable, match=message):
        ModelCache().get(name, variant="clip")
