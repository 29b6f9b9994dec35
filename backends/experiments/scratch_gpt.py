"""GPT-from-scratch experiments on the hand-written model of backends.scratch_gpt: an untrained model's
loss, and what the model's size and the corpus's alphabet cost. Small models built in milliseconds."""

from __future__ import annotations

import math

import torch

from backends import scratch_gpt as sg
from backends.experiments.base import Experiment, fmt, observation

CORPUS = "shakespeare"


def _params(config: sg.GPTConfig) -> int:
    return sum(p.numel() for p in sg.GPT(config, torch.Generator().manual_seed(0)).parameters())


def measure_untrained_loss(params, device):
    """The loss of a freshly initialised model on held-out text, against ln(vocabulary size)."""
    prepared = sg.prepare(params["corpus"], sg.load_corpus(params["corpus"]), params["block_size"])
    vocab = prepared.tokenizer.vocab_size
    config = sg.GPTConfig(vocab_size=vocab, block_size=params["block_size"])
    model = sg.GPT(config, torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss = sg.estimate_loss(model, prepared.val, config.block_size, 8, 2)
    unigram = prepared.unigram_loss()
    guesses = {"ln_v": math.log(vocab), "zero": 0.0, "unigram": unigram}
    outcome = min(guesses, key=lambda g: abs(loss - guesses[g]))
    return observation(
        "scratch_gpt.untrained",
        outcome,
        "ln_v",
        loss=fmt(loss),
        vocab=vocab,
        ln_v=fmt(math.log(vocab)),
        unigram=fmt(unigram),
    )


def measure_width(params, device):
    """Parameters of the baby model (on the corpus's vocabulary, as the page builds it) at n_embd 128 and 256:
    the blocks grow with the square of the width."""
    vocab = sg.CharTokenizer.from_text(sg.load_corpus(params["corpus"])).vocab_size
    small, large = (_params(sg.GPTConfig(vocab_size=vocab, n_embd=d)) for d in params["widths"])
    ratio = large / small
    outcome = min(("x2", "x4", "x8"), key=lambda c: abs(math.log(ratio) - math.log(int(c[1:]))))
    return observation(
        "scratch_gpt.width",
        outcome,
        "x4",
        small=f"{small:,}",
        large=f"{large:,}",
        ratio=fmt(ratio, 1),
        d_small=params["widths"][0],
        d_large=params["widths"][1],
    )


def measure_alphabet(params, device):
    """Distinct characters (the vocabulary of a character-level model) of the English and the Chinese corpus."""
    en, zh = (sg.CharTokenizer.from_text(sg.load_corpus(c)).vocab_size for c in ("shakespeare", "tang_song"))
    outcome = "chinese" if zh > en else "english" if en > zh else "same"
    return observation(
        "scratch_gpt.alphabet",
        outcome,
        "chinese",
        en=f"{en:,}",
        zh=f"{zh:,}",
        emb_en=f"{en * 128:,}",
        emb_zh=f"{zh * 128:,}",
    )


EXPERIMENTS = (
    Experiment(
        "scratch_gpt",
        "untrained",
        ("ln_v", "zero", "unigram"),
        "ln_v",
        {"corpus": CORPUS, "block_size": 64},
        measure_untrained_loss,
    ),
    Experiment(
        "scratch_gpt", "width", ("x2", "x4", "x8"), "x4", {"corpus": CORPUS, "widths": (128, 256)}, measure_width
    ),
    Experiment(
        "scratch_gpt", "alphabet", ("chinese", "english", "same"), "chinese", {"corpus": "tang_song"}, measure_alphabet
    ),
)
