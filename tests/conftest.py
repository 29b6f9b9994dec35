import os

# Tests never reach the hub: the app must work on the embedded models alone.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
