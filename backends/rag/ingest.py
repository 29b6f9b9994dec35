"""Uploaded file bytes -> page passages, with a report that says what happened.

PDFs are read with pypdf page by page, so every passage keeps its page number;
.txt and .md files are one page. Bad input never raises: it comes back as an
IngestReport whose status and message say what was wrong and what to do, so
the other files of the same upload are still indexed.
"""
from __future__ import annotations

import hashlib
import io
import logging
import re
import unicodedata
from pathlib import PurePath
from typing import Callable

from backends.rag.types import (
    INGEST_ERROR, INGEST_NEEDS_PASSWORD, INGEST_NO_TEXT, INGEST_OK, IngestReport, Passage,
)
from backends.core.text_files import decode_upload

MAX_BYTES = 50 * 2**20
MAX_PAGES = 500
TEXT_SUFFIXES = (".txt", ".md")
SUFFIXES = (".pdf",) + TEXT_SUFFIXES
# Below this many letters/digits per page on pages that carry images, a PDF is a scan
# (ImageMagick writes a one-word "Background" label over each image, for instance).
MIN_CHARS_PER_IMAGE_PAGE = 25
_HYPHEN_BREAK = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n:,} bytes"


def clean_text(text: str) -> str:
    """NFKC (ligatures such as 'ﬁ' become 'fi'), no NULs or replacement characters, words
    hyphenated across a line break joined again, runs of spaces collapsed."""
    text = unicodedata.normalize("NFKC", text or "").replace("\x00", "").replace("\ufffd", "")
    text = _HYPHEN_BREAK.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _meaningful(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _report(name, status, message, data, passages=(), pages=0) -> IngestReport:
    return IngestReport(doc=name, status=status, message=message, pages=pages, passages=list(passages),
                        sha256=hashlib.sha256(data).hexdigest())


def ingest_file(name: str, data: bytes, password: str | None = None,
                max_bytes: int = MAX_BYTES, max_pages: int = MAX_PAGES,
                on_page: Callable[[int, int], bool | None] | None = None) -> IngestReport:
    """Read one uploaded file; never raises for bad content (see the report's status and message).

    on_page(page, pages) is called after each PDF page; returning True stops reading (the
    report is then an error that says so).
    """
    name = str(name or "unnamed")
    data = bytes(data or b"")
    suffix = PurePath(name).suffix.lower()
    if suffix not in SUFFIXES:
        return _report(name, INGEST_ERROR, f"{name!r}: unsupported file type {suffix or '(no extension)'!r}; "
                       f"upload {', '.join(SUFFIXES)} files.", data)
    if not data:
        return _report(name, INGEST_ERROR, f"{name!r} is empty (0 bytes): upload it again.", data)
    if len(data) > max_bytes:
        return _report(name, INGEST_ERROR, f"{name!r} is {_mb(len(data))}, over the {_mb(max_bytes)} limit: "
                       "split it into smaller files or raise the limit.", data)
    if suffix in TEXT_SUFFIXES:
        return _ingest_text(name, data)
    try:
        return _ingest_pdf(name, data, password, max_pages, on_page)
    except Exception as exc:  # pypdf raises many kinds on damaged files; the report carries it
        return _report(name, INGEST_ERROR, f"{name!r} could not be read as a PDF{_truncation_hint(data)}: "
                       f"{type(exc).__name__}: {exc}", data)


_NUMBERS = re.compile(r"\d+")
EDGE_LINES = 2  # how many lines at the top and at the bottom of a page can be a header or footer


def _line_key(line: str) -> str:
    return _NUMBERS.sub("#", " ".join(line.lower().split()))


def strip_running_lines(passages: list[Passage], share: float = 0.6, min_pages: int = 3) -> tuple[list[Passage], int]:
    """Remove running headers and footers: the same line (page numbers aside) at the top or bottom of most pages.

    They would repeat in every chunk, make unrelated chunks look alike to the retriever, and a
    small model given several chunks tends to answer by repeating them. Returns the new
    passages and how many lines were removed.
    """
    if len(passages) < min_pages:
        return passages, 0

    def edges(text: str) -> list[int]:
        kept = [i for i, line in enumerate(text.splitlines()) if line.strip()]
        return sorted(set(kept[:EDGE_LINES] + kept[-EDGE_LINES:]))

    counts: dict[str, int] = {}
    for passage in passages:
        lines = passage.text.splitlines()
        for key in {_line_key(lines[i]) for i in edges(passage.text)}:
            counts[key] = counts.get(key, 0) + 1
    running = {key for key, n in counts.items() if n >= max(min_pages, share * len(passages))}
    if not running:
        return passages, 0
    result, removed = [], 0
    for passage in passages:
        lines = passage.text.splitlines()
        drop = {i for i in edges(passage.text) if _line_key(lines[i]) in running}
        removed += len(drop)
        text = "\n".join(line for i, line in enumerate(lines) if i not in drop).strip()
        if text:
            result.append(Passage(passage.doc, passage.page, text))
    return result, removed


def _ingest_text(name: str, data: bytes) -> IngestReport:
    text, warning = decode_upload(data)
    note = f" {warning}" if warning else ""
    text = clean_text(text)
    if not text:
        return _report(name, INGEST_ERROR, f"{name!r} holds no text.{note}", data)
    status_note = f"{name!r}: 1 page of text, {len(text):,} characters." + note
    return _report(name, INGEST_OK, status_note, data, [Passage(name, 1, text)], pages=1)


def _truncation_hint(data: bytes) -> str:
    return " (it looks truncated: no %%EOF marker at its end; upload the whole file again)" \
        if b"%%EOF" not in data[-2048:] else ""


def _ingest_pdf(name: str, data: bytes, password: str | None, max_pages: int, on_page=None) -> IngestReport:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    head = data[:1024]
    if b"%PDF-" not in head:
        return _report(name, INGEST_ERROR, f"{name!r} is not a PDF (it starts with {data[:16]!r}, not %PDF-): "
                       "was another file renamed to .pdf? Upload the original PDF.", data)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged files log pages of warnings
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        refused = _decrypt(reader, password)
        if refused:
            return _report(name, INGEST_NEEDS_PASSWORD, f"{name!r} {refused}", data)
    notes = [_truncation_hint(data).strip(" ()")] if _truncation_hint(data) else []
    try:
        pages = list(reader.pages)
    except (PdfReadError, KeyError, AttributeError, TypeError, ValueError) as exc:
        pages = _scan_for_pages(reader, _linearized_first_page(data))
        if not pages:
            raise PdfReadError(f"its page tree is damaged ({exc}) and no pages were found in the file") from exc
        notes.append(f"its page tree is damaged, so {len(pages)} page(s) were recovered by scanning the file "
                     "(page numbers may differ from the original's)")
    if len(pages) > max_pages:
        return _report(name, INGEST_ERROR, f"{name!r} has {len(pages)} pages, over the {max_pages}-page limit: "
                       "split it or raise the limit.", data, pages=len(pages))
    passages, failed, image_pages, chars = [], [], 0, 0
    for number, page in enumerate(pages, start=1):
        try:
            text = clean_text(page.extract_text())
        except Exception as exc:  # one damaged page must not cost the others
            failed.append(f"{number} ({type(exc).__name__})")
            text = None
        if on_page is not None and on_page(number, len(pages)):
            return _report(name, INGEST_ERROR, f"{name!r}: stopped at page {number} of {len(pages)}.", data)
        if text is None:
            continue
        image_pages += _has_images(page)
        chars += _meaningful(text)
        if text:
            passages.append(Passage(name, number, text))
    if failed:
        notes.append(f"page(s) {', '.join(failed)} could not be read")
    scanned = image_pages == len(pages) and chars < MIN_CHARS_PER_IMAGE_PAGE * len(pages)
    if chars == 0 or scanned:
        return _report(name, INGEST_NO_TEXT, f"{name!r} ({len(pages)} page(s)) has no text layer: its pages "
                       "are images (a scan?). OCR is not built in; run it through an OCR tool first.",
                       data, pages=len(pages))
    passages, running = strip_running_lines(passages)
    if running:
        notes.append(f"{running} repeated header/footer line(s) left out")
    characters = sum(len(p.text) for p in passages)
    message = f"{name!r}: {len(passages)} of {len(pages)} page(s) with text, {characters:,} characters."
    if notes:
        message += " Note: " + "; ".join(notes) + "."
    return _report(name, INGEST_OK, message, data, passages, pages=len(pages))


def _decrypt(reader, password: str | None) -> str:
    """'' when the reader is open, else why not (the rest of the report's message)."""
    from pypdf import PasswordType
    from pypdf.errors import DependencyError

    try:
        if password is None:  # a PDF with only an owner password opens with the empty user password
            if reader.decrypt("") != PasswordType.NOT_DECRYPTED:
                return ""
            return "is password-protected: enter its password to index it."
        if reader.decrypt(password) != PasswordType.NOT_DECRYPTED:
            return ""
    except DependencyError as exc:
        return f"is encrypted in a way this installation cannot open ({exc})."
    return "is password-protected and the password given is wrong: check it and try again."


def _has_images(page) -> bool:
    try:
        xobjects = page.get("/Resources", {}).get_object().get("/XObject", {}).get_object()
        return any(x.get_object().get("/Subtype") == "/Image" for x in xobjects.values())
    except Exception:
        return False


_LINEARIZED_FIRST = re.compile(rb"/Linearized\b[^>]*?/O\s+(\d+)")


def _linearized_first_page(data: bytes) -> int | None:
    """A linearized ("fast web view") PDF names its first page's object in its first dictionary."""
    found = _LINEARIZED_FIRST.search(data[:2048])
    return int(found.group(1)) if found else None


def _scan_for_pages(reader, first: int | None = None) -> list:
    """Every /Type /Page object in the file, for PDFs whose page tree is missing or broken,
    in object-number order except that a linearized file's known first page comes first."""
    from pypdf import PageObject
    from pypdf.generic import DictionaryObject, IndirectObject

    found = []
    for generation, table in reader.xref.items():
        for number in sorted(table):
            ref = IndirectObject(number, generation, reader)
            try:
                obj = ref.get_object()
            except Exception:
                continue
            if isinstance(obj, DictionaryObject) and obj.get("/Type") == "/Page":
                page = PageObject(reader, ref)
                page.update(obj)
                found.append((number != first, number, page))
    return [page for *_, page in sorted(found, key=lambda f: f[:2])]
