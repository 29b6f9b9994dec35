"""Cleaning a passage's text: Unicode normalised, hyphenation and spacing repaired, running headers/footers removed."""

from __future__ import annotations

import re
import unicodedata

from backends.rag import pdf_parts
from backends.rag.types import KIND_TEXT, Passage

_HYPHEN_BREAK = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str, keep_replacement: bool = False) -> str:
    """NFKC (ligatures such as 'ﬁ' become 'fi'), words hyphenated across a line break joined
    again, runs of spaces collapsed. NULs become the placeholder □ (page_text resolves them
    first; a NUL here has no font to tell what it was). U+FFFD from a PDF's text layer is
    dropped; keep_replacement keeps it (a text file's undecodable bytes stay visible)."""
    text = unicodedata.normalize("NFKC", text or "").replace("\x00", pdf_parts.PLACEHOLDER)
    if not keep_replacement:
        text = text.replace("\ufffd", "")
    text = _HYPHEN_BREAK.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def meaningful(text: str) -> int:
    """How many letters and digits the text holds (spaces and punctuation alone are no content)."""
    return sum(ch.isalnum() for ch in text)


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
    if sum(p.kind == KIND_TEXT for p in passages) < min_pages:
        return passages, 0

    def edges(text: str) -> list[int]:
        kept = [i for i, line in enumerate(text.splitlines()) if line.strip()]
        return sorted(set(kept[:EDGE_LINES] + kept[-EDGE_LINES:]))

    counts: dict[str, int] = {}
    for passage in (p for p in passages if p.kind == KIND_TEXT):
        lines = passage.text.splitlines()
        for key in {_line_key(lines[i]) for i in edges(passage.text)}:
            counts[key] = counts.get(key, 0) + 1
    running = {key for key, n in counts.items() if n >= max(min_pages, share * len(passages))}
    if not running:
        return passages, 0
    result, removed = [], 0
    for passage in passages:
        if passage.kind != KIND_TEXT:
            result.append(passage)
            continue
        lines = passage.text.splitlines()
        drop = {i for i in edges(passage.text) if _line_key(lines[i]) in running}
        text = "\n".join(line for i, line in enumerate(lines) if i not in drop).strip()
        if not meaningful(text):  # a page's only content is never a header: keep the page whole
            result.append(passage)
            continue
        removed += len(drop)
        result.append(Passage(passage.doc, passage.page, text, passage.kind))
    return result, removed
