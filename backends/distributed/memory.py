"""What one rank really holds: bytes of the local parameters, gradients and optimizer state (a
DTensor counts only its local shard), and the bytes autograd saves for the backward pass
(activations), counted with torch.autograd.graph.saved_tensors_hooks.

Activations are counted once per storage (q, k and v are views of one matmul output) and
parameters are left out (a linear layer saves its weight for the backward pass, but the weight is
already counted as a parameter; under FSDP it is the all-gathered copy, freed again after use).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


def local_tensor(t: torch.Tensor) -> torch.Tensor:
    """The part of `t` this rank holds: a DTensor's local shard, else the tensor itself."""
    to_local = getattr(t, "to_local", None)
    return to_local() if callable(to_local) else t


def tensor_bytes(t: torch.Tensor | None) -> int:
    if t is None:
        return 0
    local = local_tensor(t)
    return local.numel() * local.element_size()


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, int]:
    """{"params", "grads", "optimizer"}: bytes of this rank's local tensors (a tied weight counts once)."""
    params = list(model.parameters())
    out = {"params": sum(tensor_bytes(p) for p in params), "grads": sum(tensor_bytes(p.grad) for p in params)}
    opt = 0
    if optimizer is not None:
        for state in optimizer.state.values():
            opt += sum(tensor_bytes(v) for v in state.values() if isinstance(v, torch.Tensor))
    out["optimizer"] = opt
    return out


def _is_parameter(t: torch.Tensor) -> bool:
    while t is not None:
        if isinstance(t, nn.Parameter):
            return True
        t = t._base
    return False


class SavedTensors:
    """Bytes saved for backward inside `counting()`: `total`, and `by_shape` for a closer look."""

    def __init__(self):
        self.storages: dict[int, int] = {}
        self.by_shape: list[tuple[tuple[int, ...], str, int]] = []

    @property
    def total(self) -> int:
        return sum(self.storages.values())

    def pack(self, t: torch.Tensor):
        local = local_tensor(t)
        if not _is_parameter(t) and local.device.type != "meta":
            storage = local.untyped_storage()
            key = storage.data_ptr()
            if key not in self.storages:
                self.storages[key] = storage.nbytes()
                self.by_shape.append((tuple(local.shape), str(local.dtype), storage.nbytes()))
        return t


@contextmanager
def counting_saved():
    """with counting_saved() as saved: loss = model(x, y)  ->  saved.total bytes kept for backward."""
    saved = SavedTensors()
    with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
        yield saved
