"""DPO written out: response-only sequence log-probs, the DPO and IPO losses, implicit rewards.

A DPO batch holds each pair twice, prompt + chosen and prompt + rejected (chosen rows first, as in
TRL). Only the response tokens count: `completion_mask` is 1 on them and 0 on the prompt and the
padding, so log pi(y | x) is the sum of the log-probs of the response tokens given everything
before them.

With pi the policy being trained and pi_ref the frozen reference (the model before DPO):
- implicit reward      r(y) = beta * (log pi(y|x) - log pi_ref(y|x))
- sigmoid (DPO) loss   -log sigmoid(r(chosen) - r(rejected))
- hinge loss           max(0, 1 - (r(chosen) - r(rejected)))   (SLiC's hinge on the reward margin)
- IPO loss             (h - 1 / (2 beta))^2 with h the difference of the log-ratios, each divided
                       by its response's token count (TRL 1.16 normalises IPO this way; the IPO
                       authors confirmed it is what the paper's results used)
- margin               r(chosen) - r(rejected); accuracy: the share of pairs with margin > 0.
tests/backends/test_alignment_dpo.py checks all of them against TRL 1.16's DPOTrainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOSS_TYPES = ("sigmoid", "ipo", "hinge")


@dataclass(frozen=True)
class EncodedPair:
    prompt_ids: tuple[int, ...]
    chosen_ids: tuple[int, ...]
    rejected_ids: tuple[int, ...]


def _chat_ids(tokenizer, messages: list[dict], generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=generation_prompt, return_dict=True
    )
    return list(out["input_ids"])


def encode_pair(tokenizer, prompt: str, chosen: str, rejected: str) -> EncodedPair:
    """Token ids laid out as TRL 1.16 does for a conversational pair.

    The prompt is the chat up to the assistant header; each response is what the full chat adds
    after it (the reply and its end-of-turn tokens). Where the prompt alone does not tokenize as a
    prefix of the full chat, the response starts where they first differ.
    """
    user = [{"role": "user", "content": prompt}]
    prompt_ids = _chat_ids(tokenizer, user, generation_prompt=True)
    full = [_chat_ids(tokenizer, [*user, {"role": "assistant", "content": a}], False) for a in (chosen, rejected)]

    def prefix(a, b):
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n

    cut = min(prefix(prompt_ids, full[0]), prefix(prompt_ids, full[1]))
    return EncodedPair(tuple(prompt_ids[:cut]), tuple(full[0][cut:]), tuple(full[1][cut:]))


def collate_pairs(pairs: list[EncodedPair], pad_id: int, max_length: int | None = None) -> dict[str, torch.Tensor]:
    """Right-padded batch: rows 0..n-1 prompt + chosen, rows n..2n-1 prompt + rejected (keep_start truncation)."""
    seqs = [p.prompt_ids + p.chosen_ids for p in pairs] + [p.prompt_ids + p.rejected_ids for p in pairs]
    masks = [(0,) * len(p.prompt_ids) + (1,) * len(p.chosen_ids) for p in pairs]
    masks += [(0,) * len(p.prompt_ids) + (1,) * len(p.rejected_ids) for p in pairs]
    if max_length is not None:
        seqs, masks = [s[:max_length] for s in seqs], [m[:max_length] for m in masks]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    completion = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, (s, m) in enumerate(zip(seqs, masks, strict=True)):
        ids[row, : len(s)] = torch.tensor(s)
        attention[row, : len(s)] = 1
        completion[row, : len(m)] = torch.tensor(m)
    return {"input_ids": ids, "attention_mask": attention, "completion_mask": completion}


def token_logps(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """log p(token t | tokens < t) for t = 1..L-1: (batch, L-1). Position t-1's logits predict token t."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def sequence_logps(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the response tokens' log-probs, response token count) per row of a collated batch."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    mask = batch["completion_mask"][:, 1:].to(torch.float32)
    per_token = token_logps(logits, batch["input_ids"])
    return (per_token * mask).sum(dim=1), batch["completion_mask"].sum(dim=1)


@dataclass(frozen=True)
class DPOResult:
    loss: torch.Tensor  # mean over pairs, differentiable
    losses: torch.Tensor  # per pair
    chosen_rewards: torch.Tensor  # beta * (policy - reference) log-probs, detached
    rejected_rewards: torch.Tensor
    margins: torch.Tensor
    accuracy: float  # share of pairs whose chosen reward beats the rejected one


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    chosen_tokens: torch.Tensor | None = None,
    rejected_tokens: torch.Tensor | None = None,
) -> DPOResult:
    """The DPO (sigmoid), hinge or IPO loss of a batch of pairs from their sequence log-probs.

    IPO needs the response token counts (`chosen_tokens`, `rejected_tokens`).
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"Unknown loss type {loss_type!r}; expected one of {', '.join(LOSS_TYPES)}.")
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta!r}.")
    chosen_ratio = policy_chosen - ref_chosen
    rejected_ratio = policy_rejected - ref_rejected
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * (chosen_ratio - rejected_ratio))
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * (chosen_ratio - rejected_ratio))
    else:
        if chosen_tokens is None or rejected_tokens is None:
            raise ValueError(
                "The IPO loss divides by each response's token count: pass chosen_tokens and rejected_tokens."
            )
        h = chosen_ratio / chosen_tokens.clamp(min=1) - rejected_ratio / rejected_tokens.clamp(min=1)
        losses = (h - 1 / (2 * beta)) ** 2
    chosen_rewards = beta * chosen_ratio.detach()
    rejected_rewards = beta * rejected_ratio.detach()
    margins = chosen_rewards - rejected_rewards
    return DPOResult(
        losses.mean(),
        losses,
        chosen_rewards,
        rejected_rewards,
        margins,
        float((margins > 0).float().mean()),
    )


def batch_loss(policy, reference, batch: dict[str, torch.Tensor], beta: float = 0.1, loss_type: str = "sigmoid"):
    """One DPO step's loss on a collated batch: policy log-probs with gradients, the reference's without."""
    logps, tokens = sequence_logps(policy, batch)
    with torch.no_grad():
        ref_logps, _ = sequence_logps(reference, batch)
    n = logps.shape[0] // 2
    return dpo_loss(logps[:n], logps[n:], ref_logps[:n], ref_logps[n:], beta, loss_type, tokens[:n], tokens[n:])
