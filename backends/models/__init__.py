"""Models: the registry of known models (offline packages, hub ids, local folders),
the loaders, the one-time GGUF conversion (gguf_convert.py) and the one model cache every page shares."""
