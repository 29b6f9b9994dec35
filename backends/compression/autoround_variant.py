"""The table's calibrated 4-bit rows, one weight format (asymmetric int4, a float16 scale and an int4 zero
per 64 input columns, every nn.Linear of the decoder blocks; the embedding and the head stay float):

  rtn-w4g64        round-to-nearest by hand (gptq.rtn_linear: auto-round's iters=0 to the bit, tested)
  gptq-w4g64       GPTQ by hand (gptq.gptq_model), calibrated on 16 x 128 tokens of the held-out text's end
  autoround-w4g64  AutoRound (Intel's auto-round 0.16.1, SignRound): rounding offsets and clipping ranges
                   tuned by signed gradient descent per block, on the same calibration tokens

Why auto-round: it installs here as a pure wheel over this torch 2.14.1 / transformers 5.23 and runs on a
CPU; llm-compressor 0.14 pins torch <= 2.14.0 and transformers <= 5.17, gptqmodel is a source package with
C++ extensions. auto-round 0.16.1 has no GPTQ algorithm of its own (its quantizers are RTN, SignRound and
Adam-round; "gptq" there is only an export format), so the GPTQ row is ours.

Every row holds the dequantized weights in float32: the quality is the format's; speed is not measured
(PyTorch has no CPU kernel for this int4 group format: it would be the float32 model's), as for the GGUF
rows. The size is the format's: 4-bit codes, float16 scales and 4-bit zeros for the quantized matrices,
the other tensors as the model holds them (float32).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import time

import torch

from backends import quantization as q
from backends.compression import gptq
from backends.compression.calibration import calibration_ids

CALIB_TOKENS = 2048  # 16 x 128 on SmolLM2; 32 x 64 on a GPT with 64 positions
# (1,024 tokens fit a 1536-input down_proj too closely: fewer vectors than inputs, H is rank-deficient)
ITERS = 10  # AutoRound's tuning steps per block (its default is 200; 0 is plain RTN)
# Its default rate 1/iters (0.1 at 10 steps) found no step better than plain rounding on SmolLM2's block 0;
# 0.02 lowered that block's output loss by 57% and block 1's by 62% in the same 10 steps (measured here).
LR = 0.02
HOW = {
    "rtn": "round-to-nearest",
    "gptq": "GPTQ by hand",
    "autoround": "AutoRound, {iters} steps per block at rate {lr}",
    "autoround_rtn": "auto-round RTN",
}
for _code, _text in HOW.items():
    q.register_note(f"fake_int4_{_code}", "int{bits} g{group} asymmetric (" + _text + ")")
q.register_note("fake_int4_fp32", "weights dequantized to fp32: quality of the format")
q.register_note("no_int4_kernel", "no CPU int4 kernel for it, so speed is not measured")


def calibration_for(model: torch.nn.Module) -> torch.Tensor:
    """The calibration batch of `model`: CALIB_TOKENS from the held-out text's end, sequences of 128
    tokens or the model's context when shorter, tokenized by the model's own tokenizer (its folder)."""
    tokenizer = _tokenizer(str(model.name_or_path))
    context = getattr(model.config, "max_position_embeddings", None) or 128
    seq_len = min(128, int(context))
    return calibration_ids(tokenizer, CALIB_TOKENS // seq_len, seq_len)


@functools.lru_cache(maxsize=4)
def _tokenizer(folder: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def format_bytes(model: torch.nn.Module, names: list[str], bits: int = gptq.BITS, group: int = gptq.GROUP) -> int:
    """Bytes of the model in this format: each quantized matrix as packed `bits`-bit codes plus a float16
    scale and a `bits`-bit zero per group; every other tensor (tied ones once) as held."""
    quantized = {f"{n}.weight" for n in names}
    seen, total = set(), 0
    for name, p in model.named_parameters():
        if p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        if name in quantized:
            groups = p.numel() // group
            total += (p.numel() * bits + groups * (16 + bits) + 7) // 8
        else:
            total += p.numel() * p.element_size()
    return total


def decode_bytes(model: torch.nn.Module, disk: int) -> int:
    """Weight bytes one decoded token reads: all of them, the input embedding as one row (on top when the
    head is tied to it and reads the whole matrix)."""
    table = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    row = table.shape[1] * table.element_size()
    tied = head is not None and head.weight.data_ptr() == table.data_ptr()
    return disk + row if tied else disk - table.numel() * table.element_size() + row


def weight_error(base: torch.nn.Module, model: torch.nn.Module, names: list[str]) -> float:
    """||W_q - W|| / ||W|| over the quantized matrices."""
    before, after = dict(base.named_modules()), dict(model.named_modules())
    err2 = norm2 = 0.0
    for n in names:
        w = before[n].weight.detach().double()
        err2 += float(((after[n].weight.detach().double() - w) ** 2).sum())
        norm2 += float((w**2).sum())
    return (err2 / norm2) ** 0.5


def fake_quant_built(
    base, model, quantize_s: float, load_s: float, how: str, details: dict, values: dict | None = None
) -> q.Built:
    """`how`: a key of HOW (the rounding), with its `values`."""
    names = gptq.quantized_names(model)
    disk = format_bytes(model, names)
    head = (f"fake_int4_{how}", {"bits": gptq.BITS, "group": gptq.GROUP, **(values or {})})
    note = q.row_note(head, "fake_int4_fp32", "no_int4_kernel")
    return q.Built(
        q.TorchRunner(model, speed_note=note, fast_fp32=True),
        disk,
        disk,
        quantize_s,
        load_s,
        note,
        model,
        measures_speed=False,
        details={"format": f"int{gptq.BITS} asym g{gptq.GROUP}", "layers": len(names), **details},
        decode_bytes=decode_bytes(model, disk),
        weight_error=weight_error(base, model, names),
    )


def on_cpu(device: str) -> str | None:
    return None if device == "cpu" else "these rows run on the CPU (the calibrated quantizers here are CPU code)"


def build_rtn(base, device: str, workdir=None) -> q.Built:
    model, load_s = q.timed(_copy, base)
    started = time.perf_counter()
    with torch.no_grad():
        for name in gptq.quantized_names(model):
            layer = model.get_submodule(name)
            layer.weight.data.copy_(gptq.rtn_linear(layer.weight.data))
    return fake_quant_built(base, model, time.perf_counter() - started, load_s, "rtn", {})


def build_gptq(base, device: str, workdir=None) -> q.Built:
    ids = calibration_for(base)
    model, stats = gptq.gptq_model(base, ids)  # works on its own copy
    details = {"calibration": list(ids.shape), "hessian_s": stats["hessian_s"], "gptq_s": stats["gptq_s"]}
    quantize_s = stats["seconds"] - stats["copy_s"]  # calibration passes, Hessians and column loops
    return fake_quant_built(base, model, quantize_s, stats["copy_s"], "gptq", details)


def autoround_available(device: str) -> str | None:
    if importlib.util.find_spec("auto_round") is None:
        return "auto-round is not installed (pip install auto-round==0.16.1)"
    return on_cpu(device)


def build_autoround(base, device: str, workdir=None, iters: int = ITERS, lr: float = LR) -> q.Built:
    if autoround_available(device):
        raise q.VariantUnavailable(autoround_available(device))
    from auto_round import AutoRound

    logging.getLogger("autoround").setLevel(logging.ERROR)  # not its advice on passing arguments
    ids = calibration_for(base)
    model, load_s = q.timed(_copy, base)
    started = time.perf_counter()
    rounder = AutoRound(
        model,
        _tokenizer(str(base.name_or_path)),
        bits=gptq.BITS,
        group_size=gptq.GROUP,
        sym=False,
        iters=iters,
        lr=lr,
        nsamples=ids.shape[0],
        seqlen=ids.shape[1],
        batch_size=min(8, ids.shape[0]),
        dataset=[ids[i : i + 1] for i in range(ids.shape[0])],
        device_map="cpu",
        amp=False,  # keep float32 (on a CPU with bf16 it would cast the model to bfloat16)
        low_cpu_mem_usage=False,  # no offload folder in the working directory
        enable_torch_compile=False,  # compiling costs more than it saves at these few steps
        seed=42,
    )
    model, _ = rounder.quantize()
    quantize_s = time.perf_counter() - started
    how, values = ("autoround", {"iters": iters, "lr": lr}) if iters else ("autoround_rtn", {})
    details = {"iters": iters, "lr": lr, "calibration": list(ids.shape)}
    return fake_quant_built(base, model, quantize_s, load_s, how, details, values)


def _copy(base):
    import copy

    return copy.deepcopy(base).eval()


_SNIPPET_LOAD = """import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from backends import compression as cp
model = AutoModelForCausalLM.from_pretrained("{hub_id}", dtype=torch.float32)
tokenizer = AutoTokenizer.from_pretrained("{hub_id}")
calib = cp.calibration_ids(tokenizer, 16, 128)  # 16 x 128 tokens from the held-out text's end
"""
SNIPPET_AUTOROUND = (
    _SNIPPET_LOAD
    + """from auto_round import AutoRound  # pip install auto-round==0.16.1 (Apache-2.0)
