"""Retrieval-augmented generation over the user's documents.

ingest (file bytes -> page passages) -> chunking (passages -> chunks with page
numbers) -> index (dense FAISS + sparse BM25, fused) -> answer (prompt with the
retrieved chunks -> cited answer) -> evaluate (recall@k, MRR, token-F1).
"""
