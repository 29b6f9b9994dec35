"""Helpers the backend tests share when they train or copy the cached models."""

import hashlib

import pytest
import torch


def checksum(model) -> str:
    """A model's exact state (names and bytes of every tensor): equal before and after means untouched."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Import into a test module that trains on the main thread. Two busy-waiting OpenMP threads on a
    shared 2-core machine stall each other (0.6 s .. 20 s per forward pass measured); one thread is
    steady. The app runs training as a job, which gets jobs.job_threads(). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
