"""Ingestion of every shared sample PDF and of bad uploads; chunking keeps page numbers.

The PDFs are read from tests/data/pdfs (py-pdf/sample-files, CC-BY-SA-4.0, see its NOTICE.md).
"""

from pathlib import Path

import pytest

from backends.rag.chunking import ChunkingError, chunk_lengths, chunk_passages, validate_settings
from backends.rag.ingest import clean_text, ingest_file
from backends.rag.types import ChunkSettings, Passage
from tests.sample_pdfs import PDFS

ROOT = Path(__file__).resolve().parents[2]
SHARED = PDFS
SAMPLE = ROOT / "assets" / "samples" / "how_language_models_work.pdf"


def read(name: str) -> bytes:
    return (SHARED / name).read_bytes()


# file -> (status, pages, a phrase the text must hold, or None)
EXPECTED = {
    "minimal-document.pdf": ("ok", 1, "Lorem ipsum dolor sit amet"),
    "pdflatex-4-pages.pdf": ("ok", 4, "Hello, here is some text without a meaning"),
    "multicolumn.pdf": ("ok", 3, "Two-Column Document with Lorem Ipsum"),
    "google-doc-document.pdf": ("ok", 1, "Beautiful is better than ugly"),
    "habibi.pdf": ("ok", 1, "حَبيبي"),
    # six page-sized images under a one-word text layer ("Background"): scans (OCR is off here)
    "imagemagick-images.pdf": ("ok", 6, "Background"),
    "libreoffice-writer-password.pdf": ("needs_password", 0, None),
    "unreadablemetadata.pdf": ("ok", 3, "24mm Diameter"),
}


