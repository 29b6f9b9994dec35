"""The calibration set every calibrated method uses (Wanda, GPTQ, AutoRound, static int8): batches
from the END of the held-out text, so they never overlap the slice the table scores (its first tokens).

The quantization table scores perplexity on the first `EVAL_TOKENS_MAX` tokens of Milton's
Areopagitica (backends/quantization/text.py; 5,120 by default). Calibration takes `n_seqs` sequences
of `seq_len` tokens counted back from the text's end; `calibration_ids` refuses a request that would
reach into the scored slice.
"""

from __future__ import annotations

import torch

from backends import quantization as q

EVAL_TOKENS_MAX = 8_192  # the most tokens a default or bench table scores from the text's start
N_SEQS, SEQ_LEN = 8, 128  # the default calibration set: 1,024 tokens


def calibration_ids(tokenizer, n_seqs: int = N_SEQS, seq_len: int = SEQ_LEN) -> torch.Tensor:
    """(n_seqs, seq_len) token ids from the end of the held-out text, disjoint from the scored slice."""
    if n_seqs < 1 or seq_len < 2:
        raise ValueError(f"calibration needs at least 1 sequence of 2 tokens, got {n_seqs} x {seq_len}.")
    ids = tokenizer(q.held_out_text(), add_special_tokens=False)["input_ids"]
    need = n_seqs * seq_len
    if len(ids) - need < EVAL_TOKENS_MAX:
        raise ValueError(
            f"{n_seqs} x {seq_len} calibration tokens would overlap the first {EVAL_TOKENS_MAX:,} tokens the "
            f"table scores (the text has {len(ids):,}): ask for fewer."
        )
    tail = torch.tensor(ids[len(ids) - need :], dtype=torch.long)
    return tail.view(n_seqs, seq_len)


def first_scored_token_after(tokenizer) -> int:
    """How many tokens the text has: calibration comes from its end, scoring from its start."""
    return len(tokenizer(q.held_out_text(), add_special_tokens=False)["input_ids"])
