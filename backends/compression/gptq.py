"""GPTQ by hand (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
Transformers", Algorithm 1) against round-to-nearest, both in one weight format: asymmetric int4 (any bits)
with one float16 scale and one integer zero point per group of `group` input columns of a row, the format
of auto-round's asymmetric int and of the GPTQ checkpoints (`rtn_linear` equals auto-round's `iters=0`
to the bit, tests/backends/test_compression_gptq.py).

One layer, `gptq_linear(weight, H)`: H = 2/N * sum x x^T over the layer's N calibration input vectors
(`hessian`), dampened by `damp` x its mean diagonal (DAMP says why 0.1), inverted through Cholesky, and
the upper Cholesky factor U of H^-1 drives the column loop: column j is rounded, its error divided by U[j, j] is spread
over the columns not yet quantized (the Optimal Brain Surgeon update), in lazy blocks of `block`
columns (the updates of a block reach the later columns in one matrix product). A group's scale and
zero come from its columns as updated when the group starts. `act_order` quantizes the columns of
largest H[j, j] first, with each group's scale and zero fixed beforehand from the original weights
(the reference code's `static_groups`, so the file format keeps contiguous groups).

The model, `gptq_model(model, calib_ids)`: on a copy, decoder block by block; each block's calibration
inputs come out of the blocks before it already quantized (as GPTQ does), one pass collects the Hessian
of every nn.Linear in the block (layers reading the same input, q/k/v and gate/up, share one H and are
quantized as one stacked matrix: GPTQ treats each row on its own), the block is quantized, a second pass
gives the next block's inputs.
The embedding and the output head stay float. The result holds the dequantized weights in float32
("fake-quant"): its quality is the format's, but PyTorch has no int4 group-wise kernel on CPU for this
format, so the table's row reports no speed (`measures_speed=False`, like the GGUF rows) and its size is
the format's (`format_bytes`: packed codes, float16 scales, packed zeros, the rest as held).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

BITS, GROUP = 4, 64  # 64 divides SmolLM2's 576 and 1536 and the demo GPT's 256 and 1024 (128 does not divide 576)
# Dampening: H + DAMP x mean(diag H) x I. The reference code's 0.01 overfits SmolLM2's down_proj (1536 inputs)
# to 1,024-2,048 calibration tokens: layer 0's output error on held-out text was 1.04x / 0.94x RTN's; 0.1 gave
# 0.83x / 0.77x (on the calibration tokens 0.41x -> 0.48x / 0.49x -> 0.54x: less fitted, better elsewhere).
DAMP = 0.1
BLOCK = 128  # lazy-batch width (a multiple of the group, see `gptq_linear`)


def group_params(w: torch.Tensor, bits: int = BITS) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric min/max parameters of each row of `w` (rows, group columns): the range widened to
    hold 0, scale = (max - min) / (2^bits - 1) rounded to float16, zero = round(-min / scale)."""
    maxq = 2**bits - 1
    wmin = w.min(dim=1).values.clamp(max=0)
    wmax = w.max(dim=1).values.clamp(min=0)
    scale = ((wmax - wmin) / maxq).to(torch.float16).to(w.dtype).clamp(min=1e-5)
    zero = torch.round(-wmin / scale)
    return scale, zero


def fake_quant(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int = BITS) -> torch.Tensor:
    """Round `w` (rows, k) onto the grid of per-row `scale` and `zero` and back to floats."""
    scale, zero = scale.reshape(-1, 1), zero.reshape(-1, 1)
    q = torch.clamp(torch.round(w / scale) + zero, 0, 2**bits - 1)
    return scale * (q - zero)


def rtn_linear(weight: torch.Tensor, bits: int = BITS, group: int = GROUP) -> torch.Tensor:
    """Round-to-nearest in the same format: every group rounded on its own min/max grid."""
    rows, cols = weight.shape
    check_group(cols, group)
    w = weight.detach().reshape(-1, group)
    scale, zero = group_params(w, bits)
    return fake_quant(w, scale, zero, bits).reshape(rows, cols)


def check_group(cols: int, group: int) -> None:
    if group < 1 or cols % group:
        raise ValueError(f"group size {group} does not divide the {cols} input columns.")


def hessian(inputs: torch.Tensor) -> torch.Tensor:
    """H = 2/N X^T X over the N input vectors (rows of `inputs`, any leading shape): the Hessian of the
    layer's squared output error ||W X - Q X||^2 / N with respect to one row of the weights."""
    x = inputs.reshape(-1, inputs.shape[-1]).double()
    return (2.0 / x.shape[0]) * (x.T @ x)


@dataclass
class LayerResult:
    weight: torch.Tensor  # the dequantized weights (rows, cols), in the input's dtype
    losses: torch.Tensor  # per column: sum over rows of (w - q)^2 / U[j, j]^2 / 2 (the reference code's Losses)
    seconds: float


