"""Train your own tiny VQA model on easy-vqa (MIT; 4,000 + 1,000 synthetic 64 x 64 shape images,
38,575 + 9,673 questions, 13 answers): BLIP's recipe in miniature.

- data.py      the dataset, and frozen features computed once: EfficientNet-Lite0 for images,
               MiniLM for questions, cached on disk as .npy keyed by a content hash
- model.py     the trainable part: image and question projections, fused, then an answer classifier
- train.py     settings, the background training job (live loss/accuracy), asking a trained model
"""

from backends.vision.tiny_vqa.data import (
    EasyVqa,
    VqaFeatures,
    compute_features,
    load_easy_vqa,
)
from backends.vision.tiny_vqa.model import TinyVqa
from backends.vision.tiny_vqa.train import (
    TrainedVqa,
    VqaSettings,
    ask,
    evaluate,
    train_job,
    train_vqa,
)

__all__ = [
    "EasyVqa",
    "TinyVqa",
    "TrainedVqa",
    "VqaFeatures",
    "VqaSettings",
    "ask",
    "compute_features",
    "evaluate",
    "load_easy_vqa",
    "train_job",
    "train_vqa",
]
