"""The one-time GGUF -> safetensors conversion must not change the model."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from backends.models.gguf_convert import (
    CONVERSION_VERSION,
    convert_gguf,
    ensure_converted,
    is_converted,
    smollm2_pre_tokenizer,
)
from backends.models.registry import SMOLLM2, package_folder
from backends.tokenizers import zoo as tokenizer_zoo

PROMPT = "The capital of France is"


@pytest.mark.slow
def test_converted_copy_gives_the_same_logits_as_the_gguf_load(tmp_path):
    folder = package_folder(SMOLLM2)
    out = tmp_path / "smollm2"
    gguf_model = convert_gguf(folder, SMOLLM2.gguf_file, out, smollm2_pre_tokenizer())
    gguf_tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=SMOLLM2.gguf_file)

    converted = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    ids = tok(PROMPT, return_tensors="pt").input_ids
    assert ids.tolist() == gguf_tok(PROMPT, return_tensors="pt").input_ids.tolist()
    with torch.inference_mode():
        want = gguf_model(ids).logits
        got = converted(ids).logits
    assert want.shape == (1, ids.shape[1], 49152)
    assert torch.equal(want, got)
    assert tok.decode(got[0, -1].argmax()) == " Paris"
    assert tok.chat_template, "the chat template must survive the conversion"
    # The saved tokenizer splits digits like the official one (GGUF files lose that step).
    digits = "ied 4 ½ months, 12345 tokens"
    assert tok(digits).input_ids == tokenizer_zoo.get_tokenizer("smollm2").encode(digits)
    marker = json.loads((out / "CONVERTED.json").read_text())
    assert marker["from"].endswith(SMOLLM2.gguf_file)
    assert not list(tmp_path.glob("smollm2.*")), "temporary folder left behind"


def test_an_existing_conversion_is_reused_without_loading_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMPG_CACHE_DIR", str(tmp_path))
    target = tmp_path / "models" / SMOLLM2.key
    target.mkdir(parents=True)
    (target / "CONVERTED.json").write_text(json.dumps({"version": CONVERSION_VERSION}))
    monkeypatch.setattr("backends.models.gguf_convert.convert_gguf", lambda *a: pytest.fail("converted again"))
    assert ensure_converted(SMOLLM2, package_folder(SMOLLM2)) == target


def test_a_conversion_by_an_older_version_is_redone(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMPG_CACHE_DIR", str(tmp_path))
    target = tmp_path / "models" / SMOLLM2.key
    target.mkdir(parents=True)
    (target / "CONVERTED.json").write_text(json.dumps({"from": "old"}))
    assert not is_converted(SMOLLM2)
