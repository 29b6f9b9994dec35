"""A real short fine-tune of the offline MiniLM on the tweets: the shared model untouched, early stopping,
stop, LoRA, attributions and the safetensors export round trip."""

import io
import json
import zipfile

import numpy as np
import pytest
import torch

from backends.classifier.data import load_tweets, split
from backends.classifier.explain import gradient_x_input
from backends.classifier.export import ExportError, export_zip, load_export
from backends.classifier.finetune import FinetuneSettings, SettingsError, finetune
from backends.classifier.model import predict_proba
from backends.models.cache import shared_cache
from tests.torch_helpers import checksum, one_torch_thread  # an autouse fixture

FAST = {"batch_size": 16, "max_length": 32, "eval_every": 5, "learning_rate": 2e-4, "warmup_ratio": 0.0}


@pytest.fixture(scope="module")
def tiny():
    return split(load_tweets(), 0.1, 0.1, seed=0, max_train=160, max_val=48, max_test=48)


@pytest.fixture(scope="module")
def minilm():
    return shared_cache().get("all-minilm-l6-v2")


@pytest.fixture(scope="module")
def full_run(tiny, minilm):
    before = checksum(minilm.model)
    events = []
    run = finetune(
        minilm.model,
        minilm.tokenizer,
        tiny,
        FinetuneSettings(epochs=1, **FAST),
        report_fn=lambda p, m, **d: events.append(d),
    )
    return run, events, before


def test_one_epoch_trains_a_copy_and_reports_live(full_run, minilm, tiny):
    run, events, before = full_run
    assert checksum(minilm.model) == before, "the cached model is never trained"
    assert not any(p.requires_grad for p in minilm.model.parameters()) and not minilm.model.training
    assert run.model.encoder is not minilm.model
    steps = [e for e in events if e.get("kind") == "step"]
    evals = [e for e in events if e.get("kind") == "eval"]
    assert [e["step"] for e in steps] == list(range(1, 11)) and [e["step"] for e in evals] == [5, 10]
    assert all(e["loss"] > 0 and 0 <= e["accuracy"] <= 1 for e in steps)
    assert steps[0]["lr"] == pytest.approx(2e-4) and steps[-1]["lr"] < steps[0]["lr"], "linear decay"
    assert run.stop_reason == "done" and run.val_macro_f1 == max(e["val_macro_f1"] for e in evals)
    assert run.test_probs.shape == (48, 3) and np.allclose(run.test_probs.sum(1), 1, atol=1e-5)
    assert not run.model.training


def test_export_round_trip_gives_identical_logits_and_checks_its_input(full_run, minilm, tiny):
    run = full_run[0]
    data = export_zip(run, minilm.tokenizer, "sentence-transformers/all-MiniLM-L6-v2", {"macro_f1": 0.5})
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert {"classifier.safetensors", "settings.json", "config.json", "tokenizer/tokenizer.json"} <= names
    settings = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("settings.json"))
    assert settings["labels"] == ["negative", "neutral", "positive"] and settings["settings"]["epochs"] == 1
    model, _ = load_export(data, minilm.model)
    texts = list(tiny.test.texts[:8])
    ours = predict_proba(run.model, minilm.tokenizer, texts, 32)
    assert np.array_equal(predict_proba(model, minilm.tokenizer, texts, 32), ours)
    with pytest.raises(ExportError, match="not a classifier export"):
        load_export(b"PK not a zip", minilm.model)


def test_gradient_x_input_sums_to_the_directional_derivative(full_run, minilm):
    model = full_run[0].model
    text = "The flight was delayed again, thanks a lot"
    why = gradient_x_input(model, minilm.tokenizer, text, 32)
    assert why.tokens[0] == "[CLS]" and why.tokens[-1] == "[SEP]" and len(why.scores) == len(why.tokens)
    assert sum(why.probs) == pytest.approx(1.0) and why.target == int(np.argmax(why.probs))
    enc = minilm.tokenizer([text], return_tensors="pt")
    embeds = model.word_embeddings()(enc["input_ids"])
    eps = 1e-3
    with torch.no_grad():
        up = model(attention_mask=enc["attention_mask"], inputs_embeds=embeds * (1 + eps))[0, why.target]
        down = model(attention_mask=enc["attention_mask"], inputs_embeds=embeds * (1 - eps))[0, why.target]
    assert sum(why.scores) == pytest.approx(float(up - down) / (2 * eps), rel=2e-2, abs=1e-3)
    assert all(p.grad is None for p in model.parameters())


def test_lora_trains_only_adapters_and_head_and_stops_early(tiny, minilm):
    settings = FinetuneSettings(
        method="lora", epochs=1, patience=1, **{**FAST, "eval_every": 2, "learning_rate": 1e-9}
    )
    run = finetune(minilm.model, minilm.tokenizer, tiny, settings)
    trainable = {n for n, p in run.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    # a learning rate of 1e-9 changes nothing: the second validation pass is no better, patience 1 stops it
    assert run.stop_reason == "early_stopping" and run.settings["steps_done"] == 4 and run.settings["best_step"] == 2
    data = export_zip(run, minilm.tokenizer, "all-minilm-l6-v2")
    model, saved = load_export(data, minilm.model)
    assert saved["kind"] == "lora"
    texts = list(tiny.test.texts[:4])
    assert np.allclose(
        predict_proba(model, minilm.tokenizer, texts, 32),
        predict_proba(run.model, minilm.tokenizer, texts, 32),
        atol=1e-5,
    ), "merged = adapter"


def test_a_stopped_run_returns_its_last_good_checkpoint(tiny, minilm):
    calls = []
    run = finetune(
        minilm.model,
        minilm.tokenizer,
        tiny,
        FinetuneSettings(epochs=1, **FAST),
        should_stop=lambda: calls.append(1) or len(calls) > 3,
    )
    assert run.stop_reason == "stopped" and run.settings["steps_done"] == 3
    assert run.settings["best_step"] == 3 and run.test_probs.shape == (48, 3)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"method": "prefix"}, "method = 'prefix' is not allowed"),
        ({"max_length": 1000}, "max_length = 1000 is not allowed"),
        ({"learning_rate": 0.0}, "learning_rate = 0.0 is not allowed"),
        ({"lora_targets": ()}, "lora_targets = () is not allowed"),
    ],
)
def test_bad_settings_are_named(change, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FinetuneSettings(**change).validate()
    with pytest.raises(SettingsError, match="unknown settings: colour"):
        FinetuneSettings.from_dict({"colour": 1})
