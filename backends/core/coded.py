"""Errors a page can word in its own language.

A backend raises them with an English message (what the API, the JSON reports and the benchmarks
show, unchanged) plus a `code` naming the sentence and the `values` that fill it; a page looks the
code up among its own strings (components/backend_text.py) and shows the English text for a code it
does not know. Backends stay free of Streamlit and of the UI's languages.

    raise PromptError(f"The prompt is empty ({text!r}) ...", "empty", text=repr(text))
"""

from __future__ import annotations


class CodedError(Exception):
    """An exception with `code` (None: no sentence of its own, show the message) and `values`."""

    def __init__(self, message: str, code: str | None = None, **values):
        super().__init__(message)
        self.code = code
        self.values = values
