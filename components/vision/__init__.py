"""Streamlit pieces of the vision page: inputs.py (image picker, uploads, the image-text space),
charts.py (probability bars, the embedding map, the VQA training curves), vqa.py (train and ask
the tiny VQA model), blip.py (captions and questions with real BLIP), verdict.py (a zero-shot winner
only when it is not within noise; English-only labels explained)."""
