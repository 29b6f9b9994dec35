import os

# Tests never reach the hub: the app must work on the embedded models alone.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.openai_server import server  # noqa: E402,F401  (fixture: a real local OpenAI-compatible server)
