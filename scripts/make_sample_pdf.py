"""Write assets/samples/how_language_models_work.pdf: the RAG page's shipped sample.

Eight pages, one topic each, with facts specific enough that a question maps to
one page (assets/samples/sample_eval.jsonl holds such questions). Written for
this project; matplotlib draws the pages with TrueType (fonttype 42) text so
pypdf extracts it cleanly. The bench reuses write_pdf() for a long document.

Usage: .venv/bin/python scripts/make_sample_pdf.py [output.pdf]
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "assets" / "samples" / "how_language_models_work.pdf"
TITLE = "A short guide to how language models work"

PAGES: list[tuple[str, list[str]]] = [
    (
        "Tokenization",
        [
            "A language model never sees letters or words directly. A tokenizer first cuts the text into tokens "
            "and maps each token to an integer id from a fixed vocabulary.",
            "Byte-pair encoding (BPE) builds that vocabulary by starting from single bytes and repeatedly merging "
            "the most frequent adjacent pair into a new token. GPT-2 uses a byte-level BPE vocabulary of 50,257 "
            "tokens, so any string can be encoded without an unknown-token symbol.",
            "WordPiece, used by BERT, marks pieces that continue a word with two hash signs, as in 'play' and "
            "'##ing'. As a rule of thumb, one English token is about four characters or three quarters of a word; "
            "Chinese text and source code usually need more tokens per character.",
        ],
    ),
    (
        "Embeddings",
        [
            "Each token id selects one row of the embedding matrix: a learned vector that represents the token. "
            "In the small all-MiniLM-L6-v2 sentence model every vector has 384 dimensions.",
            "Sentence embeddings average the token vectors of a whole passage into one vector (mean pooling) and "
            "scale it to unit length. The similarity of two passages is then the cosine of the angle between their "
            "vectors, which for unit vectors is simply their dot product.",
            "Words used in similar contexts end up close together, which is why a search over embeddings can find "
            "a passage that answers a question even when they share no words.",
        ],
    ),
    (
        "Attention",
        [
            "Self-attention lets every token look at the other tokens of the context. Each token is projected into "
            "a query, a key and a value vector.",
            "The score between two tokens is the dot product of one token's query with the other token's key, "
            "divided by the square root of the head dimension, and a softmax turns the scores into weights that "
            "sum to one. The output is the weighted sum of the values.",
            "A causal mask stops a token from attending to later positions, so the model cannot peek at the "
            "future. Multi-head attention runs several heads in parallel; grouped-query attention lets several "
            "query heads share one key and value head to shrink the KV cache.",
        ],
    ),
    (
        "Decoding and sampling",
        [
            "At every step the model outputs a probability for each token of the vocabulary, and a decoding "
            "strategy picks the next token. Greedy decoding always takes the most likely token.",
            "Temperature divides the logits before the softmax: a temperature below 1 sharpens the distribution "
            "and a temperature above 1 flattens it. Top-k sampling keeps only the k most likely tokens; top-p "
            "(nucleus) sampling keeps the smallest set of tokens whose probabilities add up to p, for example 0.9.",
            "Beam search keeps the best few partial sequences, the beams, at every step. A repetition penalty "
            "lowers the score of tokens that already appeared, which reduces loops.",
        ],
    ),
    (
        "Fine-tuning and LoRA",
        [
            "Fine-tuning continues training a pretrained model on a smaller data set for a task, such as following "
            "instructions. Full fine-tuning updates every weight and needs memory for all of their gradients and "
            "optimizer states.",
            "LoRA (low-rank adaptation) freezes the original weights and learns two small matrices A and B whose "
            "product, of rank r, is added to a weight matrix. With rank r = 8 on a 4096 by 4096 projection, LoRA "
            "trains 65,536 numbers instead of about 16.8 million.",
            "The update is scaled by alpha divided by r. After training the adapter can be merged into the base "
            "weights, so inference costs nothing extra.",
        ],
    ),
    (
        "Retrieval-augmented generation",
        [
            "Retrieval-augmented generation (RAG) answers questions from your own documents. The documents are "
            "split into chunks, each chunk is embedded, and the vectors are stored in an index such as FAISS.",
            "For a question, the retriever finds the most similar chunks; BM25 keyword search complements dense "
            "retrieval for rare names and numbers. Reciprocal rank fusion combines the two ranked lists by adding "
            "1 / (60 + rank) for every list a chunk appears in.",
            "The retrieved chunks are placed in the prompt with numbers so the model can cite them as [1], [2]. "
            "Text inside the documents is data, not instructions, and the prompt should say so.",
        ],
    ),
    (
        "Quantization",
        [
            "Quantization stores weights with fewer bits to save memory and speed up inference. A 7-billion-"
            "parameter model needs about 14 GB in 16-bit floats but only about 3.5 GB at 4 bits per weight.",
            "Formats such as GGUF group weights into small blocks and keep one scale per block; the Q4_1 format "
            "also keeps a minimum per block of 32 weights. The weights are dequantized back to floats when they "
            "are used.",
            "Quantizing to 8 bits usually loses very little accuracy, while going below 4 bits often hurts "
            "quality noticeably, especially for small models.",
        ],
    ),
    (
        "Evaluating language models",
        [
            "Perplexity measures how surprised a model is by held-out text: it is the exponential of the average "
            "negative log-likelihood per token, so lower is better.",
            "Retrieval is evaluated with recall at k, the share of questions whose source appears among the top k "
            "results, and with mean reciprocal rank (MRR), the average of one over the rank of the first correct "
            "result.",
            "Generated answers can be compared with reference answers by token-level F1, the harmonic mean of "
            "precision and recall over the words the two answers share.",
        ],
    ),
]


def write_pdf(pages: list[tuple[str, list[str]]], path: Path, heading: str = TITLE) -> Path:
    """One A4 page per (title, paragraphs); real text, not outlines, so it can be extracted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # fixed metadata keeps the file byte-identical between runs
    metadata = {"Title": heading, "Author": "LLM Playground", "CreationDate": None}
    with (
        matplotlib.rc_context({"pdf.fonttype": 42, "font.family": "DejaVu Sans"}),
        PdfPages(path, metadata=metadata) as pdf,
    ):
        for number, (title, paragraphs) in enumerate(pages, start=1):
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(0.08, 0.95, heading, fontsize=9, color="0.4")
            fig.text(0.08, 0.90, f"{number}. {title}", fontsize=18, weight="bold")
            y = 0.85
            for paragraph in paragraphs:
                lines = textwrap.wrap(paragraph, width=88)
                fig.text(0.08, y, "\n".join(lines), fontsize=10.5, va="top", linespacing=1.5)
                y -= 0.028 * len(lines) + 0.03
            fig.text(0.5, 0.04, f"page {number}", fontsize=9, ha="center", color="0.4")
            pdf.savefig(fig)
            plt.close(fig)
    return path


def long_document(n_pages: int) -> list[tuple[str, list[str]]]:
    """n_pages pages for the benchmark: the sample's topics again, each page numbered so no two are equal."""
    pages = []
    for i in range(n_pages):
        title, paragraphs = PAGES[i % len(PAGES)]
        part = i // len(PAGES) + 1
        pages.append((f"{title} (part {part})", [f"Section {i + 1}, part {part}. {p}" for p in paragraphs]))
    return pages


if __name__ == "__main__":
    out = write_pdf(PAGES, Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
    print(f"wrote {out} ({out.stat().st_size:,} bytes, {len(PAGES)} pages)")
