"""Export a trained transformer classifier: weights as safetensors, plus the run's settings as JSON.

The zip holds `classifier.safetensors` (the encoder and head as one state dict; a LoRA run is
merged into plain weights first, on a further copy), `settings.json` (labels, base model,
hyperparameters, test metrics), the encoder's `config.json` and the tokenizer files, so
`load_export` can rebuild the same module and give identical logits. Only safetensors are read.
"""

from __future__ import annotations

import copy
import io
import json
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from backends.classifier.model import EncoderClassifier, ModelRun

WEIGHTS, SETTINGS = "classifier.safetensors", "settings.json"
FORMAT = "llm-playground-classifier/1"


class ExportError(ValueError):
    """An export that cannot be made or a file that cannot be loaded back; the message says why."""


def plain_model(run: ModelRun) -> EncoderClassifier:
    """The run's module with LoRA merged into the encoder weights (a copy; the run keeps its adapter)."""
    model = run.model
    if run.kind == "lora":
        model = copy.deepcopy(model)
        model.encoder = model.encoder.merge_and_unload()
    return model


def export_zip(run: ModelRun, tokenizer, base_model: str, metrics: dict | None = None) -> bytes:
    if not isinstance(run.model, EncoderClassifier):
        raise ExportError(f"the {run.kind} run has no transformer weights to export (TF-IDF lives in scikit-learn).")
    model = plain_model(run)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    settings = {
        "format": FORMAT,
        "kind": run.kind,
        "labels": list(run.label_names),
        "base_model": base_model,
        "pooling": "mean",
        "settings": run.settings,
        "stop_reason": run.stop_reason,
        "val_macro_f1": run.val_macro_f1,
        "test_metrics": metrics or {},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(WEIGHTS, save_safetensors(state, metadata={"format": FORMAT}))
        zf.writestr(SETTINGS, json.dumps(settings, indent=2, default=str))
        zf.writestr("config.json", model.encoder.config.to_json_string())
        with tempfile.TemporaryDirectory() as tmp:
            for path in tokenizer.save_pretrained(tmp):
                if Path(path).is_file():
                    zf.write(path, "tokenizer/" + Path(path).name)
    return buffer.getvalue()


def load_export(data: bytes, encoder: torch.nn.Module) -> tuple[EncoderClassifier, dict]:
    """Rebuild an exported classifier on a copy of `encoder` (same architecture); returns (model, settings)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        settings = json.loads(zf.read(SETTINGS))
        state = load_safetensors(zf.read(WEIGHTS))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ExportError(
            f"not a classifier export ({type(exc).__name__}: {exc}); expected a zip with {WEIGHTS} and {SETTINGS}."
        ) from exc
    if settings.get("format") != FORMAT:
        raise ExportError(f"unknown export format {settings.get('format')!r}; expected {FORMAT!r}.")
    model = EncoderClassifier(copy.deepcopy(encoder), len(settings["labels"]), dropout=0.0)
    mine = model.state_dict()
    wrong = [k for k, v in state.items() if k not in mine or mine[k].shape != v.shape]
    if wrong or set(mine) - set(state):
        raise ExportError(
            f"the weights do not fit this encoder (first mismatch: {(wrong or sorted(set(mine) - set(state)))[0]})."
        )
    model.load_state_dict(state)
    return model.eval().requires_grad_(False), settings
