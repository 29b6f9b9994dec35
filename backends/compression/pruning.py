"""Unstructured pruning of a causal LM's attention and MLP linear layers: magnitude and Wanda.

Both zero a share `sparsity` of every weight row (each output neuron loses the same number of inputs,
the comparison group of Wanda, Sun et al. 2023, "A Simple and Effective Pruning Approach for LLMs"):
- magnitude: the entries of smallest |W_ij| in each row;
- Wanda: the entries of smallest |W_ij| * ||X_j||_2, where X_j is input channel j of that layer over
  every calibration token (a channel that carries large activations keeps its weights).

The layers are every nn.Linear inside the decoder blocks: SmolLM2's q/k/v/o_proj, gate/up/down_proj,
the demo GPT's (GPT-NeoX) fused query_key_value, dense, dense_h_to_4h, dense_4h_to_h. The embeddings
and the output head stay dense. The norms come from one forward pass of the dense copy over the
calibration batches (calibration.py: the held-out text's end, never the scored slice); Wanda's
reference code recomputes each block's inputs after pruning the blocks before it, which this one-pass
version leaves out. The pruned matrices stay dense float32: same bytes, same speed (pruning_run.py
measures it).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch

from backends.core.scheduler import shared_scheduler

METHODS = ("magnitude", "wanda")
LABEL = "compression"


def _output_head(model: torch.nn.Module) -> torch.nn.Module | None:
    return model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None


def block_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """name -> nn.Linear of every attention and MLP projection (the output head and embeddings left out)."""
    head = _output_head(model)
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not head and ".layers." in f".{name}"
    }


def prunable_params(model: torch.nn.Module) -> int:
    """Weights and biases of the attention and MLP linear layers."""
    return sum(sum(p.numel() for p in m.parameters()) for m in block_linears(model).values())


@dataclass
class InputStats:
    """Per-input-channel sums over the calibration tokens of each layer's input x: sum of x_j^2
    (||X_j||^2, Wanda's norm), sum of x_j (its mean, for structured pruning's bias compensation)."""

    sq: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> float64 (in_features,)
    sum: dict[str, torch.Tensor] = field(default_factory=dict)
    tokens: int = 0  # tokens seen by every layer

    def mean(self, name: str) -> torch.Tensor:
        return self.sum[name] / max(self.tokens, 1)

    def centred(self, name: str) -> torch.Tensor:
        """sum_t (x_j(t) - mean_j)^2: how much channel j fluctuates around its mean."""
        return (self.sq[name] - self.sum[name] ** 2 / max(self.tokens, 1)).clamp(min=0)


@torch.no_grad()
def input_stats(model: torch.nn.Module, calib_ids: torch.Tensor, names=None, should_stop=lambda: False) -> InputStats:
    """InputStats of the linear layers `names` (default every block linear) over the calibration batches.

    Forward pre-hooks for one pass, one sequence per scheduler turn; the model must be a private copy
    (hooks on a cached model would be seen by every session)."""
    layers = block_linears(model)
    chosen = {n: layers[n] for n in (names or layers)}
    stats = InputStats(
        {n: torch.zeros(m.in_features, dtype=torch.float64) for n, m in chosen.items()},
        {n: torch.zeros(m.in_features, dtype=torch.float64) for n, m in chosen.items()},
    )

    def hook(name):
        def pre(module, args):
            x = args[0].detach().reshape(-1, module.in_features).double()
            stats.sq[name] += x.pow(2).sum(dim=0).cpu()
            stats.sum[name] += x.sum(dim=0).cpu()

        return pre

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in chosen.items()]
    device = next(model.parameters()).device
    try:
        for row in calib_ids:
            if should_stop():
                break
            with shared_scheduler().turn(LABEL, exclusive=True):
                model(input_ids=row[None].to(device), use_cache=False)
            stats.tokens += row.numel()
    finally:
        for h in handles:
            h.remove()
    return stats


def input_sq_norms(model: torch.nn.Module, calib_ids: torch.Tensor, names=None) -> dict[str, torch.Tensor]:
    """name -> sum over the calibration tokens of x_j^2 (||X_j||_2 is its square root); hooks on `model`."""
    return input_stats(model, calib_ids, names).sq


def wanda_scores(weight: torch.Tensor, sq_norm: torch.Tensor) -> torch.Tensor:
    """|W_ij| * ||X_j||_2 (out, in): `sq_norm` is the per-input-channel sum of squares."""
    return weight.detach().abs().float() * sq_norm.sqrt().to(weight.device, torch.float32)[None, :]


def row_pruned_count(in_features: int, sparsity: float) -> int:
    """Entries each row loses: the nearest whole number to sparsity x in_features."""
    return round(sparsity * in_features)


@torch.no_grad()
def prune_rows_(weight: torch.Tensor, scores: torch.Tensor, sparsity: float) -> int:
    """Zero the `row_pruned_count` lowest-scored entries of each row of `weight` in place; returns
    how many were zeroed. Among entries tied at the threshold, which go is unspecified (torch.topk)."""
    k = row_pruned_count(weight.shape[1], sparsity)
    if k == 0:
        return 0
    idx = torch.topk(scores, k, dim=1, largest=False, sorted=False).indices
    weight.scatter_(1, idx, 0.0)
    return k * weight.shape[0]


@dataclass(frozen=True)
class PruneReport:
    method: str
    requested: float  # the sparsity asked for
    achieved: float  # zero weights / weights of the pruned matrices (zeros that were there before count too)
    zeroed: int  # entries set to zero by this pruning
    weights: int  # weights of the pruned matrices (biases not pruned)
    layers: int
    seconds: float


def check_sparsity(sparsity: float) -> float:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity = {sparsity!r}: use a share in [0, 1), e.g. 0.5 for half the weights.")
    return float(sparsity)


@torch.no_grad()
def prune_unstructured_(
    model: torch.nn.Module, method: str, sparsity: float, sq_norms: dict[str, torch.Tensor] | None = None
) -> PruneReport:
    """Prune `model` in place (a private copy): magnitude, or Wanda with `sq_norms` from input_sq_norms."""
    check_sparsity(sparsity)
    if method not in METHODS:
        raise ValueError(f"method = {method!r}: use one of {', '.join(METHODS)}.")
    if method == "wanda" and sq_norms is None:
        raise ValueError("Wanda needs the calibration inputs' norms (input_sq_norms).")
    started = time.perf_counter()
    zeroed = weights = 0
    layers = block_linears(model)
    for name, module in layers.items():
        w = module.weight
        scores = w.abs() if method == "magnitude" else wanda_scores(w, sq_norms[name])
        zeroed += prune_rows_(w.data, scores, sparsity)
        weights += w.numel()
    zeros = sum(int((m.weight == 0).sum()) for m in layers.values())
    return PruneReport(
        method, sparsity, zeros / max(weights, 1), zeroed, weights, len(layers), time.perf_counter() - started
    )


def sparsity_of(model: torch.nn.Module) -> float:
    """Share of zero weights in the attention and MLP matrices."""
    layers = block_linears(model).values()
    return sum(int((m.weight == 0).sum()) for m in layers) / max(sum(m.weight.numel() for m in layers), 1)


def pruned_copy(
    base: torch.nn.Module, method: str, sparsity: float, sq_norms: dict[str, torch.Tensor] | None = None
) -> tuple[torch.nn.Module, PruneReport]:
    """A deep copy of `base` pruned; `base` (maybe the shared cached model) is never touched."""
    model = copy.deepcopy(base)
    return model, prune_unstructured_(model, method, sparsity, sq_norms)


def calibration_stats(base: torch.nn.Module, calib_ids: torch.Tensor, should_stop=lambda: False) -> InputStats:
    """InputStats of every block linear, measured on a private copy (hooks never go on the cached model)."""
    model = copy.deepcopy(base)
    try:
        return input_stats(model, calib_ids, should_stop=should_stop)
    finally:
        del model
