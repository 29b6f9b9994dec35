"""OCR offline (RapidOCR, PP-OCRv4 from the wheel): rendered images of known text, English and Chinese."""

from difflib import SequenceMatcher
from pathlib import Path

import pytest

from backends.rag.ingest import ingest_file
from backends.rag.ocr import OcrError, ocr_image
from tests.backends.test_rag_silent_loss import text_image

ENGLISH = ["Retrieval finds the passages first.", "Every vector has 384 dimensions."]
CHINESE = ["检索增强生成先找到相关的段落。", "每个向量有三百八十四个维度。"]


def accuracy(found: str, expected: str) -> float:
    """Character accuracy: 1 - edit distance / length, via difflib's matching blocks (spaces ignored)."""
    a, b = "".join(found.split()), "".join(expected.split())
    matched = sum(block.size for block in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())
    return matched / max(len(a), len(b), 1)


@pytest.mark.parametrize("lines", [ENGLISH, CHINESE], ids=["english", "chinese"])
def test_ocr_reads_rendered_text_with_high_character_accuracy(lines):
    result = ocr_image(text_image(lines, 900, 260, 36))
    assert accuracy(result.text, "\n".join(lines)) >= 0.9, result.text
    assert len(result.lines) == 2 and result.seconds > 0
    assert result.lines[0].box[1] < result.lines[1].box[1], "reading order: top line first"


def test_an_uploaded_image_is_one_ocr_page_and_a_broken_one_is_an_error():
    import io

    buffer = io.BytesIO()
    text_image(ENGLISH, 900, 260, 36).save(buffer, "PNG")
    report = ingest_file("slide.png", buffer.getvalue())
    assert report.status == "ok" and report.passages[0].kind == "ocr" and "384 dimensions" in report.passages[0].text
    assert report.ocr_pages == [1]
    off = ingest_file("slide.png", buffer.getvalue(), ocr=False)
    assert off.status == "no_text" and "OCR is switched off" in off.message
    broken = ingest_file("broken.png", b"\x89PNG\r\n\x1a\n not really")
    assert broken.status == "error" and "'broken.png'" in broken.message
    with pytest.raises(OcrError):
        ocr_image(Path("not-an-image"))
