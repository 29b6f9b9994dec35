"""DPO by hand against TRL 1.16's DPOTrainer.

TRL 1.16 has no standalone loss function: the loss is computed inside `DPOTrainer._compute_loss`,
from a model patched by `add_fused_lm_head` that returns per-token log-probs. The tests call that
method on a trainer built with `object.__new__` and only the attributes it reads (no training
arguments, datasets or accelerate setup), which runs TRL's own code for the log-probs, the losses
and its logged rewards/margins/accuracies.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from trl.data_utils import common_prefix_length
from trl.trainer.dpo_trainer import DataCollatorForPreference, DPOTrainer
from trl.trainer.utils import add_fused_lm_head

from backends.alignment.dpo import batch_loss, collate_pairs, dpo_loss, encode_pair, sequence_logps
from tests.torch_helpers import checksum, one_torch_thread  # noqa: F401 - fixture: one torch thread


class _Accel:
    device = torch.device("cpu")

    @staticmethod
    def gather_for_metrics(x):
        return x

    @staticmethod
    def gather(x):
        return x


def trl_trainer(model, beta, loss_type, ref_model=None, precompute=True):
    t = object.__new__(DPOTrainer)
    t.__dict__.update(
        model=model,
        ref_model=ref_model,
        accelerator=_Accel(),
        args=SimpleNamespace(gradient_checkpointing_kwargs=None),
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=precompute,
        f_divergence_type="reverse_kl",
        loss_types=[loss_type],
        loss_weights=[1.0],
        beta=beta,
        label_smoothing=0.0,
        use_weighting=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    return t


class GivenLogps(torch.nn.Module):
    """Stands in for a fused-head model: returns the per-token log-probs it was given."""

    def __init__(self, per_token):
        super().__init__()
        self.per_token = per_token
        self.eval()

    def forward(self, input_ids, attention_mask=None, labels=None, fused_lm_head=False, use_cache=None):
        z = torch.zeros_like(self.per_token)
        return SimpleNamespace(log_probs=self.per_token, entropy=z, mean_logits=z, is_top1=z.bool())


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge"])
@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_loss_rewards_margins_match_trl_per_pair(loss_type, beta):
    g = torch.Generator().manual_seed(0)
    for _pair in range(6):
        prompt_len = int(torch.randint(2, 5, (1,), generator=g))
        lens = torch.randint(1, 6, (2,), generator=g).tolist()
        width = prompt_len + max(lens)
        completion = torch.zeros(2, width, dtype=torch.long)
        for row, n in enumerate(lens):
            completion[row, prompt_len : prompt_len + n] = 1
        per_token = -torch.rand(2, width - 1, generator=g) * 3 * completion[:, 1:]
        ref = -torch.rand(2, generator=g) * 10
        inputs = {
            "input_ids": torch.ones(2, width, dtype=torch.long),
            "attention_mask": torch.ones(2, width, dtype=torch.long),
            "completion_mask": completion,
            "ref_chosen_logps": ref[:1],
            "ref_rejected_logps": ref[1:],
        }
        trainer = trl_trainer(GivenLogps(per_token), beta, loss_type)
        trl_loss = trainer._compute_loss(trainer.model, inputs, return_outputs=False)
        m = trainer._metrics["eval"]
        logps = per_token.sum(dim=1)
        ours = dpo_loss(logps[:1], logps[1:], ref[:1], ref[1:], beta, loss_type, *completion.sum(dim=1).split(1))
        assert ours.loss.item() == pytest.approx(trl_loss.item(), rel=1e-6, abs=1e-7)
        assert ours.chosen_rewards.item() == pytest.approx(m["rewards/chosen"][0], rel=1e-6)
        assert ours.rejected_rewards.item() == pytest.approx(m["rewards/rejected"][0], rel=1e-6)
        assert ours.margins.item() == pytest.approx(m["rewards/margins"][0], rel=1e-6, abs=1e-7)
        assert ours.accuracy == m["rewards/accuracies"][0]


def test_sigmoid_loss_by_hand():
    # beta 0.1, log-ratios +2 and -3: margin 0.5, loss -log sigmoid(0.5)
    out = dpo_loss(torch.tensor([-10.0]), torch.tensor([-15.0]), torch.tensor([-12.0]), torch.tensor([-12.0]), 0.1)
    assert out.margins.item() == pytest.approx(0.5)
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(-0.5)))
    assert (out.chosen_rewards.item(), out.rejected_rewards.item(), out.accuracy) == pytest.approx((0.2, -0.3, 1.0))
    with pytest.raises(ValueError, match="token count"):
        dpo_loss(*[torch.zeros(1)] * 4, loss_type="ipo")
    with pytest.raises(ValueError, match="Unknown loss type 'kto'"):
        dpo_loss(*[torch.zeros(1)] * 4, loss_type="kto")


PAIRS = [
    ("Name a colour.", "Blue, like the sky.", "Potato."),
    ("What is 2 + 2?", "2 + 2 = 4.", "It is 5, obviously, if you squint hard enough."),
]


@pytest.fixture(scope="module")
def smol():
    from backends.models.cache import shared_cache
    from backends.models.loaders import frozen_view

    loaded = shared_cache().get("smollm2-135m-instruct")
    before = checksum(loaded.model)
    reference = frozen_view(loaded.model).eval()
    policy = frozen_view(loaded.model).eval()
    # A policy that differs from the reference, on a new tensor (the cached model is untouched)
    policy.model.norm.weight = torch.nn.Parameter(policy.model.norm.weight.detach() * 1.05, requires_grad=False)
    yield loaded, policy, reference
    assert checksum(loaded.model) == before


def test_encode_pair_follows_trl_tokenization(smol):
    tok = smol[0].tokenizer
    for prompt, chosen, rejected in PAIRS:
        p = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_dict=True
        )
        full = [
            tok.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": a}], return_dict=True
            )["input_ids"]
            for a in (chosen, rejected)
        ]
        cut = min(common_prefix_length(p["input_ids"], f) for f in full)
        enc = encode_pair(tok, prompt, chosen, rejected)
        assert enc.prompt_ids == tuple(p["input_ids"][:cut])
        assert (enc.chosen_ids, enc.rejected_ids) == (tuple(full[0][cut:]), tuple(full[1][cut:]))
        assert tok.decode(enc.chosen_ids).startswith(chosen)


def test_real_model_logps_and_loss_match_trl(smol):
    """One batch of two pairs on SmolLM2 (IPO is checked on tensors above: each forward pass costs seconds here)."""
    loaded, policy, reference = smol
    tok, beta, loss_type = loaded.tokenizer, 0.1, "sigmoid"
    encoded = [encode_pair(tok, *p) for p in PAIRS]
    ours_batch = collate_pairs(encoded, tok.pad_token_id)
    trl_batch = DataCollatorForPreference(pad_token_id=tok.pad_token_id)(
        [
            {"prompt_ids": list(e.prompt_ids), "chosen_ids": list(e.chosen_ids), "rejected_ids": list(e.rejected_ids)}
            for e in encoded
        ]
    )
    for key in ("input_ids", "attention_mask", "completion_mask"):
        assert torch.equal(ours_batch[key], trl_batch[key])
    with torch.no_grad():
        ours = batch_loss(policy, reference, ours_batch, beta, loss_type)
        our_logps, _ = sequence_logps(policy, ours_batch)
        # TRL: its fused LM head on copies of our two models, its _compute_loss with a live reference
        trl_policy, trl_ref = copy.copy(policy), copy.copy(reference)
        add_fused_lm_head(trl_policy, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
        add_fused_lm_head(trl_ref)
        labels = trl_batch["input_ids"].masked_fill(trl_batch["completion_mask"] == 0, -100)
        trl_logps = trl_policy(
            input_ids=trl_batch["input_ids"],
            attention_mask=trl_batch["attention_mask"],
            labels=labels,
            fused_lm_head=True,
        ).log_probs.sum(dim=1)
        trainer = trl_trainer(trl_policy, beta, loss_type, ref_model=trl_ref, precompute=False)
        trl_loss = trainer._compute_loss(trl_policy, dict(trl_batch), return_outputs=False)
    m = trainer._metrics["eval"]
    print(
        f"{loss_type}: ours loss {ours.loss.item():.8f} TRL {trl_loss.item():.8f};",
        f"logps ours {our_logps.tolist()} TRL {trl_logps.tolist()}",
    )
    assert our_logps.tolist() == pytest.approx(trl_logps.tolist(), abs=5e-4)  # float32: chunked vs full softmax
    assert ours.loss.item() == pytest.approx(trl_loss.item(), rel=1e-4)
    assert ours.chosen_rewards.mean().item() == pytest.approx(m["rewards/chosen"][0], rel=1e-4, abs=1e-6)
    assert ours.rejected_rewards.mean().item() == pytest.approx(m["rewards/rejected"][0], rel=1e-4, abs=1e-6)
    assert ours.margins.mean().item() == pytest.approx(m["rewards/margins"][0], rel=1e-4, abs=1e-6)
    assert ours.accuracy == pytest.approx(m["rewards/accuracies"][0])
