"""The classifier as one torch module: a (copied) encoder, mean pooling, and a linear head.

MiniLM was trained as a sentence encoder with mean pooling over its tokens, so the head reads
the mean of the last hidden states (padding left out) rather than the [CLS] vector. The same
module serves the linear probe (encoder frozen, head fitted by scikit-learn and folded in),
full fine-tuning and LoRA (peft wraps the encoder).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from backends.core.scheduler import shared_scheduler

LABEL = "classifier"


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors where attention_mask is 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class EncoderClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, n_classes: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, n_classes)

    def features(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds)
        return mean_pool(out.last_hidden_state, attention_mask)

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> torch.Tensor:
        return self.head(self.dropout(self.features(input_ids, attention_mask, inputs_embeds)))

    def word_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()


def tokenize(tokenizer, texts, max_length: int) -> dict:
    return dict(tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"))


def batched(items, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def by_length(texts) -> tuple[list[str], np.ndarray]:
    """Texts sorted by length (batches then pad little) and the permutation that puts results back."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    return [texts[i] for i in order], np.argsort(order, kind="stable")


@torch.no_grad()
def embed(
    encoder: nn.Module, tokenizer, texts, max_length: int, batch_size: int = 64, should_stop=None, on_batch=None
) -> np.ndarray:
    """Mean-pooled sentence vectors of a (frozen, possibly shared) encoder: one scheduler turn per batch."""
    device = next(encoder.parameters()).device
    out = []
    texts, back = by_length(list(texts))
    for n, chunk in enumerate(batched(texts, batch_size)):
        if should_stop is not None and should_stop():
            raise InterruptedError("stopped")
        batch = {k: v.to(device) for k, v in tokenize(tokenizer, chunk, max_length).items()}
        batch.pop("token_type_ids", None)
        with shared_scheduler().turn(LABEL):
            hidden = encoder(**batch).last_hidden_state
        out.append(mean_pool(hidden, batch["attention_mask"]).float().cpu().numpy())
        if on_batch is not None:
            on_batch(min(len(texts), (n + 1) * batch_size), len(texts))
    return np.concatenate(out)[back] if out else np.zeros((0, encoder.config.hidden_size), dtype=np.float32)


@torch.no_grad()
def predict_proba(model: EncoderClassifier, tokenizer, texts, max_length: int, batch_size: int = 64) -> np.ndarray:
    """Class probabilities (softmax of the head's logits), in eval mode, one scheduler turn per batch."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    texts, back = by_length(list(texts))
    for chunk in batched(texts, batch_size):
        batch = tokenize(tokenizer, chunk, max_length)
        with shared_scheduler().turn(LABEL):
            logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out)[back] if out else np.zeros((0, model.head.out_features))


class ModelRun:
    """One trained model's outcome on a split: test probabilities plus what is needed to predict new text.

    kind: "tfidf" | "probe" | "full" | "lora". `model` is a scikit-learn pipeline (tfidf) or an
    EncoderClassifier; `history` holds the training events (fine-tuning) or the C search (baselines).
    """

    def __init__(
        self,
        kind: str,
        label_names,
        test_probs: np.ndarray,
        seconds: float,
        model,
        settings: dict,
        history: list | None = None,
        stop_reason: str = "done",
        val_macro_f1: float | None = None,
    ):
        self.kind = kind
        self.label_names = tuple(label_names)
        self.test_probs = np.asarray(test_probs)
        self.seconds = seconds
        self.model = model
        self.settings = settings
        self.history = history or []
        self.stop_reason = stop_reason
        self.val_macro_f1 = val_macro_f1

    def __repr__(self) -> str:
        return f"ModelRun({self.kind!r}, {len(self.test_probs)} test examples, {self.seconds:.1f} s)"
