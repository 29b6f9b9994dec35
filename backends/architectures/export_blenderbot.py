"""The couplet seq2seq as a transformers folder: `AutoModelForSeq2SeqLM.from_pretrained(folder)` loads
it and computes the same logits, `generate()` decodes it, `AutoTokenizer` gives the same ids.

Which architecture: BART is post-norm (norm after each residual add) with learned positions offset
by 2 and a LayerNorm on the embeddings; mBART is pre-norm but keeps that embedding LayerNorm. Ours
is pre-norm with no embedding norm, a final LayerNorm after the encoder and after the decoder, and
unscaled embeddings: that is exactly Blenderbot (`BlenderbotForConditionalGeneration`, BART's code
with mBART's pre-norm layers, positions without offset, `scale_embedding=False`). Its attention keeps
q, k and v as three matrices, so our fused c_attn (and c_kv) are split on the way out.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from backends.core.paths import cache_dir
from backends.scratch_gpt import Seq2Seq, write_folder

from .couplets import BOS, BOS_ID, EOS, EOS_ID, PAD, PAD_ID, UNK, UNK_ID, Vocab

OURS = "seq2seq.json"


def export_dir(name: str = "seq2seq-couplets") -> Path:
    return cache_dir() / "architectures" / name


def hf_config(model: Seq2Seq):
    from transformers import BlenderbotConfig

    c = model.config
    return BlenderbotConfig(
        vocab_size=c.vocab_size,
        max_position_embeddings=c.block_size,
        d_model=c.n_embd,
        encoder_layers=c.n_layer,
        decoder_layers=c.n_layer,
        encoder_attention_heads=c.n_head,
        decoder_attention_heads=c.n_head,
        encoder_ffn_dim=4 * c.n_embd,
        decoder_ffn_dim=4 * c.n_embd,
        activation_function="gelu",  # the exact erf GELU, as our MLP
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        scale_embedding=False,
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=BOS_ID,
        forced_eos_token_id=None,  # Blenderbot's defaults would force EOS at the length limit
        encoder_no_repeat_ngram_size=0,  # and forbid repeating the input's 3-grams
        tie_word_embeddings=True,
    )


def hf_state(model: Seq2Seq) -> dict[str, torch.Tensor]:
    """Our weights under Blenderbot's names."""
    ours, c = model.state_dict(), model.config
    n = c.n_embd

    def linear(src: str, dst: str, state: dict) -> None:
        weight = ours[src + ".weight"]
        state[dst + ".weight"] = weight
        state[dst + ".bias"] = ours.get(src + ".bias", torch.zeros(weight.shape[0]))

    def norm(src: str, dst: str, state: dict) -> None:
        state[dst + ".weight"] = ours[src + ".weight"]
        state[dst + ".bias"] = ours.get(src + ".bias", torch.zeros(n))

    def split(src: str, dst: str, names: tuple[str, ...], state: dict) -> None:
        weights = ours[src + ".weight"].split(n, dim=0)
        biases = ours.get(src + ".bias", torch.zeros(len(names) * n)).split(n)
        for name, w, b in zip(names, weights, biases):
            state[f"{dst}.{name}.weight"], state[f"{dst}.{name}.bias"] = w, b

    state = {"model.shared.weight": ours["wte.weight"], "final_logits_bias": ours["logits_bias"][None, :]}
    for side in ("encoder", "decoder"):
        short = "enc" if side == "encoder" else "dec"
        state[f"model.{side}.embed_positions.weight"] = ours[f"{short}_pos.table.weight"]
        norm(f"{short}_ln", f"model.{side}.layer_norm", state)
        for i in range(c.n_layer):
            p, q = f"{side}.{i}.", f"model.{side}.layers.{i}."
            norm(p + "ln_1", q + "self_attn_layer_norm", state)
            split(p + "attn.c_attn", q + "self_attn", ("q_proj", "k_proj", "v_proj"), state)
            linear(p + "attn.c_proj", q + "self_attn.out_proj", state)
            norm(p + "ln_2", q + "final_layer_norm", state)
            linear(p + "mlp.c_fc", q + "fc1", state)
            linear(p + "mlp.c_proj", q + "fc2", state)
            if side == "decoder":
                norm(p + "ln_cross", q + "encoder_attn_layer_norm", state)
                linear(p + "cross.c_q", q + "encoder_attn.q_proj", state)
                split(p + "cross.c_kv", q + "encoder_attn", ("k_proj", "v_proj"), state)
                linear(p + "cross.c_proj", q + "encoder_attn.out_proj", state)
    return state


def to_transformers(model: Seq2Seq):
    """A BlenderbotForConditionalGeneration holding our weights (eval mode)."""
    from transformers import BlenderbotForConditionalGeneration

    hf = BlenderbotForConditionalGeneration(hf_config(model))
    state, own = hf_state(model), hf.state_dict()
    tied = {"lm_head.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"}
    missing = [k for k in own if k not in state and k not in tied and k != "final_logits_bias"]
    if missing:
        raise RuntimeError(f"No weights for {missing}.")
    with torch.no_grad():
        for key, value in state.items():
            own[key].copy_(value)
    hf.generation_config.update(
        decoder_start_token_id=BOS_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
        forced_eos_token_id=None, no_repeat_ngram_size=0, encoder_no_repeat_ngram_size=0, num_beams=1,
        suppress_tokens=[PAD_ID, BOS_ID, UNK_ID],  # as our decoding: these are never generated
    )  # fmt: skip
    return hf.eval()


def hf_tokenizer(vocab: Vocab, block_size: int):
    """One token per character: a BPE with no merges over our vocabulary (the ids are ours), special
    tokens for padding, start, end and unknown; nothing added around the text."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(vocab=dict(vocab.stoi), merges=[], unk_token=UNK))
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        model_max_length=block_size,
    )


def usage_snippet(folder: Path | str, text: str = "白日依山尽", beam: int = 4) -> str:
    """Python that loads the exported folder with transformers and decodes one half-line."""
    return (
        "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer\n\n"
        f'model = AutoModelForSeq2SeqLM.from_pretrained("{folder}")  # BlenderbotForConditionalGeneration\n'
        f'tok = AutoTokenizer.from_pretrained("{folder}")\n'
        f'out = model.generate(**tok("{text}", return_tensors="pt"), num_beams={beam}, early_stopping=True)\n'
        "print(tok.decode(out[0], skip_special_tokens=True))"
    )


def export_seq2seq(model: Seq2Seq, vocab: Vocab, folder: Path | None = None, extra: dict | None = None) -> Path:
    """Write the transformers folder (config, weights, generation config, tokenizer) and our own
    seq2seq.json (config, characters, `extra`), atomically: the folder appears complete or not at all."""

    def write(tmp: Path) -> None:
        to_transformers(model).save_pretrained(tmp, safe_serialization=True)
        hf_tokenizer(vocab, model.config.block_size).save_pretrained(tmp)
        meta = {"config": model.config.to_dict(), "chars": vocab.itos[4:], **(extra or {})}
        (tmp / OURS).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")

    return write_folder(Path(folder) if folder is not None else export_dir(), write)
