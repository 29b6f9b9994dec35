"""The core every page stands on, and which knows no topic.

device (which torch device), paths (ASSETS, cache_dir), jobs (the background runner), scheduler
(compute turns shared by every session), shared (process-wide objects), memo (the single-flight
LRU), build_lock (one model build at a time), warmup (heavy imports once, in one thread), memory
(allocator tuning, malloc_trim), text_files (upload decoding), coded (errors a page words
in its own language: a code and values beside the English message). Notes: docs/sessions.md."""
