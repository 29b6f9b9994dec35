"""Trust: hallucination detected and corrected, guardrails, and a red team against our own server.

- questions.py   the shipped questions with known answers (assets/datasets/trust/questions.json),
                 `grade` (right / wrong / abstained), `check_question` (empty, huge, binary text)
- grounding.py   `ground(answer, passages)`: each sentence supported or not (MiniLM cosine + word overlap)
- correct_answer.py  one question closed book / with retrieval over assets/texts/trust/reference.md / abstaining
- correct.py     `evaluate_correct`: the shipped set three ways, accuracy, abstention, wrong answers caught
- selfcheck.py   sentence splitting and the self-consistency scores: MiniLM (1 - mean best cosine with the
                 samples) and unigram (SelfCheckGPT's n-gram, add-one smoothing)
- uncertainty.py per-token probability and entropy (nats) of an answer, per-sentence mean entropy
- selfcheck_run.py  `selfcheck_question`: one question's greedy answer, N seeded samples, sentence scores
- selfcheck_remote.py  the same on a remote engine (the sidebar's): entropy a lower bound from top_logprobs
- roc.py         `roc_curve`, `roc_auc` (trapezoid), `auc_mann_whitney` by hand
- detect_eval.py `evaluate_detect`: the shipped set answered, graded, and the three scores' AUCs
- guardrails.py  `check(text, stage)`: the guardrail pipeline (patterns, similarity, guard model; leak on
                 output), `evaluate_guard`: false positives on the benign set, recall on the held-out set
- guard_types.py `CheckResult`, the shipped guard sets (assets/datasets/trust/unsafe_*.json, benign.json)
- guard_patterns.py  regexes by category, encoded (base64/hex) payloads, the system prompt leaking
- guard_similarity.py  MiniLM max cosine to the unsafe examples, the threshold chosen on the shipped sets
- guard_model.py optional guard model by hub id (LLMPG_GUARD_MODEL), online only
- guard_answer.py  one request through input check, SmolLM2's answer, output check (the page's job)
- redteam.py    `run_redteam(ctx, base_url, probes, prompt_cap, targets)`: garak against the plain and guarded
                 routes, per-probe attack success rates (`RedTeamReport.asr_plain` / `.asr_guarded`)
- redteam_garak.py  garak as a subprocess: private XDG folders, offline, its config, progress, Stop
- redteam_report.py  garak's report JSONL -> per-probe attempts, hits (detector score >= 0.5), examples
Notes: docs/trust.md.
"""

from backends.trust.questions import (
    KINDS,
    MAX_QUESTION_CHARS,
    Question,
    QuestionError,
    abstains,
    check_question,
    grade,
    mentions,
    shipped_questions,
)

__all__ = [
    "KINDS",
    "MAX_QUESTION_CHARS",
    "Question",
    "QuestionError",
    "abstains",
    "check_question",
    "grade",
    "mentions",
    "shipped_questions",
]

# --- detect (self-consistency, token uncertainty, ROC) ---
from backends.trust.detect_eval import (
    SCORERS,
    DetectReport,
    DetectRow,
    cached_detect,
    curve_points,
    detect_job,
    evaluate_detect,
)
from backends.trust.roc import RocCurve, auc_mann_whitney, roc_auc, roc_curve
from backends.trust.selfcheck import minilm_scores, split_sentences, unigram_scores
from backends.trust.selfcheck_remote import (
    TOP_LOGPROBS,
    entropy_lower_bound,
    run_selfcheck_remote,
    selfcheck_remote_job,
)
from backends.trust.selfcheck_run import (
    ANSWER_TOKENS,
    MAX_SAMPLES,
    N_SAMPLES,
    SelfCheck,
    SentenceScores,
    run_selfcheck,
    selfcheck_job,
    selfcheck_prompt,
    selfcheck_question,
)

__all__ += [
    "ANSWER_TOKENS",
    "MAX_SAMPLES",
    "N_SAMPLES",
    "SCORERS",
    "TOP_LOGPROBS",
    "DetectReport",
    "DetectRow",
    "RocCurve",
    "SelfCheck",
    "SentenceScores",
    "auc_mann_whitney",
    "cached_detect",
    "curve_points",
    "detect_job",
    "entropy_lower_bound",
    "evaluate_detect",
    "minilm_scores",
    "roc_auc",
    "roc_curve",
    "run_selfcheck",
    "run_selfcheck_remote",
    "selfcheck_job",
    "selfcheck_prompt",
    "selfcheck_question",
    "selfcheck_remote_job",
    "split_sentences",
    "unigram_scores",
]
# --- end detect ---

