"""The three pruning rows of the comparable table (the quantization harness, `quantization.register`):
magnitude and Wanda at 50% unstructured sparsity, structured at 30% (saved and loaded back by path).
Each builds on its own copy of the table's model; Wanda and the structured importance calibrate on
calibration.py's batches, tokenized by the model folder's own tokenizer."""

from __future__ import annotations

import copy
import functools
import tempfile
import time

from backends import quantization as q
from backends.compression import pruning as P
from backends.compression import structured as S
from backends.compression.pruning_run import calibration_set


@functools.cache
def tokenizer_of(folder: str):
    """The tokenizer of a model folder: a variant's build gets the model only, whose config names its folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def _stats_of(model) -> P.InputStats:
    """Calibration input statistics of every block linear of `model` (a private copy: hooks go on it)."""
    tok = tokenizer_of(str(model.config._name_or_path))
    return P.input_stats(model, calibration_set(model, tok))


for _method in P.METHODS:
    q.register_note(
        f"pruned_zeros_{_method}", "{share} of the attention and MLP weights zeroed (" + _method + ", per row)"
    )
q.register_note("stored_dense", "stored dense: same bytes, same dense kernels")
q.register_note(
    "pruned_structured",
    "{share} of the attention and MLP parameters removed, leaving {heads} query / {kv} KV heads and "
    "{channels} MLP channels per layer",
)
q.register_note("reloaded_by_path", "saved and loaded back by path")


def build_unstructured(method: str, sparsity: float):
    def build(base, device: str, workdir=None):
        model, load_s = q.timed(copy.deepcopy, base)
        started = time.perf_counter()
        report = P.prune_unstructured_(model, method, sparsity, _stats_of(model).sq if method == "wanda" else None)
        note = q.row_note((f"pruned_zeros_{method}", {"share": f"{report.achieved:.1%}"}), "stored_dense")
        return q.torch_built(model, time.perf_counter() - started, load_s, note)

    return build


def build_structured(sparsity: float):
    def build(base, device: str, workdir=None):
        model, copy_s = q.timed(copy.deepcopy, base)
        started = time.perf_counter()
        report = S.prune_structured_(model, sparsity, _stats_of(model))
        prune_s = time.perf_counter() - started
        folder = S.save(
            model, f"{workdir or tempfile.mkdtemp(prefix='llmpg-prune-')}/structured-{round(100 * sparsity)}"
        )
        del model
        reloaded, load_s = q.timed(S.load, folder)
        heads, kv = report.heads
        values = {"share": f"{report.achieved:.1%}", "heads": heads, "kv": kv, "channels": report.intermediate}
        note = q.row_note(("pruned_structured", values), "reloaded_by_path")
        return q.torch_built(reloaded.to(device), prune_s, copy_s + load_s, note)

    return build


def always(device: str) -> str | None:
    return None


SNIPPET_UNSTRUCTURED = """import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from backends import compression as cp
model = AutoModelForCausalLM.from_pretrained("{hub_id}", dtype=torch.float32)
tokenizer = AutoTokenizer.from_pretrained("{hub_id}")
norms = cp.input_sq_norms(model, cp.calibration_ids(tokenizer, 8, 128))  # sum of x_j^2 per input channel
for name, layer in cp.block_linears(model).items():  # q/k/v/o, gate/up/down: not embeddings, not lm_head
    w = layer.weight.data
    score = w.abs() * norms[name].sqrt()  # Wanda: |W_ij| * ||X_j||_2
    drop = score.argsort(dim=1)[:, : w.shape[1] // 2]  # 50% of each output row
    w.scatter_(1, drop, 0.0)
"""
SNIPPET_MAGNITUDE = """import torch
from transformers import AutoModelForCausalLM
from backends import compression as cp
model = AutoModelForCausalLM.from_pretrained("{hub_id}", dtype=torch.float32)
for name, layer in cp.block_linears(model).items():  # q/k/v/o, gate/up/down: not embeddings, not lm_head
    w = layer.weight.data
    drop = w.abs().argsort(dim=1)[:, : w.shape[1] // 2]  # the smallest |w|: 50% of each output row
    w.scatter_(1, drop, 0.0)
"""
SNIPPET_STRUCTURED = """import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from backends import compression as cp
model = AutoModelForCausalLM.from_pretrained("{hub_id}", dtype=torch.float32)
tokenizer = AutoTokenizer.from_pretrained("{hub_id}")
stats = cp.input_stats(model, cp.calibration_ids(tokenizer, 8, 128))  # sums of x_j and x_j^2 per channel
report = cp.prune_structured_(model, 0.3, stats)  # heads and MLP channels sliced out, biases, config edited
model.save_pretrained("pruned-30")
model = AutoModelForCausalLM.from_pretrained("pruned-30")  # a smaller model, loaded by path
"""

SPECS = (
    q.VariantSpec(
        "prune-magnitude-50",
        "Magnitude pruning 50%",
        "pruning",
        32,
        build_unstructured("magnitude", 0.5),
        always,
        SNIPPET_MAGNITUDE,
    ),
    q.VariantSpec(
        "prune-wanda-50",
        "Wanda pruning 50%",
        "pruning",
        32,
        build_unstructured("wanda", 0.5),
        always,
        SNIPPET_UNSTRUCTURED,
    ),
    q.VariantSpec(
        "prune-structured-30",
        "Structured pruning 30% (heads + MLP channels)",
        "pruning",
        32,
        build_structured(0.3),
        always,
        SNIPPET_STRUCTURED,
    ),
)

q.register(SPECS)  # the table (and bench/compression.py) find them by key once backends.compression is imported
