"""No silent text loss: one test per defect of issue 16, on small PDFs and texts built here.

The PDFs are written byte by byte (raw_pdf below), so each holds exactly the construct under
test: a rotated line repeated on every page, a scan under a watermark, form values and a
comment, a TeX minus sign that has no Unicode mapping.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import pytest

from backends.rag.ingest import ingest_file, strip_running_lines
from backends.rag.types import KIND_ANNOTATION, KIND_FORM, KIND_OCR, Passage

WQY = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def raw_pdf(pages: list[dict]) -> bytes:
    """A PDF whose pages are {'content': bytes, 'annots': [dict source], 'image': jpeg bytes, 'size': (w, h)}.

    Fonts: /F1 Helvetica, /F2 CMSY10 (TeX's symbol font, no ToUnicode); an image is /Im1.
    """
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")
    tree = add(b"")
    helvetica = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    cmsy = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /CMSY10 >>")
    kids, fields = [], []
    for page in pages:
        content = page.get("content", b"")
        stream = add(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        xobject = b""
        if page.get("image"):
            jpeg, (iw, ih) = page["image"]
            im = add(
                b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n"
                % (iw, ih, len(jpeg))
                + jpeg
                + b"\nendstream"
            )
            xobject = b" /XObject << /Im1 %d 0 R >>" % im
        annots = [add(a) for a in page.get("annots", [])]
        fields += [a for a, src in zip(annots, page.get("annots", [])) if b"/Widget" in src]
        w, h = page.get("size", (612, 792))
        refs = b" ".join(b"%d 0 R" % a for a in annots)
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 %d 0 R "
                b"/F2 %d 0 R >>%s >> /Contents %d 0 R /Annots [%s] >>"
                % (tree, w, h, helvetica, cmsy, xobject, stream, refs)
            )
        )
    acro = b" /AcroForm << /Fields [%s] >>" % b" ".join(b"%d 0 R" % f for f in fields) if fields else b""
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R%s >>" % (tree, acro)
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref))
    return out.getvalue()


def text_image(lines: list[str], width: int = 1240, height: int = 1754, size: int = 40):
    """A white page with `lines` in black (the CJK font draws both scripts)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (width, height), "white")
    draw, font = ImageDraw.Draw(image), ImageFont.truetype(str(WQY), size)
    for i, line in enumerate(lines):
        draw.text((90, 120 + int(size * 1.8) * i), line, fill="black", font=font)
    return image


def jpeg(image) -> tuple[bytes, tuple[int, int]]:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue(), image.size


def scanned_pdf(lines: list[str], watermark: bytes = b"CONFIDENTIAL") -> bytes:
    """One A4 page: a page-sized scan of `lines` drawn over by a short text watermark."""
    content = b"q 595 0 0 842 0 0 cm /Im1 Do Q BT /F1 30 Tf 0.7 0.7 -0.7 0.7 200 300 Tm (%s) Tj ET" % watermark
    return raw_pdf([{"content": content, "image": jpeg(text_image(lines)), "size": (595, 842)}])


def test_a_rotated_line_repeated_on_every_page_is_kept_not_stripped():
    line = b"BT /F1 14 Tf 0 1 -1 0 300 200 Tm (Quarterly safety inspection checklist) Tj ET"
    report = ingest_file("rotated.pdf", raw_pdf([{"content": line}] * 4))
    assert report.status == "ok", report.message
    assert [p.page for p in report.passages] == [1, 2, 3, 4]
    assert all("Quarterly safety inspection checklist" in p.text for p in report.passages)
    assert "header/footer" not in report.message


def test_stripping_never_empties_a_page_but_still_strips_headers_above_body_text():
    only = [Passage("d", n, "Draft - do not cite") for n in range(1, 5)]
    assert strip_running_lines(only) == (only, 0)
    topics = ["Apples grow on trees.", "Rice needs water.", "Wheat makes bread.", "Tea is a leaf."]
    pages = [Passage("d", n, f"Draft - do not cite\n{topic}") for n, topic in enumerate(topics, 1)]
    kept, removed = strip_running_lines(pages)
    assert removed == 4 and [p.text for p in kept] == topics