# --- ground (grounding labels, retrieval and abstain) ---
from backends.trust.correct import (  # noqa: E402
    CorrectReport,
    answer_row,
    bench_values,
    cached_report,
    evaluate_correct,
    retrieval_similarities,
)
from backends.trust.correct_answer import (  # noqa: E402
    WITHHELD,
    GroundedAnswer,
    Settings,
    answer_with_retrieval,
    closed_book,
    reference_collection,
    reference_text,
)
from backends.trust.grounding import (  # noqa: E402
    COSINE_MIN,
    OVERLAP_MIN,
    SentenceSupport,
    answer_supported,
    content_words,
    ground,
    key_terms,
)
from backends.trust.grounding import overlap as overlap_score  # noqa: E402

__all__ += [
    "COSINE_MIN",
    "OVERLAP_MIN",
    "WITHHELD",
    "CorrectReport",
    "GroundedAnswer",
    "SentenceSupport",
    "Settings",
    "answer_row",
    "answer_supported",
    "answer_with_retrieval",
    "bench_values",
    "cached_report",
    "closed_book",
    "content_words",
    "evaluate_correct",
    "ground",
    "key_terms",
    "overlap_score",
    "reference_collection",
    "reference_text",
    "retrieval_similarities",
]
# --- end ground ---

# --- guard (guardrail pipeline, guarded server route) ---
from backends.trust.guard_answer import GuardedAnswer, guard_job, guarded_answer  # noqa: E402
from backends.trust.guard_model import GUARD_MODEL_ENV, guard_model_id  # noqa: E402
from backends.trust.guard_patterns import PATTERNS, decoded_payloads, leak_check, pattern_check  # noqa: E402
from backends.trust.guard_similarity import (  # noqa: E402
    SIMILARITY_MAX_FPR,
    similarity_check,
    similarity_threshold,
    threshold_data,
)
from backends.trust.guard_types import VERDICTS, CheckResult, GuardItem  # noqa: E402
from backends.trust.guard_types import shipped_set as guard_set  # noqa: E402
from backends.trust.guardrails import (  # noqa: E402
    INPUT_CHECKS,
    OUTPUT_CHECKS,
    REFUSAL,
    CheckRates,
    GuardReport,
    GuardResult,
    check,
    evaluate_guard,
)

__all__ += [
    "GUARD_MODEL_ENV",
    "INPUT_CHECKS",
    "OUTPUT_CHECKS",
    "PATTERNS",
    "REFUSAL",
    "SIMILARITY_MAX_FPR",
    "VERDICTS",
    "CheckRates",
    "CheckResult",
    "GuardItem",
    "GuardReport",
    "GuardResult",
    "GuardedAnswer",
    "check",
    "decoded_payloads",
    "evaluate_guard",
    "guard_job",
    "guard_model_id",
    "guard_set",
    "guarded_answer",
    "leak_check",
    "pattern_check",
    "similarity_check",
    "similarity_threshold",
    "threshold_data",
]
# --- end guard ---

# --- redteam (garak against our server) ---
from backends.trust.redteam import (  # noqa: E402
    OFFLINE_PROBES,
    REDTEAM_ALL_OFFLINE,
    REDTEAM_DEFAULT_CAP,
    REDTEAM_DEFAULT_PROBES,
    REDTEAM_MAX_TOKENS,
    REDTEAM_MODEL,
    REDTEAM_TARGETS,
    RedTeamError,
    RedTeamReport,
    TargetRun,
    check_probes,
    check_server,
    redteam_command_line,
    run_redteam,
    target_url,
)
from backends.trust.redteam_report import ProbeRow, parse_report  # noqa: E402

__all__ += [
    "OFFLINE_PROBES",
    "REDTEAM_ALL_OFFLINE",
    "REDTEAM_DEFAULT_CAP",
    "REDTEAM_DEFAULT_PROBES",
    "REDTEAM_MAX_TOKENS",
    "REDTEAM_MODEL",
    "REDTEAM_TARGETS",
    "ProbeRow",
    "RedTeamError",
    "RedTeamReport",
    "TargetRun",
    "check_probes",
    "check_server",
    "parse_report",
    "redteam_command_line",
    "run_redteam",
    "target_url",
]
# --- end redteam ---
