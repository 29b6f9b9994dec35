"""Alignment: fast DPO's throughput, its step against the TRL way, the brevity rule before and after
a default run, and votes from a class written at once.

- Step ratio: one DPO optimizer step (forward, backward, clip, AdamW) on the same batch of
  `batch_pairs` shipped pairs. Ours: backends/alignment/fast.py's cached top-layer step (LoRA on
  the top K layers, lower layers and reference cached, head on response positions; the cache is
  filled first and not timed). The TRL way: TRL 1.16's real `DPOTrainer` on the CPU (`use_cpu`),
  LoRA on all 30 layers' same target modules with the same rank and alpha, the reference recomputed
  every step with the adapters disabled (precompute_ref_log_probs=False), its full head; in float32
  without gradient checkpointing (TRL's defaults, bf16 and checkpointing, would make its step slower
  and its numbers different), a 4-pair dataset so that every step sees the same batch; the step time
  is the median from a TrainerCallback (on_step_begin -> on_step_end), the first step dropped as a
  warm-up. When the real trainer cannot run here, `dpo.batch_loss` on a full LoRA copy (held equal to
  TRL's loss by tests/backends/test_alignment_dpo.py) stands in, and the table says so. For
  reference, that plain loop is also timed beside TRL. All three run on this thread with --threads
  torch threads.
- Default run: `train.prepare_and_train` with `DpoSettings()` on `rule.shipped_pairs()`, submitted
  to the shared job runner (its thread gets --threads torch threads through LLMPG_JOB_THREADS);
  dpo_s = submit to end, prepare included; dpo_pairs_per_s = pairs trained / training seconds
  (prepare excluded, the KL probes included).
- Brevity rule: `rule.rule_win_rate` (greedy, 48 new tokens, the 60 held-out prompts) on the shared
  base model and on the trained LoRA copy.
- Votes: 30 threads x 20 votes into one class set of a temporary PreferenceStore (each vote also
  retried once); votes_lost = votes written - votes stored.
The shared cached model's checksum is compared before and after everything.

Usage: .venv/bin/python bench/alignment.py [--threads 2] [--repeats 5] [--settings '{"epochs": 1.0}']
Last line: {"dpo_pairs_per_s": ..., "dpo_step_ratio": ..., "rule_win_base": ..., "rule_win_dpo": ...,
            "dpo_s": ..., "votes_lost": ..., ...}
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path, where bench/tokenizers.py would shadow the
# `tokenizers` package that transformers imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import torch

from backends.alignment import config, dpo, fast, rule
from backends.alignment.store import PreferenceStore
from backends.alignment.train import prepare_and_train
from backends.core.jobs import THREADS_ENV, shared_runner
from backends.models.cache import shared_cache
from backends.models.loaders import frozen_view

MODEL = "smollm2-135m-instruct"


def checksum(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def votes_lost(voters: int = 30, each: int = 20) -> tuple[int, int]:
    """(written, stored) for `voters` threads adding `each` votes (and one retry of each) at once."""
    with tempfile.TemporaryDirectory() as tmp:
        store = PreferenceStore(Path(tmp) / "votes.sqlite3")
        code = store.create_set([f"prompt {i}" for i in range(5)], "bench").code
        start, errors = threading.Barrier(voters), []

        def voter(v: int) -> None:
            start.wait()
            try:
                for i in range(each):
                    args = (code, f"voter-{v}", i % 5, "base", "dpo", f"a{v}.{i}", f"b{v}.{i}", "AB"[i % 2])
                    store.add_vote(*args, vote_id=f"{v}-{i}")
                    store.add_vote(*args, vote_id=f"{v}-{i}")  # a retry: stored once
            except Exception as exc:  # noqa: BLE001 - counted, shown in the table
                errors.append(repr(exc))

        threads = [threading.Thread(target=voter, args=(v,)) for v in range(voters)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            print(f"vote errors: {errors[:3]}")
        return voters * each, len(store.votes(code))


def our_step_s(loaded, pairs, settings, repeats: int) -> tuple[float, float]:
    """Median seconds of one fast DPO optimizer step on `pairs` (cache filled first), and the loss."""
    prepared = fast.prepare(loaded.model, loaded.tokenizer, pairs, settings)
    split = fast.TopLayers(prepared.model, settings.top_layers)
    params = [p for p in prepared.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    times, first = [], None
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        out = fast.step_loss(split, prepared.pairs, settings.beta, settings.loss_type)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
        first = out.loss.item() if first is None else first
    return statistics.median(times[1:]), first


def full_lora_config(settings):
    from peft import LoraConfig

    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=0.0,
        target_modules=list(settings.target_modules),
        task_type="CAUSAL_LM",
    )


def plain_step_s(loaded, pairs, settings, repeats: int) -> tuple[float, float]:
    """The TRL way written with dpo.py: LoRA on all layers, the reference recomputed (adapters off), full head."""
    from peft import get_peft_model

    torch.manual_seed(settings.seed)
    model = get_peft_model(frozen_view(loaded.model), full_lora_config(settings))
    model.train()
    encoded = [dpo.encode_pair(loaded.tokenizer, p.prompt, p.chosen, p.rejected) for p in pairs]
    batch = dpo.collate_pairs(encoded, loaded.tokenizer.pad_token_id, settings.max_length)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    n = len(pairs)
    times, first = [], None
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        logps, _ = dpo.sequence_logps(model, batch)
        with torch.no_grad(), model.disable_adapter():
            ref, _ = dpo.sequence_logps(model, batch)
        out = dpo.dpo_loss(logps[:n], logps[n:], ref[:n], ref[n:], settings.beta, settings.loss_type)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
        first = out.loss.item() if first is None else first
    return statistics.median(times[1:]), first


def trl_step_s(loaded, pairs, settings, repeats: int) -> tuple[float, float]:
    """TRL 1.16's DPOTrainer on the CPU, the same batch every step; median step time from a callback."""
    import datasets
    from transformers import PrinterCallback, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    datasets.disable_progress_bars()

    class Timer(TrainerCallback):
        def __init__(self):
            self.times, self.losses, self.t0 = [], [], 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self.t0)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

    timer = Timer()
    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(
            output_dir=out,
            beta=settings.beta,
            loss_type=[settings.loss_type],
            learning_rate=settings.learning_rate,
            lr_scheduler_type="linear",
            per_device_train_batch_size=len(pairs),
            max_steps=repeats + 1,
            max_length=settings.max_length,
            max_grad_norm=settings.max_grad_norm,
            precompute_ref_log_probs=False,
            activation_checkpointing=False,
            bf16=False,
            use_cpu=True,
            seed=settings.seed,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        torch.manual_seed(settings.seed)
        trainer = DPOTrainer(
            model=frozen_view(loaded.model),  # peft wraps this private copy; the cached model is untouched
            args=args,
            train_dataset=datasets.Dataset.from_list([p.row() for p in pairs]),
            processing_class=loaded.tokenizer,
            peft_config=full_lora_config(settings),
            callbacks=[timer],
        )
        trainer.remove_callback(PrinterCallback)  # its log lines would bury the table
        if trainer.args.activation_checkpointing or trainer.args.bf16:
            raise RuntimeError("TRL would run with activation checkpointing or bf16: not the same work as ours")
        threads = torch.get_num_threads()
        trainer.train()
        torch.set_num_threads(threads)  # in case the trainer changed it
    return statistics.median(timer.times[1:]), timer.losses[0] if timer.losses else float("nan")


def default_run(loaded, pairs, settings, threads: int):
    os.environ[THREADS_ENV] = str(threads)
    started = time.perf_counter()
    job = shared_runner().submit("alignment-bench", prepare_and_train, loaded.model, loaded.tokenizer, pairs, settings)
    job.wait()
    seconds = time.perf_counter() - started
    if job.status != "done":
        raise SystemExit(f"the DPO job ended {job.status}: {job.error}")
    return job.result, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per side (after one warm-up step)")
    parser.add_argument("--settings", default="{}", help="DpoSettings fields as JSON, over the defaults")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = config.DpoSettings.from_dict(json.loads(args.settings))

    written, stored = votes_lost()
    loaded = shared_cache().get(MODEL)
    before = checksum(loaded.model)
    pairs = rule.shipped_pairs()
    heldout = rule.heldout_prompts()

    batch = pairs[: settings.batch_pairs]
    ours_s, ours_loss = our_step_s(loaded, batch, settings, args.repeats)
    plain_s, plain_loss = plain_step_s(loaded, batch, settings, max(2, args.repeats // 2))
    try:
        trl_s, trl_loss = trl_step_s(loaded, batch, settings, args.repeats)
        way = "TRL 1.16 DPOTrainer"
    except Exception as exc:  # noqa: BLE001 - said in the table; the plain loop stands in
        print(f"TRL DPOTrainer could not run here ({type(exc).__name__}: {exc}); dpo.batch_loss stands in")
        trl_s, trl_loss, way = plain_s, plain_loss, "dpo.batch_loss, full LoRA (TRL could not run)"
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    base = rule.rule_win_rate(loaded.model, loaded.tokenizer, heldout)
    base_eval_s = time.perf_counter() - t0
    result, dpo_s = default_run(loaded, pairs, settings, args.threads)
    t0 = time.perf_counter()
    trained = rule.rule_win_rate(result.model, loaded.tokenizer, heldout)
    dpo_eval_s = time.perf_counter() - t0
    untouched = checksum(loaded.model) == before

    steps = result.steps
    pairs_per_s = result.pairs_seen / result.seconds
    kls = [(p["step"], p["kl"]) for p in steps if p["kl"] is not None]
    words = {
        name: statistics.mean(len(a.text.split()) for a in rep.answers)
        for name, rep in (("base", base), ("dpo", trained))
    }
    s = settings
    length = f"{s.max_steps} steps" if s.max_steps else f"{s.epochs:g} epochs"
    print(
        f"SmolLM2-135M-Instruct fast DPO on {len(pairs)} shipped brevity pairs; beta {s.beta} {s.loss_type}, "
        f"LoRA r={s.rank} alpha={s.alpha} on the top {s.top_layers} layers, lr {s.learning_rate}, "
        f"{s.batch_pairs} pairs/step, {length}; torch threads {args.threads}"
    )
    print()
    print(f"One DPO optimizer step on the same {len(batch)} pairs (median of {args.repeats} after a warm-up)")
    print(f"{'side':<52}{'s/step':>8}{'first loss':>12}{'ours x':>9}")
    print(f"{'ours: fast.step_loss (top layers, cached)':<52}{ours_s:>8.3f}{ours_loss:>12.5f}{1.0:>9.2f}")
    print(f"{'TRL way: ' + way:<52}{trl_s:>8.3f}{trl_loss:>12.5f}{trl_s / ours_s:>9.2f}")
    print(
        f"{'plain: dpo.batch_loss on a full LoRA copy':<52}{plain_s:>8.3f}{plain_loss:>12.5f}{plain_s / ours_s:>9.2f}"
    )
    print()
    print(
        f"Default run: {dpo_s:.1f} s in all (prepare {result.prepare_seconds:.1f} s, training {result.seconds:.1f} s)"
    )
    print(
        f"  {len(steps)} steps, {result.pairs_seen} pairs, {pairs_per_s:.2f} pairs/s "
        f"(median step {statistics.median(p['pairs_per_s'] for p in steps):.2f} pairs/s)"
    )
    print(
        f"  loss {steps[0]['loss']:.4f} -> {steps[-1]['loss']:.4f}, last margin {steps[-1]['margin']:.3f}, "
        f"accuracy {steps[-1]['accuracy']:.2f}"
    )
    print(f"  KL(policy || reference) per token on the probe set: {', '.join(f'{k}: {v:.4f}' for k, v in kls)}")
    print(
        f"  cache: {result.cache_bytes / 2**20:.1f} MB for {len(pairs)} pairs "
        f"({result.cache_bytes / len(pairs) / 1024:.0f} KB per pair: each token's hidden state entering layer "
        f"{loaded.model.config.num_hidden_layers - s.top_layers}, float32, and its id)"
    )
    print()
    print(f"Brevity rule on {len(heldout)} held-out prompts (stops by itself within {rule.MAX_WORDS} words)")
    print(f"{'model':<8}{'win rate':>10}{'stopped':>9}{'mean words':>12}{'eval s':>8}")
    for name, rep, sec in (("base", base, base_eval_s), ("dpo", trained, dpo_eval_s)):
        stopped = sum(a.stopped for a in rep.answers)
        print(f"{name:<8}{rep.rate:>10.3f}{stopped:>9}{words[name]:>12.1f}{sec:>8.1f}")
    for a in trained.answers[:3]:
        print(f"  dpo: {a.text!r}")
    print()
    print(f"Votes: {written} written by 30 threads (each also retried), {stored} stored")
    print(f"cached model unchanged: {untouched}")
    if not untouched:
        raise SystemExit("the shared cached model changed during the bench")
    print(
        json.dumps(
            {
                "dpo_pairs_per_s": round(pairs_per_s, 3),
                "dpo_step_ratio": round(trl_s / ours_s, 2),
                "rule_win_base": round(base.rate, 3),
                "rule_win_dpo": round(trained.rate, 3),
                "dpo_s": round(dpo_s, 1),
                "votes_lost": written - stored,
                "prepare_s": round(result.prepare_seconds, 1),
                "ours_step_s": round(ours_s, 3),
                "trl_step_s": round(trl_s, 3),
                "trl_way": "trl" if way.startswith("TRL 1.16") else "dpo.batch_loss",
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
