"""Uploaded file bytes -> page passages, with a report that says what happened.

PDFs are read with pypdf page by page, so every passage keeps its page number;
.txt and .md files are one page (in any common encoding, detected and named); images
are one page read by OCR. Scanned PDF pages (a page-sized image under a tiny text
layer) are read by OCR too, unless it is switched off. Form values and comments are
passages of their own kind. Nothing is lost silently: a file that ends with no passages
is never "ok", and every report says what was kept and what was not. Bad input never
raises: it comes back as an IngestReport whose status and message say what was wrong
and what to do, so the other files of the same upload are still indexed.

This module checks a file, reads PDFs and text files, and hands images to image_ingest.py;
passage_text.py cleans the text and ingest_report.py builds the report.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from pathlib import PurePath

from backends.rag import pdf_parts
from backends.rag.image_ingest import ingest_image, ocr_passage
from backends.rag.ingest_report import ingest_report
from backends.rag.passage_text import clean_text, meaningful, strip_running_lines
from backends.rag.text_encoding import decode_text
from backends.rag.types import (
    INGEST_ERROR,
    INGEST_NEEDS_PASSWORD,
    INGEST_NO_TEXT,
    INGEST_OK,
    KIND_ANNOTATION,
    KIND_FORM,
    IngestReport,
    Passage,
)

# clean_text and strip_running_lines live in passage_text.py; callers still import them from here.
__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_BYTES",
    "MAX_PAGES",
    "SUFFIXES",
    "TEXT_SUFFIXES",
    "clean_text",
    "ingest_file",
    "strip_running_lines",
]

MAX_BYTES = 50 * 2**20
MAX_PAGES = 500
TEXT_SUFFIXES = (".txt", ".md")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
SUFFIXES = (".pdf", *TEXT_SUFFIXES, *IMAGE_SUFFIXES)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n:,} bytes"


def ingest_file(
    name: str,
    data: bytes,
    password: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_pages: int = MAX_PAGES,
    on_page: Callable[[int, int], bool | None] | None = None,
    ocr: bool = True,
    on_ocr: Callable[[int, int, float | None], None] | None = None,
) -> IngestReport:
    """Read one uploaded file; never raises for bad content (see the report's status and message).

    on_page(page, pages) is called after each PDF page; returning True stops reading (the
    report is then an error that says so). ocr=False leaves scanned pages and images unread
    (the report says which). on_ocr(page, pages, seconds) is called before OCR of a page
    (seconds None) and after it.
    """
    name = str(name or "unnamed")
    data = bytes(data or b"")
    suffix = PurePath(name).suffix.lower()
    if suffix not in SUFFIXES:
        return ingest_report(
            name,
            INGEST_ERROR,
            f"{name!r}: unsupported file type {suffix or '(no extension)'!r}; upload {', '.join(SUFFIXES)} files.",
            data,
            key="unsupported",
            values={"suffix": suffix or "—", "suffixes": ", ".join(SUFFIXES)},
        )
    if not data:
        return ingest_report(name, INGEST_ERROR, f"{name!r} is empty (0 bytes): upload it again.", data, key="empty")
    if len(data) > max_bytes:
        return ingest_report(
            name,
            INGEST_ERROR,
            f"{name!r} is {_mb(len(data))}, over the {_mb(max_bytes)} limit: "
            "split it into smaller files or raise the limit.",
            data,
            key="too_big",
            values={"size": _mb(len(data)), "limit": _mb(max_bytes)},
        )
    if suffix in TEXT_SUFFIXES:
        return _ingest_text(name, data)
    if suffix in IMAGE_SUFFIXES:
        return ingest_image(name, data, ocr, on_ocr)
    try:
        return _ingest_pdf(name, data, password, max_pages, on_page, ocr, on_ocr)
    except Exception as exc:  # pypdf raises many kinds on damaged files; the report carries it
        return ingest_report(
            name,
            INGEST_ERROR,
            f"{name!r} could not be read as a PDF{_truncation_hint(data)}: {type(exc).__name__}: {exc}",
            data,
            key="unreadable_truncated" if _truncation_hint(data) else "unreadable",
            values={"error": f"{type(exc).__name__}: {exc}"},
        )


def _ingest_text(name: str, data: bytes) -> IngestReport:
    decoded = decode_text(data)
    note = f" Note: {decoded.note}." if decoded.note else ""
    notes = [_encoding_note(decoded)] if decoded.note else []
    text = clean_text(decoded.text, keep_replacement=True)
    if not meaningful(text):
        return ingest_report(
            name,
            INGEST_NO_TEXT,
            f"{name!r} holds no text (0 passages, nothing indexed).{note}",
            data,
            key="text_empty",
            notes=notes,
        )
    status_note = f"{name!r}: 1 page of text, {len(text):,} characters, all kept." + note
    return ingest_report(
        name,
        INGEST_OK,
        status_note,
        data,
        [Passage(name, 1, text)],
        pages=1,
        key="text_ok",
        values={"chars": f"{len(text):,}"},
        notes=notes,
    )


def _encoding_note(decoded) -> tuple[str, dict]:
    """The decoding note as (key, values) for the page's language."""
    if decoded.replaced:
        return "undecodable", {"n": decoded.replaced}
    if decoded.encoding == "utf-16":
        return "utf16", {}
    return "detected", {"encoding": decoded.encoding.replace("_", "-").upper()}


def _truncation_hint(data: bytes) -> str:
    return (
        " (it looks truncated: no %%EOF marker at its end; upload the whole file again)"
        if b"%%EOF" not in data[-2048:]
        else ""
    )


def _ingest_pdf(
    name: str, data: bytes, password: str | None, max_pages: int, on_page=None, ocr: bool = True, on_ocr=None
) -> IngestReport:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    head = data[:1024]
    if b"%PDF-" not in head:
        return ingest_report(
            name,
            INGEST_ERROR,
            f"{name!r} is not a PDF (it starts with {data[:16]!r}, not %PDF-): "
            "was another file renamed to .pdf? Upload the original PDF.",
            data,
            key="not_pdf",
            values={"start": repr(data[:16])},
        )
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged files log pages of warnings
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        refused, why = _decrypt(reader, password)
        if refused:
            return ingest_report(name, INGEST_NEEDS_PASSWORD, f"{name!r} {refused}", data, key=why[0], values=why[1])
    notes = [_truncation_hint(data).strip(" ()")] if _truncation_hint(data) else []
    keyed = [("truncated", {})] if notes else []
    try:
        pages = list(reader.pages)
    except (PdfReadError, KeyError, AttributeError, TypeError, ValueError) as exc:
        pages = _scan_for_pages(reader, _linearized_first_page(data))
        if not pages:
            raise PdfReadError(f"its page tree is damaged ({exc}) and no pages were found in the file") from exc
        notes.append(
            f"its page tree is damaged, so {len(pages)} page(s) were recovered by scanning the file "
            "(page numbers may differ from the original's)"
        )
        keyed.append(("damaged_tree", {"n": len(pages)}))
    if len(pages) > max_pages:
        return ingest_report(
            name,
            INGEST_ERROR,
            f"{name!r} has {len(pages)} pages, over the {max_pages}-page limit: split it or raise the limit.",
            data,
            pages=len(pages),
            key="too_many_pages",
            values={"n": len(pages), "limit": max_pages},
        )
    read = _read_pages(name, pages, ocr, on_page, on_ocr)
    if read.stopped:
        return ingest_report(
            name,
            INGEST_ERROR,
            f"{name!r}: stopped at page {read.stopped} of {len(pages)}.",
            data,
            key="stopped",
            values={"page": read.stopped, "pages": len(pages)},
        )
    notes += read.notes
    keyed += read.keyed
    passages, running = strip_running_lines(read.passages)
    if running:
        notes.append(f"{running} repeated header/footer line(s) left out")
        keyed.append(("running_lines", {"n": running}))
    note = (" Note: " + "; ".join(notes) + ".") if notes else ""
    if not passages:
        why, why_key = (
            ("its pages are images (a scan?) and OCR is switched off", "scans_ocr_off")
            if read.scans and not ocr
            else ("no page has a text layer", "no_text_layer")
            if not read.scans
            else ("OCR found no text on its scanned pages", "ocr_empty")
        )
        return ingest_report(
            name,
            INGEST_NO_TEXT,
            f"{name!r} ({len(pages)} page(s)): 0 passages, nothing indexed: {why}.{note}",
            data,
            pages=len(pages),
            key="pdf_empty." + why_key,
            values={"pages": len(pages)},
            notes=keyed,
        )
    characters = sum(len(p.text) for p in passages)
    with_text = len({p.page for p in passages})
    message = (
        f"{name!r}: {with_text} of {len(pages)} page(s) with text, {len(passages)} passage(s), "
        f"{characters:,} characters.{note}"
    )
    report = ingest_report(
        name,
        INGEST_OK,
        message,
        data,
        passages,
        pages=len(pages),
        key="pdf_ok",
        values={"with_text": with_text, "pages": len(pages), "passages": len(passages), "chars": f"{characters:,}"},
        notes=keyed,
    )
    report.ocr_pages, report.ocr_seconds = read.ocr_pages, read.ocr_seconds
    return report


class _PagesRead:
    def __init__(self):
        self.passages: list[Passage] = []
        self.notes: list[str] = []
        self.keyed: list[tuple[str, dict]] = []  # the same notes as (key, values), for the page's language
        self.scans: list[int] = []  # pages whose content is an image
        self.ocr_pages: list[int] = []
        self.ocr_seconds = 0.0
        self.stopped = 0


def _pages_list(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:20])) + (f" and {len(numbers) - 20} more" if len(numbers) > 20 else "")


