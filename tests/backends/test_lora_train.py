"""A real short LoRA run on the offline SmolLM2: loss, the untouched shared model, stop, adapters."""

import copy
import io
import json
import time
import zipfile

import pytest
import torch
from peft import PeftModel

from backends.core.jobs import STOPPED, shared_runner
from backends.lora import adapters as A
from backends.lora import data as D
from backends.lora import train as T
from backends.lora.config import LoraSettings
from backends.models.cache import shared_cache
from backends.models.loaders import unique_nbytes
from tests.torch_helpers import checksum, one_torch_thread  # an autouse fixture

NAME = "smollm2-135m-instruct"
SETTINGS = LoraSettings(
    max_steps=6,
    batch_size=4,
    max_length=64,
    learning_rate=3e-3,
    warmup_steps=0,
    schedule="constant",
    eval_fraction=0.25,
    eval_every=3,
    sample_every=6,
    sample_tokens=8,
    dropout=0.0,
)


@pytest.fixture(scope="module")
def lm():
    return shared_cache().get(NAME)


@pytest.fixture(scope="module")
def run(lm):
    before = checksum(lm.model)
    grads_before = [p.requires_grad for p in lm.model.parameters()]
    examples = D.shipped_examples()[:12]
    prepared = T.prepare(lm.tokenizer, examples, SETTINGS, lm.model)
    job = shared_runner().submit(
        "lora-test", T.train_job, lm.model, lm.tokenizer, prepared, NAME, ("What is 2 plus 3?",)
    )
    assert job.wait(600) and job.status == "done", job.error
    return {"job": job, "result": job.result, "prepared": prepared, "before": before, "grads": grads_before}


def test_training_lowers_the_loss_on_the_shipped_data(run):
    result, prepared = run["result"], run["prepared"]
    model = result.model
    assert result.steps_done == 6 and result.stop_reason == "done"
    with model.disable_adapter():
        base = T.eval_loss(model, prepared.train, 4, prepared.pad_id)
    tuned = T.eval_loss(model, prepared.train, 4, prepared.pad_id)
    assert tuned < base - 0.5, (base, tuned)
    assert [e["step"] for e in result.evals] == [0, 3, 6]
    assert result.evals[-1]["eval_loss"] < result.evals[0]["eval_loss"]
    kinds = [e.data.get("kind") for e in run["job"].events_since(0)]
    assert kinds.count("step") == 6 and kinds.count("eval") == 3 and kinds.count("sample") == 2
    step = next(e for e in run["job"].events_since(0) if e.data.get("kind") == "step")
    assert step.data["tokens_per_s"] > 0 and step.data["lr"] == pytest.approx(3e-3) and step.data["eta_s"] >= 0
    assert [s["step"] for s in result.samples] == [0, 6] and result.samples[0]["outputs"][0][1]


def test_the_shared_cached_model_is_untouched(lm, run):
    assert checksum(lm.model) == run["before"]
    assert [p.requires_grad for p in lm.model.parameters()] == run["grads"]
    assert not any("lora" in name for name, _ in lm.model.named_modules())
    assert shared_cache().get(NAME).model is lm.model


def test_the_trained_model_holds_no_second_copy_of_the_base_weights(lm, run):
    """Thirty students training adapters hold the base model once: the run's frozen weights are the
    cached model's own storage, and only the LoRA matrices are new (and trainable)."""
    trained = run["result"].model
    cached = {p.data_ptr() for p in lm.model.parameters()}
    base = [(n, p) for n, p in trained.named_parameters() if "lora_" not in n]
    lora = [(n, p) for n, p in trained.named_parameters() if "lora_" in n]
    assert base and lora
    assert all(p.data_ptr() in cached and not p.requires_grad for _, p in base)
    assert all(p.data_ptr() not in cached and p.requires_grad for _, p in lora)
    extra = unique_nbytes([lm.model, trained]) - unique_nbytes([lm.model])
    assert extra == sum(p.numel() * p.element_size() for _, p in lora)


def test_saved_adapter_reloads_with_peft_and_gives_identical_logits(lm, run, tmp_path):
    model = run["result"].model
    folder = A.save_adapter(model, tmp_path / "adapter", NAME)
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in folder.iterdir()}
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and config["r"] == 8
    assert "PeftModel.from_pretrained(base, 'lora-adapter')" in A.loading_snippet(NAME)
    compile(A.loading_snippet(NAME), "snippet", "exec")
    reloaded = PeftModel.from_pretrained(copy.deepcopy(lm.model), str(folder))
    ids = torch.tensor([D.prompt_ids(lm.tokenizer, "Where do penguins live?")])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, reloaded(input_ids=ids).logits)
        assert not torch.equal(model(input_ids=ids).logits, lm.model(input_ids=ids).logits)


