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
export.py     save/load (safetensors + JSON), export as a transformers folder (GPT-2 or GPT-NeoX)

Notes (how it works, what is left out, measured figures): docs/scratch_gpt.md.
"""

from .config import BABY, POSITIONS, GPTConfig, TrainSettings
from .data import (
    CORPORA,
    MAX_UPLOAD_BYTES,
    CharTokenizer,
    Prepared,
    SubwordTokenizer,
    decode_text_upload,
    load_corpus,
    prepare,
)
from .export import export_hf, load, runs_dir, safe_name, save, to_transformers
from .ladder import RUNGS, CountBigram, exact_loss
from .ladder_run import LADDER_LR, LADDER_STEPS, ladder_defaults, ladder_job
from .model import GPT, Inspection
from .train import (
    Checkpoint,
    copy_checkpoint,
    estimate_loss,
    inspect_prompt,
    lr_at,
    sample,
    train_job,
)

__all__ = [
    "BABY",
    "CORPORA",
    "GPT",
    "LADDER_LR",
    "LADDER_STEPS",
    "MAX_UPLOAD_BYTES",
    "POSITIONS",
    "RUNGS",
    "CharTokenizer",
    "Checkpoint",
    "CountBigram",
    "GPTConfig",
    "Inspection",
    "Prepared",
    "SubwordTokenizer",
    "TrainSettings",
    "copy_checkpoint",
    "decode_text_upload",
    "estimate_loss",
    "exact_loss",
    "export_hf",
    "inspect_prompt",
    "ladder_defaults",
    "ladder_job",
    "load",
    "load_corpus",
    "lr_at",
    "prepare",
    "runs_dir",
    "safe_name",
    "sample",
    "save",
    "to_transformers",
    "train_job",
]
