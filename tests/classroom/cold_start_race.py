"""Run in a fresh process by test_cold_start.py: eight threads start at the same instant, each
as a session would on a cold server (app.py's warm-up first), then each takes a different
first-use path. Prints one line per failure and, last, "errors: N"."""

import threading
import traceback

THREADS = 8
barrier = threading.Barrier(THREADS)
errors: list[str] = []


def model_load():
    from backends.models.cache import shared_cache

    assert shared_cache().get("smollm2-135m-instruct").model is not None


def eager_variant():
    from backends.models.cache import shared_cache

    assert shared_cache().get("smollm2-135m-instruct", variant="eager").model.config._attn_implementation == "eager"


def sentence_model():
    from backends.models.cache import shared_cache

    assert shared_cache().get("all-minilm-l6-v2", variant="sentence").model.encode(["hi"]).shape == (1, 384)


def peft_wrap():
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    from backends.core.build_lock import MODEL_BUILD
    from backends.models.cache import shared_cache

    base = shared_cache().get("all-minilm-l6-v2").model  # never ask the cache while holding the lock
    with MODEL_BUILD:  # as backends/lora does: peft builds new layers
        wrapped = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, target_modules=["query"]))
    assert all(p.device.type == "cpu" for p in wrapped.parameters()), "a layer was built on the meta device"
    lora_a = [p for n, p in wrapped.named_parameters() if "lora_A" in n]
    assert lora_a and all(float(p.abs().sum()) > 0 for p in lora_a), "peft's init ran (not emptied by a load)"
    assert any(p.requires_grad for p in wrapped.parameters()) and isinstance(wrapped, torch.nn.Module)


def tokenizer_zoo():
    from backends.tokenizers.zoo import get_tokenizer

    assert get_tokenizer("qwen3").encode("你好") and get_tokenizer("gpt2").encode("hello")


def faiss_index():
    import faiss
    import numpy as np

    index = faiss.IndexFlatIP(8)
    index.add(np.eye(8, dtype="float32"))
    assert index.search(np.eye(8, dtype="float32")[:1], 1)[1][0, 0] == 0


def rag_ingest():
    from backends.core.paths import ASSETS
    from backends.rag.ingest import ingest_file

    pdf = ASSETS / "samples" / "how_language_models_work.pdf"
    report = ingest_file(pdf.name, pdf.read_bytes())
    assert report.passages, report.message


def generate():
    from backends.decoding import DecodingConfig, encode_prompt, generate_stream
    from backends.models.cache import shared_cache

    loaded = shared_cache().get("smollm2-135m-instruct")
    ids = encode_prompt(loaded, "Hello", chat=True)
    assert len(list(generate_stream(loaded, ids, DecodingConfig(max_new_tokens=3)))) >= 1


PATHS = [model_load, eager_variant, sentence_model, peft_wrap, tokenizer_zoo, faiss_index, rag_ingest, generate]


def session(path):
    try:
        barrier.wait()
        from backends.core.warmup import warm_imports

        warm_imports()
        path()
    except Exception:
        errors.append(f"{path.__name__}: {traceback.format_exc()}")


threads = [threading.Thread(target=session, args=(p,)) for p in PATHS]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
for error in errors:
    print(error)
print(f"errors: {len(errors)}")
