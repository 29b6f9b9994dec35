"""Alignment: the classroom preference arena and DPO, as plain data in and out.

- store.py: the preference store, SQLite in the app cache (class sets with a typable code,
  prompts, votes with a client vote id so a retry is stored once), safe with many writers.
- ratings.py: Bradley-Terry strengths from the votes (a tie counts as half a win each), fitted by
  MM, bootstrap intervals, the win-rate matrix.
- pairs.py: votes to TRL's preference format (prompt/chosen/rejected JSONL) and back, validated.
- dpo.py: DPO by hand: response-only sequence log-probs, the sigmoid (DPO) and IPO losses, implicit
  rewards, margins and accuracy; equal to TRL 1.16's DPOTrainer (tests/backends/test_alignment_dpo.py).
- fast.py, train.py: DPO on a CPU in minutes, same maths (top-layer LoRA over cached lower-layer
  states, cached reference log-probs, head on response positions only), and its background job.
- rule.py: the shipped brevity preference set, its checkable rule, batched greedy answers.
- sft.py: instruction tuning on the LoRA page's job (loss on the response or on every token).
- arena.py: arena sources, blind matches, answers; live.py: the page's DPO job and its judging.

Notes (what exists, the tie model, the export format, measured figures): docs/alignment.md.
"""

from backends.alignment.dpo import (
    LOSS_TYPES,
    DPOResult,
    EncodedPair,
    batch_loss,
    collate_pairs,
    dpo_loss,
    encode_pair,
    sequence_logps,
)
from backends.alignment.pairs import Export, Pair, PairsError, parse_jsonl, votes_to_pairs
from backends.alignment.ratings import RatingError, Ratings, WinRates, fit, win_rates
from backends.alignment.store import (
    VERDICTS,
    ClassSet,
    PreferenceStore,
    StoreError,
    Totals,
    UnknownSet,
    Vote,
    normalize_code,
)

__all__ = [
    "LOSS_TYPES",
    "VERDICTS",
    "ClassSet",
    "DPOResult",
    "EncodedPair",
    "Export",
    "Pair",
    "PairsError",
    "PreferenceStore",
    "RatingError",
    "Ratings",
    "StoreError",
    "Totals",
    "UnknownSet",
    "Vote",
    "WinRates",
    "batch_loss",
    "collate_pairs",
    "dpo_loss",
    "encode_pair",
    "fit",
    "normalize_code",
    "parse_jsonl",
    "sequence_logps",
    "votes_to_pairs",
    "win_rates",
]
