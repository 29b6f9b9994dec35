"""The ladder on both shipped corpora: the bigram is a table of counts whose validation loss equals
one computed by hand with numpy, every rung is scored on every validation token, and the richer
models beat the simpler ones by stated margins."""

import math

import numpy as np
import pytest
import torch

from backends.core.jobs import shared_runner
from backends.scratch_gpt import (
    GPT,
    LADDER_LR,
    LADDER_STEPS,
    RUNGS,
    CountBigram,
    GPTConfig,
    TrainSettings,
    exact_loss,
    ladder_defaults,
    ladder_job,
    load_corpus,
    prepare,
)
from backends.scratch_gpt.ladder import K_GRID

# Small enough for well under a minute per corpus on two cores; the figures and their spread over
# seeds are in docs/scratch_gpt.md. The margins hold at every seed measured there.
CONFIG = GPTConfig(block_size=32, n_layer=4, n_head=4, n_embd=32)
SETTINGS = TrainSettings(batch_size=16)  # warm-up: a tenth of the steps; peak learning rate 1e-2 on both
STEPS = {"shakespeare": 800, "tang_song": 450}


@pytest.fixture(scope="module", params=["shakespeare", "tang_song"])
def corpus(request):
    return prepare(request.param, load_corpus(request.param), CONFIG.block_size)


def by_hand(prepared):
    """Counts, add-k by leave-one-out over 0.001 ... 1, the validation loss and the add-one unigram, in numpy."""
    train, val, v = prepared.train.numpy(), prepared.val.numpy(), prepared.tokenizer.vocab_size
    counts = np.zeros((v, v))
    np.add.at(counts, (train[:-1], train[1:]), 1)
    rows = counts.sum(1)
    a, b = train[:-1], train[1:]
    grid = [10 ** (e / 4) for e in range(-12, 1)]
    # each training pair scored by the table counted without it
    loo = [np.log((counts[a, b] - 1 + k) / (rows[a] - 1 + k * v)).sum() for k in grid]
    k = grid[int(np.argmax(loo))]
    probs = (counts + k) / (rows[:, None] + k * v)
    val_loss = -np.log(probs[val[:-1], val[1:]]).mean()
    unigram = (np.bincount(train, minlength=v) + 1) / (len(train) + v)
    return counts, k, val_loss, -np.log(unigram[val]).mean()


def test_the_bigram_is_a_table_of_counts_with_an_exact_validation_loss(corpus):
    counts, k, val_loss, unigram = by_hand(corpus)
    model = CountBigram.fit(corpus.train, corpus.tokenizer.vocab_size)
    assert list(K_GRID) == pytest.approx([10 ** (e / 4) for e in range(-12, 1)])
    assert np.array_equal(model.counts.numpy(), counts) and model.k == pytest.approx(k)
    assert list(model.parameters()) == [], "nothing to train"
    rows = torch.exp(model(torch.arange(corpus.tokenizer.vocab_size)[None])[0][0])
    assert torch.allclose(rows.sum(1), torch.ones(len(rows)), atol=1e-4), "each row is a distribution"
    # every validation pair scored once, whatever the window length
    for block in (CONFIG.block_size, 7):
        assert exact_loss(model, corpus.val, block) == pytest.approx(val_loss, rel=1e-6)
    assert val_loss < unigram - 0.3, (val_loss, unigram)
    assert unigram == pytest.approx(corpus.unigram_loss(), rel=1e-9)
    top, table = model.top_table(5)
    order = np.argsort(-counts.sum(1), kind="stable")[:5]
    assert top == order.tolist() and table == counts[np.ix_(order, order)].astype(int).tolist()


def test_exact_loss_scores_each_target_once_with_the_context_of_its_window():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)).eval()
    data = torch.randint(0, 11, (30,))
    total = 0.0
    for i in range(1, len(data)):  # target data[i], seen from the start of its window of 8
        start = (i - 1) // 8 * 8
        logits = model(data[start:i][None])[0][0, -1]
        total -= torch.log_softmax(logits, -1)[data[i]].item()
    assert exact_loss(model, data, 8, batch_size=2) == pytest.approx(total / (len(data) - 1), rel=1e-5)


def test_the_page_defaults_follow_the_texts_size(corpus):
    """Shakespeare (846,080 training characters): 1,000 steps at 1e-2; the poems (35,312): 300 at 1e-3."""
    expected = {"shakespeare": (1000, 1e-2), "tang_song": (300, 1e-3)}[corpus.name]
    assert ladder_defaults(corpus) == expected and (LADDER_STEPS, LADDER_LR) == (1000, 1e-2)


def test_each_model_beats_the_simpler_ones(corpus):
    """unigram > bigram > every trained rung, and MLP > full, on both corpora; MLP > one attention layer
    on Shakespeare: what held at each of three seeds, by the margins below. Not asserted, as it is not
    so at these budgets (figures: docs/scratch_gpt.md): one layer against four (four ahead or behind
    by seed: depth pays off later), and one layer against the MLP on the 35,000-character Chinese
    text (the 8-character MLP is ahead by 0.016-0.058)."""
    _, _, bigram, unigram = by_hand(corpus)
    job = shared_runner().submit(
        "scratch_gpt-ladder-test", ladder_job, corpus, CONFIG, SETTINGS, STEPS[corpus.name], RUNGS, 1e-2
    )
    assert job.wait(300) and job.status == "done", job.error
    results = job.result
    assert [r["rung"] for r in results] == list(RUNGS)
    assert [r.get("lr") for r in results] == [None, 1e-2, 1e-2, 1e-2]
    losses = {r["rung"]: r["val_loss"] for r in results}
    assert losses["bigram"] == pytest.approx(bigram, rel=1e-6), "the job's bigram is the table counted by hand"
    assert bigram < unigram - 0.3, (bigram, unigram)
    trained = [losses["mlp"], losses["one_layer"], losses["full"]]
    assert max(trained) < bigram - 0.1, (corpus.name, losses)
    assert losses["full"] < losses["mlp"] - 0.05, (corpus.name, losses)
    if corpus.name == "shakespeare":
        assert losses["one_layer"] < losses["mlp"] - 0.03, losses
    assert results[0]["table"] and results[0]["cells"] == corpus.tokenizer.vocab_size**2
    assert all(math.isfinite(r["seconds"]) for r in results)
