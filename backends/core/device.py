"""Device discovery: which accelerators exist and what "auto" means here."""

from __future__ import annotations

from functools import lru_cache

import torch

CHOICES = ("auto", "cuda", "mps", "cpu")


@lru_cache(maxsize=1)
def available_devices() -> tuple[str, ...]:
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    found.append("cpu")
    return tuple(found)


def resolve_device(choice: str = "auto") -> str:
    """Map a picker choice to a real device; an unavailable choice is an error, not a silent fallback."""
    if choice == "auto":
        return available_devices()[0]
    if choice not in CHOICES:
        raise ValueError(f"Unknown device {choice!r}; expected one of {', '.join(CHOICES)}.")
    if choice not in available_devices():
        raise ValueError(
            f"Device {choice!r} is not available on this machine; available: {', '.join(available_devices())}."
        )
    return choice


def device_memory_bytes(device: str) -> int:
    """Total memory of a device, used to size the cache's default budget."""
    if device == "cuda":
        return torch.cuda.get_device_properties(0).total_memory
    import psutil

    return psutil.virtual_memory().total
