"""The preference arena tab (components/alignment/arena.py) as a user meets it, on the real offline
SmolLM2: a class set by code, a blind match, a vote checked in the SQLite file itself, the reveal,
two voters, ratings against a hand computation, export and import, bad input, Chinese."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest
from streamlit.delta_generator import DeltaGenerator
from streamlit.testing.v1 import AppTest

from backends.alignment import PairsError, parse_jsonl
from backends.alignment import arena as A
from backends.alignment.store import default_path
from components.i18n import strings
from tests.pages.test_chinese_complete import is_english_sentence, visible_texts

P = "alignment.arena."
EN, ZH = strings("en"), strings("zh")
TIMEOUT = 300


def _script():
    from backends.models.cache import shared_cache
    from components.alignment.arena import arena_tab

    arena_tab(shared_cache().get("smollm2-135m-instruct"), {})


def _arena(**state) -> AppTest:
    at = AppTest.from_function(_script, default_timeout=TIMEOUT)
    at.session_state[P + "max_new"] = 8  # short answers: the CPU is shared
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _rows(sql: str, *args) -> list[tuple]:
    with sqlite3.connect(default_path()) as con:
        return con.execute(sql, args).fetchall()


def _texts(at) -> str:
    kinds = ("markdown", "caption", "info", "success", "warning", "error")
    return "\n".join(str(e.value) for kind in kinds for e in at.get(kind))


def _metric(at, label: str):
    return next(m.value for m in at.metric if m.label == label)


def _frame(at, column: str, without: str = "\0"):
    """The table with this column (AppTest does not keep a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns and without not in d.value.columns)


