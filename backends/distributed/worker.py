"""One rank of a data-parallel run of the scratch GPT, started by torchrun:

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m backends.distributed.worker \
        --out RUN_FOLDER --strategy ddp --steps 30 --batch 12

Every rank draws the SAME global batch from one seeded generator and trains on its slice
(batch/world sequences), so 1 process and N processes see the same examples. DDP all-reduces
(averages) the gradients during backward; FSDP2 (`fully_shard`, each block and then the whole
model) keeps 1/N of every parameter, gradient and optimizer state and all-gathers a block's weights
just before it runs. gloo on CPU, NCCL when CUDA is there (one GPU per rank).

Each rank writes RUN_FOLDER/rank{r}.jsonl, one JSON object a line: "start"; per step "step" (loss
on its own slice, the all-reduced loss, the gradient norm of its own slice before the all-reduce
(DDP), the norm after, a checksum of a few gradient entries after the all-reduce, step seconds);
"memory" (bytes of its local parameters, gradients, optimizer state, and of the tensors saved for
backward); "done".
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import nullcontext

import torch
import torch.distributed as dist

from backends.scratch_gpt import GPT, GPTConfig, TrainSettings, get_batch, load_corpus, lr_at, make_optimizer, prepare

from .memory import counting_saved, local_tensor, state_bytes

CHECK_PARAMS = ("ln_f.weight", "h.0.ln_1.weight", "h.0.attn.c_attn.weight")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="run folder for the rank logs")
    p.add_argument("--strategy", choices=("ddp", "fsdp"), default="ddp")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=12, help="global batch (sequences), split across the ranks")
    p.add_argument("--corpus", default="shakespeare")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--embd", type=int, default=128)
    p.add_argument("--block", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1337)
    return p.parse_args(argv)


def setup() -> tuple[int, int, torch.device]:
    torch.set_num_threads(1)  # one core per rank: 2 ranks use 2 cores
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        device = torch.device("cuda", local)
    else:
        dist.init_process_group("gloo")
        device = torch.device("cpu")
    return dist.get_rank(), dist.get_world_size(), device


def wrap(model: torch.nn.Module, strategy: str, device: torch.device, norms: dict):
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in model.h:
            fully_shard(block)
        fully_shard(model)
        return model
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.nn.parallel import DistributedDataParallel as DDP

    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None, gradient_as_bucket_view=True)

    def hook(state, bucket):  # sees this rank's own gradients, then averages them over the ranks
        norms["local_sq"] += float(bucket.buffer().double().pow(2).sum())
        return default_hooks.allreduce_hook(None, bucket)

    ddp.register_comm_hook(None, hook)
    return ddp


def grad_checksum(model: torch.nn.Module) -> float:
    """A weighted sum of a few whole gradients (all-gathered under FSDP): the same on every rank."""
    named = {name.removeprefix("module."): p for name, p in model.named_parameters()}
    total = 0.0
    for name in CHECK_PARAMS:
        p = named.get(name)
        if p is None or p.grad is None:
            continue
        g = p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
        flat = g.detach().double().flatten().cpu()
        total += float((flat * torch.arange(1, flat.numel() + 1, dtype=torch.float64)).sum())
    return total


def build(args, world: int, device: torch.device):
    """The data, the model (the same start on every rank), its DDP or FSDP wrapper, the optimizer."""
    prepared = prepare(args.corpus, load_corpus(args.corpus), args.block)
    config = GPTConfig(
        vocab_size=prepared.tokenizer.vocab_size,
        block_size=args.block,
        n_layer=args.layers,
        n_head=args.heads,
        n_embd=args.embd,
        dropout=0.0,
    )
    s = TrainSettings(
        max_iters=args.steps,
        batch_size=args.batch,
        learning_rate=args.lr,
        warmup_iters=min(10, args.steps // 5),
        lr_decay_iters=args.steps,
        seed=args.seed,
    )
    model = GPT(config, torch.Generator().manual_seed(s.seed)).to(device)
    n_params = model.num_params()
    norms = {"local_sq": 0.0}
    model = wrap(model, args.strategy, device, norms)
    return prepared, config, s, model, make_optimizer(model, s), norms, n_params


def train(args, rank: int, world: int, device: torch.device, write) -> None:
    local_b = args.batch // world
    prepared, config, s, model, optimizer, norms, n_params = build(args, world, device)
    gen = torch.Generator().manual_seed(s.seed + 1)  # one generator, one global batch per step
    write(
        "start",
        world=world,
        strategy=args.strategy,
        device=str(device),
        backend=dist.get_backend(),
        local_batch=local_b,
        n_params=n_params,
        config=config.to_dict(),
        settings=s.to_dict(),
    )
    model.train()
    activations = 0
    started = time.perf_counter()
    for step in range(s.max_iters):
        x, y = get_batch(prepared.train, config.block_size, s.batch_size, gen)
        # a copy of this rank's rows: as if it had loaded only its own slice
        x, y = (z[rank * local_b : (rank + 1) * local_b].clone().to(device) for z in (x, y))
        lr = lr_at(step, s)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr
        norms["local_sq"] = 0.0
        with counting_saved() if step == 0 else nullcontext() as saved:
            _, loss = model(x, y)
        if saved is not None:
            activations = saved.total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)  # a DTensor under FSDP
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        took = time.perf_counter() - t0
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        write(
            "step",
            step=step + 1,
            loss_shard=float(loss.detach()),
            loss=float(mean) / world,
            lr=lr,
            step_s=took,
            grad_norm=float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm),
            grad_norm_local=(norms["local_sq"] ** 0.5 if args.strategy == "ddp" else None),
            grad_check=grad_checksum(model),
        )
    seconds = time.perf_counter() - started
    mem = state_bytes(model, optimizer)
    shapes = [list(local_tensor(p).shape) for p in model.parameters()]
    write("memory", **mem, activations=activations, local_batch=local_b, shapes=shapes)
    write("done", seconds=seconds, steps=s.max_iters)


def main(argv=None) -> None:
    args = parse_args(argv)
    rank, world, device = setup()
    if args.batch % world:
        raise SystemExit(f"The global batch {args.batch} does not split evenly over {world} ranks.")
    with open(os.path.join(args.out, f"rank{rank}.jsonl"), "a", encoding="utf-8", buffering=1) as log:

        def write(kind: str, **data) -> None:
            log.write(json.dumps({"kind": kind, "rank": rank, **data}) + "\n")

        train(args, rank, world, device, write)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
