"""When does a follow-up question need the conversation to be understood?

Only then is it rewritten (or, when the model cannot rewrite it, searched together with the
previous question). A self-contained follow-up ("What does LoRA train?") is searched as asked:
joining it to the previous question pulled the previous topic's pages to the top.

Needs context: a pronoun or demonstrative that points back ("it", "its", "they", "this",
"that one", Chinese 它/这/那/其), an elliptical start ("and ...", "what about ...", "why?",
Chinese 那...呢), or a question of at most three words.
"""

from __future__ import annotations

import re

_POINTERS = re.compile(
    r"\b(it|its|it's|itself|they|them|their|theirs|this|that|these|those|he|she|his|her|"
    r"the former|the latter|the same|there|then|one)\b",
    re.IGNORECASE,
)
_ELLIPSIS = re.compile(
    r"^\s*(and|or|but|also|so|what about|how about|and what|why|why not|how come|"
    r"what else|anything else|more|same for)\b",
    re.IGNORECASE,
)
_CHINESE = re.compile(r"[它其]|这个|那个|这些|那些|这种|那种|^那|呢[?？]?\s*$|^还有|^为什么[?？]?$")
SHORT_WORDS = 3


def needs_context(question: str) -> bool:
    text = question.strip()
    if not text:
        return False
    if _POINTERS.search(text) or _ELLIPSIS.search(text) or _CHINESE.search(text):
        return True
    words = re.findall(r"\w+", text)
    cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in text)
    return (len(words) <= SHORT_WORDS and cjk == 0) or (cjk and cjk <= 4)
