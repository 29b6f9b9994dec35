import os

# Tests never reach the hub: the app must work on the embedded models alone.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Before any test module imports the app: the run gets its own cache folder (LLMPG_CACHE_DIR, HF_HOME),
# inherited by every process the tests start, and the user's ~/.cache/llm-playground is guarded.
from tests import user_cache

SUITE = user_cache.start()

import gc

import pytest

from tests.openai_server import server  # fixture: a real local OpenAI-compatible server


@pytest.fixture(scope="session")
def suite_cache() -> user_cache.SuiteCache:
    """The run's own cache folder and the guard of the user's (tests/user_cache.py)."""
    return SUITE


def pytest_sessionfinish(session, exitstatus):
    """The run fails when it touched the user's cache folder; the run's own folder is removed."""
    SUITE.problems = SUITE.finish()
    if SUITE.problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if SUITE.problems:
        terminalreporter.write_sep("=", "the tests touched the user's cache folder", red=True, bold=True)
        terminalreporter.write_line("They must write to LLMPG_CACHE_DIR (tests/user_cache.py):")
        for problem in SUITE.problems:
            terminalreporter.write_line(problem)


@pytest.fixture(autouse=True, scope="module")
def close_abandoned_generators():
    """Close generators a test module abandoned half-read before the next module starts, and make
    sure gradients are on: a test that leaves the thread's autograd state changed must not decide
    whether a later module's backward passes work (see backends.decoding.steps.inference_steps)."""
    gc.collect()
    import torch

    torch.set_grad_enabled(True)
    yield


@pytest.fixture(autouse=True)
def english_outside_a_run():
    """components.i18n.t() outside a script run speaks the language of the last run (AppTest formats
    options after its run): a Chinese page test must not make the next test's bare charts Chinese."""
    from components import i18n

    i18n._last_lang[0] = "en"
    yield
