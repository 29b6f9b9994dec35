"""The LoRA page's pieces: the live training view and history (train.py), its charts (charts.py),
and base vs LoRA answers with merge and download (compare.py)."""
