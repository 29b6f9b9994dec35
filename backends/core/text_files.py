"""Text out of uploaded bytes, for every page that takes a text file."""

from __future__ import annotations


def decode_upload(data: bytes) -> tuple[str, str | None]:
    """Text of an uploaded file. Invalid UTF-8 bytes become U+FFFD and the warning says how many."""
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(f"decode_upload expects bytes, got {type(data).__name__}.")
    data = bytes(data)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "The file is UTF-16; it was converted to text as UTF-16."
        except UnicodeDecodeError:
            pass
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 byte-order mark is not part of the text
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        first = exc.start
    # surrogateescape maps each invalid byte to one lone surrogate: an exact count
    escaped = data.decode("utf-8", errors="surrogateescape")
    bad = sum(1 for c in escaped if "\udc80" <= c <= "\udcff")
    text = data.decode("utf-8", errors="replace")
    return text, (
        f"The file is not valid UTF-8: {bad} invalid byte{'s' if bad != 1 else ''} (the first at byte {first}) "
        "were replaced by U+FFFD (�)."
    )
