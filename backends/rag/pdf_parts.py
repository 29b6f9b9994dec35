"""What a PDF page holds besides plain text runs: unmapped glyphs, form values, comments, scans.

- Glyphs without a Unicode mapping come out of pypdf as NUL. In TeX's math symbol fonts
  (CMSY, LM Math Symbols) code 0 is the minus sign, so there they become U+2212 (p⁻¹(x) stays
  p−1(x), not p1(x)); elsewhere a visible placeholder (U+25A1 □), never nothing.
- Filled form fields (widget annotations with a value) and annotation comments (/Contents of
  text notes, free text, highlights...) are text the user typed: they are indexed as passages
  of their own kind, labelled.
- A page is a scan when a page-sized image sits under only a tiny text layer (a watermark,
  a stamp, ImageMagick's one-word label): its real content is in the image.
"""

from __future__ import annotations

import functools
import re

MINUS, PLACEHOLDER = "\u2212", "\u25a1"
_TEX_SYMBOL_FONT = re.compile(r"^(?:[A-Z]{6}\+)?(?:CMB?SY\d*|LMSY\d*|LMMathSymbols)", re.IGNORECASE)
# Below this many letters/digits of text layer, a page with a page-sized image is a scan.
SCAN_TEXT_CHARS = 200
PAGE_IMAGE_SHARE = 0.5  # an image whose pixels would cover this share of the page at 72 dpi
_SKIP_ANNOTATIONS = {"/Widget", "/Link", "/Popup"}


def page_text(page) -> tuple[str, int, str]:
    """(text with NULs resolved, how many NULs there were, what they became: '' / '−' / '□')."""
    fonts: set[str] = set()

    def visit(text, cm, tm, font_dict, font_size):
        if "\x00" in text:
            fonts.add(str((font_dict or {}).get("/BaseFont", "")).lstrip("/"))

    text = page.extract_text(visitor_text=visit) or ""
    count = text.count("\x00")
    if not count:
        return text, 0, ""
    minus = bool(fonts) and all(_TEX_SYMBOL_FONT.match(f) for f in fonts)
    mark = MINUS if minus else PLACEHOLDER
    return text.replace("\x00", mark), count, mark


def _text_of(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(filter(None, (_text_of(v) for v in value)))
    text = str(value)
    if text.startswith("/"):  # a name: a checkbox or radio button state
        return "" if text == "/Off" else text[1:]
    return text.strip()


def _field_name(annotation) -> str:
    parts, node, seen = [], annotation, 0
    while node is not None and seen < 16:
        if "/T" in node:
            parts.append(str(node["/T"]))
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
        seen += 1
    return ".".join(reversed(parts)) or "(unnamed)"


def _field_value(annotation):
    node, seen = annotation, 0
    while node is not None and seen < 16:
        if "/V" in node:
            return node["/V"]
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
        seen += 1
    return None


def form_and_comments(page) -> tuple[list[str], list[str]]:
    """(form lines 'Form field «name»: value', comment lines 'Comment (Text, by X): ...') of one page."""
    forms, comments = [], []
    try:
        annotations = page.get("/Annots") or []
        annotations = annotations.get_object() if hasattr(annotations, "get_object") else annotations
    except Exception:
        return forms, comments
    for ref in annotations:
        try:
            annotation = ref.get_object()
            subtype = str(annotation.get("/Subtype", ""))
            if subtype == "/Widget":
                value = _text_of(_field_value(annotation))
                if value:
                    forms.append(f"Form field «{_field_name(annotation)}»: {value}")
            elif subtype not in _SKIP_ANNOTATIONS:
                contents = _text_of(annotation.get("/Contents"))
                if contents:
                    author = _text_of(annotation.get("/T"))
                    who = f", by {author}" if author else ""
                    comments.append(f"Comment ({subtype.lstrip('/')}{who}): {contents}")
        except Exception:  # one broken annotation must not cost the page
            continue
    return forms, comments


def _page_area(page) -> float:
    try:
        box = page.mediabox
        return abs(float(box.width) * float(box.height))
    except Exception:
        return 612.0 * 792.0


def image_sizes(page) -> list[tuple[int, int]]:
    """(width, height) in pixels of every image XObject the page uses directly."""
    sizes = []
    try:
        xobjects = page.get("/Resources", {}).get_object().get("/XObject", {}).get_object()
        for x in xobjects.values():
            x = x.get_object()
            if x.get("/Subtype") == "/Image":
                sizes.append((int(x.get("/Width", 0)), int(x.get("/Height", 0))))
    except Exception:
        pass
    return sizes


def has_page_sized_image(page) -> bool:
    area = _page_area(page)
    return any(w * h >= PAGE_IMAGE_SHARE * area for w, h in image_sizes(page))


def page_images(page) -> list:
    """The page's page-sized images as PIL images, largest first (what OCR reads on a scan)."""
    area, found = _page_area(page), []
    try:
        for image_file in page.images:
            image = image_file.image
            if image is not None and image.width * image.height >= PAGE_IMAGE_SHARE * area:
                found.append(image)
    except Exception:
        return []
    return sorted(found, key=lambda im: -im.width * im.height)


@functools.cache
def _page_count(path: str, mtime: float) -> int:
    from pypdf import PdfReader

    return len(PdfReader(path).pages)


def pdf_page_count(path) -> int:
    """How many pages a PDF file has (read once per file version): the page names the sample's size from it."""
    from pathlib import Path

    path = Path(path)
    return _page_count(str(path), path.stat().st_mtime)
