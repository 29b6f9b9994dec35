"""`/v1/embeddings`: sentence embeddings from the shared cache's "sentence" variant (MiniLM offline).

Texts are embedded in batches, one scheduler turn per batch. Vectors are unit length (the
sentence-transformers pipeline normalises them), as OpenAI's are. `encoding_format="base64"`
(what the official SDK asks for by default) is little-endian float32, as OpenAI sends it. Texts
longer than the model's window are truncated to it (MiniLM: 256 word pieces); the usage counts
the tokens actually embedded. Token-id input (what LangChain's OpenAIEmbeddings sends unless
`check_embedding_ctx_length=False`) is refused: those are another tokenizer's ids. `dimensions`
is refused unless it is the model's own size: MiniLM was not trained for shortened (Matryoshka)
embeddings, so a cut vector would not be an embedding. Every refusal is a 400.
"""

from __future__ import annotations

import base64

import numpy as np

from backends.core.scheduler import shared_scheduler
from backends.serving.openai_schema import ApiError

MAX_INPUTS = 2048  # OpenAI's limit per request
MAX_CHARS = 100_000  # per text; the model only reads its first few hundred tokens anyway
BATCH = 32
TURN_LABEL = "serve-embed"


def check_inputs(value) -> list[str]:
    texts = [value] if isinstance(value, str) else list(value)
    if not texts:
        raise ApiError(400, "input is empty: send a string or a list of strings.", param="input")
    if not all(isinstance(t, str) for t in texts):
        raise ApiError(
            400,
            "input holds token ids; this server embeds text only (its model has its own "
            "tokenizer). Send strings; with LangChain's OpenAIEmbeddings set "
            "check_embedding_ctx_length=False.",
            param="input",
        )
    if len(texts) > MAX_INPUTS:
        raise ApiError(400, f"input has {len(texts)} texts; send at most {MAX_INPUTS} per request.", param="input")
    for i, text in enumerate(texts):
        if not text.strip():
            raise ApiError(400, f"input[{i}] is empty ({text!r}): every text needs some characters.", param="input")
        if len(text) > MAX_CHARS:
            raise ApiError(400, f"input[{i}] has {len(text)} characters; the limit is {MAX_CHARS}.", param="input")
    return texts


def embed_texts(loaded, texts: list[str], scheduler=None) -> tuple[np.ndarray, int]:
    """(float32 [n, dim] unit vectors, tokens embedded) for `texts`, one scheduler turn per batch."""
    import torch

    model = loaded.model
    scheduler = scheduler or shared_scheduler()
    window = int(getattr(model, "max_seq_length", None) or 512)
    counts = model.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=window)["input_ids"]
    rows = []
    for start in range(0, len(texts), BATCH):
        with scheduler.turn(TURN_LABEL), torch.inference_mode():
            rows.append(
                model.encode(
                    texts[start : start + BATCH],
                    batch_size=BATCH,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
            )
    return np.concatenate(rows).astype(np.float32), sum(len(ids) for ids in counts)


def check_dimensions(model_id: str, loaded, dimensions: int | None) -> None:
    """`dimensions` other than the model's own size is refused (400): the first numbers of a vector
    are an embedding on their own only for a model trained for it (Matryoshka), and none served is."""
    if dimensions is None:
        return
    size = int(loaded.model.get_embedding_dimension())
    if dimensions != size:
        raise ApiError(
            400,
            f"dimensions={dimensions} cannot be served by {model_id!r}: it makes {size}-dimensional "
            "embeddings and was not trained to be shortened (it is not a Matryoshka model), so its "
            f"first {dimensions} numbers are not an embedding of their own. Leave dimensions out "
            f"(or send {size}).",
            param="dimensions",
        )


def encode_vector(vector: np.ndarray, encoding_format: str):
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


def embeddings_response(model_id: str, vectors: np.ndarray, tokens: int, encoding_format: str) -> dict:
    return {
        "object": "list",
        "model": model_id,
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_vector(v, encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
