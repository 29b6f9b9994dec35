"""A backend's error in the UI language.

Backends raise `backends.core.coded.CodedError`s (and a few older classes shaped the same: a `code`,
and `values` or `params`) whose English message stays what the API and the reports show; a page
shows `said(exc, "dec.error.")`: the sentence `<prefix><code>` of its locale files filled with the
values, or the English message for an exception without a code or with a code no locale file words
(a newer backend, a message from elsewhere)."""

from __future__ import annotations

from components.i18n import strings, t


def said(exc: BaseException, prefix: str) -> str:
    """`exc` in the UI language when its code has a sentence under `prefix`, else its English text."""
    code = getattr(exc, "code", None)
    values = getattr(exc, "values", None) or getattr(exc, "params", None) or {}
    key = f"{prefix}{code}"
    if code is None or key not in strings("en"):
        return str(exc)
    return t(key, **values)
