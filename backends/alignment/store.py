"""The classroom preference store: class sets, their prompts and every vote, in one SQLite file.

Many browser sessions (threads of one Streamlit process, or several replicas on one disk) vote at
once, so:
- WAL journal: readers never block the writer, and a process killed mid-write leaves the file
  readable with every committed vote (an uncommitted transaction is rolled back on next open);
- busy_timeout: a writer waits for the lock instead of failing with "database is locked";
- one connection per call (sqlite3 connections are not shared between threads), every write in
  one `BEGIN IMMEDIATE` transaction;
- synchronous=NORMAL: in WAL mode a commit survives the process being killed (SIGKILL); only a
  power cut or OS crash may lose the last few commits (FULL would fsync on every vote);
- a client-supplied vote id is the primary key: a retried vote (a double click, a rerun after a
  lost reply) is stored once.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
import uuid
from collections import Counter, defaultdict
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from backends.core.paths import cache_dir

# Codes students type from the board: no I/L/1 or O/0 to confuse.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
VERDICTS = ("A", "B", "tie", "both_bad")
BUSY_TIMEOUT_MS = 30_000
MAX_TEXT = 20_000  # characters per prompt or answer: a vote is a short classroom answer

SCHEMA = """
CREATE TABLE IF NOT EXISTS class_sets (
    code TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS prompts (
    set_code TEXT NOT NULL REFERENCES class_sets(code),
    prompt_id INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (set_code, prompt_id)
);
CREATE TABLE IF NOT EXISTS votes (
    vote_id TEXT PRIMARY KEY,
    set_code TEXT NOT NULL,
    voter TEXT NOT NULL,
    prompt_id INTEGER NOT NULL,
    source_a TEXT NOT NULL,
    source_b TEXT NOT NULL,
    answer_a TEXT NOT NULL,
    answer_b TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('A', 'B', 'tie', 'both_bad')),
    created REAL NOT NULL,
    FOREIGN KEY (set_code, prompt_id) REFERENCES prompts(set_code, prompt_id)
);
CREATE INDEX IF NOT EXISTS votes_by_set_voter ON votes(set_code, voter, created);
"""


class StoreError(ValueError):
    """A request the store refuses; the message says what to fix."""


class UnknownSet(StoreError):
    """No class set has this code."""


@dataclass(frozen=True)
class ClassSet:
    code: str
    title: str
    prompts: tuple[str, ...]  # prompt_id is the index
    created: float


@dataclass(frozen=True)
class Vote:
    vote_id: str
    set_code: str
    voter: str
    prompt_id: int
    source_a: str
    source_b: str
    answer_a: str
    answer_b: str
    verdict: str
    created: float

    def winner_loser(self) -> tuple[str, str] | None:
        """(winning source, losing source) for an A/B verdict; None for a tie or both bad."""
        if self.verdict == "A":
            return self.source_a, self.source_b
        if self.verdict == "B":
            return self.source_b, self.source_a
        return None


@dataclass(frozen=True)
class Totals:
    votes: int
    voters: int
    by_verdict: dict[str, int]
    # source -> {"wins", "losses", "ties", "both_bad", "shown"}
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)


def default_path() -> Path:
    return cache_dir() / "alignment" / "preferences.sqlite3"


def normalize_code(code: str) -> str:
    """What a student typed, as stored: upper case, spaces and dashes dropped."""
    return "".join(ch for ch in str(code).upper() if ch not in " -_\t")


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise StoreError(f"{what} must be a non-empty text.")
    if len(value) > MAX_TEXT:
        raise StoreError(f"{what} is {len(value)} characters long; the limit is {MAX_TEXT}.")
    return value


class PreferenceStore:
    """The store over one SQLite file (default: <cache>/alignment/preferences.sqlite3)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con:
            con.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
            with self._write(con):
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        con.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; _write opens them explicitly.
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA foreign_keys=ON")
        return con

    @contextmanager
    def _write(self, con: sqlite3.Connection):
        """One transaction, taking the write lock up front (no upgrade deadlock between readers)."""
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    # ---- class sets -------------------------------------------------------------------------

    def create_set(self, prompts: list[str], title: str = "") -> ClassSet:
        """A new class set with its prompts; its code is fresh (retried on the rare collision)."""
        prompts = [_text(p, f"Prompt {i + 1}") for i, p in enumerate(prompts)]
        if not prompts:
            raise StoreError("A class set needs at least one prompt.")
        created = time.time()
        with closing(self._connect()) as con:
            for _ in range(20):
                code = new_code()
                try:
                    with self._write(con):
                        con.execute("INSERT INTO class_sets VALUES (?, ?, ?)", (code, title, created))
                        con.executemany(
                            "INSERT INTO prompts VALUES (?, ?, ?)", [(code, i, p) for i, p in enumerate(prompts)]
                        )
                except sqlite3.IntegrityError:
                    continue
                return ClassSet(code, title, tuple(prompts), created)
        raise StoreError("Could not find a free class code after 20 tries.")  # pragma: no cover

    def open_set(self, code: str) -> ClassSet:
        key = normalize_code(code)
        with closing(self._connect()) as con:
            row = con.execute("SELECT code, title, created FROM class_sets WHERE code = ?", (key,)).fetchone()
            if row is None:
                raise UnknownSet(
                    f"No class set has the code {code.strip()!r}. Check the code on the board: "
                    f"{CODE_LENGTH} letters and digits (there is no I, L, O, 0 or 1)."
                )
            prompts = con.execute("SELECT text FROM prompts WHERE set_code = ? ORDER BY prompt_id", (key,)).fetchall()
        return ClassSet(row[0], row[1], tuple(p[0] for p in prompts), row[2])

    # ---- votes ------------------------------------------------------------------------------

    def add_vote(
        self,
        code: str,
        voter: str,
        prompt_id: int,
        source_a: str,
        source_b: str,
        answer_a: str,
        answer_b: str,
        verdict: str,
        vote_id: str | None = None,
    ) -> tuple[Vote, bool]:
        """Store one vote; returns (the stored vote, whether it is new).

        A vote id seen before returns the vote stored then (a retry), unless its content differs,
        which is refused: one id, one vote.
        """
        if verdict not in VERDICTS:
            raise StoreError(f"Unknown verdict {verdict!r}; expected one of {', '.join(VERDICTS)}.")
        voter = _text(voter, "The voter token")
        source_a, source_b = _text(source_a, "Source A"), _text(source_b, "Source B")
        if source_a == source_b:
            raise StoreError(f"Both answers come from {source_a!r}: a vote compares two different sources.")
        answer_a, answer_b = _text(answer_a, "Answer A"), _text(answer_b, "Answer B")
        key = normalize_code(code)
        vote = Vote(
            vote_id or uuid.uuid4().hex,
            key,
            voter,
            int(prompt_id),
            source_a,
            source_b,
            answer_a,
            answer_b,
            verdict,
            time.time(),
        )
        with closing(self._connect()) as con, self._write(con):
            known = con.execute("SELECT 1 FROM class_sets WHERE code = ?", (key,)).fetchone()
            if known is None:
                raise UnknownSet(f"No class set has the code {code.strip()!r}.")
            count = con.execute("SELECT COUNT(*) FROM prompts WHERE set_code = ?", (key,)).fetchone()[0]
            if not 0 <= vote.prompt_id < count:
                raise StoreError(f"Class set {key} has prompts 0 to {count - 1}, not {vote.prompt_id}.")
            inserted = con.execute(
                "INSERT INTO votes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(vote_id) DO NOTHING",
                (
                    vote.vote_id,
                    vote.set_code,
                    vote.voter,
                    vote.prompt_id,
                    vote.source_a,
                    vote.source_b,
                    vote.answer_a,
                    vote.answer_b,
                    vote.verdict,
                    vote.created,
                ),
            ).rowcount
            if inserted:
                return vote, True
            stored = Vote(*con.execute("SELECT * FROM votes WHERE vote_id = ?", (vote.vote_id,)).fetchone())
        same = (stored.set_code, stored.voter, stored.prompt_id, stored.source_a, stored.source_b, stored.verdict) == (
            vote.set_code,
            vote.voter,
            vote.prompt_id,
            vote.source_a,
            vote.source_b,
            vote.verdict,
        )
        if not same:
            raise StoreError(f"Vote id {vote.vote_id!r} was already used for a different vote.")
        return stored, False

    def votes(self, code: str) -> list[Vote]:
        """Every vote of a set, oldest first."""
        key = self.open_set(code).code
        with closing(self._connect()) as con:
            rows = con.execute("SELECT * FROM votes WHERE set_code = ? ORDER BY created, vote_id", (key,)).fetchall()
        return [Vote(*r) for r in rows]

    def my_votes(self, code: str, voter: str) -> list[Vote]:
        key = self.open_set(code).code
        with closing(self._connect()) as con:
            rows = con.execute(
                "SELECT * FROM votes WHERE set_code = ? AND voter = ? ORDER BY created, vote_id", (key, voter)
            ).fetchall()
        return [Vote(*r) for r in rows]

    def totals(self, code: str) -> Totals:
        votes = self.votes(code)
        by_source: dict[str, dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(("wins", "losses", "ties", "both_bad", "shown"), 0)
        )
        for v in votes:
            for s in (v.source_a, v.source_b):
                by_source[s]["shown"] += 1
            pair = v.winner_loser()
            if pair:
                by_source[pair[0]]["wins"] += 1
                by_source[pair[1]]["losses"] += 1
            else:
                for s in (v.source_a, v.source_b):
                    by_source[s]["ties" if v.verdict == "tie" else "both_bad"] += 1
        counts = Counter(v.verdict for v in votes)
        return Totals(
            len(votes),
            len({v.voter for v in votes}),
            {k: counts.get(k, 0) for k in VERDICTS},
            {k: dict(by_source[k]) for k in sorted(by_source)},
        )
