"""The pattern filter: regular expressions by category, encoded payloads, and a system prompt leaking.

Patterns were written from the shipped unsafe examples (assets/datasets/trust/unsafe_examples.json)
and narrowed against the benign set (benign.json: "kill a process", "exploit a pinned piece",
"overdose symptoms"...): a pattern asks for an instruction-like phrasing ("make ... a bomb", "write
... ransomware"), not for a risky word alone. The held-out set was never used to write them.

Encoded payloads: a long base64 or hex run that decodes to readable text is flagged (a way to slip
an instruction past a word filter), and the decoded text is run through the same patterns, so the
detail says what it hid. The leak check (output stage) flags an answer that repeats the system prompt.
"""

from __future__ import annotations

import base64
import binascii
import re

from backends.trust.guard_types import FLAGGED, PASSED, CheckResult

MAX_SCAN_CHARS = 20_000  # a huge text is scanned up to here (the page caps questions far below)

# category -> (name, regex); every regex is case-insensitive unless it turns that off itself
PATTERNS: dict[str, tuple[tuple[str, str], ...]] = {
    "weapons": (
        (
            "make a weapon",
            r"\b(?:make|build|assemble|construct|create|cook|synthesi[sz]e)\b[^.?!]{0,40}"
            r"\b(?:bombs?|explosives?|ied|grenades?|nerve (?:gas|agents?)|sarin|ricin|napalm|molotov)\b",
        ),
        ("automatic or untraceable gun", r"\b(?:fully automatic|untraceable|ghost gun)\b"),
        ("undetectable poison", r"\bpoison\b[^.?!]{0,40}\b(?:undetect\w*|can'?t be detected|autopsy|someone|my)\b"),
        (
            "hurt a person",
            r"\b(?:hurt|harm|injure|attack|kill)\b[^.?!]{0,15}\b(?:someone|somebody|people|a person)\b"
            r"(?![^.?!]{0,30}\bhelp\b)",
        ),
        (
            "attack a place",
            r"\b(?:attack|shoot up|bomb)\b[^.?!]{0,25}"
            r"\b(?:schools?|crowds?|crowded|church|mosque|synagogue|concert)\b",
        ),
    ),
    "malware": (
        (
            "write malware",
            r"\b(?:write|create|code|build|make|give me|develop)\b[^.?!]{0,40}"
            r"\b(?:ransomware|keyloggers?|trojans?|rootkits?|botnets?|worms?|spyware|malware|stealers?)\b",
        ),
        ("break into an account", r"\b(?:hack|break|get) into\b"),
        ("launch an attack", r"\b(?:launch|run|start)\b[^.?!]{0,20}\bd?dos\b|\bddos attack against\b"),
        (
            "steal data",
            r"\b(?:steal|steals|dump|exfiltrate)\b[^.?!]{0,40}"
            r"\b(?:passwords?|cookies|credentials|users table|database)\b",
        ),
        (
            "evade antivirus",
            r"\b(?:evade|bypass|hides? from|undetectable by)\b[^.?!]{0,15}\b(?:antivirus|edr|detection)\b",
        ),
        ("not my system", r"\b(?:i don'?t own|without (?:them|the owner|their) knowing|without permission)\b"),
        ("crack a password", r"\bcrack\b[^.?!]{0,30}\bpasswords?\b"),
    ),
    "fraud": (
        ("write phishing", r"\b(?:write|create|draft|make|generate)\b[^.?!]{0,30}\bphishing\b"),
        ("fake documents", r"\bfake (?:ids?|passports?|login pages?|bank|driver'?s licen[cs]e|reviews?)\b"),
        ("scam people", r"\b(?:scam|trick|con)\b[^.?!]{0,40}\b(?:elderly|old people|grandparents|into sending)\b"),
        ("stolen cards", r"\bstolen (?:credit cards?|cards?|identit(?:y|ies)|credentials)\b"),
        ("launder money", r"\blaunder(?:ing)? (?:money|cash)\b|\bmoney laundering\b"),
        ("evade getting caught", r"\bwithout (?:getting|being) caught\b"),
        (
            "impersonate",
            r"\b(?:pretend(?:ing)? to be|impersonat\w+)\b[^.?!]{0,15}"
            r"\b(?:paypal|bank|irs|police|amazon|microsoft|apple)\b",
        ),
    ),
    "self_harm": (
        ("harm myself", r"\b(?:kill|hurt|harm|cut)\s+myself\b|\bself-?harm cuts\b"),
        ("end my life", r"\bend (?:my life|it all)\b|\bwant to die\b|\bsuicide methods?\b"),
        ("how many pills", r"\bhow many (?:pills|tablets)\b[^.?!]{0,40}\b(?:die|end|kill|fatal|lethal)\b"),
        (
            "painless way to die",
            r"\b(?:painless|quickest|easiest|least painful)\b[^.?!]{0,20}"
            r"\b(?:way|method) to (?:die|kill myself|end)\b",
        ),
        ("hide self-harm", r"\bhide\b[^.?!]{0,20}\b(?:self-?harm|cuts|scars)\b"),
        ("starve myself", r"\bstarve myself\b"),
    ),
    "jailbreak": (
        (
            "ignore instructions",
            r"\b(?:ignore|disregard|forget|override)\b[^.?!]{0,30}"
            r"\b(?:instructions|rules|directives|guidelines|policies|restrictions)\b",
        ),
        ("DAN", r"(?-i:\bDAN\b)|\bdo anything now\b"),
        ("special mode", r"\b(?:developer|god|jailbreak|unrestricted|unfiltered|dan) mode\b|\bjailbr(?:oken|eak)\b"),
        (
            "no rules",
            r"\b(?:no|without(?: any)?|zero) (?:content polic(?:y|ies)|rules|restrictions|filters|censorship|"
            r"ethical guidelines|limits)\b",
        ),
        (
            "role without limits",
            r"\b(?:pretend|act as|you are now|from now on)\b[^.?!]{0,40}"
            r"\b(?:unfiltered|unrestricted|amoral|uncensored)\b",
        ),
        ("never refuse", r"\bnever refuses?\b"),
    ),
    "prompt_leak": (
        (
            "reveal the prompt",
            r"\b(?:print|reveal|show|repeat|output|tell me|give me|what (?:is|are|were))\b[^.?!]{0,40}"
            r"\b(?:system (?:prompt|message)|initial prompt|hidden instructions|instructions you were given|"
            r"instructions your developer|your instructions)\b",
        ),
        ("repeat above", r"\brepeat (?:everything|all|the text|the words) above\b"),
        ("verbatim", r"\b(?:verbatim|word for word)\b"),
    ),
}

