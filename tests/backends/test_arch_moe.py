"""The mixture of experts: routing and the balance loss by hand, gradients to the router, one expert
equal to a dense GPT, and the dense-vs-MoE job on the real corpus."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from backends import architectures as arch
from backends.core.jobs import shared_runner
from backends.scratch_gpt import GPT, GPTConfig, MoE, TrainSettings, balance_loss, load_corpus, moe_gpt, prepare

TINY = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)


def expert_by_hand(expert, x):
    h = x @ expert.c_fc.weight.T + expert.c_fc.bias
    h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))  # exact GELU
    return h @ expert.c_proj.weight.T + expert.c_proj.bias


def test_top_k_routing_by_hand():
    torch.manual_seed(0)
    moe = MoE(TINY, n_experts=3, top_k=2).eval()
    x = torch.randn(1, 5, TINY.n_embd)
    out = moe(x)
    for t in range(5):
        token = x[0, t]
        scores = [float(token @ moe.router.weight[e].detach()) for e in range(3)]
        exps = [math.exp(s) for s in scores]
        probs = [v / sum(exps) for v in exps]
        best = sorted(range(3), key=lambda e: -probs[e])[:2]
        assert moe.last_experts[0, t].tolist() == best
        mix = sum(probs[e] / (probs[best[0]] + probs[best[1]]) * expert_by_hand(moe.experts[e], token) for e in best)
        torch.testing.assert_close(out[0, t], mix, atol=1e-6, rtol=1e-5)


def test_balance_loss_by_hand():
    # perfectly balanced: every expert gets 1/n of the routed slots and 1/n of the probability
    n = 4
    probs = torch.full((8, n), 1 / n)
    chosen = torch.tensor([[0, 1], [2, 3]] * 4)
    assert balance_loss(probs, chosen, n).item() == 1.0
    # tilted: 3 tokens, k=1, experts 0, 0, 1 of 2; mean probs (0.7, 0.3) -> 2 * (2/3*0.7 + 1/3*0.3)
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6]])
    chosen = torch.tensor([[0], [0], [1]])
    expected = 2 * (2 / 3 * 0.7 + 1 / 3 * 0.3)
    assert abs(balance_loss(probs, chosen, 2).item() - expected) < 1e-6
    assert expected > 1.0


def test_gradients_reach_the_router():
    model = moe_gpt(TINY, 4, 2, torch.Generator().manual_seed(0))
    x = torch.randint(0, TINY.vocab_size, (2, 8), generator=torch.Generator().manual_seed(1))
    _, loss = model(x, x)
    loss.backward()
    for block in model.h:
        assert block.mlp.router.weight.grad is not None and block.mlp.router.weight.grad.abs().sum() > 0
    # the balance loss alone reaches it too (through the mean probabilities)
    model.zero_grad()
    model(x, x)
    model.aux_loss().backward()
    assert all(block.mlp.router.weight.grad.abs().sum() > 0 for block in model.h)


def test_one_expert_equals_the_dense_gpt():
    dense = GPT(TINY, torch.Generator().manual_seed(0))
    moe = moe_gpt(TINY, n_experts=1, top_k=1, hidden=4 * TINY.n_embd, generator=torch.Generator().manual_seed(5))
    state = {k.replace(".mlp.", ".mlp.experts.0."): v for k, v in dense.state_dict().items()}
    missing, unexpected = moe.load_state_dict(state, strict=False)
    assert all(k.endswith("router.weight") for k in missing) and not unexpected
    x = torch.randint(0, TINY.vocab_size, (3, 8), generator=torch.Generator().manual_seed(1))
    dense.eval(), moe.eval()
    logits_d, loss_d = dense(x, x)
    logits_m, _ = moe(x, x)
    torch.testing.assert_close(logits_m, logits_d, atol=1e-6, rtol=1e-5)
    moe.train()
    _, loss_train = moe(x, x)  # one expert takes every token with probability 1: the balance loss is exactly 1
    torch.testing.assert_close(loss_train, loss_d + moe.aux_coef * 1.0)


def test_active_parameters_match_the_dense_mlp():
    n, e = TINY.n_embd, 4
    dense, moe = GPT(TINY), moe_gpt(TINY, e, 2)
    router = TINY.n_layer * n * e
    expert = n * 2 * n + 2 * n + 2 * n * n + n  # hidden 2n = 4n / k
    mlp = n * 4 * n + 4 * n + 4 * n * n + n
    assert moe.active_params() == dense.num_params() + router + TINY.n_layer * (2 * expert - mlp)
    assert moe.num_params() == dense.num_params() + router + TINY.n_layer * (e * expert - mlp)
    assert 2 * expert - mlp == n  # two half-width experts: one bias vector more than the dense MLP


def test_dense_vs_moe_job_on_shakespeare():
    config = GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32)
    settings = TrainSettings(
        max_iters=60,
        batch_size=8,
        learning_rate=3e-3,
        warmup_iters=5,
        lr_decay_iters=60,
        eval_interval=30,
        eval_iters=2,
    )
    prepared = prepare("shakespeare", load_corpus("shakespeare"), config.block_size)
    job = shared_runner().submit("moe-test", arch.moe_job, prepared, config, settings)
    assert job.wait(600) and job.error is None, job.error
    run = job.result
    events = [e.data for e in job.events_since(0)]
    for name in ("dense", "moe"):
        steps = [e for e in events if e["kind"] == "step" and e["model"] == name]
        assert [e["step"] for e in steps] == list(range(1, 61))
        evals = [e["val_loss"] for e in events if e["kind"] == "eval" and e["model"] == name]
        assert evals[-1] < evals[0] - 0.5 and evals[-1] < math.log(prepared.tokenizer.vocab_size)
    assert all(e["aux"] >= 1.0 - 1e-6 for e in events if e["kind"] == "step" and e["model"] == "moe")
    end = events[-1]
    assert end["kind"] == "end" and set(end["val"]) == {"dense", "moe"}
    p = end["params"]
    assert p["moe_total"] > p["moe_active"] and abs(p["moe_active"] - p["dense_active"]) <= 2 * 32 * 4 + 2 * 32

    # the routing of a text, checked against the router applied by hand to each block's normed input
    text = "ROMEO:\nBut soft"
    got = arch.routing(run.moe, prepared.tokenizer, text)
    assert got["tokens"] == list(text)
    ids = torch.tensor([prepared.tokenizer.encode(text)])
    with torch.no_grad():
        x = run.moe.embed(ids)
        for layer, block in enumerate(run.moe.h):
            x = x + block.attn(block.ln_1(x))
            probs = F.softmax(block.mlp.router(block.ln_2(x)), dim=-1)[0]
            assert got["top1"][layer] == probs.argmax(-1).tolist()
            assert abs(sum(got["shares"][layer]) - 1) < 1e-6
            x = x + block.mlp(block.ln_2(x))
