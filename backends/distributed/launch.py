"""Start a torchrun run of backends.distributed.worker as a background job, follow its rank logs.

`distributed_job(ctx, spec)` runs `spec.nproc` processes (one torchrun, its own process group),
then, with `compare=True`, the same run on 1 process at the same global batch, and reports:
- "start"      run ("main" | "single"), world, device, backend, strategy, n_params, command
- "rank_step"  run, rank, step, loss_shard (its slice), loss (all-reduced), grad_norm_local (its own
               slice's gradient before the all-reduce, DDP), grad_norm, grad_check, step_s
- "memory"     run, rank, measured {params, grads, optimizer, activations} and predicted (calc.py)
- "run_end"    run, seconds (training loop), wall_s (start-up included)
- "compare"    loss_gap (max |loss N - loss 1| over the steps), step_ratio (N / 1 median step time),
               grad_check_gap (max difference of the gradient checksum across ranks)
- "end"        stopped
Stop kills the process group. A failure (a rank crashing, a port taken) raises RunFailed with the
tail of torchrun's stderr, which names the rank and its traceback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from backends.core.paths import cache_dir
from backends.core.scheduler import shared_scheduler
from backends.scratch_gpt import GPTConfig

from .calc import gpt_shape, memory_per_rank

ROOT = Path(__file__).resolve().parents[2]
LABEL = "scratch_gpt"  # a training label: the scheduler keeps one slot free for interactive work
SILENT_S = 180.0  # no log line for this long: the run is taken as hung


class RunFailed(RuntimeError):
    """torchrun exited with an error; the message carries its stderr's tail."""


@dataclass(frozen=True)
class RunSpec:
    nproc: int = 2
    strategy: str = "ddp"  # ddp | fsdp
    steps: int = 30
    batch: int = 12  # global batch, split across the processes
    corpus: str = "shakespeare"
    layers: int = 4
    heads: int = 4
    embd: int = 128
    block: int = 64
    lr: float = 1e-3
    seed: int = 1337

    def __post_init__(self):
        if self.strategy not in ("ddp", "fsdp"):
            raise ValueError(f"Unknown strategy {self.strategy!r}; expected ddp or fsdp.")
        if not 1 <= self.nproc <= 16:
            raise ValueError(f"nproc must be between 1 and 16, got {self.nproc}.")
        if self.batch % self.nproc:
            raise ValueError(f"The global batch {self.batch} does not split evenly over {self.nproc} processes.")
        if not 1 <= self.steps <= 2000:
            raise ValueError(f"steps must be between 1 and 2000, got {self.steps}.")


def worker_args(spec: RunSpec, out: str) -> list[str]:
    args = ["--out", out]
    for name, value in asdict(spec).items():
        if name != "nproc":
            args += [f"--{name}", str(value)]
    return args


def torchrun_command(spec: RunSpec, out: str = "RUN_FOLDER") -> list[str]:
    """The command line that starts the run (what the page shows)."""
    head = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(spec.nproc)]
    return [*head, "-m", "backends.distributed.worker", *worker_args(spec, out)]


def runs_root() -> Path:
    path = cache_dir() / "distributed"
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_run_folder(tag: str) -> Path:
    path = runs_root() / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}-{tag}"
    path.mkdir(parents=True)
    return path


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to torchrun's process group (torchrun passes it on to the ranks), SIGKILL after 5 s."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def stderr_tail(path: Path, lines: int = 25) -> str:
    """The first failing rank's own traceback (torchrun prefixes its lines "[rankN]:"), else the last lines."""
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    kept = [line for line in text.splitlines() if line.strip() and not line.startswith("*") and "OMP_NUM" not in line]
    ranked = [(m.group(1), line) for line in kept if (m := re.match(r"\[rank(\d+)\]:", line))]
    if ranked:
        first = ranked[0][0]
        own = [line for rank, line in ranked if rank == first]
        return f"rank {first}:\n" + "\n".join(own[-lines:])
    return "\n".join(kept[-lines:])


class LogTail:
    """New complete lines of every rank's JSONL file since the last read."""

    def __init__(self, folder: Path, world: int):
        self.files = [folder / f"rank{r}.jsonl" for r in range(world)]
        self.offsets = [0] * world

    def read(self) -> list[dict]:
        records = []
        for r, path in enumerate(self.files):
            if not path.exists():
                continue
            with path.open("rb") as f:
                f.seek(self.offsets[r])
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1
            self.offsets[r] += end
            records += [json.loads(line) for line in chunk[:end].decode("utf-8").splitlines() if line]
        return records


def predicted(record: dict, start: dict, strategy: str) -> dict:
    config = GPTConfig.from_dict(start["config"])
    est = memory_per_rank(
        gpt_shape(config),
        start["world"],
        "zero3" if strategy == "fsdp" else "ddp",
        "fp32",
        micro_batch=start["local_batch"],
        seq=config.block_size,
        rank=record["rank"],
    )
    return est.as_dict()


