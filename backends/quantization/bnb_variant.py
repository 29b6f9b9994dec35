"""bitsandbytes LLM.int8() and 4-bit NF4, through transformers' BitsAndBytesConfig: a fresh load of
the model's own safetensors folder (bitsandbytes quantizes while loading), never the cached model.

bitsandbytes 0.50 runs on x86 CPUs with AVX2 as well as on GPUs; whether it does here is probed
once with one small layer.
"""

from __future__ import annotations

import importlib.util
from functools import cache

import torch

from backends.quantization import notes
from backends.quantization import variants as V


@cache
def probe(device: str) -> str | None:
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install bitsandbytes)"
    try:
        import bitsandbytes as bnb

        layer = bnb.nn.Linear8bitLt(64, 64, has_fp16_weights=False).to(device)
        with torch.inference_mode():
            layer(torch.randn(2, 64, device=device))
    except Exception as exc:  # no kernel for this CPU / GPU
        return f"bitsandbytes: {type(exc).__name__}: {exc}"
    return None


def build(mode: str):
    def make(base, device: str, workdir=None):
        reason = probe(device)
        if reason:
            raise V.VariantUnavailable(reason)
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        folder = getattr(base.config, "_name_or_path", None)
        if not folder:
            raise V.VariantUnavailable("the model has no folder to load from again")
        config = (
            BitsAndBytesConfig(load_in_8bit=True)
            if mode == "int8"
            else BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
        )
        model, seconds = V.timed(
            AutoModelForCausalLM.from_pretrained,
            folder,
            quantization_config=config,
            device_map={"": device},
            dtype=torch.float32,
            use_safetensors=True,
            trust_remote_code=False,
            local_files_only=True,
        )
        model.eval().requires_grad_(False)
        return V.torch_built(model, seconds, 0.0, notes.note("bnb_load"))

    return make


SNIPPET = """import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
config = {config}
model = AutoModelForCausalLM.from_pretrained("{hub_id}", quantization_config=config, device_map="auto")
"""

SPECS = (
    V.VariantSpec(
        "bnb-int8",
        "bitsandbytes LLM.int8()",
        "bitsandbytes",
        8,
        build("int8"),
        probe,
        SNIPPET.replace("{config}", "BitsAndBytesConfig(load_in_8bit=True)"),
        int8=True,
        cpu_opt_in=True,
    ),
    V.VariantSpec(
        "bnb-nf4",
        "bitsandbytes NF4",
        "bitsandbytes",
        4.5,
        build("nf4"),
        probe,
        SNIPPET.replace(
            "{config}",
            'BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)',
        ),
        cpu_opt_in=True,
    ),
)
