"""Distillation: the loss against a KL and a cross-entropy written out here in numpy (full vocabulary,
and the top-k + bucket form), the fused gradient against autograd's, the teacher's bucket mass against
numpy, the windows against the held-out text's own tokens (disjoint from the scored slice and the
calibration tail), and a short real run with SmolLM2 as the teacher: both curves, the teacher's
validation loss against transformers' own loss, the cached model untouched, and both exported
students loading back by path with the same logits and the same validation loss."""

import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from backends import compression as cp
from backends import quantization as q
from backends.core.jobs import shared_runner
from backends.models.cache import shared_cache


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def log_softmax_np(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def hand_kd(s: np.ndarray, t: np.ndarray, y: np.ndarray, temp: float, alpha: float) -> tuple[float, float, float]:
    """alpha T^2 KL(p_T || q_T) + (1 - alpha) CE, each position's sums written out in loops."""
    kls, ces = [], []
    for n in range(s.shape[0]):
        zt, zs = t[n] / temp, s[n] / temp
        p = [math.exp(v) for v in zt]
        qq = [math.exp(v) for v in zs]
        p = [v / sum(p) for v in p]
        qq = [v / sum(qq) for v in qq]
        kls.append(sum(pi * math.log(pi / qi) for pi, qi in zip(p, qq, strict=True)))
        ces.append(-(s[n, y[n]] - math.log(sum(math.exp(v) for v in s[n]))))
    kl, ce = sum(kls) / len(kls), sum(ces) / len(ces)
    return alpha * temp**2 * kl + (1 - alpha) * ce, kl, ce


def hand_bucket_kl(s: np.ndarray, t: np.ndarray, k: int, temp: float) -> float:
    """KL over the teacher's k largest tokens plus one bucket holding every other token's mass."""
    total = 0.0
    for n in range(s.shape[0]):
        p, qq = np.exp(log_softmax_np(t[n] / temp)), np.exp(log_softmax_np(s[n] / temp))
        top = np.argsort(-t[n])[:k]
        rest = np.setdiff1d(np.arange(len(p)), top)
        total += sum(p[i] * math.log(p[i] / qq[i]) for i in top)
        if len(rest):
            total += p[rest].sum() * math.log(p[rest].sum() / qq[rest].sum())
    return total / s.shape[0]


def small_case(seed: int = 0, n: int = 5, v: int = 7):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 2, (n, v)), rng.normal(0, 3, (n, v)), rng.integers(0, v, n)


@pytest.mark.parametrize(("temp", "alpha"), [(1.0, 1.0), (2.0, 0.9), (4.0, 0.5), (0.5, 0.0)])
def test_kd_loss_is_the_hand_kl_and_ce(temp, alpha):
    s, t, y = small_case()
    loss, kl, ce = cp.kd_loss(torch.tensor(s), torch.tensor(t), torch.tensor(y), temp, alpha)
    want = hand_kd(s, t, y, temp, alpha)
    np.testing.assert_allclose([loss.item(), kl.item(), ce.item()], want, rtol=1e-10)


def bucket_inputs(t: np.ndarray, k: int, temp: float):
    """The teacher's top-k log p_T and the log of its mass elsewhere, from numpy."""
    lp = log_softmax_np(t / temp)
    top = np.argsort(-t, axis=-1)[:, :k]
    top_lp = np.take_along_axis(lp, top, -1)
    rest = np.log(np.clip(1 - np.exp(top_lp).sum(-1), 1e-300, None)) if k < t.shape[-1] else np.full(len(t), -1e30)
    return torch.tensor(top_lp), torch.tensor(top), torch.tensor(rest)


@pytest.mark.parametrize(("k", "temp", "alpha"), [(2, 2.0, 0.9), (3, 1.0, 1.0), (7, 2.0, 0.7), (1, 3.0, 0.0)])
def test_topk_losses_are_the_hand_bucket_kl(k, temp, alpha):
    s, t, y = small_case(1)
    top_lp, top, rest = bucket_inputs(t, k, temp)
    kl_want = hand_bucket_kl(s, t, k, temp)
    ce_want = hand_kd(s, t, y, 1.0, 0.0)[2]
    want = alpha * temp**2 * kl_want + (1 - alpha) * ce_want
    grads = []
    for fn in (cp.kd_loss_topk, cp.fused_kd_loss):
        z = torch.tensor(s, requires_grad=True)
        loss, kl, _ = fn(z, top_lp, top, rest, torch.tensor(y), temp, alpha)
        np.testing.assert_allclose([loss.item(), kl.item()], [want, kl_want], rtol=1e-9)
        (loss * 1.7).backward()
        grads.append(z.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-9, atol=1e-12)  # fused == autograd
    if k == s.shape[-1]:  # the whole vocabulary: the full KD loss, by hand
        assert kl_want == pytest.approx(hand_kd(s, t, y, temp, 1.0)[1], rel=1e-10)


def test_fused_gradient_is_autograds_on_float32_vocabulary_sized_logits():
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(16, 5000, generator=gen) * 3, torch.randn(16, 5000, generator=gen) * 3
    y = torch.randint(0, 5000, (16,), generator=gen)
    top, idx, norm, rest = cp.distill_soft_targets(t, 64, (2.0,))
    lp = top / 2.0 - norm[:, :1]
    grads = []
    for fn in (cp.kd_loss_topk, cp.fused_kd_loss):
        z = s.clone().requires_grad_()
        fn(z, lp, idx, rest[:, 0], y, 2.0, 0.8)[0].backward()
        grads.append(z.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-8)