ar = AutoRound(model, tokenizer, bits=4, group_size=64, sym=False, iters={iters}, lr={lr},
               nsamples=16, seqlen=128, dataset=[calib[i:i + 1] for i in range(16)],
               device_map="cpu", amp=False, enable_torch_compile=False)
model, _ = ar.quantize()  # weights now hold the dequantized int4 values
"""
)
_RTN_LINE = "# round-to-nearest: auto-round with iters=0 (the row rounds by hand: the same bits, tested)\n"
SNIPPET_RTN = SNIPPET_AUTOROUND.replace("iters={iters}, lr={lr}", "iters=0")
SNIPPET_RTN = SNIPPET_RTN.replace("from auto_round", _RTN_LINE + "from auto_round")
SNIPPET_GPTQ = (
    _SNIPPET_LOAD
    + """# GPTQ by hand (backends/compression/gptq.py): Hessian 2/N X^T X per layer, column-by-column rounding
# with error feedback through the Cholesky factor of H^-1, block after block on the quantized prefix
model, stats = cp.gptq_model(model, calib, bits=4, group=64, damp=0.1)
# The same algorithm in a library (not run here: llm-compressor 0.14 needs torch <= 2.14.0):
# from llmcompressor import oneshot; from llmcompressor.modifiers.quantization import GPTQModifier
# weights = {"num_bits": 4, "type": "int", "symmetric": False, "strategy": "group", "group_size": 64}
# groups = {"g0": {"targets": ["Linear"], "weights": weights}}
# recipe = GPTQModifier(ignore=["lm_head"], config_groups=groups, dampening_frac=0.1)
# oneshot(model=model, dataset=..., recipe=recipe, num_calibration_samples=16, max_seq_length=128)
"""
)

SPECS = (
    q.VariantSpec(
        "rtn-w4g64",
        "RTN int4 g64",
        "gptq",
        gptq.BITS + (16 + gptq.BITS) / gptq.GROUP,
        build_rtn,
        on_cpu,
        SNIPPET_RTN,
    ),
    q.VariantSpec(
        "gptq-w4g64",
        "GPTQ int4 g64 (by hand)",
        "gptq",
        gptq.BITS + (16 + gptq.BITS) / gptq.GROUP,
        build_gptq,
        on_cpu,
        SNIPPET_GPTQ,
    ),
    q.VariantSpec(
        "autoround-w4g64",
        "AutoRound int4 g64 (auto-round)",
        "gptq",
        gptq.BITS + (16 + gptq.BITS) / gptq.GROUP,
        build_autoround,
        autoround_available,
        SNIPPET_AUTOROUND.replace("{iters}", str(ITERS)).replace("{lr}", str(LR)),
    ),
)
