"""Page passages -> chunks, with LangChain's RecursiveCharacterTextSplitter.

Each page is split on its own, so every chunk keeps the page it came from and
its character offset in that page's text. Sizes count characters, or tokens of
the embedding model's own tokenizer (the count the model will see).
"""

from __future__ import annotations

from backends.rag.types import Chunk, ChunkSettings, Passage

CHUNK_METHODS = ("characters", "tokens")


class ChunkingError(ValueError):
    """Chunk settings that cannot work, with what to change."""


def validate_settings(settings: ChunkSettings, max_tokens: int | None = None) -> None:
    if settings.method not in CHUNK_METHODS:
        raise ChunkingError(f"Unknown chunking method {settings.method!r}; use one of {', '.join(CHUNK_METHODS)}.")
    if not isinstance(settings.size, int) or settings.size <= 0:
        raise ChunkingError(f"Chunk size must be a positive whole number, got {settings.size!r}.")
    if not isinstance(settings.overlap, int) or not 0 <= settings.overlap < settings.size:
        raise ChunkingError(
            f"Chunk overlap must be at least 0 and smaller than the chunk size ({settings.size}), "
            f"got {settings.overlap!r}."
        )
    # the tokenizer's count leaves out the [CLS]/[SEP] the model adds, hence the 2
    if settings.method == "tokens" and max_tokens is not None and settings.size > max_tokens - 2:
        raise ChunkingError(
            f"Chunks of {settings.size} tokens are longer than the embedding model reads "
            f"({max_tokens} tokens with 2 special ones): pick a size of at most {max_tokens - 2}."
        )


def make_splitter(settings: ChunkSettings, tokenizer=None):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    validate_settings(settings)
    common = dict(chunk_size=settings.size, chunk_overlap=settings.overlap, strip_whitespace=True)
    if settings.method == "characters":
        return RecursiveCharacterTextSplitter(**common)
    if tokenizer is None:
        raise ChunkingError(
            "Chunking by tokens needs the embedding model's tokenizer; pass tokenizer=loaded.tokenizer."
        )
    try:
        return RecursiveCharacterTextSplitter.from_huggingface_tokenizer(tokenizer, **common)
    except ValueError as exc:
        raise ChunkingError(
            f"Chunking by tokens needs a Hugging Face tokenizer, got {type(tokenizer).__name__}: {exc}"
        ) from exc


def _offsets(text: str, pieces: list[str]) -> list[int]:
    """Where each piece starts in text; pieces come in order and may overlap."""
    starts, cursor = [], 0
    for piece in pieces:
        at = text.find(piece, cursor)
        if at < 0:  # cannot happen for substrings in order; searched from the top as a fallback
            at = max(text.find(piece), 0)
        starts.append(at)
        cursor = at + 1
    return starts


def chunk_passages(passages: list[Passage], settings: ChunkSettings, tokenizer=None, first_id: int = 0) -> list[Chunk]:
    """Chunks of every passage in order, ids first_id, first_id + 1, ..."""
    splitter = make_splitter(settings, tokenizer)
    chunks: list[Chunk] = []
    for passage in passages:
        pieces = [p for p in splitter.split_text(passage.text) if p.strip()]
        for piece, start in zip(pieces, _offsets(passage.text, pieces)):
            chunks.append(Chunk(first_id + len(chunks), passage.doc, passage.page, piece, start, passage.kind))
    return chunks


def chunk_lengths(chunks: list[Chunk], tokenizer=None) -> list[int]:
    """Characters of each chunk, or tokens when a tokenizer is given (for the chunk inspector)."""
    if tokenizer is None:
        return [len(c.text) for c in chunks]
    return [len(tokenizer.tokenize(c.text)) for c in chunks]
