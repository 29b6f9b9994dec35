"""Fast DPO (backends/alignment/fast.py, train.py) against the plain full-model computation.

The expected values come from dpo.py's plain path on the whole LoRA model (all 30 layers, the
whole-vocabulary head over every position, the reference recomputed on the cached base model),
which tests/backends/test_alignment_dpo.py holds equal to TRL 1.16. The LoRA copy's B matrices are
set to seeded random values first, so the policy differs from the reference and every LoRA weight
gets a gradient.
"""

from __future__ import annotations

import ast
import dataclasses
import math

import pytest
import torch

from backends.alignment import config, dpo, fast
from backends.alignment.pairs import Pair
from backends.alignment.train import DpoResult, dpo_job, prepare_and_train
from tests.torch_helpers import checksum, one_torch_thread  # noqa: F401 - fixture: one torch thread

PAIRS = [
    Pair(
        "What is the capital of France?",
        "The capital of France is Paris.",
        "The capital of France is Paris, a city known for the Eiffel Tower, the Louvre and its cafes, "
        "and for centuries a centre of art, fashion and politics in Europe.",
    ),
    Pair(
        "Give me a tip for sleeping better.", "Keep a regular bedtime.", "Keep a regular bedtime, avoid screens late."
    ),
    Pair(
        "Why is the sky blue?",
        "Air scatters blue light more than red light.",
        "Molecules in the air scatter short blue wavelengths of sunlight far more than red ones (Rayleigh "
        "scattering), so blue light reaches our eyes from every direction.",
    ),
]
SETTINGS = config.DpoSettings(top_layers=3, max_length=64, probe_pairs=2)  # max_length 64 truncates the long answers


class Ctx:
    def __init__(self, stop_after: int | None = None):
        self.events, self.stop_after = [], stop_after

    @property
    def stopped(self) -> bool:
        steps = sum(e["kind"] == "step" for e in self.events)
        return self.stop_after is not None and steps >= self.stop_after

    def check_stop(self) -> None:
        pass

    def report(self, progress=None, message="", **data):
        self.events.append({"progress": progress, "message": message, **data})


@pytest.fixture(scope="module")
def setup():
    from backends.models.cache import shared_cache

    loaded = shared_cache().get("smollm2-135m-instruct")
    before = checksum(loaded.model)
    prepared = fast.prepare(loaded.model, loaded.tokenizer, PAIRS, SETTINGS)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in prepared.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    batch = dpo.collate_pairs(prepared.encoded, loaded.tokenizer.pad_token_id, SETTINGS.max_length)
    yield loaded, prepared, batch
    assert checksum(loaded.model) == before  # prepare, the steps and the job left the shared model as it was


def close(ours: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5):
    """Equal to `rel` of the batch's largest magnitude (float32: other padding, other summation order)."""
    scale = expected.abs().max().item()
    assert (ours - expected).abs().max().item() <= rel * scale, (ours.tolist(), expected.tolist())


def test_layout_truncation_and_adapters(setup):
    loaded, prepared, batch = setup
    n = len(PAIRS)
    for i, p in enumerate(prepared.pairs):  # unpacked, each pair gives back the collated batch's two rows
        for row, side in ((i, "chosen"), (n + i, "rejected")):
            length = int(batch["attention_mask"][row].sum())
            assert torch.equal(p.sequence(side), batch["input_ids"][row, :length])
            assert p.n_response(side) == int(batch["completion_mask"][row].sum())
        assert p.hidden.shape == (len(p.ids), loaded.model.config.hidden_size) and p.hidden.dtype == torch.float32
        assert p.shared >= p.start and len(p.ids) == p.n_chosen + p.n_rejected - p.shared
    assert max(p.n_rejected for p in prepared.pairs) == SETTINGS.max_length and prepared.truncated == 2
    assert prepared.pairs[1].shared > prepared.pairs[1].start  # "Keep a regular bedtime" starts both answers
    adapted = {
        int(n.split(".layers.")[1].split(".")[0]) for n, p in prepared.model.named_parameters() if p.requires_grad
    }
    assert adapted == {27, 28, 29}
    assert prepared.cache_bytes == sum(len(p.ids) * (576 * 4 + 8) + 16 for p in prepared.pairs)
    packed, separate = prepared.tokens
    assert packed < separate