def test_a_file_that_ends_with_no_passages_is_never_ok():
    blank = ingest_file("blank.pdf", raw_pdf([{"content": b""}] * 2))
    assert blank.status == "no_text" and "0 passages" in blank.message and blank.passages == []
    spaces = ingest_file("spaces.txt", b"   \n\n\t  ")
    assert spaces.status == "no_text" and "0 passages" in spaces.message


@pytest.mark.parametrize("encoding", ["gb18030", "gbk"])
def test_chinese_text_in_gb18030_is_detected_decoded_and_named(encoding):
    text = "检索增强生成先在文档里找到相关段落，再让语言模型根据这些段落回答问题。每个向量有三百八十四维。"
    report = ingest_file("notes.txt", text.encode(encoding))
    assert report.status == "ok", report.message
    assert report.passages[0].text == unicodedata.normalize("NFKC", text)  # the full-width comma is NFKC'd
    assert "GB18030" in report.message and "not UTF-8" in report.message
    assert "U+FFFD" not in report.message


def test_undecodable_bytes_stay_visible_and_the_message_says_so():
    data = b"valid start \xff\xfe\xfd\x80\x81 " * 3 + bytes(range(0x80, 0x100))
    report = ingest_file("noise.txt", data)
    if "detected and decoded as" in report.message:  # some single-byte codec fits every byte
        assert "\ufffd" not in report.passages[0].text
    else:
        assert "\ufffd" in report.passages[0].text and "shown as U+FFFD" in report.message


def test_a_scan_under_a_watermark_is_read_by_ocr_and_says_so():
    lines = ["Every vector has 384 dimensions.", "The answer is on page one."]
    data = scanned_pdf(lines)
    report = ingest_file("scan.pdf", data)
    assert report.status == "ok", report.message
    ocr = [p for p in report.passages if p.kind == KIND_OCR]
    assert [p.page for p in ocr] == [1] and "384 dimensions" in ocr[0].text
    assert report.ocr_pages == [1] and report.ocr_seconds > 0
    assert "read by OCR" in report.message
    off = ingest_file("scan.pdf", data, ocr=False)
    assert "NOT read" in off.message and "OCR is off" in off.message
    assert not any(p.kind == KIND_OCR for p in off.passages)


def test_form_values_and_comments_are_indexed_and_labelled():
    annots = [
        b"<< /Type /Annot /Subtype /Widget /FT /Tx /T (applicant) /V (Ada Lovelace) /Rect [72 600 300 620] >>",
        b"<< /Type /Annot /Subtype /Widget /FT /Btn /T (agree) /V /Yes /Rect [72 560 90 578] >>",
        b"<< /Type /Annot /Subtype /Widget /FT /Btn /T (newsletter) /V /Off /Rect [72 520 90 538] >>",
        b"<< /Type /Annot /Subtype /Text /T (Reviewer) /Contents (Check the budget on page two) "
        b"/Rect [400 700 420 720] >>",
    ]
    content = b"BT /F1 12 Tf 72 700 Td (Application form) Tj ET"
    report = ingest_file("form.pdf", raw_pdf([{"content": content, "annots": annots}]))
    forms = [p for p in report.passages if p.kind == KIND_FORM]
    comments = [p for p in report.passages if p.kind == KIND_ANNOTATION]
    assert forms[0].text == "Form field «applicant»: Ada Lovelace\nForm field «agree»: Yes"
    assert comments[0].text == "Comment (Text, by Reviewer): Check the budget on page two"
    assert "2 form field value(s) and 1 comment(s) indexed" in report.message


def test_a_tex_minus_sign_read_as_nul_becomes_u2212_not_nothing():
    content = b"BT /F1 12 Tf 72 700 Td (p) Tj /F2 12 Tf (\\000) Tj /F1 12 Tf (1\\(x\\) = y) Tj ET"
    report = ingest_file("tex.pdf", raw_pdf([{"content": content}]))
    assert report.passages[0].text == "p\u22121(x) = y"
    assert "1 unmapped glyph(s) shown as the minus sign" in report.message


def test_a_nul_from_another_font_becomes_a_visible_placeholder():
    content = b"BT /F1 12 Tf 72 700 Td (a\\000b) Tj ET"
    report = ingest_file("odd.pdf", raw_pdf([{"content": content}]))
    assert report.passages[0].text == "a\u25a1b" and "placeholder" in report.message
