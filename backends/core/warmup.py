"""Import the heavy libraries once, before any session can race on them.

On a freshly started server, six sessions opening six pages at once imported
`transformers` and `peft` for the first time in several threads together; some got
`ImportError: cannot import name 'AutoConfig' from 'transformers'` (transformers
resolves its names lazily, and a half-initialised module was visible to the other
threads), and those sessions stayed broken. `warm_imports()` runs every first import
the app makes, in one thread, under one lock; every other caller waits until it is
done. app.py calls it before any page runs; the REST server and the benchmarks call it
at start. After the first call it costs a lock and a flag check.
"""

from __future__ import annotations

import importlib
import threading
import time

# (module, names to resolve on it): resolving forces transformers' lazy attributes now.
HEAVY = (
    ("torch", ()),
    ("numpy", ()),
    ("safetensors.torch", ("load_file", "save_file")),
    (
        "tokenizers",
        ("Tokenizer", "AddedToken", "decoders", "models", "normalizers", "pre_tokenizers", "processors", "trainers"),
    ),
    (
        "transformers",
        (
            "AutoConfig",
            "AutoModel",
            "AutoModelForCausalLM",
            "AutoTokenizer",
            "DynamicCache",
            "get_scheduler",
            "PreTrainedModel",
        ),
    ),
    ("transformers.utils.chat_template_utils", ("render_jinja_template",)),
    ("transformers.models.llama.modeling_llama", ("LlamaForCausalLM",)),
    ("transformers.models.bert.modeling_bert", ("BertModel",)),
    ("peft", ("LoraConfig", "PeftModel", "get_peft_model")),
    ("peft.utils", ("get_peft_model_state_dict", "set_peft_model_state_dict")),
    ("sentence_transformers", ("SentenceTransformer", "CrossEncoder")),
    ("faiss", ()),
    ("scipy.sparse", ()),
    ("scipy.stats", ("t",)),
    ("tiktoken", ("Encoding",)),
    ("pypdf", ("PdfReader", "PageObject", "PasswordType")),
    ("pypdf.errors", ("PdfReadError", "DependencyError")),
    ("langchain_text_splitters", ("RecursiveCharacterTextSplitter",)),
    ("httpx", ()),
    ("gguf", ()),
    ("sentencepiece", ()),
    ("charset_normalizer", ("from_bytes",)),
    ("PIL.Image", ("open",)),
    ("torchvision", ()),
    ("matplotlib", ()),
    ("matplotlib.pyplot", ()),
    ("skimage.data", ()),
    ("sklearn.linear_model", ("LogisticRegression",)),
    ("sklearn.feature_extraction.text", ("TfidfVectorizer",)),
    ("efficientnet_lite_pytorch", ()),
    ("easy_vqa", ()),
    ("onnx", ()),
    ("onnxruntime", ()),
    ("onnxruntime.quantization", ("quantize_dynamic",)),
    ("torchao", ()),
    ("torchao.quantization", ()),
    ("bitsandbytes", ()),
    ("rapidocr_onnxruntime", ()),
    ("qdrant_client", ("QdrantClient",)),
    ("openai", ("OpenAI",)),
    ("open_clip", ("create_model_and_transforms", "get_tokenizer")),
)

# Imported only by the REST server (its own process, or one thread the serving page starts once:
# no sessions race on them), or light enough to import without harm in any thread.
NOT_IN_APP = {
    "fastapi",
    "uvicorn",
    "gradio",
    "gradio_client",
    "starlette",
    "pydantic",
    "psutil",
    "filelock",
    "huggingface_hub",
    "packaging",
}

_lock = threading.Lock()
_done: list[float] = []
_missing: dict[str, str] = {}


def warm_imports(extra: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> float:
    """Import HEAVY (and `extra`) once per process; returns the seconds the first call took.

    A library that is not installed is remembered in `missing()` rather than raised: the
    page that needs it says so when it is used.
    """
    if _done and not extra:
        return _done[0]
    with _lock:
        if _done and not extra:
            return _done[0]
        started = time.perf_counter()
        for module, names in (HEAVY if not _done else ()) + tuple(extra):
            try:
                mod = importlib.import_module(module)
                for name in names:
                    getattr(mod, name)
            except Exception as exc:  # an optional library may be absent or broken
                _missing[module] = f"{type(exc).__name__}: {exc}"
        took = time.perf_counter() - started
        if not _done:
            _done.append(took)
        return _done[0]


def missing() -> dict[str, str]:
    """Libraries the warm-up could not import, with the reason."""
    return dict(_missing)
