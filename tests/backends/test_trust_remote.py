"""The Detect tab's one-question check on a remote engine: our own server stands in for a remote one
(a real HTTP server on a free port). Its greedy answer and token log-probabilities equal the in-app
check's; its entropy, from the server's top-20 alternatives plus a rest bucket, is a lower bound of the
full-vocabulary entropy computed in-app; the bound itself by hand."""

import math

import pytest
import torch

from backends import trust
from backends.serving import RemoteEngine
from backends.serving.app import ServerSettings
from backends.serving.local import ServerThread

QUESTION = "What is the capital of France?"


def test_entropy_lower_bound_by_hand_and_below_the_full_entropy():
    got = trust.entropy_lower_bound([math.log(0.5), math.log(0.3)])
    assert got == pytest.approx(-(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2)))
    logp = torch.randn(200, generator=torch.Generator().manual_seed(0)).mul(3).log_softmax(-1)
    full = float(-(logp.exp() * logp).sum())
    top = logp.topk(20).values.tolist()
    assert trust.entropy_lower_bound(top) <= full + 1e-9
    assert trust.entropy_lower_bound(logp.tolist()) == pytest.approx(full, abs=1e-6)


def test_the_remote_check_answers_as_the_in_app_one():
    with ServerThread(ServerSettings(gradio=False)) as url:
        engine = RemoteEngine(url + "/v1", "smollm2-135m-instruct")
        remote = trust.run_selfcheck_remote(QUESTION, engine, n_samples=2, seed=0)
    local = trust.run_selfcheck(QUESTION, n_samples=1, seed=0)
    assert remote.answer == local.answer
    assert len(remote.samples) == 2 and all(remote.samples)
    assert [t.text for t in remote.tokens] == [t.text for t in local.tokens]
    for r, here in zip(remote.tokens, local.tokens, strict=True):
        assert r.logprob == pytest.approx(here.logprob, abs=1e-3)
        assert r.entropy <= here.entropy + 1e-3  # top-20 + rest bucket: never above the full entropy
    assert [s.text for s in remote.sentences] == [s.text for s in local.sentences]
    assert len(remote.steps) == len(remote.tokens)
