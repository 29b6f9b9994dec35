"""LoRA experiments: what trains, counted from the LoRA package's plan (no training run), and what a
fresh adapter does to the model's loss (one forward pass each on a private copy)."""

from __future__ import annotations

import math

import torch

from backends import lora
from backends.experiments.base import Experiment, fmt, observation
from backends.models.cache import shared_cache

MODEL = "smollm2-135m-instruct"
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _trainable(model, **settings):
    return lora.plan(model, lora.LoraSettings(**settings).validate(model))


def nearest(ratio: float, choices: dict[str, float]) -> str:
    """The choice whose factor is closest to `ratio` on a log scale (2x and 0.5x are equally far from 1x)."""
    return min(choices, key=lambda c: abs(math.log(ratio) - math.log(choices[c])))


def measure_rank(params, device):
    model = shared_cache().get(params["model"], device=device).model
    low, high = (_trainable(model, rank=r) for r in params["ranks"])
    ratio = high.trainable_params / low.trainable_params
    return observation(
        "lora.rank",
        nearest(ratio, {"x16": 16, "x4": 4, "x1": 1}),
        "x16",
        r_low=params["ranks"][0],
        r_high=params["ranks"][1],
        n_low=f"{low.trainable_params:,}",
        n_high=f"{high.trainable_params:,}",
        ratio=fmt(ratio, 1),
    )


def measure_targets(params, device):
    model = shared_cache().get(params["model"], device=device).model
    few, every = (_trainable(model, target_modules=tuple(m)) for m in params["targets"])
    ratio = every.trainable_params / few.trainable_params
    return observation(
        "lora.targets",
        nearest(ratio, {"x2": 2, "x5": 5, "x20": 20}),
        "x5",
        n_few=f"{few.trainable_params:,}",
        n_all=f"{every.trainable_params:,}",
        ratio=fmt(ratio, 1),
        layers_few=few.adapted_layers,
        layers_all=every.adapted_layers,
    )


def measure_share(params, device):
    model = shared_cache().get(params["model"], device=device).model
    p = _trainable(model, rank=params["rank"])
    share = 100 * p.share
    outcome = "under_1" if share < 1 else "about_10" if share < 30 else "about_50"
    return observation(
        "lora.share",
        outcome,
        "under_1",
        share=fmt(share, 2),
        trainable=f"{p.trainable_params:,}",
        total=f"{p.total_params:,}",
        rank=params["rank"],
    )


def measure_zero_start(params, device):
    """The loss of the base model and of a fresh LoRA copy on one shipped example: B starts at zero."""
    loaded = shared_cache().get(params["model"], device=device)
    tokenizer = loaded.tokenizer
    example = lora.shipped_examples()[0]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batch = lora.collate([lora.encode_example(tokenizer, example, 96)], pad)
    batch = {k: v.to(device) for k, v in batch.items()}
    copy = lora.lora_copy(loaded.model, lora.LoraSettings(rank=params["rank"]))
    copy.eval()
    with torch.inference_mode():
        base_loss = float(loaded.model(**batch).loss)
        lora_loss = float(copy(**batch).loss)
    del copy
    diff = abs(base_loss - lora_loss)
    return observation(
        "lora.zero_start",
        "same" if diff < 1e-4 else "different",
        "same",
        base=fmt(base_loss, 4),
        adapted=fmt(lora_loss, 4),
        diff=f"{diff:.1e}",
    )


EXPERIMENTS = (
    Experiment("lora", "rank", ("x16", "x4", "x1"), "x16", {"model": MODEL, "ranks": (1, 16)}, measure_rank),
    Experiment(
        "lora",
        "targets",
        ("x2", "x5", "x20"),
        "x5",
        {"model": MODEL, "targets": (("q_proj", "v_proj"), ALL_LINEAR)},
        measure_targets,
    ),
    Experiment(
        "lora", "share", ("under_1", "about_10", "about_50"), "under_1", {"model": MODEL, "rank": 8}, measure_share
    ),
    Experiment("lora", "zero_start", ("same", "different"), "same", {"model": MODEL, "rank": 8}, measure_zero_start),
)
