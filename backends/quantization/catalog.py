"""Every variant the page offers, in table order, and which of them run on a device."""

from __future__ import annotations

from backends.quantization import (
    bnb_variant,
    gguf_variant,
    onnx_variant,
    torch_variants,
    torchao_variants,
)
from backends.quantization.variants import VariantSpec

SPECS: tuple[VariantSpec, ...] = (
    *torch_variants.SPECS,
    *torchao_variants.SPECS,
    *onnx_variant.SPECS,
    *gguf_variant.SPECS,
    *bnb_variant.SPECS,
)
BY_KEY = {s.key: s for s in SPECS}
BASELINE = "fp32"
# Variants other topics add to the same harness (backends.compression: pruning, GPTQ / AutoRound, static
# int8): they run and measure like the formats above; the quantization page's own list stays SPECS.
_EXTRA: dict[str, VariantSpec] = {}


def register(specs) -> None:
    """Add variants to the harness (idempotent: a key registered again is replaced)."""
    for s in specs:
        if s.key in BY_KEY:
            raise ValueError(f"{s.key!r} is a quantization variant already.")
        _EXTRA[s.key] = s


def all_specs() -> tuple[VariantSpec, ...]:
    """The quantization formats in table order, then the registered variants in registration order."""
    return (*SPECS, *_EXTRA.values())


def spec(key: str) -> VariantSpec:
    found = BY_KEY.get(key) or _EXTRA.get(key)
    if found is None:
        known = ", ".join([*BY_KEY, *_EXTRA])
        raise ValueError(f"Unknown variant {key!r}; expected one of {known}.")
    return found


def availability(device: str, every: bool = False) -> dict[str, str | None]:
    """variant key -> None when it runs on `device`, else the reason it does not (`every`: the
    registered variants too)."""
    return {s.key: s.available(device) for s in (all_specs() if every else SPECS)}


def opt_in(device: str) -> tuple[str, ...]:
    """Variants that run on `device` only when picked (bitsandbytes on the CPU: its rows were the slowest
    of the table, ~20 s each): the full table (bench/quantization.py's `all`) leaves them out."""
    return tuple(s.key for s in SPECS if s.cpu_opt_in and device == "cpu")


def snippet(key: str, hub_id: str) -> str:
    return spec(key).snippet.replace("{hub_id}", hub_id)
