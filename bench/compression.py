"""Compression: every method of the Compression page measured, as the page runs it.

1. The default comparable table (backends/compression/table.py: fp32, dynamic and static int8, RTN /
   GPTQ / AutoRound 4-bit at groups of 64, magnitude / Wanda / structured pruning) on SmolLM2 through
   the quantization harness (`quantization.run_job`, the page's job): `table_s` is its wall time;
   `gptq_kld`, `rtn_kld` its 4-bit rows.
   `structured_speedup_30`: SmolLM2's structured-30% copy (the table's build) against the dense model,
   decode tok/s, interleaved repeats, medians, at 1 torch thread (as a session's job runs; the pruning
   tab's speed rows); at every core in `structured_speedup_30_all_threads`, and in the table's own
   exclusive turns in `structured_speedup_30_table`.
2. Unstructured pruning at 50% on real-valued weights (the GPT trained here, quantization.train_demo_gpt),
   the same harness: `magnitude_ppl_50`, `wanda_ppl_50`.
3. Distillation (compression.distill_job, default settings): `kd_val_loss`, `hard_val_loss`, the two
   students' validation cross-entropy at the same steps, data and seed.
4. QAT vs PTQ on the GPT trained here (compression.qat_job, default settings): `qat_kld`, `ptq_kld` at
   int4 (and the other rows printed).

The slow rows (AutoRound, ONNX Runtime's dynamic and static int8) run on the GPT trained here in part 2,
and on SmolLM2 with --slow (outside table_s).

Usage: .venv/bin/python bench/compression.py [--ppl-tokens 2048] [--runs 2] [--slow] [--skip table,real,distill,qat]
Last line: {"wanda_ppl_50": x, "magnitude_ppl_50": x, "structured_speedup_30": x, "kd_val_loss": x,
            "hard_val_loss": x, "gptq_kld": x, "rtn_kld": x, "qat_kld": x, "ptq_kld": x, "table_s": s}
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

from backends import compression as cp
from backends import quantization as q
from backends.core.jobs import shared_runner
from backends.models.cache import shared_cache


def wait(job, label: str):
    started, seen = time.perf_counter(), 0
    while not job.wait(2):
        for event in job.events_since(seen):
            row = event.data.get("row") if event.data.get("kind") == "row" else None
            if isinstance(row, dict) and "label" in row:  # a table row (the QAT job's rows are its own)
                print(f"  {time.perf_counter() - started:6.0f} s  {row['label']}: {row['status']}", flush=True)
        seen = len(job.events_since(0))
    if job.status != "done":
        raise SystemExit(f"{label}: the run {job.status}: {job.error}")
    return job.result, time.perf_counter() - started


def fmt(value, digits=3) -> str:
    return "" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def print_rows(report) -> None:
    cols = ("label", "status", "disk MB", "decode tok/s", "ppl", "KLD", "top-1", "build s", "row s")
    print(" | ".join(cols))
    for r in report.rows:
        cells = (
            r.label,
            r.status,
            fmt(r.disk_bytes / 1e6 if r.disk_bytes else None),
            fmt(r.decode_tps),
            fmt(r.perplexity, 5),
            fmt(r.kld),
            fmt(r.top1),
            fmt(r.build_s),
            fmt(r.seconds),
        )
        print(" | ".join(cells) + (f"  ({r.error})" if r.error else ""))


def table(loaded, name: str, variants, tokens: int, runs: int):
    config = q.BenchConfig(variants=tuple(variants), ppl_tokens=tokens, runs=runs)
    job = shared_runner().submit(
        "compression-bench", q.run_job, loaded.model, loaded.tokenizer, config, name, "cpu", q.describe(loaded)
    )
    report, seconds = wait(job, name)
    print(f"{name}: {len(report.rows)} rows, {tokens} tokens scored, {report.threads} thread(s), {seconds:.0f} s")
    print_rows(report)
    return report, seconds


def structured_speed(loaded, repeats: int = 5) -> dict:
    """Decode tok/s of the dense model and of its structured-30% copy (the table's build), interleaved
    repeats of 32 greedy tokens from the fixed prompt, at 1 torch thread (a session's job, the pruning
    tab's speed rows) and at every core (the table's exclusive turns); medians."""
    import tempfile

    spec = q.spec("prune-structured-30")
    with tempfile.TemporaryDirectory() as tmp:
        built = spec.build(loaded.model, "cpu", Path(tmp))
    runners = {"dense": q.TorchRunner(loaded.model), "structured": built.runner}
    prompt = q.prompt_ids(loaded.tokenizer)
    prefill = q.token_slice(loaded.tokenizer, 128)
    before, out = torch.get_num_threads(), {}
    try:
        for threads in sorted({1, q.bench_threads()}):
            torch.set_num_threads(threads)
            tps = {k: [] for k in runners}
            for _ in range(repeats):
                for k, runner in runners.items():
                    tps[k].append(q.speed(runner, prefill[:, :8], prompt, 32, 1).decode()[0])
            med = {k: sorted(v)[len(v) // 2] for k, v in tps.items()}
            print(
                f"structured 30% decode, {threads} thread(s): dense {med['dense']:.2f} tok/s, "
                f"pruned {med['structured']:.2f} tok/s ({med['structured'] / med['dense']:.2f}x)"
            )
            out[threads] = med["structured"] / med["dense"]
    finally:
        torch.set_num_threads(before)
        built.runner.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ppl-tokens", type=int, default=cp.TABLE_PPL_TOKENS)
    parser.add_argument("--runs", type=int, default=cp.TABLE_RUNS)
    parser.add_argument("--slow", action="store_true", help="also SmolLM2's slow rows (AutoRound, ONNX int8s)")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: table,speed,real,distill,qat")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    torch.set_num_threads(q.bench_threads())
    out: dict = {}
    if "table" not in skip:
        loaded = shared_cache().get("smollm2-135m-instruct")
        report, out["table_s"] = table(loaded, "smollm2", cp.TABLE_DEFAULT, args.ppl_tokens, args.runs)
        print(f"baseline: {report.baseline.text}")
        rows = {r.key: r for r in report.rows if r.status == q.OK}
        out["gptq_kld"] = rows["gptq-w4g64"].kld if "gptq-w4g64" in rows else None
        out["rtn_kld"] = rows["rtn-w4g64"].kld if "rtn-w4g64" in rows else None
        dense, pruned = rows.get("fp32"), rows.get("prune-structured-30")
        if dense and pruned and dense.decode_tps and pruned.decode_tps:
            out["structured_speedup_30_table"] = pruned.decode_tps / dense.decode_tps
            out["unstructured_speedup_50_table"] = (
                rows["prune-magnitude-50"].decode_tps / dense.decode_tps if "prune-magnitude-50" in rows else None
            )
    if "speed" not in skip:
        speedups = structured_speed(shared_cache().get("smollm2-135m-instruct"))
        out["structured_speedup_30"] = speedups[1]
        out["structured_speedup_30_all_threads"] = speedups[max(speedups)]
    if "real" not in skip:
        folder = str(q.train_demo_gpt())
        loaded = shared_cache().get(folder)
        keys = ("fp32", "rtn-w4g64", "gptq-w4g64", "prune-magnitude-50", "prune-wanda-50", "prune-structured-30")
        report, _ = table(loaded, q.DEMO_GPT_NAME, keys + cp.SLOW_ROWS, 5_120, 1)
        rows = {r.key: r for r in report.rows if r.status == q.OK}
        out["magnitude_ppl_50"] = rows["prune-magnitude-50"].perplexity
        out["wanda_ppl_50"] = rows["prune-wanda-50"].perplexity
        out["dense_ppl_real"] = rows["fp32"].perplexity
        for key, name in (
            ("rtn-w4g64", "rtn_kld_real"),
            ("gptq-w4g64", "gptq_kld_real"),
            ("autoround-w4g64", "autoround_kld_real"),
            ("onnx-int8", "dynamic_int8_kld_real"),
            ("onnx-static-int8", "static_int8_kld_real"),
        ):
            out[name] = rows[key].kld if key in rows else None
    if args.slow:  # SmolLM2's slow rows, outside table_s
        loaded = shared_cache().get("smollm2-135m-instruct")
        report, out["slow_rows_s"] = table(loaded, "smollm2", ("fp32", *cp.SLOW_ROWS), args.ppl_tokens, args.runs)
        rows = {r.key: r for r in report.rows if r.status == q.OK}
        for key, name in (
            ("autoround-w4g64", "autoround_kld"),
            ("onnx-int8", "dynamic_int8_kld"),
            ("onnx-static-int8", "static_int8_kld"),
        ):
            out[name] = rows[key].kld if key in rows else None
    if "distill" not in skip:
        result, seconds = wait(shared_runner().submit("compression-bench-distill", cp.distill_job), "distill")
        print(
            f"distillation ({seconds:.0f} s, {result.steps} steps, {result.params:,} parameters per student): "
            f"val loss KD {result.kd_val_loss:.4f}, hard labels {result.hard_val_loss:.4f}, "
            f"teacher {result.teacher_val_loss:.4f}"
        )
        out["kd_val_loss"], out["hard_val_loss"] = result.kd_val_loss, result.hard_val_loss
    if "qat" not in skip:
        report, seconds = wait(shared_runner().submit("compression-bench-qat", cp.qat_job), "qat")
        print(f"QAT vs PTQ on the GPT trained here ({seconds:.0f} s):")
        print("method | bits | ppl | KLD | top-1 | on grid")
        for r in report.rows:
            print(f"{r.method} | {r.bits} | {r.perplexity:.4f} | {r.kld:.4g} | {r.top1:.4f} | {r.on_grid}")
        out.update(cp.qat_summary(report))
    keys = (
        "wanda_ppl_50",
        "magnitude_ppl_50",
        "structured_speedup_30",
        "kd_val_loss",
        "hard_val_loss",
        "gptq_kld",
        "rtn_kld",
        "qat_kld",
        "ptq_kld",
        "table_s",
    )
    last = {k: out.get(k) for k in keys}
    last.update({k: v for k, v in out.items() if k not in last})
    print(json.dumps({k: float(f"{v:.5g}") if isinstance(v, float) else v for k, v in last.items()}))


if __name__ == "__main__":
    main()
