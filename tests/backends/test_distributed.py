"""Real torchrun runs of the scratch GPT on 2 CPU processes (gloo): DDP and FSDP give the loss curve
of one process at the same global batch (checked against a plain training loop written here), the
gradients agree across ranks after the all-reduce, the bytes each rank holds are the calculator's,
and a crashing rank or a Stop ends the run cleanly."""

import math
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from backends.core.jobs import FAILED, STOPPED, shared_runner
from backends.distributed import RunSpec, distributed_job, gpt_shape, local_numel, runs_root, torchrun_command
from backends.scratch_gpt import GPT, GPTConfig, TrainSettings, get_batch, load_corpus, lr_at, make_optimizer, prepare

TINY = RunSpec(nproc=2, steps=5, batch=4, layers=2, heads=2, embd=32, block=16)
# The same examples, summed in another order (two halves, then averaged): float32 rounding only.
LOSS_TOL = 1e-5


def reference_losses(spec: RunSpec) -> list[float]:
    """One process, the whole global batch, a plain loop: what every rank count must reproduce."""
    prepared = prepare(spec.corpus, load_corpus(spec.corpus), spec.block)
    config = GPTConfig(
        vocab_size=prepared.tokenizer.vocab_size,
        block_size=spec.block,
        n_layer=spec.layers,
        n_head=spec.heads,
        n_embd=spec.embd,
    )
    s = TrainSettings(
        max_iters=spec.steps,
        batch_size=spec.batch,
        learning_rate=spec.lr,
        warmup_iters=min(10, spec.steps // 5),
        lr_decay_iters=spec.steps,
        seed=spec.seed,
    )
    model = GPT(config, torch.Generator().manual_seed(s.seed))
    optimizer = make_optimizer(model, s)
    gen = torch.Generator().manual_seed(s.seed + 1)
    losses = []
    for step in range(s.max_iters):
        x, y = get_batch(prepared.train, spec.block, spec.batch, gen)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, s)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        optimizer.step()
        losses.append(loss.item())
    return losses


def run(spec: RunSpec, compare: bool = True):
    job = shared_runner().submit("distributed-test", distributed_job, spec, compare)
    assert job.wait(600)
    assert job.status == "done", job.error
    return job


def per_rank(steps, rank):
    return [s for s in sorted(steps, key=lambda s: s["step"]) if s["rank"] == rank]


@pytest.fixture(scope="module")
def reference():
    return reference_losses(TINY)


def test_ddp_two_processes_match_one(reference):
    job = run(TINY)
    result = job.result
    main, single = result["main"], result["single"]
    assert Path(main["folder"]).parent == runs_root()
    assert str(runs_root()).startswith(os.environ["LLMPG_CACHE_DIR"])
    for rank in (0, 1):
        losses = [s["loss"] for s in per_rank(main["steps"], rank)]
        assert len(losses) == TINY.steps
        assert max(abs(a - b) for a, b in zip(losses, reference, strict=True)) < LOSS_TOL
    single_losses = [s["loss"] for s in per_rank(single["steps"], 0)]
    assert max(abs(a - b) for a, b in zip(single_losses, reference, strict=True)) < LOSS_TOL
    assert result["compare"]["loss_gap"] < LOSS_TOL
    # after the all-reduce every rank holds the same gradient; before it, each its own slice's
    assert result["compare"]["grad_check_gap"] == 0.0
    r0, r1 = per_rank(main["steps"], 0), per_rank(main["steps"], 1)
    assert all(a["grad_norm"] == b["grad_norm"] for a, b in zip(r0, r1, strict=True))
    assert any(abs(a["grad_norm_local"] - b["grad_norm_local"]) > 1e-3 for a, b in zip(r0, r1, strict=True))
    assert any(abs(a["loss_shard"] - b["loss_shard"]) > 1e-4 for a, b in zip(r0, r1, strict=True))
    for a, b in zip(r0, r1, strict=True):
        assert math.isclose(a["loss"], (a["loss_shard"] + b["loss_shard"]) / 2, rel_tol=1e-6)
    # DDP: every rank a full replica: 4 bytes a parameter for weights and gradients, 8 for AdamW's two states
    n = next(e.data["n_params"] for e in job.events_since(0) if e.data.get("kind") == "start")
    for mem in main["memory"]:
        assert mem["measured"]["params"] == mem["measured"]["grads"] == 4 * n
        assert mem["measured"] == {k: v for k, v in mem["predicted"].items() if k != "total"}
    kinds = [e.data.get("kind") for e in job.events_since(0)]
    assert kinds.count("rank_step") == 3 * TINY.steps and kinds[-1] == "end" and "compare" in kinds


