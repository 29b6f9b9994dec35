"""Save and load our own format (safetensors + JSON), and export a Hugging Face folder that
transformers loads without remote code: GPT-2 for learned or sinusoidal positions (the sinusoids
become GPT-2's position table), GPT-NeoX (sequential residual, full rotary) for RoPE.

The exported folder is a local model id for the other pages' model pickers.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from backends.core.paths import cache_dir

from .config import GPTConfig
from .data import UNK, CharTokenizer, SubwordTokenizer, tokenizer_from_json
from .model import GPT

WEIGHTS, META = "scratch_gpt.safetensors", "scratch_gpt.json"
FORMAT = 1


def runs_dir() -> Path:
    path = cache_dir() / "scratch_gpt"
    path.mkdir(parents=True, exist_ok=True)
    return path


def safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:64]
    if not cleaned:
        raise ValueError(f"{name!r} cannot be a folder name: use letters, digits, '.', '_' or '-'.")
    return cleaned


def save(model: GPT, tokenizer: CharTokenizer | SubwordTokenizer, folder: Path, extra: dict | None = None) -> Path:
    """Our format: the weights as safetensors (the tied head stored once) and config + characters as JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, str(folder / WEIGHTS))
    meta = {
        "format": FORMAT,
        "config": model.config.to_dict(),
        "tokenizer": json.loads(tokenizer.to_json()),
        **(extra or {}),
    }
    (folder / META).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return folder


def load(folder: Path) -> tuple[GPT, CharTokenizer | SubwordTokenizer, dict]:
    """Read a folder written by save(); ValueError naming what is wrong or missing."""
    folder = Path(folder)
    if not (folder / META).is_file() or not (folder / WEIGHTS).is_file():
        raise ValueError(f"{str(folder)!r} has no {META} and {WEIGHTS}: not a saved scratch GPT.")
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{META} in {str(folder)!r} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{META} in {str(folder)!r} is not format {FORMAT}.")
    config = GPTConfig.from_dict(meta.get("config"))
    tokenizer = tokenizer_from_json(json.dumps(meta.get("tokenizer")))
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"{tokenizer.vocab_size} tokens but the model has a vocabulary of {config.vocab_size}.")
    model = GPT(config)
    missing, unexpected = load_model(model, str(folder / WEIGHTS), strict=False)
    if missing or unexpected:
        raise ValueError(f"Weights do not fit the config: missing {sorted(missing)}, unexpected {sorted(unexpected)}.")
    return model.eval(), tokenizer, meta


