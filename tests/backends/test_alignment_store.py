"""The preference store: sets and codes, votes stored once, many writers, a killed writer.

Expected values come from what the test itself wrote and from plain sqlite3 queries on the file,
not from the store's own read API.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from backends.alignment import PreferenceStore, StoreError, UnknownSet
from backends.alignment.store import CODE_ALPHABET, CODE_LENGTH

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path):
    return PreferenceStore(tmp_path / "prefs.sqlite3")


def raw(path, sql, *args):
    with sqlite3.connect(path) as con:
        return con.execute(sql, args).fetchall()


def test_file_is_wal_and_default_path_is_in_the_cache(store, tmp_path, monkeypatch):
    assert raw(store.path, "PRAGMA journal_mode") == [("wal",)]
    monkeypatch.setenv("LLMPG_CACHE_DIR", str(tmp_path / "cache"))
    assert PreferenceStore().path == tmp_path / "cache" / "alignment" / "preferences.sqlite3"


def test_create_and_open_set(store):
    made = store.create_set(["What is 2+2?", "Name a colour."], title="Monday")
    assert len(made.code) == CODE_LENGTH and set(made.code) <= set(CODE_ALPHABET)
    assert not set(made.code) & set("IL1O0")
    typed = made.code[:3].lower() + " - " + made.code[3:].lower()
    opened = store.open_set(typed)
    assert (opened.code, opened.title, opened.prompts) == (made.code, "Monday", ("What is 2+2?", "Name a colour."))
    assert raw(store.path, "SELECT COUNT(*) FROM prompts WHERE set_code = ?", made.code) == [(2,)]


def test_unknown_code_and_bad_input_say_what_is_wrong(store):
    with pytest.raises(UnknownSet, match=r"No class set has the code 'ZZZZZZ'.*no I, L, O, 0 or 1"):
        store.open_set("ZZZZZZ")
    with pytest.raises(StoreError, match="at least one prompt"):
        store.create_set([])
    s = store.create_set(["p"])
    with pytest.raises(StoreError, match="Unknown verdict 'C'"):
        store.add_vote(s.code, "v", 0, "base", "sft", "a", "b", "C")
    with pytest.raises(StoreError, match="two different sources"):
        store.add_vote(s.code, "v", 0, "base", "base", "a", "b", "A")
    with pytest.raises(StoreError, match="prompts 0 to 0, not 3"):
        store.add_vote(s.code, "v", 3, "base", "sft", "a", "b", "A")
    with pytest.raises(UnknownSet):
        store.add_vote("QQQQQQ", "v", 0, "base", "sft", "a", "b", "A")
    assert raw(store.path, "SELECT COUNT(*) FROM votes") == [(0,)]


def test_a_retried_vote_is_stored_once(store):
    s = store.create_set(["p"])
    first, new1 = store.add_vote(s.code, "alice", 0, "base", "sft", "x", "y", "A", vote_id="v-1")
    again, new2 = store.add_vote(s.code, "alice", 0, "base", "sft", "x", "y", "A", vote_id="v-1")
    assert (new1, new2) == (True, False) and again == first
    with pytest.raises(StoreError, match="already used for a different vote"):
        store.add_vote(s.code, "alice", 0, "base", "sft", "x", "y", "B", vote_id="v-1")
    assert raw(store.path, "SELECT vote_id, verdict FROM votes") == [("v-1", "A")]


def test_my_votes_and_totals(store):
    s = store.create_set(["p0", "p1"])
    other = store.create_set(["q"])
    plan = [("alice", 0, "base", "sft", "A"), ("bob", 1, "sft", "dpo", "B"), ("alice", 1, "base", "dpo", "tie")]
    plan += [("bob", 0, "base", "sft", "both_bad")]
    for voter, pid, a, b, verdict in plan:
        store.add_vote(s.code, voter, pid, a, b, f"{a} says", f"{b} says", verdict)
    store.add_vote(other.code, "alice", 0, "base", "sft", "x", "y", "A")
    mine = store.my_votes(s.code, "alice")
    assert [(v.prompt_id, v.verdict) for v in mine] == [(0, "A"), (1, "tie")]
    t = store.totals(s.code)
    assert (t.votes, t.voters) == (4, 2)
    assert t.by_verdict == {"A": 1, "B": 1, "tie": 1, "both_bad": 1}
    # by hand: base won vs sft, dpo won vs sft, base-dpo tie, base-sft both bad
    assert t.by_source["base"] == {"wins": 1, "losses": 0, "ties": 1, "both_bad": 1, "shown": 3}
    assert t.by_source["sft"] == {"wins": 0, "losses": 2, "ties": 0, "both_bad": 1, "shown": 3}
    assert t.by_source["dpo"] == {"wins": 1, "losses": 0, "ties": 1, "both_bad": 0, "shown": 2}


def test_thirty_threads_store_every_vote_exactly_once(store):
    s = store.create_set(["p0", "p1", "p2"])
    per_thread, errors, expected = 15, [], set()
    ids = [[f"t{t}-{i}-{uuid.uuid4().hex[:6]}" for i in range(per_thread)] for t in range(30)]
    start = threading.Barrier(30)

    def voter(t):
        try:
            start.wait()
            for i, vid in enumerate(ids[t]):
                store.add_vote(s.code, f"voter{t}", i % 3, "base", "sft", "a", "b", "AB"[i % 2], vote_id=vid)
                if i % 5 == 0:  # a retry of the same vote
                    store.add_vote(s.code, f"voter{t}", i % 3, "base", "sft", "a", "b", "AB"[i % 2], vote_id=vid)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=voter, args=(t,)) for t in range(30)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    for row in ids:
        expected.update(row)
    stored = [r[0] for r in raw(store.path, "SELECT vote_id FROM votes")]
    assert len(stored) == 30 * per_thread and set(stored) == expected
    assert raw(store.path, "SELECT COUNT(DISTINCT voter) FROM votes") == [(30,)]


WRITER = """
import sys
from backends.alignment import PreferenceStore
store = PreferenceStore(sys.argv[1])
code = store.create_set(["p"]).code
print("CODE", code, flush=True)
i = 0
while True:
    vid = f"k{i}"
    store.add_vote(code, "v", 0, "base", "sft", "answer " * 200, "other " * 200, "AB"[i % 2], vote_id=vid)
    print("OK", vid, flush=True)  # printed only once the vote is committed
    i += 1
"""


def test_a_writer_killed_mid_writes_leaves_every_committed_vote(tmp_path):
    path = tmp_path / "killed.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    committed = []
    try:
        code = proc.stdout.readline().split()[1]
        while len(committed) < 80:
            line = proc.stdout.readline()
            assert line, "the writer died before it was killed"
            committed.append(line.split()[1])
    finally:
        proc.kill()  # SIGKILL, while it keeps writing
        proc.wait(timeout=30)
    assert proc.returncode == -9
    assert raw(path, "PRAGMA integrity_check") == [("ok",)]
    stored = {r[0] for r in raw(path, "SELECT vote_id FROM votes")}
    assert set(committed) <= stored
    # the store opens the file again and keeps writing
    store = PreferenceStore(path)
    store.add_vote(code, "after", 0, "base", "sft", "a", "b", "tie", vote_id="after-crash")
    assert len(store.votes(code)) == len(stored) + 1
