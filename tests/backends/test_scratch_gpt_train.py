"""Training the scratch GPT for real on the shipped corpora: it learns, it is reproducible, it stops and resumes."""

import math
from dataclasses import replace

import pytest
import torch

from backends.core.jobs import STOPPED, shared_runner
from backends.scratch_gpt import (
    RUNGS,
    GPTConfig,
    TrainSettings,
    export_hf,
    ladder_job,
    load_corpus,
    prepare,
    sample,
    train_job,
)

SMALL = GPTConfig(block_size=32, n_layer=2, n_head=4, n_embd=64)
QUICK = TrainSettings(
    max_iters=200,
    batch_size=16,
    learning_rate=3e-3,
    min_lr=3e-4,
    warmup_iters=20,
    lr_decay_iters=200,
    eval_interval=100,
    eval_iters=10,
    sample_interval=100,
    sample_chars=40,
)


@pytest.fixture(scope="module")
def english():
    return prepare("shakespeare", load_corpus("shakespeare"), SMALL.block_size)


def run(prepared, settings, resume=None, config=SMALL):
    job = shared_runner().submit("scratch_gpt-test", train_job, prepared, config, settings, resume)
    assert job.wait(300) and job.status == "done", job.error
    return job


def test_200_steps_on_shakespeare_beat_the_unigram_baseline(english, tmp_path):
    job = run(english, QUICK)
    ckpt = job.result
    unigram = english.unigram_loss()
    evals = ckpt.evals()
    assert [e["step"] for e in evals] == [0, 100, 200]
    assert evals[0]["val_loss"] > unigram > evals[-1]["val_loss"], (evals, unigram)
    assert math.isclose(evals[0]["val_loss"], math.log(english.tokenizer.vocab_size), rel_tol=0.1)
    steps = [e.data for e in job.events_since(0) if e.data.get("kind") == "step"]
    assert len(steps) == 200 and all(s["tokens_per_s"] > 0 for s in steps)
    assert 0 < ckpt.cpu_seconds <= ckpt.seconds * 1.05
    samples = [e.data["text"] for e in job.events_since(0) if e.data.get("kind") == "sample"]
    assert len(samples) == 2 and all(len(s) == 40 for s in samples)
    # The reported validation loss, recomputed without our model or our evaluation: the model exported to
    # transformers (GPT-2) scores the same eval_iters batches, drawn here as nanoGPT draws them (a generator
    # seeded with the run's seed, random windows of the validation text), with F.cross_entropy.
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(export_hf(ckpt.model, english.tokenizer, tmp_path / "gpt")).eval()
    gen = torch.Generator().manual_seed(QUICK.seed)
    windows = [
        torch.randint(len(english.val) - SMALL.block_size, (QUICK.batch_size,), generator=gen).tolist()
        for _ in range(QUICK.eval_iters)
    ]
    x = torch.stack([english.val[i : i + SMALL.block_size] for batch in windows for i in batch])
    y = torch.stack([english.val[i + 1 : i + 1 + SMALL.block_size] for batch in windows for i in batch])
    with torch.no_grad():
        logits = hf(input_ids=x).logits  # (eval_iters * batch_size, block_size, vocab)
    independent = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()).item()
    assert math.isclose(independent, ckpt.val_loss, rel_tol=1e-5), (independent, ckpt.val_loss)


def test_same_seed_same_run_and_resume_continues_exactly(english):
    short = replace(QUICK, max_iters=6, eval_interval=0, sample_interval=0, eval_iters=2)
    straight = run(english, replace(short, max_iters=12)).result
    twin = run(english, replace(short, max_iters=12)).result
    other = run(english, replace(short, max_iters=12, seed=7)).result

    def losses(c):
        return [e["loss"] for e in c.history if e["kind"] == "step"]

    assert losses(straight) == losses(twin) and losses(straight) != losses(other)
    first = run(english, short).result
    before = [p.clone() for p in first.model.parameters()]
    resumed = run(english, replace(short, max_iters=12), resume=first).result
    assert resumed.step == 12 and losses(resumed) == losses(straight)
    assert all(torch.equal(a, b) for a, b in zip(before, first.model.parameters())), "the old checkpoint stays"
    x = torch.tensor([english.tokenizer.encode("ROMEO:")])
    assert torch.equal(resumed.model(x)[0], straight.model(x)[0])


