"""Models: the registry of known models (offline packages, hub ids, local folders),
the loaders (GGUF conversion included) and the one model cache every page shares."""