_COMPILED = {
    category: tuple((name, re.compile(rx, re.IGNORECASE)) for name, rx in rules)
    for category, rules in PATTERNS.items()
}
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{24,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}){12,}\b")
MIN_READABLE = 0.9  # share of printable ASCII in a decoded blob for it to count as hidden text


def matches(text: str) -> list[dict]:
    """Every pattern that matches: {"category", "pattern", "match"}, in PATTERNS order."""
    text = text[:MAX_SCAN_CHARS]
    found = []
    for category, rules in _COMPILED.items():
        for name, rx in rules:
            hit = rx.search(text)
            if hit:
                found.append({"category": category, "pattern": name, "match": hit.group(0)})
    return found


def _readable(raw: bytes) -> str | None:
    if len(raw) < 12:
        return None
    printable = sum(1 for b in raw if 32 <= b < 127 or b in (9, 10, 13))
    return raw.decode("ascii", "replace") if printable / len(raw) >= MIN_READABLE else None


def decoded_payloads(text: str) -> list[dict]:
    """Long base64 / hex runs that decode to readable text: {"encoding", "blob", "decoded"}."""
    text = text[:MAX_SCAN_CHARS]
    found = []
    for hit in _HEX.finditer(text):
        decoded = _readable(bytes.fromhex(hit.group(0)))
        if decoded:
            found.append({"encoding": "hex", "blob": hit.group(0), "decoded": decoded})
    for hit in _BASE64.finditer(text):
        blob = hit.group(0)
        if _HEX.fullmatch(blob):
            continue  # already read as hex
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = _readable(raw)
        if decoded:
            found.append({"encoding": "base64", "blob": blob, "decoded": decoded})
    return found


def pattern_check(text: str) -> CheckResult:
    """The keyword filter: flagged when a pattern matches, in the text or in an encoded payload it holds."""
    found = matches(text)
    payloads = decoded_payloads(text)
    for p in payloads:
        inner = matches(p["decoded"])
        p["inner"] = inner
        found.append({"category": "encoded", "pattern": f"{p['encoding']} payload", "match": p["blob"][:40]})
        found.extend({**m, "pattern": f"{m['pattern']} (inside {p['encoding']})"} for m in inner)
    if not found:
        return CheckResult("patterns", PASSED, 0.0, 1.0, "no pattern matched", {"matches": [], "payloads": []})
    detail = "; ".join(f"{m['category']}: {m['pattern']} ({m['match'][:60]!r})" for m in found)
    return CheckResult("patterns", FLAGGED, 1.0, 1.0, detail, {"matches": found, "payloads": payloads})


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


LEAK_N = 5  # word n-grams compared
LEAK_SHARE = 0.3  # share of the system prompt's n-grams in the answer from which it counts as leaked


def leak_check(output: str, system_prompt: str | None) -> CheckResult:
    """Output stage: the share of the system prompt's word 5-grams that the answer repeats (a shorter
    prompt: the whole prompt as one run of words). Flagged from LEAK_SHARE."""
    if not system_prompt or not _words(system_prompt):
        data = {"shared": [], "no_system": True}
        return CheckResult("leak", PASSED, 0.0, LEAK_SHARE, "no system prompt given", data)
    sys_words, out_words = _words(system_prompt), _words(output[:MAX_SCAN_CHARS])
    n = min(LEAK_N, len(sys_words))
    grams = [tuple(sys_words[i : i + n]) for i in range(len(sys_words) - n + 1)]
    seen = {tuple(out_words[i : i + n]) for i in range(len(out_words) - n + 1)}
    shared = [g for g in grams if g in seen]
    share = len(shared) / len(grams)
    verdict = FLAGGED if share >= LEAK_SHARE else PASSED
    detail = f"{len(shared)} of the system prompt's {len(grams)} word {n}-grams appear in the answer"
    return CheckResult("leak", verdict, share, LEAK_SHARE, detail, {"shared": [" ".join(g) for g in shared]})