def _click(at, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _vote(code, voter, a, b, verdict, prompt_id=0):
    A.shared_store().add_vote(code, voter, prompt_id, a, b, f"answer of {a}", f"answer of {b}", verdict)


def test_sources_matches_and_rating_checks():
    base, hot, dpo = A.Source("base"), A.Source("base", temperature=0.7), A.Source("adapter", "dpo")
    assert (base.id, hot.id, dpo.id) == ("base · greedy", "base · T=0.7", "dpo · greedy")
    with pytest.raises(A.ArenaError) as same:
        A.match(0, [hot, A.Source("base", temperature=0.7)], random.Random(0))
    assert same.value.code == "same_source"
    orders = {(m.source_a.id, m.source_b.id) for m in (A.match(0, [base, dpo], random.Random(s)) for s in range(20))}
    assert orders == {(base.id, dpo.id), (dpo.id, base.id)}  # blind: either order
    assert A.rating_problem([], 1.0) == ("no_votes", {})


def test_create_generate_vote_reveal_and_a_retried_vote_is_stored_once():
    at = _arena()
    assert EN[P + "set.personal_new"] in _texts(at)
    at.text_input(key=P + "new_title").input("Period 3")
    at.text_area(key=P + "new_prompts").input("Name a color.\nWhat is 2 + 2?")
    _click(at, P + "create")
    code = at.session_state[P + "code"]
    assert _metric(at, EN[P + "set.code"]) == code and len(code) == 6
    assert _rows("SELECT title FROM class_sets WHERE code = ?", code) == [("Period 3",)]

    _click(at, P + "generate")  # default sources: the base model greedy vs sampled at T=0.8
    shown = at.session_state[P + "shown"]
    assert all(a.strip() for a in shown["answers"]), shown["answers"]
    codes = [c.value for c in at.code]
    assert shown["answers"][0] in codes and shown["answers"][1] in codes
    blind = _texts(at)
    assert "greedy" not in blind and "T=0.8" not in blind  # nothing tells which side is which
    _click(at, P + "vote.A")

    voter = at.session_state[P + "voter"]
    rows = _rows("SELECT vote_id, set_code, voter, prompt_id, source_a, source_b, answer_a, verdict FROM votes")
    match = shown["match"]
    assert rows == [(match.vote_id, code, voter, 0, match.source_a.id, match.source_b.id, shown["answers"][0], "A")]
    assert {match.source_a.id, match.source_b.id} == {"base · greedy", "base · T=0.8"}
    reveal = _texts(at)
    assert "Base model · greedy" in reveal and "Base model · T=0.8" in reveal
    assert EN[P + "mine.header"].format(n=1) in reveal
    assert _metric(at, EN[P + "totals.votes"]) == "1" and _metric(at, EN[P + "verdict.A"]) == "1"

    # The same match voted again (a second click that arrived before the first was recorded).
    at.session_state[P + "shown"]["verdict"] = None
    at.run()
    _click(at, P + "vote.A")
    assert _rows("SELECT COUNT(*) FROM votes WHERE set_code = ?", code) == [(1,)]
    assert EN[P + "match.already"] in _texts(at)
    # The teacher who made the set sees every vote.
    at.toggle(key=P + "teacher").set_value(True).run()
    assert len(_frame(at, EN[P + "col.voter"])) == 1


def test_a_second_voter_sees_only_their_votes_and_the_class_totals_and_bad_codes_are_explained():
    made = A.shared_store().create_set(["Q one?", "Q two?"], "Class")
    _vote(made.code, "someone-else", "base · greedy", "sft · greedy", "A")
    at = _arena()
    at.text_input(key=P + "join_code").input("ab-c2")  # not a code's shape
    _click(at, P + "join")
    assert EN[P + "set.bad_code"].format(code="ab-c2", n=6) in _texts(at)
    at.text_input(key=P + "join_code").input("ZZZZZZ")  # a code's shape, but no such set
    _click(at, P + "join")
    assert EN[P + "set.unknown_code"].format(code="ZZZZZZ") in _texts(at)
    at.text_input(key=P + "join_code").input(made.code.lower())
    _click(at, P + "join")
    assert at.session_state[P + "code"] == made.code
    assert EN[P + "mine.none"] in _texts(at)
    assert _metric(at, EN[P + "totals.votes"]) == "1" and _metric(at, EN[P + "totals.voters"]) == "1"
    _vote(made.code, at.session_state[P + "voter"], "sft · greedy", "base · greedy", "tie", 1)
    at.run()
    mine = _frame(at, EN[P + "col.verdict"], without=EN[P + "col.voter"])
    assert len(mine) == 1 and list(mine[EN[P + "col.verdict"]]) == [EN[P + "verdict.tie"]]
    assert _metric(at, EN[P + "totals.votes"]) == "2" and _metric(at, EN[P + "totals.voters"]) == "2"
    assert not [t for t in at.toggle if t.key == P + "teacher"]  # not this session's set: no teacher view


def test_ratings_match_the_hand_value_and_the_export_parses_back(monkeypatch):
    made = A.shared_store().create_set(["Pick one?"], "Ratings")
    for verdict in ("A", "A", "A", "B", "tie", "both_bad"):
        _vote(made.code, "v1", "x · greedy", "y · greedy", verdict)
    sent = []
    original = DeltaGenerator.download_button

    def recording(self, label, data, *args, **kwargs):
        sent.append(data)
        return original(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", recording)
    at = _arena(**{P + "code": made.code})
    # x took 3 + 1/2 + 1/2 points of 6 votes; prior 1 adds one virtual tie: (4 + 0.5) / (6 + 1).
    # The tables word the stored ids ("x · greedy": adapter x, greedy decoding) as the reveal does.
    x, y = "Adapter x · greedy", "Adapter y · greedy"
    table = _frame(at, EN[P + "rating.col.share"]).set_index(EN[P + "col.source"])
    share = table[EN[P + "rating.col.share"]]
    assert share[x] == pytest.approx(4.5 / 7, abs=1e-4)
    strength = table[EN[P + "rating.col.strength"]]
    assert strength[x] / (strength[x] + strength[y]) == pytest.approx(4.5 / 7, 1e-3)
    at.number_input(key=P + "prior").set_value(0.0).run()
    table = _frame(at, EN[P + "rating.col.share"]).set_index(EN[P + "col.source"])
    assert table[EN[P + "rating.col.share"]][x] == pytest.approx(4 / 6, abs=1e-4)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles == [EN[P + "rating.chart"].format(level="95"), EN[P + "winrate.title"]]
    bars = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["error_y"]
    assert bars["type"] == "data" and not bars["symmetric"]

    pairs = parse_jsonl(sent[-1])
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [
        ("Pick one?", "answer of x · greedy", "answer of y · greedy")
    ] * 3 + [("Pick one?", "answer of y · greedy", "answer of x · greedy")]
    assert EN[P + "export.counts"].format(n=4, tie=1, both_bad=1) in _texts(at)
    _click(at, P + "export.use")
    assert at.session_state["alignment.imported_pairs"] == pairs


def test_rating_cases_and_a_malformed_import_are_explained_and_nothing_is_lost():
    store = A.shared_store()
    ties = store.create_set(["Q?"], "Ties")
    _vote(ties.code, "v1", "x · greedy", "y · greedy", "tie")
    _vote(ties.code, "v2", "x · greedy", "y · greedy", "both_bad")
    at = _arena(**{P + "code": ties.code})
    assert EN[P + "rating.problem.only_ties"].format(n=2) in _texts(at)
    assert EN[P + "export.empty"].format(n=2, tie=1, both_bad=1) in _texts(at)
    at.session_state[P + "code"] = store.create_set(["Q?"], "Empty").code
    at.run()
    assert EN[P + "rating.problem.no_votes"] in _texts(at)
    _vote(at.session_state[P + "code"], "v1", "x · greedy", "y · greedy", "A")
    at.number_input(key=P + "prior").set_value(0.0).run()
    assert EN[P + "rating.problem.never_lost"].format(sources="x · greedy") in _texts(at)

    at.session_state[P + "code"] = ties.code
    at.run()
    before = _rows("SELECT * FROM votes ORDER BY vote_id")
    good = '{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}'
    bad = good + "\n{not json\n" + '{"prompt": "Hi?", "chosen": "Same.", "rejected": "Same."}\n'
    at.file_uploader(key=P + "import").upload("prefs.jsonl", bad.encode(), "application/jsonl").run()
    with pytest.raises(PairsError):
        parse_jsonl(bad)
    problem = "\n".join(c.value for c in at.code)
    assert "line 2" in problem and "line 3" in problem
    assert EN[P + "import.bad"].format(name="prefs.jsonl", lines="2, 3") in _texts(at)
    assert "alignment.imported_pairs" not in at.session_state
    assert _rows("SELECT * FROM votes ORDER BY vote_id") == before
    at.file_uploader(key=P + "import").upload("ok.jsonl", good.encode(), "application/jsonl").run()
    assert [p.chosen for p in at.session_state["alignment.imported_pairs"]] == ["Hello."]
    assert _rows("SELECT * FROM votes ORDER BY vote_id") == before  # import never writes to the store


def test_the_arena_speaks_chinese():
    at = _arena(**{"app.lang": "zh"})
    assert at.button(key=P + "generate").label == ZH[P + "match.generate"]
    assert ZH[P + "src.base"] in at.selectbox(key=P + "src0").options
    assert [text for text in visible_texts(at) if is_english_sentence(text)] == []
    at.text_input(key=P + "join_code").input("ZZZZZZ")
    _click(at, P + "join")
    assert ZH[P + "set.unknown_code"].format(code="ZZZZZZ") in _texts(at)
    # With votes, ratings, charts and a reveal on screen.
    made = A.shared_store().create_set(["Pick one?"], "Chinese")
    for verdict in ("A", "B", "A", "tie"):  # between the default sources: the vote below joins them
        _vote(made.code, "v1", "base · greedy", "base · T=0.8", verdict)
    at.session_state[P + "code"] = made.code
    at.run()
    _click(at, P + "generate")
    _click(at, P + "vote.both_bad")
    assert ZH[P + "verdict.both_bad"] in _texts(at) and len(at.get("plotly_chart")) == 2
    # Sources in the tables and charts are worded in Chinese too, not as the stored ids ("base · greedy").
    greedy, hot = "基础模型 · 贪心", "基础模型 · T=0.8"
    ratings = _frame(at, ZH[P + "rating.col.share"])
    assert set(ratings[ZH[P + "col.source"]]) == {greedy, hot}
    assert set(_frame(at, ZH[P + "totals.shown"])[ZH[P + "col.source"]]) == {greedy, hot}
    for chart in at.get("plotly_chart"):
        assert set(json.loads(chart.proto.spec)["data"][0]["x"]) == {greedy, hot}
    assert [text for text in visible_texts(at) if is_english_sentence(text)] == []


def test_a_self_learner_votes_in_a_personal_set_that_grows_with_typed_prompts():
    at = _arena()
    _click(at, P + "generate")  # the first shipped prompt, no class set
    _click(at, P + "vote.B")
    first = at.session_state[P + "personal"]
    assert at.session_state[P + "code"] == first
    shipped = A.shipped_prompts()
    assert _rows("SELECT COUNT(*) FROM prompts WHERE set_code = ?", first) == [(len(shipped),)]
    at.radio(key=P + "prompt_mode").set_value("typed").run()
    at.text_area(key=P + "typed").input("Say hi in French.").run()
    _click(at, P + "generate")
    assert at.session_state[P + "shown"]["prompt"] == "Say hi in French."
    _click(at, P + "vote.tie")
    grown = at.session_state[P + "personal"]
    assert grown != first and at.session_state[P + "code"] == grown
    assert _rows("SELECT prompt_id, verdict FROM votes WHERE set_code = ? ORDER BY created", grown) == [
        (0, "B"),
        (len(shipped), "tie"),
    ]
    assert _rows("SELECT COUNT(*) FROM votes WHERE set_code = ?", first) == [(1,)]  # the old set is kept as it was
    assert EN[P + "set.personal_on"].format(code=grown) in _texts(at)


def test_a_remote_engine_is_a_source_and_its_failures_are_explained(server):
    from tests.openai_server import ANSWER_PIECES, KEY

    remote = {"engine.remote": True, "engine.base_url": server, "engine.api_key": KEY}
    at = _arena(**remote, **{P + "src1": "remote", P + "remote_model": "missing", P + "temp1": 0.0})
    _click(at, P + "generate")
    assert at.session_state[P + "shown"] is None
    assert "missing" in "\n".join(e.value for e in at.error)
    at.text_input(key=P + "remote_model").input("arena-test").run()
    _click(at, P + "generate")
    shown = at.session_state[P + "shown"]
    by_source = {shown["match"].source(side).id: text for side, text in zip("AB", shown["answers"])}
    assert by_source["remote arena-test · greedy"] == "".join(ANSWER_PIECES)
    _click(at, P + "vote.A")
    code = at.session_state[P + "code"]
    stored = _rows("SELECT source_a, source_b FROM votes WHERE set_code = ?", code)
    assert set(stored[0]) == {"base · greedy", "remote arena-test · greedy"}
    assert "Remote engine (arena-test) · greedy" in _texts(at)
