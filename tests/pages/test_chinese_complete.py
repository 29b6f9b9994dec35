"""Every page in Chinese shows no English sentence: labels, captions, messages, tabs, table
columns, chart titles, axis titles and legends are all translated. Technical terms that Chinese
learners use in English (token, LoRA, top-p, model names...) may stay: ALLOWED lists them.

Every tab of every page is opened (tabs are lazy: only the open one runs)."""

import json
import re

import pytest

from components.page_registry import PAGES

# Words that may stay in English in the Chinese UI: terms of the trade and names.
ALLOWED = {
    # terms Chinese learners use as they are
    "wanda",
    "garak",
    "sun",
    "frantar",
    "hinton",
    "hessian",
    "cholesky",
    "intel",
    "auto-round",
    "autoround",
    "runtime",
    "qat",
    "ptq",
    "gptq",
    "rtn",
    "flap",
    "xgrammar",
    "pre-norm",
    "post-norm",
    "all-reduce",
    "gloo",
    "nccl",
    "pypinyin",
    "sinks",
    "hub",
    "speculative",
    "decoding",
    "lookup",
    "exp",
    "running",
    "waiting",
    "prometheus",
    "mixtral",
    "marian",
    "korthikanti",
    "switch",
    "schema",
    "regex",
    "ebnf",
    "gbnf",
    "token",
    "tokens",
    "tokenizer",
    "tokenizers",
    "lora",
    "qlora",
    "top",
    "p",
    "k",
    "min",
    "typical",
    "embedding",
    "embeddings",
    "softmax",
    "query",
    "key",
    "value",
    "bpe",
    "wordpiece",
    "unigram",
    "sentencepiece",
    "byte",
    "level",
    "rope",
    "kv",
    "cache",
    "rag",
    "bm25",
    "faiss",
    "rrf",
    "mrr",
    "recall",
    "f1",
    "pdf",
    "json",
    "csv",
    "jsonl",
    "txt",
    "md",
    "zip",
    "html",
    "png",
    "npz",
    "url",
    "api",
    "rest",
    "cpu",
    "gpu",
    "cuda",
    "mps",
    "auto",
    "rollout",
    "logits",
    "logit",
    "prompt",
    "prompts",
    "transformer",
    "transformers",
    "attention",
    "head",
    "heads",
    "alpha",
    "rank",
    "dropout",
    "batch",
    "epoch",
    "epochs",
    "step",
    "steps",
    "loss",
    "adam",
    "adamw",
    "warmup",
    "cosine",
    "linear",
    "constant",
    "safetensors",
    "gguf",
    "onnx",
    "int8",
    "int4",
    "fp32",
    "fp16",
    "bf16",
    "nf4",
    "perplexity",
    "distinct",
    "n",
    "gram",
    "ngram",
    "chat",
    "template",
    "special",
    "unk",
    "cls",
    "sep",
    "pad",
    "mask",
    "bos",
    "eos",
    "eager",
    "sdpa",
    "dense",
    "sparse",
    "hybrid",
    "cross",
    "encoder",
    "decoder",
    "causal",
    "lm",
    "mlp",
    "gelu",
    "relu",
    "ffn",
    "seed",
    "utf",
    "ascii",
    "unicode",
    "emoji",
    "bits",
    "id",
    "ids",
    "dim",
    "d",
    "q",
    "v",
    "qk",
    "peft",
    "streamlit",
    "python",
    "torch",
    "pytorch",
    "numpy",
    "plotly",
    "pip",
    "ok",
    "clip",
    "blip",
    "vqa",
    "conse",
    "grad",
    "cam",
    "ocr",
    "tf",
    "idf",
    "macro",
    "micro",
    "precision",
    "gradio",
    "fastapi",
    "openai",
    "sse",
    "curl",
    "langchain",
    "docker",
    "space",
    "spaces",
    "llm",
    "llms",
    "gpt",
    "nanogpt",
    "bigram",
    "char",
    "wikitext",
    "t",
    "ollama",
    "vllm",
    "tgi",
    "qdrant",
    "bitsandbytes",
    "torchao",
    "onnxruntime",
    "llama",
    "cpp",
    "kld",
    "ppl",
    "zero",
    "shot",
    "few",
    "instruction",
    "pareto",
    "x",
    "e",
    "i",
    "eval",
    "train",
    "vs",
    "tfidf",
    "logistic",
    "regression",
    "probe",
    "fine",
    "tuning",
    "tune",
    "hugging",
    "face",
    # names of people, companies, models and languages
    "qwen",
    "gemma",
    "apple",
    "abnar",
    "zuidema",
    "vaswani",
    "su",
    "english",
    "language",
    "shakespeare",
    "meta",
    "google",
    # field names of the chat format, and the label of Streamlit's own Stop button
    "role",
    "content",
    "user",
    "assistant",
    "system",
    "stop",
    "sink",
    "playground",
    # more terms: parts of a LoRA run, RAG's pieces, and the fields of a training file
    "adapter",
    "adapters",
    "chunk",
    "chunks",
    "response",
    "turns",
    "messages",
    "text",
    "endpoint",
    "endpoints",
    "server-sent",
    "event",
    "sentiment",
    "open",
    "knowledge",
    "foundation",
    "karpathy",
    "preston",
    "parry",
    "crowdflower",
    "scikit-learn",
    "gutenberg",
    "milton",
    # the fields of a GGUF Q4_K super-block, named as llama.cpp names them
    "dmin",
    "sc",
    # alignment terms and the symbols of its formulas (β·(log π − log π_ref), σ(margin))
    "label",
    "labels",
    "beta",
    "log",
    "ref",
    "sigmoid",
    "margin",
    "hinge",
    "norm",
    "sft",
    "dpo",
    "ipo",
    "kl",
    "trl",
}
WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’_.-]*[A-Za-z0-9]|[A-Za-z]")


