"""Votes to TRL preference rows and back; TRL's own format check is the reference for the shape."""

from __future__ import annotations

import json

import pytest
from trl.data_utils import is_conversational

from backends.alignment import PreferenceStore
from backends.alignment.pairs import Pair, PairsError, parse_jsonl, votes_to_pairs


@pytest.fixture
def voted(tmp_path):
    store = PreferenceStore(tmp_path / "p.sqlite3")
    s = store.create_set(["Say hi.", "Count to 3."])
    store.add_vote(s.code, "u1", 0, "base", "sft", "hi", "Hello there!", "B")
    store.add_vote(s.code, "u2", 1, "base", "sft", "1 2 3", "one", "A")
    store.add_vote(s.code, "u3", 1, "base", "dpo", "1 2 3", "1, 2, 3", "tie")
    store.add_vote(s.code, "u4", 0, "sft", "dpo", "yo", "hey", "both_bad")
    return store, s


def test_export_keeps_a_b_votes_and_counts_the_rest(voted):
    store, s = voted
    export = votes_to_pairs(store.votes(s.code), s.prompts)
    assert export.pairs == (Pair("Say hi.", "Hello there!", "hi"), Pair("Count to 3.", "1 2 3", "one"))
    assert export.skipped == {"tie": 1, "both_bad": 1}


def test_rows_are_trl_preference_rows_in_both_shapes(voted):
    store, s = voted
    export = votes_to_pairs(store.votes(s.code), s.prompts)
    conv = [json.loads(line) for line in export.jsonl().splitlines()]
    std = [json.loads(line) for line in export.jsonl(conversational=False).splitlines()]
    assert all(is_conversational(r) for r in conv) and not any(is_conversational(r) for r in std)
    assert conv[0] == {
        "prompt": [{"role": "user", "content": "Say hi."}],
        "chosen": [{"role": "assistant", "content": "Hello there!"}],
        "rejected": [{"role": "assistant", "content": "hi"}],
    }
    assert std[1] == {"prompt": "Count to 3.", "chosen": "1 2 3", "rejected": "one"}
    # read back: the same pairs from either shape
    assert parse_jsonl(export.jsonl()) == list(export.pairs) == parse_jsonl(export.jsonl(conversational=False))


def test_bad_lines_are_all_named_and_nothing_is_returned():
    good = json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"})
    lines = [
        good,
        "{not json",
        json.dumps({"prompt": "p", "chosen": "c"}),
        "",
        json.dumps({"prompt": "p", "chosen": "same", "rejected": "same"}),
        json.dumps({"prompt": [{"role": "user", "content": "p"}], "chosen": "c", "rejected": "r"}),
        json.dumps({"prompt": "p", "chosen": "", "rejected": "r"}),
        json.dumps(
            {
                "prompt": [{"role": "user", "content": "p"}],
                "chosen": [{"role": "user", "content": "c"}],
                "rejected": [{"role": "assistant", "content": "r"}],
            }
        ),
        json.dumps([1, 2]),
    ]
    with pytest.raises(PairsError) as err:
        parse_jsonl("\n".join(lines))
    msg = str(err.value)
    assert msg.startswith("7 bad line(s):")
    for expected in [
        "line 2: not valid JSON",
        "line 3: missing rejected",
        "line 5: chosen and rejected are the same",
        "line 6: mixes plain text and messages",
        'line 7: "chosen" is empty',
        'line 8: "chosen" must be a message with role "assistant"',
        "line 9: expected a JSON object",
    ]:
        assert expected in msg
    assert "line 1:" not in msg and "line 4:" not in msg
    with pytest.raises(PairsError, match="no preference pairs"):
        parse_jsonl("\n\n")
