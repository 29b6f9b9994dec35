"""A result row's note: English in the report (its JSON, the bench's table) and, read back, codes with
values a page words in its own language (`quantization.rownote.<code>`).

A note is parts joined by "; ", each one of NOTES with its values filled in. `note(...)` writes one,
`parts(text)` reads one back: (code, values) per part, or (None, the part) for words that are none of
these (a results file written elsewhere), which a page shows as they are.
"""

from __future__ import annotations

import re

SEP = "; "
NOTES = {
    "gguf_types": "llama-quantize's {file_type} types: {mix} matrices",
    "bits": "{bits} bits/weight",
    "gguf_speed": (
        "quality of the GGUF blocks, run dequantized in fp32: speed needs llama.cpp "
        "(pip install llama-cpp-python, compiles from source)"
    ),
    "onnx_no_cache": (
        "exported without a KV cache: every decode step recomputes the whole sequence, and prefill includes "
        "the output head at every position"
    ),
    "export_quantize_time": "export + quantize time",
    "export_time": "export time",
    "reduce_range": "7-bit weights (reduce_range): this CPU has no VNNI, where 8-bit u8s8 products saturate",
    "bnb_load": "quantized while loading from the model's folder (load and quantize are one step)",
    "cast": "weights and activations cast",
    "torchao_eager": "eager mode: int8 weights are cast to float per matmul (no fused kernel without torch.compile)",
    "torch_ao": "torch.ao.quantization (deprecated, still in torch)",
}


def _pattern(template: str) -> re.Pattern:
    fields = re.split(r"\{(\w+)\}", template)  # literal, name, literal, name, ..., literal
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(fields))
    return re.compile(f"^{regex}$")


PATTERNS = {code: _pattern(template) for code, template in NOTES.items()}


def register(code: str, template: str) -> None:
    """A note part another topic's variants write (backends.compression): its page words it under
    `quantization.rownote.<code>` like the parts above. A template may not hold the separator."""
    if SEP in template:
        raise ValueError(f"a note part may not contain {SEP!r}: {template!r}")
    if NOTES.get(code, template) != template:
        raise ValueError(f"note code {code!r} is taken")
    NOTES[code] = template
    PATTERNS[code] = _pattern(template)


def note(*codes: str | tuple[str, dict]) -> str:
    """The English note of these parts: a code, or (code, values)."""
    out = []
    for part in codes:
        code, values = (part, {}) if isinstance(part, str) else part
        out.append(NOTES[code].format(**values))
    return SEP.join(out)


def parts(text: str) -> list[tuple[str | None, dict | str]]:
    """A note read back: (code, values) per part; (None, part) for one that is not in NOTES."""
    found = []
    for part in filter(None, (p.strip() for p in (text or "").split(SEP))):
        match = next(((code, m) for code, p in PATTERNS.items() if (m := p.match(part))), None)
        found.append((match[0], match[1].groupdict()) if match else (None, part))
    return found