def _read_pages(name: str, pages: list, ocr: bool, on_page, on_ocr) -> _PagesRead:
    read, failed, nuls, forms, comments, empty_scans = _PagesRead(), [], {}, 0, 0, []
    for number, page in enumerate(pages, start=1):
        try:
            raw, count, mark = pdf_parts.page_text(page)
            text = clean_text(raw)
            if count:
                nuls[mark] = nuls.get(mark, 0) + count
        except Exception as exc:  # one damaged page must not cost the others
            failed.append(f"{number} ({type(exc).__name__})")
            text = None
        if text is not None:
            if text:
                read.passages.append(Passage(name, number, text))
            page_forms, page_comments = pdf_parts.form_and_comments(page)
            for lines, kind in ((page_forms, KIND_FORM), (page_comments, KIND_ANNOTATION)):
                if lines:
                    read.passages.append(Passage(name, number, "\n".join(lines), kind))
            forms, comments = forms + len(page_forms), comments + len(page_comments)
            if meaningful(text) < pdf_parts.SCAN_TEXT_CHARS and pdf_parts.has_page_sized_image(page):
                read.scans.append(number)
                if ocr:
                    if on_ocr is not None:
                        on_ocr(number, len(pages), None)
                    passage, seconds, error = ocr_passage(name, number, pdf_parts.page_images(page))
                    read.ocr_seconds += seconds
                    if on_ocr is not None:
                        on_ocr(number, len(pages), seconds)
                    if error:
                        read.notes.append(f"OCR of page {number} failed: {error}")
                        read.keyed.append(("ocr_failed", {"page": number, "error": error}))
                    elif passage is not None:
                        read.passages.append(passage)
                        read.ocr_pages.append(number)
                    else:
                        empty_scans.append(number)
        if on_page is not None and on_page(number, len(pages)):
            read.stopped = number
            return read
    if failed:
        read.notes.append(f"page(s) {', '.join(failed)} could not be read")
        read.keyed.append(("pages_failed", {"pages": ", ".join(failed)}))
    if read.ocr_pages:
        read.notes.append(
            f"page(s) {_pages_list(read.ocr_pages)} are scans: their text was read by OCR ({read.ocr_seconds:.1f} s)"
        )
        read.keyed.append(("ocr_pages", {"pages": _pages_list(read.ocr_pages), "s": f"{read.ocr_seconds:.1f}"}))
    if empty_scans:
        read.notes.append(f"page(s) {_pages_list(empty_scans)} are scans on which OCR found no text")
        read.keyed.append(("ocr_empty_pages", {"pages": _pages_list(empty_scans)}))
    if read.scans and not ocr:
        read.notes.append(
            f"page(s) {_pages_list(read.scans)} look like scans (a page-sized image under at most "
            f"{pdf_parts.SCAN_TEXT_CHARS} characters of text): their image content was NOT read "
            "(OCR is off)"
        )
        read.keyed.append(("scans_not_read", {"pages": _pages_list(read.scans), "chars": pdf_parts.SCAN_TEXT_CHARS}))
    if forms or comments:
        read.notes.append(f"{forms} form field value(s) and {comments} comment(s) indexed, labelled as such")
        read.keyed.append(("forms", {"forms": forms, "comments": comments}))
    for mark, count in nuls.items():
        minus = mark == pdf_parts.MINUS
        what = (
            "the minus sign − (U+2212, TeX's symbol font)"
            if minus
            else "the placeholder □ (their font maps them to no character)"
        )
        read.notes.append(f"{count} unmapped glyph(s) shown as {what}")
        read.keyed.append(("glyphs_minus" if minus else "glyphs_placeholder", {"n": count}))
    return read


def _decrypt(reader, password: str | None) -> tuple[str, tuple[str, dict]]:
    """('', ...) when the reader is open, else why not: (the rest of the report's message, (key, values))."""
    from pypdf import PasswordType
    from pypdf.errors import DependencyError

    try:
        if password is None:  # a PDF with only an owner password opens with the empty user password
            if reader.decrypt("") != PasswordType.NOT_DECRYPTED:
                return "", ("", {})
            return "is password-protected: enter its password to index it.", ("password", {})
        if reader.decrypt(password) != PasswordType.NOT_DECRYPTED:
            return "", ("", {})
    except DependencyError as exc:
        return f"is encrypted in a way this installation cannot open ({exc}).", ("encryption", {"error": str(exc)})
    return "is password-protected and the password given is wrong: check it and try again.", ("wrong_password", {})


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
