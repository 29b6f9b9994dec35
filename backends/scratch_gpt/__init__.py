"""A GPT written from scratch as teaching code, one short file per concept (nanoGPT's layout):

config.py     GPTConfig (the model's shape) and TrainSettings; BABY, nanoGPT's CPU preset
positions.py  learned positions, fixed sinusoids, rotary embeddings (RoPE)
attention.py  causal self-attention, written out (tested against F.scaled_dot_product_attention)
mlp.py        the feed-forward layer
block.py      one pre-norm transformer block
model.py      the GPT: embeddings, blocks, tied head; inspect() (attention maps), generate()
ladder.py     the rungs: a bigram table of counts (closed form, add-k by leave-one-out) -> MLP ->
              one attention layer -> full; exact_loss scores every validation token once
ladder_run.py the ladder job: the bigram counted, the others trained on the same batches; steps and
              peak learning rate by the text's size (ladder_defaults)
data.py       shipped corpora, uploads (encoding detected, size-limited), character tokenizer, batches
train.py      the background training job (stop, resume, seed)
encoder.py    the encoder (BERT): non-causal blocks in post-norm order, masked-LM head, mask_tokens
moe.py        a mixture of experts in place of the MLP (router, top-k, balance loss), moe_gpt
cross_attention.py  cross-attention: queries from the decoder, keys and values from the encoder
seq2seq.py    the encoder-decoder: encoder = Block(causal=False), decoder block adds cross-attention
export.py     save/load (safetensors + JSON), export as a transformers folder (GPT-2 or GPT-NeoX)

Notes (how it works, what is left out, measured figures): docs/scratch_gpt.md.
"""

from .attention import CausalSelfAttention
from .block import Block
from .config import BABY, POSITIONS, GPTConfig, TrainSettings
from .cross_attention import CrossAttention
from .data import (
    CORPORA,
    MAX_UPLOAD_BYTES,
    CharTokenizer,
    Prepared,
    SubwordTokenizer,
    decode_text_upload,
    get_batch,
    load_corpus,
    prepare,
)
from .encoder import IGNORE, Encoder, MaskedVocab, MLMHead, mask_tokens, post_norm
from .export import export_hf, load, runs_dir, safe_name, save, to_transformers, write_folder
from .ladder import RUNGS, CountBigram, exact_loss
from .ladder_run import LADDER_LR, LADDER_STEPS, ladder_defaults, ladder_job
from .mlp import MLP
from .model import GPT, Inspection, init_weights
from .moe import MoE, MoEGPT, balance_loss, moe_gpt
from .positions import LearnedPositions, Rotary, SinusoidalPositions
from .seq2seq import PAD_ID, DecoderBlock, Seq2Seq
from .train import (
    Checkpoint,
    copy_checkpoint,
    estimate_loss,
    inspect_prompt,
    lr_at,
    make_optimizer,
    sample,
    train_job,
)

__all__ = [
    "BABY",
    "CORPORA",
    "GPT",
    "IGNORE",
    "LADDER_LR",
    "LADDER_STEPS",
    "MAX_UPLOAD_BYTES",
    "MLP",
    "PAD_ID",
    "POSITIONS",
    "RUNGS",
    "Block",
    "CausalSelfAttention",
    "CharTokenizer",
    "Checkpoint",
    "CountBigram",
    "CrossAttention",
    "DecoderBlock",
    "Encoder",
    "GPTConfig",
    "Inspection",
    "LearnedPositions",
    "MLMHead",
    "MaskedVocab",
    "MoE",
    "MoEGPT",
    "Prepared",
    "Rotary",
    "Seq2Seq",
    "SinusoidalPositions",
    "SubwordTokenizer",
    "TrainSettings",
    "balance_loss",
    "copy_checkpoint",
    "decode_text_upload",
    "estimate_loss",
    "exact_loss",
    "export_hf",
    "get_batch",
    "init_weights",
    "inspect_prompt",
    "ladder_defaults",
    "ladder_job",
    "load",
    "load_corpus",
    "lr_at",
    "make_optimizer",
    "mask_tokens",
    "moe_gpt",
    "post_norm",
    "prepare",
    "runs_dir",
    "safe_name",
    "sample",
    "save",
    "to_transformers",
    "train_job",
    "write_folder",
]
