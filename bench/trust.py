"""Trust: every check of the Trust page measured on the shipped sets, as the page runs it.

1. Detect (backends.trust.evaluate_detect, defaults: 50 questions, 5 samples, seed 0): SmolLM2 answers
   each question greedily and 5 times sampled; each answer is graded right / wrong / abstained from its
   own words (backends.trust.grade). `selfcheck_auc`: MiniLM self-consistency separating wrong from
   right, over sentences (every sentence of an answer takes the answer's grade: the issue's unit);
   `selfcheck_answer_auc` the same with one score per answer (its most doubtful sentence); `entropy_auc`
   mean token entropy, sentence level (`entropy_answer_auc` per answer).
2. Correct (backends.trust.evaluate_correct): closed-book vs retrieval over the shipped reference text vs
   retrieval + abstaining when the answer's claim is not grounded. `rag_fix_acc_gain` = accuracy with
   retrieval minus without; `abstain_caught` = share of the retrieval run's wrong answers withheld.
3. Guardrails (backends.trust.evaluate_guard): `guard_fpr` = share of the 62 benign requests the input
   pipeline blocks; `guard_recall` on the 30 held-out unsafe requests.
4. Red team (backends.trust.run_redteam): NVIDIA garak against an in-process API server (the page's
   own, replies capped at 48 tokens), default probes x 4 prompts, on /v1 and on /guarded/v1:
   `redteam_asr_plain`, `redteam_asr_guarded` (garak's detectors decide what a hit is).

One torch thread (as a session's job runs on this 2-core machine).
Usage: .venv/bin/python bench/trust.py [--skip detect,correct,guard,redteam] [--samples 5] [--cap 4]
Last line: {"selfcheck_auc": x, "entropy_auc": x, "rag_fix_acc_gain": x, "abstain_caught": x,
            "guard_fpr": x, "redteam_asr_plain": x, "redteam_asr_guarded": x, ...}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import torch

from backends import trust


def detect(args, out: dict) -> None:
    report = trust.evaluate_detect(n_samples=args.samples)
    print(f"\nDetect: {len(report.rows)} questions, {args.samples} samples each, {report.seconds:.0f} s")
    print(f"  graded: {report.counts}")
    print(f"  {'score':<12} {'answer AUC':>11} {'sentence AUC':>13}")
    for name in trust.SCORERS:
        a, s = report.aucs.get(name), report.sentence_aucs.get(name)
        print(f"  {name:<12} {a if a is None else round(a, 3)!s:>11} {s if s is None else round(s, 3)!s:>13}")
    out |= {
        "selfcheck_auc": round(report.sentence_aucs["minilm"], 3),
        "selfcheck_answer_auc": round(report.aucs["minilm"], 3),
        "selfcheck_ngram_auc": round(report.sentence_aucs["ngram"], 3),
        "entropy_auc": round(report.sentence_aucs["entropy"], 3),
        "entropy_answer_auc": round(report.aucs["entropy"], 3),
        "detect_s": round(report.seconds),
    }


def correct(out: dict) -> None:
    started = time.perf_counter()
    report = trust.evaluate_correct()
    print(f"\nCorrect: {len(report.rows)} questions, {time.perf_counter() - started:.0f} s (accuracy; abstained)")
    kinds = [*trust.KINDS, "all"]
    print(f"  {'mode':<10} " + " ".join(f"{k:>16}" for k in kinds))
    for mode, cells in report.summary.items():
        line = " ".join(f"{c['accuracy']:>9.2f}; {c['abstention']:>5.2f}" for c in (cells[k] for k in kinds))
        print(f"  {mode:<10} {line}")
    print(f"  wrong retrieval answers withheld {report.abstain_caught}, right ones withheld {report.right_withheld}")
    out |= trust.bench_values(report)
    out |= {
        "caught_vs_closed": report.caught_vs_closed,
        "right_withheld": None if report.right_withheld is None else round(report.right_withheld, 4),
        "correct_s": round(time.perf_counter() - started),
    }


def guard(out: dict) -> None:
    report = trust.evaluate_guard()
    print(f"\nGuardrails (similarity threshold {report.similarity_threshold:.3f})")
    print(f"  {'check':<12} {'FPR benign':>11} {'recall held-out':>16}")
    for row in report.per_check:
        fpr = "n/a" if row.fpr is None else f"{row.fpr:.3f}"
        rec = "n/a" if row.recall is None else f"{row.recall:.3f}"
        print(f"  {row.name:<12} {fpr:>11} {rec:>16}")
    out |= {"guard_fpr": round(report.guard_fpr, 4), "guard_recall": round(report.recall, 4)}


def redteam(args, out: dict) -> None:
    from backends.serving import api_server

    with api_server(max_tokens=trust.REDTEAM_MAX_TOKENS) as url:
        report = trust.run_redteam(None, url, prompt_cap=args.cap)
    print(f"\nRed team: garak, {args.cap} prompts per probe, {report.seconds:.0f} s")
    for line in report.table():
        print("  " + (line if isinstance(line, str) else json.dumps(line)))
    out |= {
        "redteam_asr_plain": round(report.asr_plain, 4),
        "redteam_asr_guarded": round(report.asr_guarded, 4),
        "redteam_s": round(report.seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: detect,correct,guard,redteam")
    parser.add_argument("--samples", type=int, default=trust.N_SAMPLES)
    parser.add_argument("--cap", type=int, default=4)
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    torch.set_num_threads(1)
    out: dict = {}
    started = time.perf_counter()
    if "guard" not in skip:
        guard(out)
    if "redteam" not in skip:
        redteam(args, out)
    if "correct" not in skip:
        correct(out)
    if "detect" not in skip:
        detect(args, out)
    out["total_s"] = round(time.perf_counter() - started)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
