"""The tokenizer page's pieces: session.py (this session's tokenizers, trained ones included), compare.py (the
Compare tab), inputs.py (the Chat template and Batch tabs), train.py (the Train tab)."""
