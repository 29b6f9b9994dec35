"""torchao (0.18) weight quantization of every nn.Linear: int8 weight-only, int8 dynamic activation +
int8 weight, and int4 weight-only. Config names follow the installed torchao (they changed often).

On the CPU in eager mode torchao's int8 linear casts the int8 weight back to float for each matmul,
so it saves memory but not time; torch.compile would fuse that cast (not used here: minutes of
compilation on a small CPU). int4 weight-only needs a packed kernel that this torch/torchao pair
lacks on the CPU; the reason torchao gives is shown.
"""

from __future__ import annotations

import importlib.util
from functools import cache

import torch

from backends.quantization import notes
from backends.quantization import variants as V
from backends.quantization.torch_variants import torch_copy


def configs() -> dict:
    from torchao.quantization import (
        Int4WeightOnlyConfig,
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
    )

    return {
        "torchao-int8-wo": Int8WeightOnlyConfig,
        "torchao-int8-dyn": Int8DynamicActivationInt8WeightConfig,
        "torchao-int4-wo": lambda: Int4WeightOnlyConfig(group_size=128),
    }


@cache
def probe(key: str, device: str) -> str | None:
    """Quantize and run one small Linear once per process: None when it works, else torchao's reason."""
    if importlib.util.find_spec("torchao") is None:
        return "torchao is not installed (pip install torchao)"
    try:
        from torchao.quantization import quantize_

        layer = torch.nn.Sequential(torch.nn.Linear(256, 256, bias=False)).to(device)
        quantize_(layer, configs()[key]())
        with torch.inference_mode():
            layer(torch.randn(2, 256, device=device))
    except Exception as exc:  # any failure here means "not on this machine", with torchao's own words
        return f"torchao: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    return None


def build(key: str):
    def make(base, device: str, workdir=None):
        reason = probe(key, device)
        if reason:
            raise V.VariantUnavailable(reason)
        from torchao.quantization import quantize_

        model, load_s = torch_copy(base)
        _, quantize_s = V.timed(quantize_, model, configs()[key]())
        return V.torch_built(model, quantize_s, load_s, notes.note("torchao_eager"))

    return make


SNIPPET = """import torch
from transformers import AutoModelForCausalLM
from torchao.quantization import quantize_, {config}
model = AutoModelForCausalLM.from_pretrained("{hub_id}", dtype=torch.float32)
quantize_(model, {config}({args}))  # every nn.Linear
"""

SPECS = (
    V.VariantSpec(
        "torchao-int8-wo",
        "torchao int8 weight-only",
        "torchao",
        8,
        build("torchao-int8-wo"),
        lambda d: probe("torchao-int8-wo", d),
        SNIPPET.replace("{config}", "Int8WeightOnlyConfig").replace("{args}", ""),
        int8=True,
    ),
    V.VariantSpec(
        "torchao-int8-dyn",
        "torchao int8 dynamic act. + int8 weight",
        "torchao",
        8,
        build("torchao-int8-dyn"),
        lambda d: probe("torchao-int8-dyn", d),
        SNIPPET.replace("{config}", "Int8DynamicActivationInt8WeightConfig").replace("{args}", ""),
        int8=True,
        cpu_opt_in=True,  # no fast CPU kernel here: 0.3x fp32's decode and ~30 s a row (issue 33)
    ),
    V.VariantSpec(
        "torchao-int4-wo",
        "torchao int4 weight-only (group 128)",
        "torchao",
        4.125,
        build("torchao-int4-wo"),
        lambda d: probe("torchao-int4-wo", d),
        SNIPPET.replace("{config}", "Int4WeightOnlyConfig").replace("{args}", "group_size=128"),
    ),
)