def test_packed_mask_and_positions():
    p = fast.pack_pair((1, 2), (3, 4, 9), (3, 5, 6, 7), max_length=10)  # shared: 1 2 3
    assert p.ids.tolist() == [1, 2, 3, 5, 6, 7, 4, 9] and (p.shared, p.n_rejected, p.n_chosen) == (3, 6, 5)
    assert p.positions().tolist() == [0, 1, 2, 3, 4, 5, 3, 4]
    assert p.sequence("chosen").tolist() == [1, 2, 3, 4, 9] and p.sequence("rejected").tolist() == [1, 2, 3, 5, 6, 7]
    assert p.mask()[6].tolist() == [True, True, True, False, False, False, True, False]  # "4" sees 1 2 3 and itself
    assert p.mask()[7].tolist() == [True, True, True, False, False, False, True, True]
    assert p.mask()[5].tolist() == [True] * 6 + [False, False]


def test_policy_logps_equal_full_model(setup):
    _, prepared, batch = setup
    split = fast.TopLayers(prepared.model, SETTINGS.top_layers)
    with torch.no_grad():
        ours = fast.policy_logps(split, prepared.pairs)
        full, _ = dpo.sequence_logps(prepared.model, batch)  # all layers, whole vocabulary, every position
        base, _ = dpo.sequence_logps(prepared.base, batch)
    close(ours, full)
    assert (full - base).abs().max() > 0.05  # the random B matrices do change the policy


def test_cached_reference_equals_full_base_model(setup):
    loaded, prepared, batch = setup
    with torch.no_grad():
        expected, _ = dpo.sequence_logps(loaded.model, batch)
    cached = [p.ref_chosen for p in prepared.pairs] + [p.ref_rejected for p in prepared.pairs]
    close(torch.tensor(cached), expected)


def test_loss_rewards_margins_and_gradients_equal_batch_loss(setup):
    loaded, prepared, batch = setup
    model = prepared.model
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    for beta, loss_type in ((0.1, "sigmoid"), (0.5, "ipo"), (0.3, "hinge")):
        model.zero_grad(set_to_none=True)
        ours = fast.step_loss(fast.TopLayers(model, SETTINGS.top_layers), prepared.pairs, beta, loss_type)
        ours.loss.backward()
        ours_grads = {n: p.grad.clone() for n, p in params.items()}
        model.zero_grad(set_to_none=True)
        full = dpo.batch_loss(model, loaded.model, batch, beta, loss_type)
        full.loss.backward()
        assert ours.loss.item() == pytest.approx(full.loss.item(), rel=1e-5, abs=1e-6)
        for name in ("losses", "chosen_rewards", "rejected_rewards", "margins"):
            close(getattr(ours, name), getattr(full, name), rel=1e-4)
        assert ours.accuracy == full.accuracy
        # float32 noise of ~1e-6 in the hidden states, amplified where chosen and rejected share tokens
        # (their gradients cancel exactly in real numbers): measured up to 1.2e-4 of each tensor's norm
        for name, p in params.items():
            assert (ours_grads[name] - p.grad).norm() <= 1e-3 * p.grad.norm(), (loss_type, name)
            torch.testing.assert_close(ours_grads[name], p.grad, rtol=1e-2, atol=1e-3 * p.grad.abs().max().item())
    assert any(g.abs().max() > 0 for g in ours_grads.values())
    model.zero_grad(set_to_none=True)


def test_probe_kl_equals_full_model_kl(setup):
    loaded, prepared, batch = setup
    chosen = {k: v[: len(PAIRS)] for k, v in batch.items()}
    with torch.no_grad():
        p = torch.log_softmax(prepared.model(**{k: chosen[k] for k in ("input_ids", "attention_mask")}).logits, -1)
        q = torch.log_softmax(loaded.model(**{k: chosen[k] for k in ("input_ids", "attention_mask")}).logits, -1)
    kl = (p.exp() * (p - q)).sum(-1)[:, :-1]  # position t-1 predicts token t
    mask = chosen["completion_mask"][:, 1:].bool()
    expected = kl[mask].mean().item()
    ours = fast.probe_kl(fast.TopLayers(prepared.model, SETTINGS.top_layers), prepared.pairs)
    assert expected > 1e-4
    assert ours == pytest.approx(expected, rel=1e-3)


