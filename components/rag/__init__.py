"""The RAG page's pieces: documents.py (ingest reports, chunk inspector), store.py (vector-store setting,
saved collections), answers.py (answer cards: streaming, extractive quote, citations, the app's forced
citation marked 🔧), glass_box.py (the Retrieval tab: candidates and the embedding map), evaluate.py (the
Evaluate tab: recall@k, MRR, token-F1, first citation on a right page as shown and the model's own),
language.py (the chat's note that the embedded models read English only), grounding_view.py (each answer
sentence supported or not by the retrieved passages: backends.trust.ground; also the Trust page's)."""

from components.rag.answers import (
    answer_header,
    citation_cards,
    extractive_answer,
    highlighted,
    live_answer,
    scores_line,
    show_turn,
    source_label,
    streamed_text,
)
from components.rag.documents import chunk_inspector, report_message, reports_table
from components.rag.evaluate import eval_figure, evaluate_tab
from components.rag.glass_box import NOT_RANKED, candidates_columns, candidates_frame, projection_figure, retrieval_tab
from components.rag.language import english_only, language_note, question_language_warning
from components.rag.store import collections_panel, store_settings

__all__ = [
    "NOT_RANKED",
    "answer_header",
    "candidates_columns",
    "candidates_frame",
    "chunk_inspector",
    "citation_cards",
    "collections_panel",
    "english_only",
    "eval_figure",
    "evaluate_tab",
    "extractive_answer",
    "highlighted",
    "language_note",
    "live_answer",
    "projection_figure",
    "question_language_warning",
    "report_message",
    "reports_table",
    "retrieval_tab",
    "scores_line",
    "show_turn",
    "source_label",
    "store_settings",
    "streamed_text",
]