def test_stop_keeps_the_run_so_far(english):
    job = shared_runner().submit(
        "scratch_gpt-test",
        train_job,
        english,
        SMALL,
        replace(QUICK, max_iters=5000, eval_interval=0, sample_interval=0, eval_iters=2),
    )
    while not any(e.data.get("kind") == "step" for e in job.events_since(0)):
        assert not job.wait(0.05) or job.status != "failed", job.error
    job.stop()
    assert job.wait(60) and job.status == STOPPED
    ckpt = job.result
    assert 0 < ckpt.step < 5000 and ckpt.evals()[-1]["step"] == ckpt.step
    assert job.events_since(0)[-1].data == {"kind": "end", "step": ckpt.step, "stopped": True}


def test_ladder_trains_every_rung_on_the_same_batches(english):
    job = shared_runner().submit(
        "scratch_gpt-ladder-test", ladder_job, english, SMALL, replace(QUICK, eval_iters=4), 40
    )
    assert job.wait(300) and job.status == "done", job.error
    results = job.result
    assert [r["rung"] for r in results] == list(RUNGS)
    params = [r["params"] for r in results]
    assert params[0] == english.tokenizer.vocab_size**2 and params[2] < params[3]
    assert all(r["val_loss"] < math.log(english.tokenizer.vocab_size) for r in results)


def test_sampling_is_seeded_and_chinese_trains(english):
    poems = prepare("tang_song", load_corpus("tang_song"), 16)
    assert poems.tokenizer.vocab_size > 2000 and "月" in poems.tokenizer.stoi
    tiny = replace(QUICK, max_iters=3, eval_interval=0, sample_interval=0, eval_iters=2)
    ckpt = run(poems, tiny, config=GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=32)).result
    a = sample(ckpt.model, ckpt.tokenizer, "床前", 10, 1.0, seed=3)
    assert a == sample(ckpt.model, ckpt.tokenizer, "床前", 10, 1.0, seed=3) and a.startswith("床前") and len(a) == 12


def test_a_bpe_from_the_tokenizer_page_trains_saves_and_exports(tmp_path):
    """The tokenizer page's trained BPE as the GPT's tokens: it trains (loss falls below the unigram
    baseline of its own tokens), covers more characters per token than characters do, and the saved
    and exported models round-trip with that tokenizer (transformers generates through it)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backends.scratch_gpt import SubwordTokenizer, export_hf, load
    from backends.tokenizers.training import train as train_tokenizer

    text = load_corpus("shakespeare")
    trained = train_tokenizer("bpe", text[:200_000], 600)
    tok = SubwordTokenizer("bpe-600", trained.data.decode("utf-8"))
    assert tok.vocab_size == trained.vocab_size and tok.decode(tok.encode("ROMEO: But soft")) == "ROMEO: But soft"
    prepared = prepare("shakespeare", text, SMALL.block_size, tokenizer=tok)
    assert prepared.chars_per_token > 2 and prepared.tokenizer is tok
    ckpt = run(
        prepared,
        replace(QUICK, max_iters=120, eval_interval=60, sample_interval=0),
        config=replace(SMALL, vocab_size=tok.vocab_size),
    ).result
    assert ckpt.evals()[-1]["val_loss"] < prepared.unigram_loss()
    assert len(sample(ckpt.model, tok, "ROMEO:", 10, 0.8, 0)) > len("ROMEO:")
    model, again, _ = load(export_hf(ckpt.model, tok, tmp_path / "bpe-gpt"))
    assert again.to_json() == tok.to_json() and again.itos == tok.itos
    hf_tok = AutoTokenizer.from_pretrained(tmp_path / "bpe-gpt")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "bpe-gpt")
    ids = hf_tok("ROMEO:", return_tensors="pt").input_ids
    assert ids[0].tolist() == tok.encode("ROMEO:")
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, model(ids)[0], atol=1e-4)