def test_soft_targets_mass_outside_the_top_k_by_hand():
    _, t, _ = small_case(2, n=4, v=9)
    top, idx, norm, rest = cp.distill_soft_targets(torch.tensor(t), 3, (1.0, 2.5))
    for j, temp in enumerate((1.0, 2.5)):
        p = np.exp(log_softmax_np(t / temp))
        order = np.argsort(-t, axis=-1)[:, :3]
        np.testing.assert_array_equal(idx.numpy(), order)
        np.testing.assert_allclose(top.numpy(), np.take_along_axis(t, order, -1))
        want = np.log(1 - np.take_along_axis(p, order, -1).sum(-1))
        np.testing.assert_allclose(rest[:, j].numpy(), want, rtol=1e-10)
        np.testing.assert_allclose(norm[:, j].numpy(), np.log(np.exp(t / temp).sum(-1)), rtol=1e-12)


@pytest.fixture(scope="module")
def smol():
    return shared_cache().get("smollm2-135m-instruct")


def test_windows_sit_between_the_scored_slice_and_the_calibration_tail(smol):
    ids = smol.tokenizer(q.held_out_text(), add_special_tokens=False)["input_ids"]
    train, val = cp.distill_windows(smol.tokenizer, 16, 3, 2)
    start, end = cp.EVAL_TOKENS_MAX, len(ids) - cp.calibration_ids(smol.tokenizer).numel()
    assert train.shape == (3, 17) and val.shape == (2, 17)
    assert train.flatten().tolist() == ids[start : start + 51]
    assert val.flatten().tolist() == ids[end - 34 : end]
    with pytest.raises(ValueError, match="do not fit"):
        cp.distill_windows(smol.tokenizer, 128, 100, 100)


SHORT = cp.DistillSettings(
    steps=4,
    batch_size=2,
    block_size=32,
    n_layer=1,
    n_head=2,
    n_embd=32,
    eval_interval=2,
    train_windows=4,
    val_windows=2,
    train_eval_windows=2,
    top_k=16,
    temperature=2.0,
    alpha=0.9,
)


@pytest.fixture(scope="module")
def short_run(smol):
    before = {n: p.detach().clone() for n, p in smol.model.named_parameters()}
    job = shared_runner().submit("test-distill", cp.distill_job, SHORT, smol)
    assert job.wait(600) and job.status == "done", job.error
    after = dict(smol.model.named_parameters())
    assert not smol.model.training
    assert all(torch.equal(before[n], after[n]) for n in before), "the cached teacher was modified"
    return job


def test_short_run_has_both_curves_and_the_teachers_loss(smol, short_run):
    r = short_run.result
    for student in ("kd", "hard"):
        curve = r.curve(student)
        assert [e["step"] for e in curve] == [0, 2, 4]
        assert all(math.isfinite(e["train_loss"]) and math.isfinite(e["val_loss"]) for e in curve)
        assert curve[-1]["val_loss"] == r.val_loss[student]
    # both start from the same weights: the same loss at step 0, then they part
    assert r.curve("kd")[0]["val_loss"] == r.curve("hard")[0]["val_loss"]
    assert r.curve("kd")[-1]["val_loss"] != r.curve("hard")[-1]["val_loss"]
    kinds = {e.data.get("kind") for e in short_run.events_since(0)}
    assert {"eval", "step", "end"} <= kinds
    # the teacher's validation loss, by transformers' own loss on the same windows
    _, val = cp.distill_windows(smol.tokenizer, SHORT.block_size, SHORT.train_windows, SHORT.val_windows)
    with torch.no_grad():
        want = np.mean([smol.model(row[None], labels=row[None]).loss.item() for row in val])
    assert r.teacher_val_loss == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("student", ["kd", "hard"])
def test_exported_students_load_by_path_with_the_same_logits(smol, short_run, student):
    r = short_run.result
    folder = r.folders[student]
    assert folder == str(cp.distill_folder(student))
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    assert (
        tok("Books are not absolutely dead things")["input_ids"]
        == smol.tokenizer("Books are not absolutely dead things")["input_ids"]
    )
    _, val = cp.distill_windows(smol.tokenizer, SHORT.block_size, SHORT.train_windows, SHORT.val_windows)
    with torch.no_grad():
        theirs = model(val[:, :-1]).logits
        ours, _ = r.students[student](val[:, :-1])
        torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)
        loss = np.mean([model(row[None], labels=row[None]).loss.item() for row in val])
    assert loss == pytest.approx(r.val_loss[student], rel=1e-4)


def test_second_run_reads_the_teacher_from_its_cache(smol, short_run):
    train, val = cp.distill_windows(smol.tokenizer, SHORT.block_size, SHORT.train_windows, SHORT.val_windows)
    job = shared_runner().submit(
        "test-distill-teacher", cp.distill_teacher_targets, smol, train, val, SHORT.top_k, cp.DISTILL_TEMPERATURES
    )
    assert job.wait(600) and job.status == "done", job.error
    again = job.result
    assert again.cached and again.val_ce == pytest.approx(short_run.result.teacher_val_loss, rel=1e-12)
    assert again.top_idx.shape == (SHORT.train_windows, SHORT.block_size, SHORT.top_k)
