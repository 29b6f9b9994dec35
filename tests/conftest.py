import os

# Tests never reach the hub: the app must work on the embedded models alone.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.openai_server import server  # noqa: E402,F401  (fixture: a real local OpenAI-compatible server)


import gc  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def close_abandoned_generators():
    """A half-consumed token generator (generate_stream, beam search) holds torch.inference_mode for
    the thread that iterated it until it is closed, and a later test's backward pass in that thread
    then fails ("does not require grad"). Collecting closes them before each test module."""
    gc.collect()
    import torch

    torch.set_grad_enabled(True)
    yield
