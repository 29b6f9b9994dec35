"""The vision pages' backend: zero-shot classification, image search, Grad-CAM, captions and VQA.

- images.py      safe image loading (size checked before decoding, CMYK/16-bit/alpha/animated/EXIF), zips
- classifier.py  EfficientNet-Lite0 (ImageNet): preprocessing, logits, pooled features
- conse.py       ConSE, the offline zero-shot space built from EfficientNet-Lite0 + MiniLM
- clip.py        real CLIP-style dual encoders (transformers) when given a hub id or folder
- open_clip_space.py  any open_clip model (`open_clip:` names: ARCH/TAG, hf-hub:repo, a folder)
- zeroshot.py    labels x prompt templates -> probabilities, prompt ensembling
- search.py      a gallery index: search by text or image, the 2-D map
- gradcam.py     Grad-CAM heatmaps (EfficientNet's last conv block; a ViT's last block for CLIP)
- blip.py        BLIP captions (greedy, beam, nucleus) and visual questions
- cached_models.py  real CLIP / BLIP repos found in the local Hugging Face cache (no network): the defaults
- samples.py     scikit-image's sample photos (read at run time, not shipped)
- tiny_vqa/      train-your-own VQA on easy-vqa: cached frozen features, the model, the job

Notes (how it works, what is left out, measured figures): docs/vision.md.
"""

from backends.vision.blip import (
    DEFAULT_CAPTIONER,
    DEFAULT_VQA,
    STRATEGIES,
    Caption,
    answer,
    captions,
)
from backends.vision.cached_models import CachedModel, cached_vision_models, preferred
from backends.vision.classifier import CLASSIFIER, logits_of, top_classes
from backends.vision.clip import DEFAULT_CLIP, ClipSpace
from backends.vision.conse import ENCODER, ConseSpace
from backends.vision.gradcam import GradCam, efficientnet_cam, overlay, vit_cam
from backends.vision.images import (
    ImageError,
    LoadedImage,
    ZipResult,
    load_image,
    load_uploads,
    load_zip,
)
from backends.vision.open_clip_space import DEFAULT_OPEN_CLIP, OpenClipSpace
from backends.vision.search import (
    Gallery,
    Hit,
    build_gallery,
    index_job,
    pca_2d,
    search_image,
    search_text,
    search_vector,
)
from backends.vision.zeroshot import (
    DEFAULT_TEMPLATES,
    LabelError,
    Verdict,
    ZeroShot,
    check_templates,
    clean_labels,
    non_english,
    verdict,
    zero_shot,
)

__all__ = [
    "CLASSIFIER",
    "DEFAULT_CAPTIONER",
    "DEFAULT_CLIP",
    "DEFAULT_OPEN_CLIP",
    "DEFAULT_TEMPLATES",
    "DEFAULT_VQA",
    "ENCODER",
    "STRATEGIES",
    "CachedModel",
    "Caption",
    "ClipSpace",
    "ConseSpace",
    "Gallery",
    "GradCam",
    "Hit",
    "ImageError",
    "LabelError",
    "LoadedImage",
    "OpenClipSpace",
    "Verdict",
    "ZeroShot",
    "ZipResult",
    "answer",
    "build_gallery",
    "cached_vision_models",
    "captions",
    "check_templates",
    "clean_labels",
    "efficientnet_cam",
    "index_job",
    "load_image",
    "load_uploads",
    "load_zip",
    "logits_of",
    "non_english",
    "overlay",
    "pca_2d",
    "preferred",
    "search_image",
    "search_text",
    "search_vector",
    "top_classes",
    "verdict",
    "vit_cam",
    "zero_shot",
]