def gptq_linear(
    weight: torch.Tensor,
    H: torch.Tensor,
    bits: int = BITS,
    group: int = GROUP,
    damp: float = DAMP,
    block: int = BLOCK,
    act_order: bool = False,
    dtype: torch.dtype = torch.float32,
) -> LayerResult:
    """GPTQ on one weight matrix (rows = outputs, cols = inputs) with its Hessian H (cols x cols)."""
    started = time.perf_counter()
    cols = weight.shape[1]
    check_group(cols, group)
    block = max(group, block // group * group)  # a group never straddles two lazy blocks
    with one_thread():
        W = weight.detach().to(dtype).clone()
        H = H.detach().to(dtype).clone()
        dead = torch.diag(H) == 0  # inputs that never fire: nothing to compensate with
        H[dead, dead] = 1
        W[:, dead] = 0
        static = None
        perm = torch.arange(cols)
        if act_order:
            static = [group_params(W[:, g : g + group], bits) for g in range(0, cols, group)]
            perm = torch.argsort(torch.diag(H), descending=True)
            W, H = W[:, perm], H[perm][:, perm]
        H += damp * torch.mean(torch.diag(H)) * torch.eye(cols, dtype=dtype)
        Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
        Q, losses = _column_loop(W.T.contiguous(), Hinv, bits, group, block, static, perm)
        if act_order:
            inverse = torch.argsort(perm)
            Q, losses = Q[:, inverse], losses[inverse]
    return LayerResult(Q.to(weight.dtype), losses, time.perf_counter() - started)


def _column_loop(Wt, Hinv, bits, group, block, static, perm) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1's loop on Wt = W^T (one contiguous row per column of W), updated in place; Hinv is the
    upper Cholesky factor of H^-1. Returns (Q, losses) in W's layout."""
    cols, maxq = Wt.shape[0], 2**bits - 1
    Qt, losses = torch.empty_like(Wt), torch.empty(cols, dtype=Wt.dtype)
    scale = zero = None
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        W1, Hinv1 = Wt[i1:i2].clone(), Hinv[i1:i2, i1:i2]
        Err1 = torch.empty_like(W1)
        for i in range(i2 - i1):
            col = i1 + i
            if static is not None:
                scale, zero = static[int(perm[col]) // group]
            elif col % group == 0:
                scale, zero = group_params(W1[i : i + group].T, bits)
            w = W1[i]
            q = (torch.clamp(torch.round(w / scale) + zero, 0, maxq) - zero) * scale
            Qt[col] = q
            torch.div(w - q, Hinv1[i, i], out=Err1[i])
            W1[i + 1 :].addr_(Hinv1[i, i + 1 :], Err1[i], alpha=-1)  # the OBS update of the later columns
        losses[i1:i2] = (Err1**2).sum(1) / 2
        Wt[i2:] -= Hinv[i1:i2, i2:].T @ Err1
    return Qt.T, losses


@contextmanager
def one_thread():
    """GPTQ's column loop is thousands of small tensor operations and its factorizations are small: on one
    thread they run without the pool's hand-offs. Measured on two busy cores, a 576 x 576 Cholesky inverse
    took 0.016 s on one thread and 2 s on two. Restores the count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def output_error(weight: torch.Tensor, quantized: torch.Tensor, inputs: torch.Tensor) -> float:
    """||X W^T - X Q^T||_F / ||X W^T||_F over the calibration inputs: the layer's relative output error."""
    x = inputs.reshape(-1, inputs.shape[-1]).double()
    ref = x @ weight.detach().double().T
    return float(torch.linalg.norm(ref - x @ quantized.detach().double().T) / torch.linalg.norm(ref))


# --- the whole model ---


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's stack of decoder blocks: the ModuleList of config.num_hidden_layers blocks."""
    n = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"no list of {n} decoder blocks in {type(model).__name__}.")


def block_linears(layer: nn.Module) -> dict[str, nn.Linear]:
    return {name: m for name, m in layer.named_modules() if isinstance(m, nn.Linear)}


def quantized_names(model: nn.Module) -> list[str]:
    """Full names of the linear layers the calibrated rows quantize (every nn.Linear in a decoder block)."""
    layers = decoder_layers(model)
    index = {id(layer): i for i, layer in enumerate(layers)}
    prefix = next(name for name, m in model.named_modules() if m is layers)
    return [f"{prefix}.{index[id(layer)]}.{n}" for layer in layers for n in block_linears(layer)]


class Caught(Exception):
    """Raised by a hook to end a forward pass once it has what it needs."""


@torch.no_grad()
def layer_inputs(model: nn.Module, ids: torch.Tensor) -> tuple[torch.Tensor, list[dict]]:
    """(the first block's input hidden states, each block's keyword arguments) for `ids`: one float pass
    with hooks. The keyword arguments (mask, rotary position embeddings) do not depend on the weights;
    they are taken per block because some models give blocks different masks (sliding windows)."""
    layers = decoder_layers(model)
    first: list[torch.Tensor] = []
    kwargs: list[dict] = [{} for _ in layers]

    def grab(i):
        def hook(module, args, kw):
            if i == 0:
                first.append(args[0] if args else kw["hidden_states"])
            kwargs[i] = {k: v for k, v in kw.items() if k != "hidden_states"}
            if i == len(layers) - 1:
                raise Caught

        return hook

    handles = [layer.register_forward_pre_hook(grab(i), with_kwargs=True) for i, layer in enumerate(layers)]
    try:
        model(input_ids=ids.to(next(model.parameters()).device), use_cache=False)
    except Caught:
        pass
    finally:
        for h in handles:
            h.remove()
    return first[0], kwargs


def run_block(layer: nn.Module, x: torch.Tensor, kwargs: dict) -> torch.Tensor:
    out = layer(x, **kwargs)
    return out[0] if isinstance(out, tuple) else out


@torch.no_grad()
def gptq_model(
    model: nn.Module,
    calib_ids: torch.Tensor,
    bits: int = BITS,
    group: int = GROUP,
    damp: float = DAMP,
    act_order: bool = False,
    on_block: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    layer_errors: bool = False,
) -> tuple[nn.Module, dict]:
    """A deep copy of `model` with every decoder block's linear layers GPTQ-quantized (dequantized weights),
    and what it took: {"seconds", "copy_s", "hessian_s" (the passes that collect H), "gptq_s" (the column
    loops), "layers"}. `calib_ids` (n_seqs, seq_len).
    `layer_errors`: "layers" maps each layer's name to the relative output error of GPTQ and of RTN on
    that layer's calibration inputs (`hessian_error`: two H-sized products per layer, which on SmolLM2
    take longer than GPTQ itself; off by default)."""
    started = time.perf_counter()
    model = copy.deepcopy(model).eval()
    copy_s = time.perf_counter() - started
    layers = decoder_layers(model)
    x, kwargs = layer_inputs(model, calib_ids)
    hessian_s = gptq_s = 0.0
    errors: dict[str, dict[str, float]] = {}
    prefix = next(name for name, m in model.named_modules() if m is layers)
    for i, layer in enumerate(layers):
        if should_stop is not None and should_stop():
            raise InterruptedError("stopped")
        t0 = time.perf_counter()
        shared = shared_inputs(layer, x, kwargs[i])
        hessian_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for members, H in shared:
            weights = [m.weight.data for _, m in members]
            result = gptq_linear(torch.cat(weights), H, bits, group, damp, act_order=act_order)
            for (name, m), q in zip(members, result.weight.split([w.shape[0] for w in weights]), strict=True):
                if layer_errors:
                    rtn = rtn_linear(m.weight.data, bits, group)
                    errors[f"{prefix}.{i}.{name}"] = {
                        "gptq": hessian_error(m.weight.data, q, H),
                        "rtn": hessian_error(m.weight.data, rtn, H),
                    }
                m.weight.data.copy_(q)
        gptq_s += time.perf_counter() - t0
        x = run_block(layer, x, kwargs[i])
        if on_block is not None:
            on_block(i + 1, len(layers))
    stats = {
        "seconds": time.perf_counter() - started,
        "copy_s": copy_s,
        "hessian_s": hessian_s,
        "gptq_s": gptq_s,
        "layers": errors,
    }
    return model, stats


@torch.no_grad()
def shared_inputs(layer: nn.Module, x: torch.Tensor, kwargs: dict) -> list[tuple[list, torch.Tensor]]:
    """One pass of the block: its linear layers grouped by the input tensor they read (q, k, v read the
    same one; so do gate and up), each group with H = 2/N X^T X of that input. GPTQ treats every row of W
    on its own with the same H, so a group is quantized as one matrix (its weights stacked): the same
    result as one by one, with one column loop instead of three."""
    linears = block_linears(layer)
    seen: dict[str, torch.Tensor] = {}  # kept until the pass ends, so no two inputs share an address

    def grab(name):
        def hook(module, args):
            seen[name] = args[0]

        return hook

    handles = [m.register_forward_pre_hook(grab(n)) for n, m in linears.items()]
    try:
        run_block(layer, x, kwargs)
    finally:
        for h in handles:
            h.remove()
    groups: list[tuple[list, torch.Tensor]] = []
    owners: dict[int, int] = {}
    for name, m in linears.items():
        inp = seen[name]
        if id(inp) not in owners:
            a = inp.reshape(-1, inp.shape[-1]).float()
            owners[id(inp)] = len(groups)
            groups.append(([], (2.0 / a.shape[0]) * (a.T @ a)))
        groups[owners[id(inp)]][0].append((name, m))
    return groups


def hessian_error(weight: torch.Tensor, quantized: torch.Tensor, H: torch.Tensor) -> float:
    """Relative output error from the Hessian alone: sqrt(tr(D H D^T) / tr(W H W^T)), D = W - Q; equal to
    `output_error` on the inputs H was summed from (H is 2/N X^T X, the factor cancels)."""
    d = (weight.double() - quantized.double()).T
    w, H = weight.double().T, H.double()
    return float(((d * (H @ d)).sum() / (w * (H @ w)).sum()).clamp(min=0).sqrt())
