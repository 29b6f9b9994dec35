"""The trainable part of the tiny VQA model (a few hundred thousand parameters).

    image features (2560) -> Linear -> tanh ┐
                                            ├─ elementwise product -> MLP -> 13 answer logits
    question vector (384) -> Linear -> tanh ┘

The product lets the question pick which image features matter ("what color" vs "what shape"),
a small cousin of BLIP's cross-attention from text to image.
"""

from __future__ import annotations

import torch
from torch import nn


class TinyVqa(nn.Module):
    def __init__(self, image_dim: int, question_dim: int, answers: int, hidden: int = 256, dropout: float = 0.2):
        super().__init__()
        self.image = nn.Sequential(nn.Dropout(dropout), nn.Linear(image_dim, hidden))
        self.question = nn.Linear(question_dim, hidden)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, answers))
        # Image features are standardised with the training set's statistics, kept with the model.
        self.register_buffer("mean", torch.zeros(image_dim))
        self.register_buffer("std", torch.ones(image_dim))

    def forward(self, image: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        image = (image - self.mean) / self.std
        return self.head(torch.tanh(self.image(image)) * torch.tanh(self.question(question)))