def test_fsdp_matches_one_process_and_shards_memory(reference):
    spec = RunSpec(**{**TINY.__dict__, "strategy": "fsdp"})
    result = run(spec, compare=False).result
    main = result["main"]
    for rank in (0, 1):
        losses = [s["loss"] for s in per_rank(main["steps"], rank)]
        assert max(abs(a - b) for a, b in zip(losses, reference, strict=True)) < LOSS_TOL
    config = GPTConfig(vocab_size=77, block_size=16, n_layer=2, n_head=2, n_embd=32)
    full = GPT(config)
    n = full.num_params()
    shapes = [tuple(p.shape) for p in full.parameters()]
    total_params = 0
    for mem in main["memory"]:
        measured, rank = mem["measured"], mem["rank"]
        # each parameter split on its first dimension as torch.chunk does
        chunked = sum(p.detach().chunk(2)[rank].numel() if rank < len(p.chunk(2)) else 0 for p in full.parameters())
        assert measured["params"] == measured["grads"] == 4 * chunked == 4 * local_numel(shapes, 2, rank)
        # AdamW: exp_avg and exp_avg_sq shards, and one fp32 step counter a parameter tensor
        assert measured["optimizer"] == 8 * chunked + 4 * len(shapes)
        assert measured == {k: v for k, v in mem["predicted"].items() if k != "total"}
        total_params += measured["params"]
    assert total_params == 4 * n
    assert gpt_shape(config).vocab == 77


def test_a_crashing_rank_gives_its_error():
    job = shared_runner().submit("distributed-test", distributed_job, RunSpec(**{**TINY.__dict__, "corpus": "nope"}))
    assert job.wait(600)
    assert job.status == FAILED
    assert "Unknown corpus 'nope'" in job.error and "exited with code" in job.error


def test_stop_kills_the_process_group():
    job = shared_runner().submit("distributed-test", distributed_job, RunSpec(**{**TINY.__dict__, "steps": 2000}))
    while not any(e.data.get("kind") == "rank_step" for e in job.events_since(0)):
        assert not job.wait(0.2), job.error
    job.stop()
    assert job.wait(60)
    assert job.status == STOPPED
    folder = Path(job.result["main"]["folder"]) if job.result else None
    steps = [e.data for e in job.events_since(0) if e.data.get("kind") == "rank_step"]
    assert 0 < len(steps) < 2 * 2000
    # no rank goes on writing once the job has stopped
    if folder is not None:
        sizes = [p.stat().st_size for p in folder.glob("rank*.jsonl")]
        time.sleep(1.0)
        assert sizes == [p.stat().st_size for p in folder.glob("rank*.jsonl")]


def test_command_line():
    cmd = torchrun_command(RunSpec(nproc=2, strategy="fsdp"), "/tmp/run")
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    assert cmd[6:8] == ["-m", "backends.distributed.worker"]
    assert "--strategy" in cmd and cmd[cmd.index("--strategy") + 1] == "fsdp"
    with pytest.raises(ValueError, match="split evenly"):
        RunSpec(nproc=2, batch=5)
    assert signal.SIGTERM  # stop sends SIGTERM to the group first
