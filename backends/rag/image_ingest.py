"""Images read by OCR: an uploaded image file, and a page's images as one passage (scanned PDF pages too)."""

from __future__ import annotations

import io

from backends.rag.ingest_report import ingest_report
from backends.rag.ocr import OcrError, ocr_image
from backends.rag.passage_text import clean_text
from backends.rag.types import INGEST_ERROR, INGEST_NO_TEXT, INGEST_OK, KIND_OCR, IngestReport, Passage


def ocr_passage(name: str, page: int, images) -> tuple[Passage | None, float, str]:
    """OCR of a page's images: (passage or None, seconds, error message or '')."""
    texts, seconds = [], 0.0
    for image in images:
        try:
            result = ocr_image(image)
        except OcrError as exc:
            return None, seconds, str(exc)
        seconds += result.seconds
        if result.text.strip():
            texts.append(result.text)
    text = clean_text("\n".join(texts))
    return (Passage(name, page, text, KIND_OCR) if text else None), seconds, ""


def ingest_image(name: str, data: bytes, ocr: bool, on_ocr) -> IngestReport:
    """One image file, one page, read by OCR (never raises; see ingest.ingest_file)."""
    from PIL import Image, UnidentifiedImageError

    if not ocr:
        return ingest_report(
            name,
            INGEST_NO_TEXT,
            f"{name!r} is an image and OCR is switched off: nothing indexed. Switch OCR on to read its text.",
            data,
            pages=1,
            key="image_ocr_off",
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if on_ocr is not None:
                on_ocr(1, 1, None)
            passage, seconds, error = ocr_passage(name, 1, [image.copy()])
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        return ingest_report(
            name,
            INGEST_ERROR,
            f"{name!r} could not be read as an image ({type(exc).__name__}: {exc}).",
            data,
            key="not_image",
            values={"error": f"{type(exc).__name__}: {exc}"},
        )
    if on_ocr is not None:
        on_ocr(1, 1, seconds)
    if error:
        return ingest_report(
            name, INGEST_ERROR, f"{name!r}: {error}", data, pages=1, key="ocr_error", values={"error": error}
        )
    if passage is None:
        return ingest_report(
            name,
            INGEST_NO_TEXT,
            f"{name!r}: OCR found no text in the image ({seconds:.1f} s): nothing indexed.",
            data,
            pages=1,
            key="image_empty",
            values={"s": f"{seconds:.1f}"},
        )
    report = ingest_report(
        name,
        INGEST_OK,
        f"{name!r}: 1 image read by OCR in {seconds:.1f} s, {len(passage.text):,} characters.",
        data,
        [passage],
        pages=1,
        key="image_ok",
        values={"s": f"{seconds:.1f}", "chars": f"{len(passage.text):,}"},
    )
    report.ocr_pages, report.ocr_seconds = [1], seconds
    return report
