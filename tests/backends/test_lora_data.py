"""LoRA data and settings: uploads, masking, stats, split, validation against the real SmolLM2."""

import json

import pytest

from backends.lora import data as D
from backends.lora.config import LoraSettings, SettingsError, linear_layers, plan, snippet
from backends.lora.train import lora_copy
from backends.models.cache import shared_cache


@pytest.fixture(scope="module")
def lm():
    return shared_cache().get("smollm2-135m-instruct")


def test_shipped_dataset_teaches_a_visible_style():
    examples = D.shipped_examples()
    assert 180 <= len(examples) <= 260
    assert len({e.prompt() for e in examples}) == len(examples)
    assert all(e.response().startswith("Arr! ") and e.response().endswith("Fair winds, matey!") for e in examples)


def test_jsonl_errors_name_the_bad_lines():
    text = '{"prompt": "a", "response": "b"}\n{"prompt": "a", "response": \n\n{"question": "q"}\n'
    with pytest.raises(D.DataError) as err:
        D.parse_jsonl(text)
    message = str(err.value)
    assert "2 bad line(s)" in message
    assert "line 2: not valid JSON" in message
    assert "line 4: no usable columns (found: question)" in message


def test_missing_columns_and_empty_data_are_explained():
    with pytest.raises(D.DataError, match=r"row 2: no usable columns \(found: answer, foo\)"):
        D.parse_csv("foo,answer\n1,2\n")
    with pytest.raises(D.DataError, match="empty"):
        D.parse_jsonl("\n\n")
    with pytest.raises(D.DataError, match="no header row"):
        D.parse_csv("")
    with pytest.raises(D.DataError, match="unsupported file type"):
        D.parse_upload("data.parquet", b"x")
    with pytest.raises(D.DataError, match="no assistant reply"):
        D.parse_jsonl(json.dumps({"messages": [{"role": "user", "content": "hi"}]}))


def test_three_upload_shapes_parse():
    chat = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
        ]
    }
    jsonl = "\n".join(
        json.dumps(r) for r in [chat, {"text": "Once upon a time."}, {"instruction": "Add 2 and 2", "output": "4"}]
    )
    a, b, c = D.parse_upload("x.jsonl", jsonl.encode())
    assert a.messages[0] == ("system", "Be brief.") and a.response() == "Hello."
    assert not b.is_chat and b.text == "Once upon a time."
    assert c.messages == (("user", "Add 2 and 2"), ("assistant", "4"))
    rows = D.parse_upload("x.csv", b'prompt,response\n"Hi, you","Hello"\n,\n')
    assert rows == [D.Example(messages=(("user", "Hi, you"), ("assistant", "Hello")))]


def test_prompt_tokens_are_masked_and_the_reply_is_trained(lm):
    tok = lm.tokenizer
    example = D.Example(messages=(("user", "What is 2 plus 2?"), ("assistant", "Arr! 4. Fair winds, matey!")))
    encoded = D.encode_example(tok, example, 512)
    assert list(encoded.input_ids) == list(tok(D.format_example(tok, example))["input_ids"])
    trained = tok.decode([i for i, label in zip(encoded.input_ids, encoded.labels) if label != D.IGNORE])
    assert trained.startswith("Arr! 4. Fair winds, matey!<|im_end|>")
    assert "2 plus 2" not in trained
    cut = D.encode_example(tok, example, 10)
    assert len(cut.input_ids) == 10 and cut.truncated
    plain = D.encode_example(tok, D.Example(text="Hello there"), 64)
    assert plain.labels == plain.input_ids


def test_length_stats_and_split(lm):
    examples = D.shipped_examples()[:20]
    stats = D.length_stats(lm.tokenizer, examples, 55)
    lengths = D.token_lengths(lm.tokenizer, examples)
    assert (stats.count, stats.min, stats.max) == (20, min(lengths), max(lengths))
    assert stats.truncated == sum(n > 55 for n in lengths) > 0
    train, held = D.split(examples, 0.1, seed=3)
    assert len(held) == 2 and len(train) == 18 and not set(map(id, train)) & set(map(id, held))
    assert D.split(examples, 0.1, seed=3) == (train, held)
    with pytest.raises(D.DataError, match="nothing to train on"):
        D.split(examples[:1], 0.5, seed=0)
    with pytest.raises(D.DataError, match="no example keeps any response token"):
        D.encode_all(lm.tokenizer, examples[:2], 8)


def test_absurd_settings_are_refused_with_the_value(lm):
    assert set(linear_layers(lm.model)) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    with pytest.raises(SettingsError, match=r"rank = 1000 .*smallest targeted layer dimension \(192\)"):
        LoraSettings(rank=1000).validate(lm.model)
    with pytest.raises(SettingsError, match="max_length = 0"):
        LoraSettings(max_length=0).validate(lm.model)
    with pytest.raises(SettingsError, match=r"target_modules = \[\]"):
        LoraSettings(target_modules=()).validate(lm.model)
    with pytest.raises(SettingsError, match=r"target_modules = \['c_attn'\].*q_proj"):
        LoraSettings(target_modules=("c_attn",)).validate(lm.model)
    with pytest.raises(SettingsError, match="learning_rate = 5"):
        LoraSettings(learning_rate=5).validate()
    with pytest.raises(SettingsError, match="quantization = '4bit'.*(bitsandbytes|CUDA)"):
        LoraSettings(quantization="4bit").validate()
    assert LoraSettings().validate(lm.model) == LoraSettings()


def test_plan_matches_what_peft_builds(lm):
    settings = LoraSettings(rank=4, target_modules=("q_proj", "v_proj", "down_proj"))
    p = plan(lm.model, settings)
    model = lora_copy(lm.model, settings)
    trainable, total = model.get_nb_trainable_parameters()
    assert (p.trainable_params, p.total_params) == (trainable, total)
    assert p.adapted_layers == 90 and p.adapter_bytes == trainable * 4
    assert 0.001 < p.share < 0.01
    code = snippet(settings, "HuggingFaceTB/SmolLM2-135M-Instruct")
    compile(code, "snippet", "exec")
    assert "r=4" in code and "'down_proj'" in code


def test_settings_round_trip_through_json_and_bad_files_are_named():
    settings = LoraSettings(rank=4, target_modules=("q_proj", "o_proj"), learning_rate=2e-4, epochs=1.5)
    assert LoraSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    assert LoraSettings.from_dict({"learning_rate": 1}).learning_rate == 1.0
    with pytest.raises(SettingsError, match="Unknown setting.*lora_rank"):
        LoraSettings.from_dict({"lora_rank": 8})
    with pytest.raises(SettingsError, match="rank = '8': expected int"):
        LoraSettings.from_dict({"rank": "8"})
    with pytest.raises(SettingsError, match="target_modules = 'q_proj'"):
        LoraSettings.from_dict({"target_modules": "q_proj"})
