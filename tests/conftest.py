import os

# Tests never reach the hub: the app must work on the embedded models alone.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gc

import pytest

from tests.openai_server import server  # fixture: a real local OpenAI-compatible server


@pytest.fixture(autouse=True, scope="module")
def close_abandoned_generators():
    """Close generators a test module abandoned half-read before the next module starts, and make
    sure gradients are on: a test that leaves the thread's autograd state changed must not decide
    whether a later module's backward passes work (see backends.decoding.steps.inference_steps)."""
    gc.collect()
    import torch

    torch.set_grad_enabled(True)
    yield
