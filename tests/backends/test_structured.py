"""Decoding under a grammar (backends/structured), checked against independent references:
jsonschema and re for the outputs, the model's own forward pass for the per-step figures, and a
scan of the vocabulary for which tokens a choice list allows."""

import json
import re

import jsonschema
import pytest
import torch

from backends.decoding import DecodingConfig, encode_prompt
from backends.models.cache import shared_cache
from backends.structured import (
    MAX_WHITESPACE,
    Constraint,
    ConstraintError,
    guided_stream,
    parse_tool_output,
    pick_tools,
    render_messages,
    run_guided,
    tool_constraint,
    tool_specs,
)
from backends.structured.extraction import check_json, extraction_set, prompt_text, schema_of

GREEDY = DecodingConfig(max_new_tokens=60)
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "city": {"type": "string"}},
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def lm():
    return shared_cache().get("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def person_ids(lm):
    return encode_prompt(lm, "Extract the person as JSON with name, age and city: Ana Ruiz, 52, lives in Quito.", True)


def test_schema_output_validates_and_first_step_figures_match_the_model(lm, person_ids):
    result = run_guided(lm, person_ids, GREEDY, Constraint("json_schema", PERSON))
    assert result.finished
    jsonschema.validate(json.loads(result.text), PERSON)  # the library's verdict

    # Step 0, recomputed from the model's own forward pass: the free pick is its argmax and the
    # removed mass is what softmax gives the tokens the grammar forbade (the grammar starts with "{").
    with torch.inference_mode():
        logits = lm.model(torch.tensor([person_ids])).logits[0, -1].float()
    probs = logits.softmax(-1)
    first = result.steps[0]
    assert first.free_id == int(logits.argmax())
    assert lm.tokenizer.decode([first.step.token_id]).lstrip().startswith("{")
    allowed = torch.tensor([lm.tokenizer.decode([i]).lstrip(" \n").startswith("{") for i in range(len(probs))])
    assert first.allowed <= int(allowed.sum())  # "{" with JSON's leading whitespace at most
    assert first.removed_mass >= float(1 - probs[allowed].sum()) - 1e-5


def test_choice_allows_exactly_the_prefixes_of_the_choices(lm, person_ids):
    choices = ["positive", "negative"]
    stream = guided_stream(lm, person_ids, GREEDY, Constraint("choice", choices))
    first = next(stream)
    stream.close()
    # Independent scan: a token is allowed iff its text is a non-empty prefix of a choice.
    vocab = lm.model.get_output_embeddings().weight.shape[0]
    special = set(lm.tokenizer.all_special_ids)
    expected = 0
    for i in range(vocab):
        if i in special:
            continue
        piece = lm.tokenizer.convert_tokens_to_string([lm.tokenizer.convert_ids_to_tokens(i)])
        expected += bool(piece) and any(c.startswith(piece) for c in choices)
    assert first.allowed == expected
    result = run_guided(lm, person_ids, GREEDY, Constraint("choice", choices))
    assert result.text in choices and result.finished


def test_regex_and_ebnf_outputs_match(lm, person_ids):
    date = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    result = run_guided(lm, person_ids, GREEDY, Constraint("regex", date))
    assert re.fullmatch(date, result.text)
    ebnf = 'root ::= "Answer: " ("yes" | "no")'
    result = run_guided(lm, person_ids, GREEDY, Constraint("ebnf", ebnf))
    assert result.text in ("Answer: yes", "Answer: no")


def test_limited_whitespace_never_runs_past_its_limit(lm):
    for item in extraction_set()["items"][6:9]:  # books: the free runs indent and wander
        ids = encode_prompt(lm, prompt_text(item), chat=True)
        result = run_guided(lm, ids, GREEDY, Constraint("json_schema", schema_of(item["kind"])))
        assert check_json(result.text, schema_of(item["kind"])).valid
        runs = re.findall(r"\s+", result.text)
        assert max((len(r) for r in runs), default=0) <= MAX_WHITESPACE


@pytest.mark.parametrize(
    ("constraint", "code"),
    [
        (Constraint("json_schema", "{not json"), "json"),
        (Constraint("json_schema", {"type": "strang"}), "schema"),
        (Constraint("regex", "(unclosed"), "regex"),
        (Constraint("ebnf", "root ::= = ="), "ebnf"),
        (Constraint("choice", []), "empty"),
        (Constraint("yaml", "a: 1"), "kind"),
        (Constraint("json_schema", PERSON, whitespace="lots"), "whitespace"),
    ],
)
def test_bad_constraints_are_named(lm, person_ids, constraint, code):
    with pytest.raises(ConstraintError) as caught:
        run_guided(lm, person_ids, GREEDY, constraint)
    assert caught.value.code == code


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "convert_units",
            "description": "Convert a value between units",
            "parameters": {
                "type": "object",
                "properties": {
                    "value": {"type": "number"},
                    "from_unit": {"type": "string"},
                    "to_unit": {"type": "string"},
                },
                "required": ["value", "from_unit", "to_unit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
]


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_required_and_named_tool_calls_parse_and_validate(lm, choice):
    specs = tool_specs(TOOLS)
    allowed, required = pick_tools(specs, choice)
    messages = render_messages([{"role": "user", "content": "Convert 5 miles to kilometers."}], allowed)
    ids = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    result = run_guided(lm, list(ids), DecodingConfig(max_new_tokens=80), tool_constraint(allowed, required))
    content, calls = parse_tool_output(result.text)
    assert content == "" and len(calls) == 1
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    jsonschema.validate(calls[0].arguments, by_name[calls[0].name])
    if isinstance(choice, dict):
        assert calls[0].name == "get_weather"


def test_tool_choice_errors():
    specs = tool_specs(TOOLS)
    with pytest.raises(ConstraintError) as caught:
        pick_tools(specs, {"type": "function", "function": {"name": "nope"}})
    assert caught.value.code == "choice_unknown"
    with pytest.raises(ConstraintError):
        tool_specs([{"type": "function", "function": {"description": "no name"}}])
    assert pick_tools(specs, "none") == ([], False)