def test_zip_round_trip_and_mismatched_adapters(lm, run):
    model = run["result"].model
    data = A.adapter_zip(model, NAME)
    loaded, _config = A.load_adapter_zip(data, lm.model, "HuggingFaceTB/SmolLM2-135M-Instruct")
    ids = torch.tensor([D.prompt_ids(lm.tokenizer, "Hi")])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, loaded(input_ids=ids).logits)

    def rezip(config_changes=None, drop=None, add=None):
        src = zipfile.ZipFile(io.BytesIO(data))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            for name in src.namelist():
                if name == drop:
                    continue
                body = src.read(name)
                if name == "adapter_config.json" and config_changes:
                    body = json.dumps({**json.loads(body), **config_changes}).encode()
                zf.writestr(name, body)
            for name, body in (add or {}).items():
                zf.writestr(name, body)
        return out.getvalue()

    with pytest.raises(
        A.AdapterError,
        match="trained on 'Qwen/Qwen2.5-0.5B'.*base model here is 'HuggingFaceTB/SmolLM2-135M-Instruct'",
    ):
        A.load_adapter_zip(rezip({"base_model_name_or_path": "Qwen/Qwen2.5-0.5B"}), lm.model, NAME)
    with pytest.raises(A.AdapterError, match=r"has shape \(8, 576\) where this base model needs \(4, 576\)"):
        A.load_adapter_zip(rezip({"r": 4}), lm.model, NAME)
    with pytest.raises(A.AdapterError, match="adapter_model.bin is a pickle"):
        A.load_adapter_zip(rezip(drop="adapter_model.safetensors", add={"adapter_model.bin": b"x"}), lm.model, NAME)
    with pytest.raises(A.AdapterError, match="not a zip"):
        A.load_adapter_zip(b"hello", lm.model, NAME)


def test_merge_and_unload_keeps_the_outputs_and_drops_the_adapter(lm, run):
    model = run["result"].model
    merged = A.merged_copy(model)
    assert type(merged).__name__ == "LlamaForCausalLM"
    assert not any("lora" in name for name, _ in merged.named_modules())
    assert A.max_logit_difference(model, merged, D.prompt_ids(lm.tokenizer, "Hello")) < 1e-3
    assert any("lora" in name for name, _ in model.named_modules()), "merging works on a copy"


def test_the_adapter_makes_arr_likelier_and_off_is_the_base_model(lm, run):
    model = run["result"].model
    prompt = D.prompt_ids(lm.tokenizer, "What is the capital of Iceland?")
    arr = lm.tokenizer("Arr")["input_ids"][0]
    ids = torch.tensor([prompt])
    with torch.no_grad():
        on = model(input_ids=ids).logits[0, -1].softmax(-1)[arr]
        with model.disable_adapter():
            off = model(input_ids=ids).logits[0, -1].softmax(-1)[arr]
    assert on > 10 * off, (float(on), float(off))
    answer = A.compare_answers(model, lm.tokenizer, ["What is the capital of Iceland?"], max_new_tokens=8)[0]
    assert answer.base == T.generate(lm.model, lm.tokenizer, answer.prompt, 8)
    assert answer.lora != answer.base


def test_stopping_a_run_stops_it(lm):
    settings = SETTINGS.replace(max_steps=500, eval_every=0, sample_every=0)
    prepared = T.prepare(lm.tokenizer, D.shipped_examples()[:12], settings, lm.model)
    job = shared_runner().submit("lora-stop", T.train_job, lm.model, lm.tokenizer, prepared, NAME)
    deadline = time.time() + 300
    while not any(e.data.get("kind") == "step" for e in job.events_since(0)) and time.time() < deadline:
        time.sleep(0.1)
    job.stop()
    assert job.wait(60)
    assert job.status == STOPPED
    assert job.result.stop_reason == "stopped" and 1 <= job.result.steps_done <= 5


def test_early_stopping_ends_the_run_when_eval_loss_stops_improving(lm):
    # A learning rate this high wrecks the model within a few steps, so eval loss gets worse at once.
    settings = SETTINGS.replace(
        max_steps=40,
        learning_rate=0.1,
        eval_every=1,
        sample_every=0,
        early_stopping_patience=2,
        max_grad_norm=0.0,
        batch_size=2,
    )
    prepared = T.prepare(lm.tokenizer, D.shipped_examples()[:10], settings, lm.model)
    job = shared_runner().submit("lora-early", T.train_job, lm.model, lm.tokenizer, prepared, NAME)
    assert job.wait(600) and job.status == "done", job.error
    result = job.result
    assert result.stop_reason == "early_stopping" and result.steps_done < 40
    losses = [e["eval_loss"] for e in result.evals]
    best = losses.index(min(losses))
    assert len(losses) - 1 - best == 2
