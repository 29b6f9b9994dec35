"""Start the app warm: `make run` and the Space's start command (the Dockerfile's CMD).

On a freshly started `streamlit run app.py`, the first visitors waited for the heavy imports
(torch, transformers, peft, ... `backends.core.warmup.HEAVY`) before anything was drawn: six
people opening six pages at once saw empty pages for 33-37 s. This launcher, in one process:
  1. imports those libraries once (`warm_imports`), then the app's own modules, before the
     server opens its port, so the first visitor finds them loaded (the health check answers
     only after this);
  2. starts one background thread that loads what the pages use first (`warm_tasks`): MiniLM
     (default, eager and sentence variants share one copy), the tokenizers the tokenizer page
     opens with, EfficientNet-Lite0, SmolLM2 (its one-time GGUF -> safetensors conversion on a
     fresh cache, ~30 s on 2 cores) and ConSE's class vectors. The small ones go first: every
     model load holds `MODEL_BUILD`, and SmolLM2's conversion would make MiniLM wait. The
     sidebar shows each step (`components.sidebar.warmup_status`); a page that needs a model
     still warming waits for that same load (the cache is single-flight) under its spinner;
  3. runs Streamlit's own `streamlit run app.py` with the arguments given, in this process.

`streamlit run app.py` still works: app.py then does step 1 in the first session (under a
spinner that says why), and nothing is warmed in the background.

Usage: python scripts/launch.py [streamlit run options, e.g. --server.port 8501]
Set LLMPG_WARM_MODELS=0 to skip step 2, LLMPG_WARM_GEMMA=0 to leave Gemma 3 270M (the Chinese
default, last in step 2) to its first use.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def warm_tasks(device: str) -> list[tuple[str, str, object]]:
    """(key, label, function) of each background step, in the order they run."""
    from backends import vision
    from backends.models.cache import shared_cache
    from backends.models.registry import find_spec
    from backends.tokenizers import tokenization

    cache = shared_cache()

    def model(key: str, *variants: str):
        spec = find_spec(key)
        return (key, spec.label if spec else key, lambda: [cache.get(key, device=device, variant=v) for v in variants])

    def tokenizers():
        for name in ("gpt2", "cl100k_base", "o200k_base", "qwen3", "bert-wordpiece"):  # the page's default five
            tokenization.get_tokenizer(name)

    def conse():
        classifier = cache.get(vision.CLASSIFIER, device=device, variant="image-classifier")
        vision.ConseSpace(classifier, cache.get(vision.ENCODER, device=device, variant="sentence"))

    return [
        model("all-minilm-l6-v2", "default", "eager", "sentence"),
        ("tokenizers", "tokenizers", tokenizers),
        model(vision.CLASSIFIER, "image-classifier"),
        model("smollm2-135m-instruct", "default"),
        ("conse", "conse", conse),
    ] + (
        # Last: the Chinese default of decoding, attention and quantization (its one-time conversion
        # takes 70-110 s on 2 cores and holds the build lock). LLMPG_WARM_GEMMA=0 leaves it to first use.
        [model("gemma-3-270m", "default", "eager")] if os.environ.get("LLMPG_WARM_GEMMA", "1") != "0" else []
    )


def import_app_modules() -> int:
    """Import the app's own modules (backends/, components/) now rather than in the first sessions'
    page runs; they are light once the libraries are in (about 1 s), but several sessions did it at once."""
    import importlib
    import logging
    import pkgutil

    import backends
    import components

    # st.cache_data outside a server checks its parameters against an in-memory store and warns;
    # the runtime's store is used when the function is first called. (Streamlit resets its loggers'
    # levels when it reads its config, hence a filter.)
    logging.getLogger("streamlit.runtime.caching.cache_data_api").addFilter(
        lambda record: "No runtime found" not in record.getMessage()
    )
    count = 0
    for package in (backends, components):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith(".__main__"):  # `python -m backends.serving` starts a server
                continue
            try:
                importlib.import_module(info.name)
                count += 1
            except Exception as exc:  # noqa: BLE001 - the page that uses it shows the error; the server starts
                print(f"llm-playground: could not import {info.name}: {type(exc).__name__}: {exc}", flush=True)
    return count


def map_modules_to_files() -> float:
    """The first element Streamlit draws in a process asks whether it runs in a REPL
    (`streamlit.env_util.is_repl`: `inspect.stack()`, whose first call maps every loaded module to
    its file). With torch and transformers loaded that took 3 s of one session's first run on a
    fresh server; done here, `inspect` keeps the map and that session pays milliseconds."""
    from streamlit import env_util

    started = time.perf_counter()
    env_util.is_repl()
    return time.perf_counter() - started


def main(argv: list[str]) -> None:
    os.chdir(ROOT)  # Streamlit reads .streamlit/config.toml from the working folder
    started = time.perf_counter()
    from backends.core.memory import freeze_long_lived, tune_allocator
    from backends.core.warmup import missing, warm_imports, warm_in_background

    tune_allocator()
    took = warm_imports()
    print(f"llm-playground: libraries imported in {took:.1f} s", flush=True)
    for module, reason in missing().items():
        print(f"llm-playground: not available: {module} ({reason})", flush=True)
    print(f"llm-playground: {import_app_modules()} app modules imported", flush=True)
    print(f"llm-playground: modules mapped to their files in {map_modules_to_files():.1f} s", flush=True)
    print(f"llm-playground: {freeze_long_lived()} long-lived objects left out of GC passes", flush=True)
    if os.environ.get("LLMPG_WARM_MODELS", "1") != "0":
        from backends.core.device import resolve_device

        warm_in_background(warm_tasks(resolve_device("auto")))  # the device a session's "auto" picks
    print(f"llm-playground: starting the server {time.perf_counter() - started:.1f} s after launch", flush=True)

    from streamlit.web import cli

    sys.argv = ["streamlit", "run", "app.py", *argv]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main(sys.argv[1:])
