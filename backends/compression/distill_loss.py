"""The distillation losses (Hinton et al. 2015):

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE

kd_loss        the full-vocabulary loss, written out with autograd (the definition)
kd_loss_topk   the same with the teacher kept as its top-k tokens plus one bucket for all others
               (what distill_teacher.py caches), equal to kd_loss when k is the whole vocabulary
fused_kd_loss  kd_loss_topk with its gradient computed in the forward pass (FusedKD): what the
               training job runs; tested against kd_loss_topk's autograd gradient
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = 2.0,
    alpha: float = 0.9,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, KL, CE), means over positions: loss = alpha * T^2 * KL(p_T || q_T) + (1 - alpha) * CE.

    p_T = softmax(teacher / T), q_T = softmax(student / T) over the last dimension; CE is the
    student's cross-entropy at T = 1 on `targets`. T^2 keeps the soft term's gradient on the same
    scale as the hard one's when T changes (Hinton et al. 2015, section 2)."""
    v = student_logits.shape[-1]
    s, t = student_logits.reshape(-1, v), teacher_logits.reshape(-1, v).to(student_logits.dtype)
    log_q = F.log_softmax(s / temperature, dim=-1)
    log_p = F.log_softmax(t / temperature, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1).mean()
    ce = F.cross_entropy(s, targets.reshape(-1))
    return alpha * temperature**2 * kl + (1 - alpha) * ce, kl, ce


def kd_loss_topk(
    student_logits: torch.Tensor,
    top_logp: torch.Tensor,
    top_idx: torch.Tensor,
    log_rest: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = 2.0,
    alpha: float = 0.9,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`kd_loss` with the teacher kept as its top-k tokens and one bucket for all others.

    top_logp: the teacher's log p_T of its k tokens (against the full vocabulary), top_idx their ids,
    log_rest the log of its mass on every other token. KL over the k + 1 outcomes:
        sum_i p_i log(p_i / q_i) + p_rest log(p_rest / q_rest),
    a lower bound of the full KL, equal to it when k is the whole vocabulary (p_rest = 0). CE is
    computed only when alpha < 1 (0 otherwise)."""
    v, k = student_logits.shape[-1], top_idx.shape[-1]
    s = student_logits.reshape(-1, v) / temperature
    idx, lp, lr = top_idx.reshape(-1, k), top_logp.reshape(-1, k).to(s.dtype), log_rest.reshape(-1).to(s.dtype)
    norm = torch.logsumexp(s, dim=-1)
    log_q = s.gather(-1, idx) - norm[:, None]
    kl = (lp.exp() * (lp - log_q)).sum(-1)
    if k < v:
        log_q_rest = torch.logsumexp(s.scatter(-1, idx, float("-inf")), dim=-1) - norm
        kl = kl + lr.exp() * (lr - log_q_rest)
    kl = kl.mean()
    if alpha < 1:
        ce = F.cross_entropy(student_logits.reshape(-1, v), targets.reshape(-1))
    else:
        ce = torch.zeros((), dtype=s.dtype)
    return alpha * temperature**2 * kl + (1 - alpha) * ce, kl, ce


class FusedKD(torch.autograd.Function):
    """`kd_loss_topk` in one pass over the logits, its gradient computed in the forward pass (as
    fused cross-entropy kernels do). The autograd version keeps several (positions x vocabulary) tensors
    for its backward pass: on 512 positions x 49,152 tokens, forward and backward took 1.2-2.5 s on one
    core of a busy machine (alpha 0.9), this one 0.7-1.0 s.

    With q = softmax(z / T), K the teacher's k tokens and r the bucket of all others:
        d KL / d(z_j / T) = q_j - p_j                 for j in K
                          = q_j * (1 - p_r / q_r)     otherwise
    (with 1 read as sum_K p + p_r, which is 1 for a teacher's real distribution)
    and d CE / d z_j = softmax(z)_j - [j = target]."""

    @staticmethod
    def forward(ctx, logits, top_logp, top_idx, log_rest, targets, temperature: float, alpha: float):
        n = logits.shape[0]
        with torch.no_grad():
            q = logits / temperature
            norm = torch.logsumexp(q, dim=-1, keepdim=True)
            log_q_top = q.gather(-1, top_idx) - norm
            q.sub_(norm).exp_()  # q = softmax(z / T), in place
            q.scatter_(-1, top_idx, 0.0)  # only the bucket's tokens are left
            q_rest = q.sum(-1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
            p_top, p_rest = top_logp.exp(), log_rest.exp()[:, None]
            kl = (p_top * (top_logp - log_q_top)).sum(-1) + (p_rest * (log_rest[:, None] - q_rest.log()))[:, 0]
            total = p_top.sum(-1, keepdim=True) + p_rest  # 1 for a real teacher; kept for exactness
            grad = q.mul_(total - p_rest / q_rest)
            grad.scatter_(-1, top_idx, total * log_q_top.exp() - p_top)
            grad.mul_(alpha * temperature / n)  # d (alpha T^2 KL) / dz = alpha T dKL / d(z / T)
            ce = torch.zeros((), dtype=logits.dtype)
            if alpha < 1:
                lse = torch.logsumexp(logits, dim=-1, keepdim=True)
                ce = (lse - logits.gather(-1, targets[:, None])).mean()
                soft = (logits - lse).exp_()
                soft.scatter_add_(-1, targets[:, None], torch.full_like(targets[:, None], -1, dtype=soft.dtype))
                grad.add_(soft, alpha=(1 - alpha) / n)
        ctx.save_for_backward(grad)
        kl = kl.mean()
        return alpha * temperature**2 * kl + (1 - alpha) * ce, kl, ce

    @staticmethod
    def backward(ctx, grad_loss, _grad_kl, _grad_ce):
        (grad,) = ctx.saved_tensors
        return grad * grad_loss, None, None, None, None, None, None


def fused_kd_loss(student_logits, top_logp, top_idx, log_rest, targets, temperature: float = 2.0, alpha: float = 0.9):
    """`kd_loss_topk`'s (loss, KL, CE) with a fused backward; only the loss carries a gradient."""
    v, k = student_logits.shape[-1], top_idx.shape[-1]
    return FusedKD.apply(
        student_logits.reshape(-1, v),
        top_logp.reshape(-1, k).to(student_logits.dtype),
        top_idx.reshape(-1, k),
        log_rest.reshape(-1).to(student_logits.dtype),
        targets.reshape(-1),
        float(temperature),
        float(alpha),
    )
