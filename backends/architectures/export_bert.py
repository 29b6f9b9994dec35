"""The trained encoder as a transformers `BertForMaskedLM` folder: config.json, model.safetensors and a
character tokenizer (tokenizer.json) that `AutoTokenizer.from_pretrained(folder)` loads.

BERT computes the same function as our encoder (post-norm blocks, a norm after the embeddings,
learned absolute positions, the same head); what differs is only how the weights are stored:
- our attention holds q, k, v in one matrix (c_attn); BERT has query, key and value apart;
- BERT adds a token-type (segment) embedding: exported as zeros, so it adds nothing;
- the norms use PyTorch's eps 1e-5 (BERT's default is 1e-12), written in the config.
The tokenizer is a BPE with no merges (one token per character), [PAD] and [MASK] as special
tokens and no [CLS]/[SEP] added, since the encoder was trained on plain windows of text.
"""

from __future__ import annotations

from pathlib import Path

import torch

from backends.core.paths import cache_dir
from backends.scratch_gpt import Encoder, MaskedVocab, safe_name, write_folder


def bert_state(model: Encoder) -> dict[str, torch.Tensor]:
    """Our weights under BertForMaskedLM's names."""
    c = model.config
    ours = model.state_dict()
    n = c.n_embd
    zeros = torch.zeros(n)
    state = {
        "bert.embeddings.word_embeddings.weight": ours["wte.weight"],
        "bert.embeddings.position_embeddings.weight": model.wpe(c.block_size),
        "bert.embeddings.token_type_embeddings.weight": torch.zeros(2, n),
        "bert.embeddings.LayerNorm.weight": ours["ln_e.weight"],
        "bert.embeddings.LayerNorm.bias": ours.get("ln_e.bias", zeros),
    }
    for i in range(c.n_layer):
        p, q = f"h.{i}.", f"bert.encoder.layer.{i}."
        weight = ours[p + "attn.c_attn.weight"]
        bias = ours.get(p + "attn.c_attn.bias", torch.zeros(3 * n))
        for k, name in enumerate(("query", "key", "value")):  # c_attn's rows: all q, then all k, then all v
            state[q + f"attention.self.{name}.weight"] = weight[k * n : (k + 1) * n]
            state[q + f"attention.self.{name}.bias"] = bias[k * n : (k + 1) * n]
        pairs = {
            "attn.c_proj": "attention.output.dense",
            "ln_1": "attention.output.LayerNorm",
            "mlp.c_fc": "intermediate.dense",
            "mlp.c_proj": "output.dense",
            "ln_2": "output.LayerNorm",
        }
        for mine, theirs in pairs.items():
            weight = ours[p + mine + ".weight"]
            state[q + theirs + ".weight"] = weight
            state[q + theirs + ".bias"] = ours.get(p + mine + ".bias", torch.zeros(weight.shape[0]))
    for mine, theirs in (("head.dense", "transform.dense"), ("head.norm", "transform.LayerNorm")):
        state[f"cls.predictions.{theirs}.weight"] = ours[mine + ".weight"]
        state[f"cls.predictions.{theirs}.bias"] = ours[mine + ".bias"]
    state["cls.predictions.bias"] = ours["head.decoder.bias"]
    return state


def to_bert(model: Encoder):
    """The same network as a transformers BertForMaskedLM, weights copied in."""
    from transformers import BertConfig, BertForMaskedLM

    c = model.config
    config = BertConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.n_embd,
        num_hidden_layers=c.n_layer,
        num_attention_heads=c.n_head,
        intermediate_size=4 * c.n_embd,
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=c.block_size,
        type_vocab_size=2,
        layer_norm_eps=1e-5,
        pad_token_id=c.vocab_size - 2,  # MaskedVocab: [PAD], then [MASK], after the characters
        tie_word_embeddings=True,
    )
    hf = BertForMaskedLM(config)
    own = hf.state_dict()
    state = bert_state(model)
    tied = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")  # = word embeddings, predictions.bias
    missing = [k for k in own if k not in state and k not in tied and "position_ids" not in k]
    if missing:
        raise RuntimeError(f"No weights for {missing}.")
    with torch.no_grad():
        for key, value in state.items():
            own[key].copy_(value)
        if "cls.predictions.decoder.bias" in own:
            own["cls.predictions.decoder.bias"].copy_(state["cls.predictions.bias"])
    return hf.eval()


def bert_tokenizer(vocab: MaskedVocab, block_size: int):
    """One token per character (a BPE without merges), the same ids as ours; [PAD] and [MASK] special."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    ids = {s: i for i, s in enumerate(vocab.itos)}
    backend = Tokenizer(models.BPE(vocab=ids, merges=[], unk_token=vocab.itos[0]))
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(["[PAD]", "[MASK]"])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token=vocab.itos[0],
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_max_length=block_size,
    )


def bert_folder(corpus: str) -> Path:
    """Where the page exports: the app's cache, beside the other pages' own models."""
    return cache_dir() / "architectures" / f"mlm-{safe_name(corpus)}-bert"


def export_bert(model: Encoder, vocab: MaskedVocab, folder: Path) -> Path:
    """Write the transformers folder atomically (it appears complete or not at all); returns its path."""

    def write(tmp: Path) -> None:
        to_bert(model).save_pretrained(tmp, safe_serialization=True)
        bert_tokenizer(vocab, model.config.block_size).save_pretrained(tmp)

    return write_folder(folder, write)
