"""Text files in any common encoding, decoded with the encoding named in the report.

UTF-8 (with or without a byte-order mark) and UTF-16 with a BOM are read as such. Anything
else goes to charset-normalizer, which picks the encoding whose decoding looks most like
real text (GB18030/GBK Chinese, Big5, Shift-JIS, Windows-1252...). Only when nothing fits
are undecodable bytes replaced by U+FFFD (kept in the text, so the loss stays visible),
and the note says how many.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the codec used, e.g. "utf-8", "gb18030"
    note: str | None  # what the report should say (None: plain UTF-8)
    replaced: int = 0  # bytes that could not be decoded (each became U+FFFD)


def _bad_utf8_bytes(data: bytes) -> int:
    escaped = data.decode("utf-8", errors="surrogateescape")
    return sum(1 for c in escaped if "\udc80" <= c <= "\udcff")


# When several single-byte code pages decode a short text equally well (every byte valid, no
# language evidence), the most widely used one wins rather than the first in charset-normalizer's list.
_PREFERRED = ("cp1252", "latin_1", "iso8859_15", "cp1250", "cp1251")


def _pick(matches):
    if not matches:
        return None
    best = matches.best()
    ties = [m for m in matches if abs(m.chaos - best.chaos) < 0.01 and abs(m.coherence - best.coherence) < 0.01]
    for name in _PREFERRED:
        for match in ties:
            if match.encoding == name:
                return match
    return best


def decode_text(data: bytes) -> Decoded:
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"decode_text expects bytes, got {type(data).__name__}.")
    data = bytes(data)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return Decoded(
                data.decode("utf-16"), "utf-16", "decoded as UTF-16 (it starts with a UTF-16 byte-order mark)"
            )
        except UnicodeDecodeError:
            pass
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 byte-order mark is not part of the text
    try:
        return Decoded(data.decode("utf-8"), "utf-8", None)
    except UnicodeDecodeError as exc:
        first = exc.start
    from charset_normalizer import from_bytes

    best = _pick(from_bytes(data))
    if best is not None and best.encoding.replace("_", "-") not in ("utf-8", "ascii"):
        try:
            text = data.decode(best.encoding)
        except (UnicodeDecodeError, LookupError):
            text = None
        if text is not None:
            name = best.encoding.replace("_", "-").upper()
            return Decoded(
                text,
                best.encoding,
                f"not UTF-8 (first bad byte at {first}); detected and decoded as "
                f"{name}{' (' + best.language + ')' if best.language not in ('', 'Unknown') else ''}",
            )
    bad = _bad_utf8_bytes(data)
    return Decoded(
        data.decode("utf-8", errors="replace"),
        "utf-8",
        (
            f"not valid UTF-8 and no other encoding fits: {bad} undecodable byte{'s' if bad != 1 else ''} "
            f"(the first at byte {first}) {'are' if bad != 1 else 'is'} shown as U+FFFD (\ufffd) in the text"
        ),
        bad,
    )