def test_every_shared_pdf_is_covered():
    assert {p.name for p in SHARED.glob("*.pdf")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_pdf_outcome(name):
    status, pages, phrase = EXPECTED[name]
    data = read(name)
    report = ingest_file(name, data, ocr=False)
    assert report.status == status, report.message
    assert report.doc == name and repr(name) in report.message
    assert report.pages == pages
    assert len(report.sha256) == 64
    if phrase:
        text = "\n".join(p.text for p in report.passages)
        assert phrase in text
        assert all(p.doc == name and 1 <= p.page <= pages for p in report.passages)
    else:
        assert report.passages == []


def test_image_pages_under_a_one_word_label_are_reported_as_unread_scans_when_ocr_is_off():
    report = ingest_file("scan.pdf", read("imagemagick-images.pdf"), ocr=False)
    assert "page(s) 1, 2, 3, 4, 5, 6 look like scans" in report.message
    assert "NOT read (OCR is off)" in report.message


def test_encrypted_pdf_needs_its_password_and_works_with_it():
    data = read("libreoffice-writer-password.pdf")
    assert "password-protected" in ingest_file("locked.pdf", data).message
    wrong = ingest_file("locked.pdf", data, password="not-it")
    assert wrong.status == "needs_password" and "wrong" in wrong.message
    opened = ingest_file("locked.pdf", data, password="openpassword")
    assert opened.status == "ok" and "Lorem ipsum" in opened.passages[0].text


def test_multicolumn_reads_both_columns_in_order():
    text = ingest_file("m.pdf", read("multicolumn.pdf")).passages[0].text
    # words hyphenated across lines are joined, and the ligature 'ﬁ' is plain 'fi'
    assert "adipiscing elit" in text and "filled" in text
    assert text.index("Abstract") < text.index("Nam dui ligula")


def test_damaged_page_tree_is_recovered_and_said():
    report = ingest_file("u.pdf", read("unreadablemetadata.pdf"))
    assert "page tree is damaged" in report.message
    # the linearization header names the first page: the readable one (the others' fonts are missing)
    assert [p.page for p in report.passages] == [1]
    assert "\ufffd" not in report.passages[0].text


@pytest.mark.parametrize(
    "name,data,words",
    [
        ("renamed.pdf", b"PK\x03\x04 this is a zip file", ["not a PDF", "renamed"]),
        ("empty.pdf", b"", ["empty"]),
        ("notes.docx", b"hello", ["unsupported file type", ".docx"]),
    ],
)
def test_bad_uploads_get_clear_messages(name, data, words):
    report = ingest_file(name, data)
    assert report.status == "error" and repr(name) in report.message
    assert all(w in report.message for w in words)


def test_truncated_pdf_is_an_error_that_says_truncated():
    data = read("pdflatex-4-pages.pdf")
    report = ingest_file("cut.pdf", data[: len(data) // 2])
    assert report.status == "error" and "truncated" in report.message


def test_size_and_page_limits():
    data = read("pdflatex-4-pages.pdf")
    big = ingest_file("big.pdf", data, max_bytes=len(data) - 1)
    assert big.status == "error" and "limit" in big.message and "'big.pdf'" in big.message
    long = ingest_file("long.pdf", data, max_pages=3)
    assert long.status == "error" and "4 pages" in long.message and "3-page limit" in long.message
    assert ingest_file("fits.pdf", data, max_bytes=len(data), max_pages=4).status == "ok"


def test_text_files_are_page_one_and_invalid_utf8_is_reported():
    ok = ingest_file("notes.md", "# Title\n\nCafé au lait.".encode())
    assert ok.status == "ok" and ok.passages == [Passage("notes.md", 1, "# Title\n\nCafé au lait.")]
    latin = ingest_file("latin.txt", "Caf\xe9 au lait".encode("latin-1"))
    assert latin.status == "ok" and "not UTF-8" in latin.message and "byte at 3" in latin.message
    assert "decoded as CP125" in latin.message and latin.passages[0].text == "Café au lait"


def test_clean_text():
    # a NUL is never deleted (page_text resolves a PDF's NULs to the character they stand for first)
    assert clean_text("ﬁne  work-\ning\r\n\n\n\nnext\x00") == "fine working\n\nnext\u25a1"
    assert clean_text("a\ufffdb") == "ab" and clean_text("a\ufffdb", keep_replacement=True) == "a\ufffdb"


def test_sample_pdf_has_eight_topic_pages():
    report = ingest_file(SAMPLE.name, SAMPLE.read_bytes())
    assert report.status == "ok" and [p.page for p in report.passages] == list(range(1, 9))
    assert "5. Fine-tuning and LoRA" in report.passages[4].text


def test_page_numbers_and_offsets_survive_chunking():
    report = ingest_file("p.pdf", read("pdflatex-4-pages.pdf"))
    chunks = chunk_passages(report.passages, ChunkSettings(size=500, overlap=50))
    assert [c.id for c in chunks] == list(range(len(chunks)))
    assert {c.page for c in chunks} == {1, 2, 3, 4}
    pages = {p.page: p.text for p in report.passages}
    for c in chunks:
        assert pages[c.page][c.start : c.start + len(c.text)] == c.text
        assert len(c.text) <= 500
    assert [c.page for c in chunks] == sorted(c.page for c in chunks)


def test_chunking_by_tokens_uses_the_model_tokenizer():
    from backends.rag.embedder import load_embedder

    tokenizer = load_embedder().tokenizer
    report = ingest_file("p.pdf", read("pdflatex-4-pages.pdf"))
    chunks = chunk_passages(report.passages, ChunkSettings("tokens", 100, 10), tokenizer)
    lengths = chunk_lengths(chunks, tokenizer)
    assert max(lengths) <= 100 and min(lengths) > 0
    assert len(chunks) > len(chunk_passages(report.passages, ChunkSettings("characters", 800, 0)))


@pytest.mark.parametrize(
    "settings,words",
    [
        (ChunkSettings(size=0), "positive"),
        (ChunkSettings(size=100, overlap=100), "smaller than the chunk size (100)"),
        (ChunkSettings(size=100, overlap=-1), "at least 0"),
        (ChunkSettings(method="sentences"), "'sentences'"),
    ],
)
def test_bad_chunk_settings(settings, words):
    with pytest.raises(ChunkingError, match=r".*") as info:
        validate_settings(settings)
    assert words in str(info.value)


def test_token_chunks_longer_than_the_model_reads_are_refused():
    with pytest.raises(ChunkingError, match="254"):
        validate_settings(ChunkSettings("tokens", 300, 20), max_tokens=256)


def test_pages_are_reported_and_reading_can_stop():
    seen = []
    report = ingest_file("p.pdf", read("pdflatex-4-pages.pdf"), on_page=lambda page, pages: seen.append((page, pages)))
    assert report.status == "ok" and seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    stopped = ingest_file("p.pdf", read("pdflatex-4-pages.pdf"), on_page=lambda page, pages: page == 2)
    assert stopped.status == "error" and "stopped at page 2 of 4" in stopped.message


def test_running_headers_and_footers_are_left_out_but_body_lines_stay():
    from backends.rag.ingest import strip_running_lines
    from backends.rag.types import Passage

    sample = ROOT / "assets" / "samples" / "how_language_models_work.pdf"
    report = ingest_file(sample.name, sample.read_bytes())
    assert "16 repeated header/footer line(s) left out" in report.message
    assert not any("A short guide to how language models work" in p.text for p in report.passages)
    assert not any(p.text.rstrip().endswith(f"page {p.page}") for p in report.passages)
    assert report.passages[1].text.startswith("2. Embeddings")

    topics = ["Sales rose in spring.", "Costs fell.", "Hiring paused.", "Plans for next year."]
    pages = [
        Passage("d", n, f"ACME annual report 2026\n{topic}\nSee the table.\nIn short: {topic.lower()}\n- {n} -")
        for n, topic in enumerate(topics, 1)
    ]
    kept, removed = strip_running_lines(pages)
    assert removed == 8, "the title line and the page number of each page"
    assert kept[0].text == "Sales rose in spring.\nSee the table.\nIn short: sales rose in spring."
    assert strip_running_lines(pages[:2]) == (pages[:2], 0), "two pages are too few to tell a header"
