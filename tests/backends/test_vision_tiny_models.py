"""CLIP and BLIP code paths on tiny randomly initialised models built from their configs.

No CLIP or BLIP weights exist offline, so (as transformers' own test suite does) we build models
of a few thousand parameters, save them to a temporary folder, and load them through the
registry's local-folder route and the shared cache. These tests check plumbing (shapes,
processors, our calls, the page's flow), not quality: the models are random.
"""

from __future__ import annotations

import string

import numpy as np
import pytest
import torch
from PIL import Image

from backends.models.cache import ModelCache
from backends.models.registry import resolve

WORDS = ["a", "photo", "of", "the", "cat", "dog", "car", "coffee", "cup", "is", "what", "color", "shape", "red"]


def _clip_tokenizer():
    from transformers import CLIPTokenizer

    letters = list(string.ascii_lowercase) + [c + "</w>" for c in string.ascii_lowercase]
    vocab = {tok: i for i, tok in enumerate(["<|startoftext|>", "<|endoftext|>", ".", ".</w>", *letters])}
    return CLIPTokenizer(vocab=vocab, merges=[])


def build_tiny_clip(folder) -> str:
    """A CLIPModel with 2-layer towers of width 32 on 32 x 32 images, saved with its processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = _clip_tokenizer()
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        },
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder, safe_serialization=True)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(folder)
    return str(folder)


def build_tiny_blip(folder, vqa: bool = False) -> str:
    """A BLIP captioner (or VQA model) with 2-layer towers of width 32, saved with its processor."""
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipForQuestionAnswering,
        BlipImageProcessor,
        BlipProcessor,
    )

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    tokenizer = BertTokenizer(vocab=vocab, bos_token="[DEC]")
    text = {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "encoder_hidden_size": 32,
        "max_position_embeddings": 64,
        "bos_token_id": vocab["[DEC]"],
        "pad_token_id": 0,
        "sep_token_id": vocab["[SEP]"],
        "eos_token_id": vocab["[SEP]"],
    }
    config = BlipConfig(
        text_config=text,
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
        },
        projection_dim=16,
    )
    torch.manual_seed(0)
    cls = BlipForQuestionAnswering if vqa else BlipForConditionalGeneration
    cls(config).save_pretrained(folder, safe_serialization=True)
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    processor.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_vision")
    return {
        "clip": build_tiny_clip(root / "clip"),
        "caption": build_tiny_blip(root / "caption"),
        "vqa": build_tiny_blip(root / "vqa", vqa=True),
    }


@pytest.fixture(scope="module")
def cache():
    return ModelCache()


def _photo(seed=0, size=(48, 40)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8), "RGB")


def test_plumbing_not_quality_tiny_clip_loads_from_folder_and_embeds(tiny_folders, cache):
    from backends.vision import ClipSpace, zero_shot

    assert resolve(tiny_folders["clip"]).source == "local-path"
    loaded = cache.get(tiny_folders["clip"], variant="clip")
    assert loaded.kind == "vision-language"
    space = ClipSpace(loaded)
    images = space.embed_images([_photo(0), _photo(1, (20, 70))])
    texts = space.embed_texts(["a cat", "a dog", "a car"])
    assert images.shape == (2, 16) and texts.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    result = zero_shot(space, images[0], ["cat", "dog"], ["a photo of a {}.", "{}"])
    assert result.probs.shape == (2,) and abs(result.probs.sum() - 1) < 1e-5
    assert result.per_template.shape == (2, 2) and result.method == "clip"
    # the cosine we compute equals the model's own logits_per_image / logit_scale
    inputs = loaded.tokenizer(text=["a cat"], images=[_photo(0)], return_tensors="pt", padding=True)
    with torch.inference_mode():
        own = loaded.model(**inputs).logits_per_image[0, 0] / loaded.model.logit_scale.exp()
    ours = float(images[0] @ space.embed_texts(["a cat"])[0])
    assert ours == pytest.approx(float(own), abs=1e-4)


def test_plumbing_not_quality_tiny_clip_gradcam_and_search(tiny_folders, cache):
    from backends.vision import ClipSpace, build_gallery, search_text, vit_cam
    from backends.vision.images import LoadedImage

    space = ClipSpace(cache.get(tiny_folders["clip"], variant="clip"))
    cam = vit_cam(space, _photo(2, (64, 48)), "a cat")
    assert cam.heatmap.shape == (48, 64) and cam.grid.shape == (4, 4)
    assert cam.heatmap.min() >= 0 and cam.heatmap.max() <= 1
    gallery = build_gallery(space, [LoadedImage(f"p{i}", _photo(i)) for i in range(5)], batch_size=2)
    hits = search_text(space, gallery, "a dog", k=3)
    assert len(hits) == 3 and hits[0].score >= hits[1].score >= hits[2].score
    assert all(p.requires_grad is False for p in space.loaded.model.parameters())


def test_plumbing_not_quality_tiny_blip_captions_and_answers(tiny_folders, cache):
    from backends.vision import answer, captions

    captioner = cache.get(tiny_folders["caption"], variant="blip-caption")
    assert captioner.kind == "captioner"
    out = captions(captioner, _photo(3), max_new_tokens=5)
    assert [c.strategy for c in out] == ["greedy", "beam", "nucleus"]
    assert all(isinstance(c.text, str) and 1 < c.tokens <= 7 for c in out)
    vqa = cache.get(tiny_folders["vqa"], variant="blip-vqa")
    reply = answer(vqa, _photo(4), "what color is the shape?", max_new_tokens=4)
    assert isinstance(reply, str)
    with pytest.raises(ValueError, match="question"):
        answer(vqa, _photo(4), "   ")


def test_a_classifier_folder_is_refused_as_clip_with_its_class_named(tiny_folders, cache, tmp_path):
    from backends.models.registry import ModelNotAvailable

    with pytest.raises(ModelNotAvailable, match="blip-caption|BlipForConditionalGeneration|not an image-text"):
        cache.get(tiny_folders["caption"], variant="clip")
