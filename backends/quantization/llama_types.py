"""Which GGUF type `llama-quantize` gives each tensor of a model, for the file types the page offers.

llama.cpp does not write every matrix in the type named on the command line. Its
`src/llama-quant.cpp` (read at commit 007dbbf, `llama_tensor_get_type_impl` and
`tensor_type_fallback`) picks a type per tensor from the tensor's role, its layer and its shape.
This module walks the same rules, for the non-MoE, non-Falcon models the page quantizes, and the
file types it offers (Q8_0, Q5_1, Q5_0, Q4_0, Q4_K_M):

- only 2-D tensors whose name ends in `weight` are quantized; norms, biases and learned position
  embeddings stay float32 (as converted);
- the output matrix, or the token embedding when it is tied to the output (SmolLM2), gets Q8_0 when
  its rows are not a multiple of the file type's block, else Q6_K unless the file type is Q8_0;
- Q4_K_M (default Q4_K): the attention-value matrix (or fused QKV) and the MLP down-projection of
  the "use more bits" layers get Q6_K: the first and last eighth of the layers and every third one
  between (`use_more_bits`);
- a K-quant on rows that are not a multiple of 256 falls back: Q4_K -> Q5_0, Q6_K -> Q8_0.

For SmolLM2-135M (30 layers, rows of 576 except the down-projections' 1536) that gives: Q4_0 and
Q5_1 files with a Q8_0 embedding; a Q4_K_M file whose embedding and 14 attention-value matrices are
Q8_0, 14 down-projections Q6_K, 16 down-projections Q4_K and the other 150 matrices Q5_0. The
tests walk these rules by hand for SmolLM2's tensor names.

Tensor names: the loaded transformers model's parameter names map to GGUF's (`gguf_name`), for
Llama-style models (SmolLM2), GPT-NeoX and GPT-2 (the GPTs exported by the scratch page).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FILE_TYPES = {"Q8_0": "Q8_0", "Q5_1": "Q5_1", "Q5_0": "Q5_0", "Q4_0": "Q4_0", "Q4_K_M": "Q4_K"}  # -> default type
BLOCK = {"Q8_0": 32, "Q5_1": 32, "Q5_0": 32, "Q4_0": 32, "Q4_K": 256, "Q6_K": 256}
FALLBACK = {"Q4_K": "Q5_0", "Q6_K": "Q8_0"}
# GGUF bytes per block of BLOCK weights (ggml's type sizes)
BLOCK_BYTES = {"Q8_0": 34, "Q5_1": 24, "Q5_0": 22, "Q4_0": 18, "Q4_K": 144, "Q6_K": 210}

_ROLES = (  # (pattern on the transformers name, GGUF role); {i} is the layer
    (r"(?:^|\.)layers\.(\d+)\.self_attn\.q_proj\.weight$", "attn_q"),
    (r"(?:^|\.)layers\.(\d+)\.self_attn\.k_proj\.weight$", "attn_k"),
    (r"(?:^|\.)layers\.(\d+)\.self_attn\.v_proj\.weight$", "attn_v"),
    (r"(?:^|\.)layers\.(\d+)\.self_attn\.o_proj\.weight$", "attn_output"),
    (r"(?:^|\.)layers\.(\d+)\.mlp\.gate_proj\.weight$", "ffn_gate"),
    (r"(?:^|\.)layers\.(\d+)\.mlp\.up_proj\.weight$", "ffn_up"),
    (r"(?:^|\.)layers\.(\d+)\.mlp\.down_proj\.weight$", "ffn_down"),
    (r"(?:^|\.)layers\.(\d+)\.attention\.query_key_value\.weight$", "attn_qkv"),  # GPT-NeoX
    (r"(?:^|\.)layers\.(\d+)\.attention\.dense\.weight$", "attn_output"),
    (r"(?:^|\.)layers\.(\d+)\.mlp\.dense_h_to_4h\.weight$", "ffn_up"),
    (r"(?:^|\.)layers\.(\d+)\.mlp\.dense_4h_to_h\.weight$", "ffn_down"),
    (r"(?:^|\.)h\.(\d+)\.attn\.c_attn\.weight$", "attn_qkv"),  # GPT-2
    (r"(?:^|\.)h\.(\d+)\.attn\.c_proj\.weight$", "attn_output"),
    (r"(?:^|\.)h\.(\d+)\.mlp\.c_fc\.weight$", "ffn_up"),
    (r"(?:^|\.)h\.(\d+)\.mlp\.c_proj\.weight$", "ffn_down"),
)
_GLOBAL = {
    "embed_tokens.weight": "token_embd",
    "embed_in.weight": "token_embd",
    "wte.weight": "token_embd",
    "lm_head.weight": "output",
    "embed_out.weight": "output",
    "wpe.weight": "position_embd",
}


@dataclass(frozen=True)
class Tensor:
    name: str  # the transformers parameter name
    cols: int  # GGUF's ne[0]: the length of the rows quantized in blocks (a Linear's input size)
    ndim: int


def gguf_name(name: str) -> str | None:
    """`blk.<i>.<role>.weight`, `token_embd.weight`, `output.weight`... or None for another tensor."""
    for pattern, role in _ROLES:
        m = re.search(pattern, name)
        if m:
            return f"blk.{m.group(1)}.{role}.weight"
    for suffix, role in _GLOBAL.items():
        if name == suffix or name.endswith("." + suffix):
            return f"{role}.weight"
    return None


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


def _layer(gname: str) -> int:
    return int(gname.split(".")[1])


def tensor_types(tensors: list[Tensor], file_type: str) -> dict[str, str]:
    """transformers name -> GGUF type ("F32" for a tensor kept as it is) for a `llama-quantize` run."""
    if file_type not in FILE_TYPES:
        raise ValueError(f"Unknown GGUF file type {file_type!r}; expected one of {', '.join(FILE_TYPES)}.")
    default = FILE_TYPES[file_type]
    names = {t.name: gguf_name(t.name) for t in tensors}
    tied = not any(g == "output.weight" for g in names.values())
    n_wv = sum(1 for g in names.values() if g and g.endswith((".attn_v.weight", ".attn_qkv.weight")))
    n_down = sum(1 for g in names.values() if g and g.endswith(".ffn_down.weight"))
    out: dict[str, str] = {}
    for t in tensors:
        g = names[t.name]
        quantize = t.ndim == 2 and t.name.endswith("weight") and "norm" not in t.name
        quantize &= g != "position_embd.weight"
        if not quantize:
            out[t.name] = "F32"
            continue
        new = default
        if g == "output.weight" or (tied and g == "token_embd.weight"):
            if t.cols % BLOCK[new]:
                new = "Q8_0"
            elif new != "Q8_0":
                new = "Q6_K"
        elif file_type == "Q4_K_M" and g and g.endswith((".attn_v.weight", ".attn_qkv.weight", ".ffn_down.weight")):
            # the file's i-th value (or down) matrix is layer i's: convert_hf_to_gguf writes the layers in order
            n = n_down if g.endswith(".ffn_down.weight") else n_wv
            if use_more_bits(_layer(g), n):
                new = "Q6_K"
        if t.cols % BLOCK[new]:
            new = FALLBACK.get(new, "F16")
            if t.cols % BLOCK.get(new, 1):
                new = "F16"
        out[t.name] = new
    return out


def model_tensors(model) -> list[Tensor]:
    """The model's tensors, tied ones once (the first name: the token embedding), in GGUF's terms."""
    from transformers.pytorch_utils import Conv1D

    transposed = {
        f"{mod_name}.weight" for mod_name, mod in model.named_modules() if isinstance(mod, Conv1D)
    }  # GPT-2's Conv1D stores (in, out): its rows in GGUF are the columns here
    seen, tensors = set(), []
    for name, p in model.named_parameters(remove_duplicate=False):
        if p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        cols = p.shape[0] if name in transposed else p.shape[-1]
        tensors.append(Tensor(name, int(cols), p.ndim))
    return tensors


def type_bytes(kind: str, numel: int) -> int:
    if kind in BLOCK_BYTES:
        return numel // BLOCK[kind] * BLOCK_BYTES[kind]
    return numel * {"F32": 4, "F16": 2}[kind]