def run_processes(ctx, spec: RunSpec, tag: str) -> dict:
    """One torchrun of `spec` (run name `tag`); reports its events and returns its records."""
    folder = new_run_folder(tag)
    command = torchrun_command(spec, str(folder))
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    out = {"folder": str(folder), "steps": [], "memory": [], "start": None, "done": []}
    tail = LogTail(folder, spec.nproc)
    err_path = folder / "stderr.txt"
    with shared_scheduler().turn(LABEL), err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=err, stderr=subprocess.STDOUT, start_new_session=True
        )
        last = time.monotonic()
        try:
            while True:
                finished = proc.poll() is not None
                records = tail.read()
                if records:
                    last = time.monotonic()
                for rec in records:
                    handle(ctx, spec, tag, rec, out, command)
                if finished:
                    break
                if ctx.stopped:
                    stop_group(proc)
                    return out
                if time.monotonic() - last > SILENT_S:
                    stop_group(proc)
                    raise RunFailed(
                        f"No rank wrote a line for {SILENT_S:.0f} s; the run was stopped.\n" + stderr_tail(err_path)
                    )
                time.sleep(0.2)
        finally:
            stop_group(proc)
    if proc.returncode != 0:
        raise RunFailed(
            f"torchrun ({spec.nproc} processes) exited with code {proc.returncode}:\n" + stderr_tail(err_path)
        )
    out["wall_s"] = time.perf_counter() - started
    out["seconds"] = max((d["seconds"] for d in out["done"]), default=0.0)
    ctx.report(
        1.0 if tag == "main" else None,
        f"{tag}: done",
        kind="run_end",
        run=tag,
        seconds=out["seconds"],
        wall_s=out["wall_s"],
        folder=str(folder),
    )
    return out


def handle(ctx, spec: RunSpec, tag: str, rec: dict, out: dict, command: list[str]) -> None:
    kind = rec.pop("kind")
    if kind == "start":
        if rec["rank"] == 0:
            out["start"] = rec
            ctx.report(
                None,
                f"{tag}: {rec['world']} processes on {rec['device']}",
                kind="start",
                run=tag,
                command=command,
                **{k: rec[k] for k in ("world", "device", "backend", "strategy", "n_params", "local_batch")},
            )
    elif kind == "step":
        out["steps"].append(rec)
        progress = rec["step"] / spec.steps if tag == "main" else None
        ctx.report(
            progress,
            f"{tag} rank {rec['rank']} step {rec['step']}: loss {rec['loss']:.4f}",
            kind="rank_step",
            run=tag,
            **rec,
        )
    elif kind == "memory":
        rec.pop("shapes", None)
        measured = {k: rec[k] for k in ("params", "grads", "optimizer", "activations")}
        pred = predicted(rec, out["start"], spec.strategy) if out["start"] else None
        out["memory"].append({"rank": rec["rank"], "measured": measured, "predicted": pred})
        ctx.report(None, "", kind="memory", run=tag, rank=rec["rank"], measured=measured, predicted=pred)
    elif kind == "done":
        out["done"].append(rec)


def median_step_s(steps: list[dict]) -> float:
    """Median step time of rank 0 after the first step (which pays for warm-up)."""
    times = [s["step_s"] for s in steps if s["rank"] == 0 and s["step"] > 1] or [s["step_s"] for s in steps]
    return statistics.median(times) if times else float("nan")


def compare(main: dict, single: dict) -> dict:
    ref = {s["step"]: s["loss"] for s in single["steps"]}
    gap = max((abs(s["loss"] - ref[s["step"]]) for s in main["steps"] if s["step"] in ref), default=float("nan"))
    return {
        "loss_gap": gap,
        "step_ratio": median_step_s(main["steps"]) / median_step_s(single["steps"]),
        "step_s": median_step_s(main["steps"]),
        "single_step_s": median_step_s(single["steps"]),
    }


def grad_check_gap(steps: list[dict]) -> float:
    """Largest difference, over the steps, between the ranks' gradient checksums (0 = identical)."""
    by_step: dict[int, list[float]] = {}
    for s in steps:
        by_step.setdefault(s["step"], []).append(s["grad_check"])
    return max((max(v) - min(v) for v in by_step.values()), default=0.0)


def distributed_job(ctx, spec: RunSpec, compare_single: bool = True) -> dict:
    """The job: the N-process run, then (compare_single and N > 1) the 1-process run at the same batch."""
    started = time.perf_counter()
    main = run_processes(ctx, spec, "main")
    result = {"spec": asdict(spec), "main": main, "single": None, "compare": None}
    if not ctx.stopped and compare_single and spec.nproc > 1:
        result["single"] = run_processes(ctx, replace(spec, nproc=1), "single")
        if not ctx.stopped:
            result["compare"] = compare(main, result["single"]) | {"grad_check_gap": grad_check_gap(main["steps"])}
            ctx.report(None, "compare", kind="compare", **result["compare"])
    result["seconds"] = time.perf_counter() - started
    ctx.report(None, "end", kind="end", stopped=ctx.stopped, seconds=result["seconds"])
    return result