def hf_tokenizer(tokenizer: CharTokenizer | SubwordTokenizer, block_size: int):
    """The vocabulary as a transformers fast tokenizer: a BPE with no merges is one token per character;
    a subword tokenizer is its own `tokenizers` object."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    if isinstance(tokenizer, SubwordTokenizer):
        return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tokenizer.raw), model_max_length=block_size)

    backend = Tokenizer(models.BPE(vocab=dict(tokenizer.stoi), merges=[], unk_token=UNK))
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token=UNK, model_max_length=block_size)


def _gpt2(model: GPT):
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.config
    config = GPT2Config(
        vocab_size=c.vocab_size,
        n_positions=c.block_size,
        n_embd=c.n_embd,
        n_layer=c.n_layer,
        n_head=c.n_head,
        n_inner=4 * c.n_embd,
        activation_function="gelu",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        layer_norm_epsilon=1e-5,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
    )
    ours = model.state_dict()
    n = c.n_embd
    state = {"transformer.wte.weight": ours["wte.weight"], "transformer.wpe.weight": model.wpe(c.block_size)}
    for i in range(c.n_layer):
        p, q = f"h.{i}.", f"transformer.h.{i}."
        for norm in ("ln_1", "ln_2"):
            state[q + norm + ".weight"] = ours[p + norm + ".weight"]
            state[q + norm + ".bias"] = ours.get(p + norm + ".bias", torch.zeros(n))
        for part in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
            weight = ours[p + part + ".weight"]
            state[q + part + ".weight"] = weight.t().contiguous()  # GPT-2's Conv1D stores (in, out)
            state[q + part + ".bias"] = ours.get(p + part + ".bias", torch.zeros(weight.shape[0]))
    state["transformer.ln_f.weight"] = ours["ln_f.weight"]
    state["transformer.ln_f.bias"] = ours.get("ln_f.bias", torch.zeros(n))
    hf = GPT2LMHeadModel(config)
    return hf, state


def _neox(model: GPT):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    c = model.config
    config = GPTNeoXConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.n_embd,
        num_hidden_layers=c.n_layer,
        num_attention_heads=c.n_head,
        intermediate_size=4 * c.n_embd,
        hidden_act="gelu",
        max_position_embeddings=c.block_size,
        rotary_pct=1.0,
        rotary_emb_base=c.rope_theta,
        layer_norm_eps=1e-5,
        use_parallel_residual=False,
        attention_bias=True,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
    )
    ours = model.state_dict()
    n, h, d = c.n_embd, c.n_head, c.head_size
    state = {"gpt_neox.embed_in.weight": ours["wte.weight"]}
    for i in range(c.n_layer):
        p, q = f"h.{i}.", f"gpt_neox.layers.{i}."
        pairs = {
            "ln_1": "input_layernorm",
            "ln_2": "post_attention_layernorm",
            "attn.c_proj": "attention.dense",
            "mlp.c_fc": "mlp.dense_h_to_4h",
            "mlp.c_proj": "mlp.dense_4h_to_h",
        }
        for mine, theirs in pairs.items():
            weight = ours[p + mine + ".weight"]
            state[q + theirs + ".weight"] = weight
            state[q + theirs + ".bias"] = ours.get(p + mine + ".bias", torch.zeros(weight.shape[0]))
        # ours: rows [q of every head, k of every head, v of every head]; NeoX: per head [q, k, v]
        weight = ours[p + "attn.c_attn.weight"]
        bias = ours.get(p + "attn.c_attn.bias", torch.zeros(3 * n))
        state[q + "attention.query_key_value.weight"] = weight.view(3, h, d, n).transpose(0, 1).reshape(3 * n, n)
        state[q + "attention.query_key_value.bias"] = bias.view(3, h, d).transpose(0, 1).reshape(3 * n)
    state["gpt_neox.final_layer_norm.weight"] = ours["ln_f.weight"]
    state["gpt_neox.final_layer_norm.bias"] = ours.get("ln_f.bias", torch.zeros(n))
    hf = GPTNeoXForCausalLM(config)
    return hf, state


def to_transformers(model: GPT):
    """The same network as a transformers model (GPT-2 or GPT-NeoX), weights copied in."""
    hf, state = (_neox if model.config.positions == "rope" else _gpt2)(model)
    own = hf.state_dict()
    missing = [k for k in own if k not in state and k != "lm_head.weight" and not k.endswith(".attn.bias")]
    if missing:
        raise RuntimeError(f"No weights for {missing}.")
    with torch.no_grad():
        for key, value in state.items():
            own[key].copy_(value)
    return hf.eval()


def write_folder(folder: Path, write) -> Path:
    """`write(tmp)` fills a temporary folder beside `folder`, which then replaces `folder`: a reader
    sees the old folder or the complete new one, never half of it. Returns `folder`."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        write(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.chmod(0o755)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def export_hf(
    model: GPT, tokenizer: CharTokenizer | SubwordTokenizer, folder: Path, extra: dict | None = None
) -> Path:
    """Write a transformers folder (config.json, model.safetensors, tokenizer files) plus our own files,
    atomically: the folder appears complete or not at all."""

    def write(tmp: Path) -> None:
        to_transformers(model).save_pretrained(tmp, safe_serialization=True)
        hf_tokenizer(tokenizer, model.config.block_size).save_pretrained(tmp)
        save(model, tokenizer, tmp, extra)

    return write_folder(folder, write)
