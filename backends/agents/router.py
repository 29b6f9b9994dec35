"""Tool retrieval: which tools to offer the model, chosen by MiniLM similarity before it decides.

A 135M model handed six tools picks the right one for about a third of plain requests (the
grammar makes every call parse, not the choice right). Agents with many tools commonly retrieve
the few that fit the request first and put only those in the prompt (and here the grammar): the
same idea as retrieval for RAG, over tools. `rank_tools` scores each tool by the cosine between
the request and its description and its example requests (assets/datasets/agent_tool_examples.json,
written here), best first; `routed_tools(question, tools, k)` keeps the top k, in the caller's order.
k = 1 leaves the model only the arguments to write; k = 2 leaves it a choice between two.

The similarity is MiniLM's (the RAG page's embedder, from the shared cache, unit vectors; one
request is embedded once per question, the examples once per process).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from backends.agents.toolbox import TOOLS
from backends.core.paths import ASSETS
from backends.core.scheduler import shared_scheduler

EXAMPLES_FILE = ASSETS / "datasets" / "agent_tool_examples.json"
EMBED = "all-minilm-l6-v2"
SOURCES = ("examples", "description")  # what a tool is compared through
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ToolScore:
    name: str
    score: float  # the best cosine between the request and one of the tool's texts
    nearest: str  # that text (an example request, or the description)


@cache
def tool_examples() -> dict[str, list[str]]:
    return json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))["examples"]


def embed_texts(texts: list[str]) -> np.ndarray:
    """Unit-length float32 MiniLM embeddings (the shared model, never modified)."""
    from backends.models.cache import shared_cache

    model = shared_cache().get(EMBED, variant="sentence").model
    with shared_scheduler().turn("agents"):
        vectors = model.encode(
            list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    return np.asarray(vectors, dtype=np.float32)


def _tool_texts(source: str) -> tuple[list[str], list[str]]:
    """(texts, the tool each belongs to): every tool's description, plus its examples."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}.")
    texts, owners = [], []
    for name, tool in TOOLS.items():
        texts.append(tool.description)
        owners.append(name)
        if source == "examples":
            extra = tool_examples().get(name, [])
            texts += extra
            owners += [name] * len(extra)
    return texts, owners


@lru_cache(maxsize=len(SOURCES))
def _tool_vectors(source: str) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    texts, owners = _tool_texts(source)
    return embed_texts(texts), tuple(texts), tuple(owners)


def tool_vectors(source: str = "examples") -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    with _LOCK:  # eight first sessions at once embed the examples once
        return _tool_vectors(source)


@lru_cache(maxsize=256)
def _rank(question: str, tools: tuple[str, ...], source: str) -> tuple[ToolScore, ...]:
    vectors, texts, owners = tool_vectors(source)
    sims = vectors @ embed_texts([question])[0]
    out = []
    for name in tools:
        rows = [i for i, owner in enumerate(owners) if owner == name]
        best = max(rows, key=lambda i: sims[i])
        out.append(ToolScore(name, float(sims[best]), texts[best]))
    return tuple(sorted(out, key=lambda s: -s.score))


def rank_tools(question: str, tools: tuple[str, ...] | None = None, source: str = "examples") -> list[ToolScore]:
    """Every tool in `tools` (default: all) with its score, best first."""
    tools = tuple(TOOLS) if tools is None else tuple(tools)
    unknown = [n for n in tools if n not in TOOLS]
    if unknown:
        raise ValueError(f"Unknown tools {unknown}; the tools are {list(TOOLS)}.")
    if not tools or not question.strip():
        return []
    return list(_rank(question, tools, source))


def routed_tools(question: str, tools: tuple[str, ...], k: int, source: str = "examples") -> tuple[str, ...]:
    """The `k` best-scoring of `tools`, kept in the order given (k <= 0 or k >= len: all of them)."""
    if k <= 0 or k >= len(tools):
        return tuple(tools)
    keep = {s.name for s in rank_tools(question, tools, source)[:k]}
    return tuple(n for n in tools if n in keep)
