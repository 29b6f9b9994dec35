"""Why a model said what it said: per-class probabilities for a new text and token attributions.

- Transformer classifiers (probe, full, LoRA): gradient x input. The text's token embeddings
  are a leaf tensor; the gradient of the chosen class's logit with respect to them, multiplied
  by the embeddings and summed over the embedding width, gives one signed score per token
  (positive: pushed towards the class). torch.autograd.grad is used so no model weight
  receives a gradient (the probe's encoder is the shared cached model).
- TF-IDF + logistic regression: exactly linear, so each word or word pair's contribution to a
  class's score is its TF-IDF value times the class's coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backends.classifier.baselines import full_probs
from backends.classifier.model import LABEL, EncoderClassifier, ModelRun, predict_proba
from backends.core.scheduler import shared_scheduler


@dataclass(frozen=True)
class Attribution:
    tokens: tuple[str, ...]
    scores: tuple[float, ...]  # one per token, signed, for `target`
    target: int
    probs: tuple[float, ...]
    method: str  # "gradient x input" | "tf-idf x coefficient"


def predict_texts(run: ModelRun, tokenizer, texts) -> np.ndarray:
    """Class probabilities of any finished run for new texts."""
    texts = list(texts)
    if run.kind == "tfidf":
        return full_probs(run.model, texts, len(run.label_names))
    return predict_proba(run.model, tokenizer, texts, int(run.settings.get("max_length", 64)))


def gradient_x_input(
    model: EncoderClassifier, tokenizer, text: str, max_length: int = 64, target: int | None = None
) -> Attribution:
    was_training = model.training
    model.eval()
    enc = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
    device = next(model.parameters()).device
    ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
    with shared_scheduler().turn(LABEL), torch.enable_grad():
        embeds = model.word_embeddings()(ids).detach().requires_grad_(True)
        logits = model(attention_mask=mask, inputs_embeds=embeds)[0]
        probs = torch.softmax(logits, dim=-1)
        k = int(probs.argmax()) if target is None else int(target)
        (grad,) = torch.autograd.grad(logits[k], embeds)
    model.train(was_training)
    scores = (grad * embeds).sum(-1)[0].detach().cpu().tolist()
    tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
    return Attribution(tuple(tokens), tuple(scores), k, tuple(probs.detach().cpu().tolist()), "gradient x input")


def tfidf_contributions(pipeline, text: str, n_classes: int, target: int | None = None) -> Attribution:
    vectorizer, logreg = pipeline[0], pipeline[-1]
    x = vectorizer.transform([text])
    probs = full_probs(pipeline, [text], n_classes)[0]
    k = int(probs.argmax()) if target is None else int(target)
    coef = logreg.coef_
    if coef.shape[0] == 1:  # binary: one row, the logit of class 1 against class 0
        coef = np.vstack([-coef[0], coef[0]]) / 2
    row = list(logreg.classes_).index(k) if k in logreg.classes_ else None
    names = vectorizer.get_feature_names_out()
    features = x.indices
    weights = x.data * (coef[row, features] if row is not None else 0.0)
    return Attribution(
        tuple(names[features]),
        tuple(float(w) for w in weights),
        k,
        tuple(float(p) for p in probs),
        "tf-idf x coefficient",
    )


def explain(run: ModelRun, tokenizer, text: str, target: int | None = None) -> Attribution:
    if not text.strip():
        raise ValueError("Type a text to classify: the box is empty.")
    if run.kind == "tfidf":
        return tfidf_contributions(run.model, text, len(run.label_names), target)
    return gradient_x_input(run.model, tokenizer, text, int(run.settings.get("max_length", 64)), target)
