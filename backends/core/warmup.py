"""Import the heavy libraries once, before any session can race on them.

On a freshly started server, six sessions opening six pages at once imported
`transformers` and `peft` for the first time in several threads together; some got
`ImportError: cannot import name 'AutoConfig' from 'transformers'` (transformers
resolves its names lazily, and a half-initialised module was visible to the other
threads), and those sessions stayed broken. `warm_imports()` runs every first import
the app makes, in one thread, under one lock; every other caller waits until it is
done. The launcher (scripts/launch.py: `make run`, the Space) calls it before the server
opens its port; app.py calls it again (a no-op then; under a plain `streamlit run app.py` the
first session waits for it under a spinner); the REST server and the benchmarks call it at
start. After the first call it costs a lock and a flag check.

`warm_in_background(tasks)` runs the first loads (models, tokenizers) on one thread after
the server opens, and records each as a `Step` that `progress()` reports: the sidebar shows
what is warming and for how long, and a page that needs a model meanwhile waits for the same
load (the model cache is single-flight) under its own spinner.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

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
    ("transformers.models.bert.modeling_bert", ("BertModel", "BertForMaskedLM")),
    ("transformers.models.blenderbot.modeling_blenderbot", ("BlenderbotForConditionalGeneration",)),
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
    ("pypinyin", ("lazy_pinyin", "Style")),
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
    ("auto_round", ("AutoRound",)),
    ("bitsandbytes", ()),
    ("rapidocr_onnxruntime", ()),
    ("qdrant_client", ("QdrantClient",)),
    ("openai", ("OpenAI",)),
    ("open_clip", ("create_model_and_transforms", "get_tokenizer")),
    ("xgrammar", ("GrammarCompiler", "GrammarMatcher", "TokenizerInfo")),
    ("jsonschema", ("Draft202012Validator", "validate")),
    # The pages' own (components/): tables and charts, first drawn by several sessions at once.
    ("pandas", ()),
    ("pyarrow", ()),
    ("plotly.graph_objects", ()),
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
    "prometheus_client",
}

WAITING, RUNNING, DONE, FAILED = "waiting", "running", "done", "failed"


@dataclass(frozen=True)
class Step:
    """One part of the warm-up: `key` names it ("imports", a model's key...), `label` is what to show."""

    key: str
    label: str
    state: str = WAITING
    started: float | None = None  # time.monotonic()
    ended: float | None = None
    error: str | None = None

    def seconds(self, now: float | None = None) -> float:
        """How long it ran (so far, while it runs); 0 before it starts."""
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else (now or time.monotonic())) - self.started


_steps: dict[str, Step] = {}
_steps_lock = threading.Lock()


def _set(key: str, label: str, **changes) -> None:
    with _steps_lock:
        _steps[key] = replace(_steps.get(key) or Step(key, label), **changes)


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
        if not _done:
            _set("imports", "libraries", state=RUNNING, started=time.monotonic())
        for module, names in (HEAVY if not _done else ()) + tuple(extra):
            try:
                mod = importlib.import_module(module)
                for name in names:
                    getattr(mod, name)
            except Exception as exc:  # an optional library may be absent or broken
                _missing[module] = f"{type(exc).__name__}: {exc}"
        if not _done:
            from backends.core.memory import freeze_long_lived

            freeze_long_lived()  # full GC passes would otherwise walk every imported object, GIL held
        took = time.perf_counter() - started
        if not _done:
            _done.append(took)
            _set("imports", "libraries", state=DONE, ended=time.monotonic())
        return _done[0]


def imports_done() -> bool:
    """Whether `warm_imports()` has finished in this process (then it returns at once)."""
    return bool(_done)


def missing() -> dict[str, str]:
    """Libraries the warm-up could not import, with the reason."""
    return dict(_missing)


def progress() -> list[Step]:
    """Every step recorded in this process, in the order they were planned."""
    with _steps_lock:
        return list(_steps.values())


def warming() -> bool:
    """Whether a step is still waiting or running."""
    return any(s.state in (WAITING, RUNNING) for s in progress())


def run_step(key: str, label: str, fn: Callable[[], object]) -> bool:
    """Run `fn` as the step `key`; a failure is recorded (the page that needs it says so), never raised."""
    _set(key, label, state=RUNNING, started=time.monotonic(), ended=None, error=None)
    try:
        fn()
    except Exception as exc:  # a missing optional model must not stop the rest of the warm-up
        _set(key, label, state=FAILED, ended=time.monotonic(), error=f"{type(exc).__name__}: {exc}")
        return False
    _set(key, label, state=DONE, ended=time.monotonic())
    return True


def warm_in_background(tasks: Sequence[tuple[str, str, Callable[[], object]]]) -> threading.Thread:
    """Run (key, label, fn) tasks one after another on a daemon thread, recording each as a Step.

    All are listed as waiting at once, so the sidebar can say what is still to come.
    """
    for key, label, _ in tasks:
        _set(key, label, state=WAITING, started=None, ended=None, error=None)

    def run() -> None:
        import torch

        from backends.core.jobs import job_threads

        torch.set_num_threads(job_threads())  # all cores but one: the sessions arriving meanwhile keep one
        for key, label, fn in tasks:
            run_step(key, label, fn)

    thread = threading.Thread(target=run, name="llmpg-warmup", daemon=True)
    thread.start()
    return thread