def test_bad_settings_and_data_are_refused_with_their_value(setup):
    loaded = setup[0]
    s = config.DpoSettings()
    cases = [
        (s.replace(beta=0.0), "beta = 0.0"),
        (s.replace(beta=-1.0), "beta = -1.0"),
        (s.replace(loss_type="kto"), "loss_type = 'kto'"),
        (s.replace(top_layers=0), "top_layers = 0"),
        (s.replace(top_layers=31), "top_layers = 31"),
        (s.replace(learning_rate=0.5), "learning_rate = 0.5"),
        (s.replace(batch_pairs=0), "batch_pairs = 0"),
        (s.replace(epochs=0.0), "epochs = 0.0"),
        (s.replace(max_length=4), "max_length = 4"),
        (s.replace(target_modules=("q_proj", "wq")), "target_modules = \\['wq'\\]"),
        (s.replace(rank=1000), "rank = 1000"),
        (s.replace(probe_every=-1), "probe_every = -1"),
        (s.replace(beta=float("nan")), "beta = nan"),
    ]
    for settings, message in cases:
        with pytest.raises(config.SettingsError, match=message):
            settings.validate(loaded.model)
    assert isinstance(config.SettingsError("x"), ValueError)
    with pytest.raises(config.DataError, match="empty"):
        fast.prepare(loaded.model, loaded.tokenizer, [], s)
    with pytest.raises(config.DataError, match="max_length = 30"):
        fast.prepare(loaded.model, loaded.tokenizer, PAIRS[:1], s.replace(max_length=30))
    with pytest.raises(config.SettingsError, match="Unknown setting"):
        config.DpoSettings.from_dict({"betta": 0.2})
    assert config.DpoSettings.from_dict(s.to_dict()) == s
    assert config.DpoSettings.from_dict({"epochs": 3}).epochs == 3.0


def test_snippet_uses_trl_and_peft_names():
    from peft import LoraConfig
    from trl import DPOConfig

    s = config.DpoSettings(beta=0.2, loss_type="ipo")
    code = s.snippet("HuggingFaceTB/SmolLM2-135M-Instruct")
    tree = ast.parse(code)
    calls = {
        n.func.id: {k.arg for k in n.keywords}
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert calls["DPOConfig"] <= {f.name for f in dataclasses.fields(DPOConfig)}
    assert calls["LoraConfig"] <= {f.name for f in dataclasses.fields(LoraConfig)}
    assert {"model", "args", "train_dataset", "processing_class", "peft_config"} == calls["DPOTrainer"]
    assert "beta=0.2" in code and 'loss_type=["ipo"]' in code and "layers - 6" in code


def test_job_learns_a_fixed_batch_and_reports_steps(setup):
    loaded = setup[0]
    settings = SETTINGS.replace(learning_rate=1e-3, batch_pairs=2, max_steps=6, probe_every=3)
    ctx = Ctx()
    result = prepare_and_train(ctx, loaded.model, loaded.tokenizer, PAIRS[:2], settings)  # every step: both pairs
    assert isinstance(result, DpoResult) and result.stop_reason == "done" and result.pairs_seen == 12
    kinds = [e["kind"] for e in ctx.events]
    assert kinds[0] == "setup" and kinds.count("step") == 6 and kinds[-1] == "end"
    steps = [e for e in ctx.events if e["kind"] == "step"]
    for e in steps:
        for key in ("loss", "reward_chosen", "reward_rejected", "margin", "accuracy", "lr", "pairs_per_s"):
            assert math.isfinite(e[key]), (key, e)
        assert e["eta_s"] >= 0 and e["elapsed_s"] > 0
    assert [e["kl"] is not None for e in steps] == [False, False, True, False, False, True]
    assert steps[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)  # policy = reference at the start
    assert steps[-1]["loss"] < steps[0]["loss"] - 0.05 and steps[-1]["margin"] > 0 and steps[-1]["kl"] > 0
    assert steps[0]["lr"] == pytest.approx(1e-3) and steps[-1]["lr"] < steps[0]["lr"]
    assert ctx.events[-1]["stop_reason"] == "done"
    with result.model.disable_adapter():  # the adapters off give back the base model
        ids = torch.tensor([[1, 2, 3, 4]])
        torch.testing.assert_close(result.model(input_ids=ids).logits, loaded.model(input_ids=ids).logits)


def test_a_stopped_run_and_a_second_run_on_one_cache(setup):
    loaded = setup[0]
    prepared = fast.prepare(loaded.model, loaded.tokenizer, PAIRS[:2], SETTINGS.replace(max_steps=5, batch_pairs=1))
    ctx = Ctx(stop_after=2)
    first = dpo_job(ctx, prepared)
    assert first.stop_reason == "stopped" and len(first.steps) == 2 and ctx.events[-1]["stop_reason"] == "stopped"
    assert first.model is prepared.model
    second = dpo_job(Ctx(), prepared, prepared.settings.replace(beta=0.5, max_steps=1))
    assert second.model is not first.model and second.steps[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    with pytest.raises(config.SettingsError, match="top_layers = 2"):
        dpo_job(Ctx(), prepared, prepared.settings.replace(top_layers=2))