def _is_name(word: str) -> bool:
    """Model ids, file names and code names: digits, underscores, inner capitals, all caps."""
    return (
        any(c.isdigit() for c in word)
        or "_" in word
        or "." in word
        or word.isupper()
        or any(c.isupper() for c in word[1:])
    )


def english_words(text: str) -> list[str]:
    text = re.sub(r"`[^`]*`", " ", text)  # code
    text = re.sub(r"“[^”]*”|\"[^\"]*\"", " ", text)  # quoted input: what a model reads is data
    text = re.sub(r"https?://\S+|\S+\.(?:py|json|txt|md|pdf|csv|zip|png)\b", " ", text)  # links and files
    text = re.sub(r"<[^>]+>", " ", text)  # html tags
    text = re.sub(r":[a-z]+(?:-badge)?\[", " ", text)  # Streamlit's colour and badge directives: :green-badge[
    text = re.sub(r"\b\w+\(", " ", text)  # calls: decode(encode(x))
    text = re.sub(r"[?&]\w+=\S*", " ", text)  # link parameters: ?present=1
    text = re.sub(r"[\w.-]+(?:/[\w.-]+)+", " ", text)  # hub ids and paths
    words = WORD.findall(text)
    return [
        w
        for w in words
        if w.lower().strip("'’") not in ALLOWED
        and not _is_name(w)
        and len(w) > 1
        and not all(part in ALLOWED for part in w.lower().split("-"))
    ]


def is_english_sentence(text: str) -> bool:
    """Any English word that is not a term or a name: "top-k (0 = off)" is a label left in English."""
    return len(english_words(text)) >= 1


def _figure_texts(at) -> list[str]:
    out = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        layout = spec.get("layout", {})
        title = layout.get("title")
        out.append(title.get("text", "") if isinstance(title, dict) else str(title or ""))
        for axis in [k for k in layout if k.startswith(("xaxis", "yaxis"))]:
            axis_title = layout[axis].get("title")
            out.append(axis_title.get("text", "") if isinstance(axis_title, dict) else str(axis_title or ""))
        out += [str(trace.get("name") or "") for trace in spec.get("data", []) if trace.get("showlegend", True)]
    return out


def visible_texts(at) -> list[str]:
    """What a learner reads in the page (widget values and data cells are content, not UI text)."""
    texts = []
    for kind in ("title", "header", "subheader", "caption", "info", "warning", "error", "success"):
        texts += [str(e.value) for e in at.get(kind)]
    texts += [str(m.value) for m in at.markdown if "<span" not in str(m.value) and "<div" not in str(m.value)]
    for kind in (
        "button",
        "selectbox",
        "multiselect",
        "radio",
        "slider",
        "select_slider",
        "number_input",
        "text_input",
        "text_area",
        "toggle",
        "checkbox",
        "chat_input",
        "date_input",
        "color_picker",
    ):
        for widget in at.get(kind):
            texts.append(str(getattr(widget, "label", "") or ""))
            texts.append(str(getattr(widget, "help", "") or ""))
            if kind in ("selectbox", "radio", "multiselect") and len(getattr(widget, "options", [])) <= 12:
                texts += [str(o) for o in widget.options]
    texts += [str(e.label) for e in at.get("expander")] + [str(t.label) for t in at.get("tab")]
    texts += [str(m.label) for m in at.metric]
    for frame in at.dataframe:
        texts += [str(c) for c in getattr(frame.value, "columns", [])]
    texts += _figure_texts(at)
    return [t for t in texts if t.strip()]


def test_the_checker_flags_english_and_passes_chinese_with_terms():
    assert is_english_sentence("bitsandbytes is not installed (pip install bitsandbytes)")
    assert not is_english_sentence("top-p softmax token embedding")  # terms only
    assert is_english_sentence("Loss while training")
    assert not is_english_sentence("每个 token 的 top-p 概率（SmolLM2-135M-Instruct）")
    assert not is_english_sentence("`v_proj` 576→192 ×30")
    assert not is_english_sentence(":green-badge[:material/check: 与模型一致]")  # st.badge's markdown


def _tab_key(at) -> str | None:
    labels = {t.label for t in at.get("tab")}
    return (
        next((k for k in list(at.session_state) if str(k).endswith(".tab") and at.session_state[k] in labels), None)
        if labels
        else None
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.key)
def test_every_tab_of_every_page_is_chinese(page, open_page):
    at = open_page(page, **{"app.lang": "zh"})
    assert not at.exception, [e.value for e in at.exception]
    english = {}
    tab_key = _tab_key(at)
    labels = [t.label for t in at.get("tab")] if tab_key else [None]
    for label in labels:
        if label is not None and at.session_state[tab_key] != label:
            at.session_state[tab_key] = label
            at.run()
            assert not at.exception, (label, [e.value for e in at.exception])
        for text in visible_texts(at):
            if is_english_sentence(text):
                english.setdefault(label or "-", []).append(f"{text[:120]}  <- {english_words(text)[:6]}")
    assert english == {}
