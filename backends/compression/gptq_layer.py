"""GPTQ against round-to-nearest on one linear layer of a real model, for the Compression page's GPTQ tab:
the layer's calibration inputs from a private copy of the model, the Hessian's diagonal, each input
column's weight error under both, and the layer's output error on the calibration inputs and on held-out
text GPTQ never saw (gptq.py holds the algorithm)."""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from backends.compression.gptq import (
    BITS,
    GROUP,
    Caught,
    gptq_linear,
    hessian,
    output_error,
    quantized_names,
    rtn_linear,
)


@torch.no_grad()
def inputs_of(model: nn.Module, name: str, ids: torch.Tensor) -> torch.Tensor:
    """The (tokens, in_features) inputs of linear layer `name` over `ids`, from a private copy of `model`
    (a hook on a model the cache shares would see every session's passes); the pass stops there."""
    model = copy.deepcopy(model).eval()
    layer = model.get_submodule(name)
    seen: list[torch.Tensor] = []

    def hook(module, args):
        seen.append(args[0].detach().reshape(-1, module.in_features))
        raise Caught

    handle = layer.register_forward_pre_hook(hook)
    try:
        model(input_ids=ids.to(layer.weight.device), use_cache=False)
    except Caught:
        pass
    finally:
        handle.remove()
    return seen[0].float().cpu()


@torch.no_grad()
def compare_layer(
    model: nn.Module,
    calib_ids: torch.Tensor,
    name: str,
    bits: int = BITS,
    group: int = GROUP,
    act_order: bool = False,
    held_out_ids: torch.Tensor | None = None,
) -> dict:
    """GPTQ against RTN on the linear layer `name` of `model` (not modified), with its calibration inputs
    from the float model: the Hessian's diagonal (each input's mean square x 2), each column's weight error
    ||W[:, j] - Q[:, j]||^2 for both, and the layer's relative output error ||XW^T - XQ^T|| / ||XW^T|| for
    both on the calibration inputs (and on `held_out_ids`' inputs, which GPTQ never saw)."""
    if not isinstance(model.get_submodule(name), nn.Linear):
        raise ValueError(f"{name} is not an nn.Linear.")
    x = inputs_of(model, name, calib_ids)
    w = model.get_submodule(name).weight.detach().float().cpu()
    H = hessian(x)
    t0 = time.perf_counter()
    rtn = rtn_linear(w, bits, group)
    rtn_s = time.perf_counter() - t0
    result = gptq_linear(w, H, bits, group, act_order=act_order)
    out = {
        "name": name,
        "shape": tuple(w.shape),
        "tokens": x.shape[0],
        "bits": bits,
        "group": group,
        "act_order": act_order,
        "hessian_diag": torch.diag(H).float().tolist(),
        "col_error_rtn": ((w - rtn) ** 2).sum(0).tolist(),
        "col_error_gptq": ((w - result.weight) ** 2).sum(0).tolist(),
        "out_error_rtn": output_error(w, rtn, x),
        "out_error_gptq": output_error(w, result.weight, x),
        "weight_error_rtn": float(torch.linalg.norm(w - rtn) / torch.linalg.norm(w)),
        "weight_error_gptq": float(torch.linalg.norm(w - result.weight) / torch.linalg.norm(w)),
        "rtn_s": rtn_s,
        "gptq_s": result.seconds,
    }
    if held_out_ids is not None:
        y = inputs_of(model, name, held_out_ids)
        out["held_out_tokens"] = y.shape[0]
        out["held_out_error_rtn"] = output_error(w, rtn, y)
        out["held_out_error_gptq"] = output_error(w, result.weight, y)
    return out


def compare_layer_job(
    ctx, model_name: str, block: int, suffix: str, bits: int = BITS, group: int = GROUP, act_order: bool = False
) -> dict:
    """Background job (backends/core/jobs.py) for the page: `compare_layer` on `<blocks>.<block>.<suffix>`
    of a cached model ("smollm2-135m-instruct", a folder, or quantization.DEMO_GPT_NAME, trained first if
    needed), calibrated on `calibration_for`'s tokens, checked on the first 1,024 scored tokens."""
    from backends import quantization as q
    from backends.compression.autoround_variant import calibration_for
    from backends.core.scheduler import shared_scheduler
    from backends.models.cache import shared_cache

    ctx.report(0.0, "loading the model", kind="setup")
    if model_name == q.DEMO_GPT_NAME:
        model_name = str(q.train_demo_gpt())
    loaded = shared_cache().get(model_name)
    names = quantized_names(loaded.model)
    name = next((n for n in names if n.endswith(f".{block}.{suffix}")), None)
    if name is None:
        raise ValueError(f"no layer {suffix!r} in block {block}: the model has {', '.join(names[:8])}, ...")
    ids = calibration_for(loaded.model)
    held_out = q.token_slice(loaded.tokenizer, ids.numel()).view(ids.shape)
    ctx.report(0.2, "quantizing", kind="setup", layer=name)
    with shared_scheduler().turn("compression.gptq"):
        result = compare_layer(loaded.model, ids, name, bits, group, act_order, held_out)
    result["model"] = model_name
    ctx.report(1.0, "done", kind="done")
    return result
