"""Beyond one decoder: an encoder trained with masked LM, an encoder-decoder (seq2seq) and a
mixture of experts, built from the scratch GPT's parts (backends/scratch_gpt: attention, block,
MLP, positions), trained here on the shipped corpora, exported to transformers and compared.

The model files live in backends/scratch_gpt (one objective per file); this package holds what
runs them: data, training jobs, decoding, scores and the exports.

mlm.py         masked-LM training job of the encoder, fill_mask, the attention masks (both ways vs causal)
export_bert.py the encoder as a transformers BertForMaskedLM folder (+ a character tokenizer)
moe_run.py     dense vs mixture of experts at equal active parameters; routing of a text
couplets.py    the seq2seq tasks: half-line -> pinyin (pypinyin), first half-line -> second; split by poem, vocab
seq2seq_run.py the seq2seq training job (best weights kept), held-out scoring (exact match, chrF)
seq2seq_decode.py greedy and beam search (length-normalised), input checks, the cross-attention map
chrf.py        chrF (character n-gram F-score, sacrebleu's CHRF defaults) written out
export_blenderbot.py the seq2seq as a transformers folder: BlenderbotForConditionalGeneration (pre-norm BART)
"""

from .chrf import corpus_chrf, sentence_chrf
from .couplets import Pair, Vocab, couplet_pairs, pinyin_pairs, task_pairs
from .export_bert import bert_folder, bert_tokenizer, export_bert, to_bert
from .export_blenderbot import export_dir as seq2seq_folder
from .export_blenderbot import export_seq2seq
from .export_blenderbot import usage_snippet as seq2seq_snippet
from .mlm import MLM_CONFIG, MLM_SETTINGS, Blank, BlankError, MLMRun, attention_masks, fill_mask, mlm_job
from .moe_run import MOE_CONFIG, MOE_SETTINGS, MOE_STEPS, MoERun, moe_job, moe_settings, param_counts, routing
from .seq2seq_decode import MAX_INPUT, CoupletInputError, Decoded, cross_attention_map, translate
from .seq2seq_run import (
    DEFAULT_BEAM,
    DEFAULT_TASK,
    PINYIN_CONFIG,
    PINYIN_SETTINGS,
    SEQ2SEQ_CONFIG,
    SEQ2SEQ_SETTINGS,
    TASK_DEFAULTS,
    Seq2SeqRun,
    score_held_out,
    seq2seq_job,
)

__all__ = [
    "DEFAULT_BEAM",
    "DEFAULT_TASK",
    "MAX_INPUT",
    "MLM_CONFIG",
    "MLM_SETTINGS",
    "MOE_CONFIG",
    "MOE_SETTINGS",
    "MOE_STEPS",
    "PINYIN_CONFIG",
    "PINYIN_SETTINGS",
    "SEQ2SEQ_CONFIG",
    "SEQ2SEQ_SETTINGS",
    "TASK_DEFAULTS",
    "Blank",
    "BlankError",
    "CoupletInputError",
    "Decoded",
    "MLMRun",
    "MoERun",
    "Pair",
    "Seq2SeqRun",
    "Vocab",
    "attention_masks",
    "bert_folder",
    "bert_tokenizer",
    "corpus_chrf",
    "couplet_pairs",
    "cross_attention_map",
    "export_bert",
    "export_seq2seq",
    "fill_mask",
    "mlm_job",
    "moe_job",
    "moe_settings",
    "param_counts",
    "pinyin_pairs",
    "routing",
    "score_held_out",
    "sentence_chrf",
    "seq2seq_folder",
    "seq2seq_job",
    "seq2seq_snippet",
    "task_pairs",
    "to_bert",
    "translate",
]
