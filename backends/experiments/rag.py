"""RAG experiments on the shipped sample PDF, indexed once per process and device with the page's
default chunking (500 characters, 80 overlap) and embedding model, through the RAG package's API."""

from __future__ import annotations

import math
import threading

import torch

from backends import rag
from backends.core.paths import ASSETS
from backends.core.scheduler import shared_scheduler
from backends.experiments.base import Experiment, fmt, observation
from backends.models.cache import shared_cache

EMBED = "all-minilm-l6-v2"
LLM = "smollm2-135m-instruct"
CHUNKS = rag.ChunkSettings("characters", 500, 80)  # the page's default
# Questions of assets/samples/sample_eval.jsonl with their reference answers.
QUESTIONS = (
    ("How many dimensions does an all-MiniLM-L6-v2 vector have?", "384 dimensions."),
    ("How many tokens are in GPT-2's byte-level BPE vocabulary?", "50,257 tokens."),
    ("What does a temperature below 1 do to the distribution?", "It sharpens the distribution."),
)
_LOCK = threading.Lock()
_SAMPLES: dict[str, object] = {}


def sample_pdf():
    return next(iter(sorted((ASSETS / "samples").glob("*.pdf"))))


def sample_collection(device: str):
    """The sample PDF's collection, built once per device for every session (it is read only)."""
    with _LOCK:
        if device not in _SAMPLES:
            pdf = sample_pdf()
            _SAMPLES[device] = rag.build_collection(None, [(pdf.name, pdf.read_bytes(), None)], CHUNKS, EMBED, device)
        return _SAMPLES[device]


def answer_perplexity(loaded, prompt_ids: list[int], answer: str) -> float:
    """exp(-mean log-probability) of the reference answer's tokens right after the prompt (teacher forcing):
    how readily the model would give the document's answer."""
    answer_ids = list(loaded.tokenizer(answer, add_special_tokens=False)["input_ids"])
    ids = torch.tensor([prompt_ids + answer_ids], device=loaded.model.device)
    with torch.inference_mode(), shared_scheduler().turn("rag"):
        logits = loaded.model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
    picked = logits.log_softmax(-1).gather(1, ids[0, len(prompt_ids) :, None])[:, 0]
    return math.exp(-float(picked.mean()))


def measure_with_without(params, device):
    """The document's answer to each question, scored after the prompt the chat builds with the top-k
    retrieved passages and after the prompt with none (the page's "compare" pair)."""
    collection = sample_collection(device)
    loaded = shared_cache().get(LLM, device=device)
    generator = rag.LocalGenerator(loaded)
    with_ppl, without_ppl = [], []
    for question, answer in params["questions"]:
        hits = collection.search(question, method="hybrid", k=params["k"])
        with_ppl.append(answer_perplexity(loaded, generator.prompt_ids(rag.build_messages(question, hits)), answer))
        without_ppl.append(
            answer_perplexity(loaded, generator.prompt_ids(rag.build_messages_without_retrieval(question)), answer)
        )
    better = sum(w < o for w, o in zip(with_ppl, without_ppl))
    n = len(with_ppl)
    outcome = "with" if better == n else "without" if better == 0 else "same"
    return observation(
        "rag.with_without",
        outcome,
        "with",
        n=n,
        better=better,
        with_ppl=" · ".join(fmt(x, 1) for x in with_ppl),
        without_ppl=" · ".join(fmt(x, 1) for x in without_ppl),
        question=params["questions"][0][0],
        answer=params["questions"][0][1],
    )


def best_cosine(collection, question: str) -> float:
    hits = collection.search(question, method="dense", k=1)
    return float(hits[0].score) if hits else 0.0


def measure_off_topic(params, device):
    """The best cosine of an off-topic question against the page's weak-retrieval threshold."""
    collection = sample_collection(device)
    off, on = best_cosine(collection, params["question"]), best_cosine(collection, params["on_topic"])
    outcome = "weak" if off < rag.WEAK_COSINE else "strong"
    return observation(
        "rag.off_topic", outcome, "weak", off=fmt(off, 3), on=fmt(on, 3), threshold=fmt(rag.WEAK_COSINE)
    )


def measure_paraphrase(params, device):
    """Which method ranks the right page first for a question that shares no key word with it."""
    collection = sample_collection(device)
    first = {m: collection.search(params["question"], method=m, k=1)[0].chunk.page for m in ("dense", "sparse")}
    right = {m: first[m] == params["page"] for m in first}
    outcome = (
        "both" if all(right.values()) else "dense" if right["dense"] else "sparse" if right["sparse"] else "neither"
    )
    return observation(
        "rag.paraphrase", outcome, "dense", dense=first["dense"], sparse=first["sparse"], page=params["page"]
    )


EXPERIMENTS = (
    Experiment(
        "rag",
        "with_without",
        ("with", "without", "same"),
        "with",
        {"questions": QUESTIONS, "question": QUESTIONS[0][0], "answer": QUESTIONS[0][1], "k": 4, "max_new": 64},
        measure_with_without,
    ),
    Experiment(
        "rag",
        "off_topic",
        ("weak", "strong"),
        "weak",
        {
            "question": "Who painted the Mona Lisa?",
            "on_topic": "How many tokens are in GPT-2's byte-level BPE vocabulary?",
        },
        measure_off_topic,
    ),
    Experiment(
        "rag",
        "paraphrase",
        ("dense", "sparse", "both", "neither"),
        "dense",
        {"question": "What makes the output less random?", "page": 4},
        measure_paraphrase,
    ),
)
