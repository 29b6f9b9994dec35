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


def spec(key: str) -> VariantSpec:
    try:
        return BY_KEY[key]
    except KeyError:
        raise ValueError(f"Unknown variant {key!r}; expected one of {', '.join(BY_KEY)}.") from None


def availability(device: str) -> dict[str, str | None]:
    """variant key -> None when it runs on `device`, else the reason it does not."""
    return {s.key: s.available(device) for s in SPECS}


def snippet(key: str, hub_id: str) -> str:
    return spec(key).snippet.replace("{hub_id}", hub_id)
