import threading
import weakref

import pytest
import torch

from backends.models.cache import ModelCache
from backends.models.loaders import CacheKey, load_model
from backends.models.registry import ModelNotAvailable

MINILM = "all-minilm-l6-v2"
SMOLLM2 = "smollm2-135m-instruct"


class CountingLoader:
    """The real loader, counted: lets a test see how many loads really happened."""

    def __init__(self):
        self.calls = []
        self._lock = threading.Lock()

    def __call__(self, key):
        with self._lock:
            self.calls.append(key)
        return load_model(key)


def _unlimited(device):
    return 1 << 40


def _in_threads(fn, n: int) -> None:
    threads = [threading.Thread(target=fn) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_concurrent_requests_load_a_key_once():
    loader = CountingLoader()
    cache = ModelCache(loader=loader, budget=_unlimited)
    barrier = threading.Barrier(8)
    results, errors = [], []

    def ask():
        barrier.wait()
        try:
            results.append(cache.get(MINILM))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    _in_threads(ask, 8)
    assert not errors
    assert len(loader.calls) == 1
    assert len({id(r) for r in results}) == 1 and len(results) == 8
    assert cache.loads == 1


def test_aliases_and_repeat_requests_hit_the_same_entry():
    loader = CountingLoader()
    cache = ModelCache(loader=loader, budget=_unlimited)
    first = cache.get("sentence-transformers/all-MiniLM-L6-v2")
    second = cache.get(MINILM)
    assert first is second and len(loader.calls) == 1 and cache.hits == 1
    assert first.key == CacheKey(MINILM, "cpu", "float32", "default")


def test_variants_are_separate_entries_and_really_differ():
    cache = ModelCache(budget=_unlimited)
    default = cache.get(MINILM)
    eager = cache.get(MINILM, variant="eager")
    assert default is not eager
    assert eager.model.config._attn_implementation == "eager"
    inputs = eager.tokenizer("attention please", return_tensors="pt")
    assert eager.model(**inputs, output_attentions=True).attentions[0] is not None


def test_a_failed_load_reaches_every_waiter_and_is_retried_later():
    loader = CountingLoader()
    cache = ModelCache(loader=loader, budget=_unlimited)
    errors = []

    def ask():
        try:
            cache.get("no-such-owner/no-such-model")
        except ModelNotAvailable as exc:
            errors.append(exc)

    _in_threads(ask, 4)
    assert len(errors) == 4
    assert cache.keys() == []
    with pytest.raises(ModelNotAvailable):
        cache.get("no-such-owner/no-such-model")
    assert 2 <= len(loader.calls) <= 5


def test_budget_evicts_the_least_recently_used_entry():
    probe = load_model(CacheKey(MINILM))
    budget = int(probe.nbytes * 1.5)  # room for one MiniLM (its variants share its weights), not SmolLM2 too
    del probe
    loader = CountingLoader()
    cache = ModelCache(loader=loader, budget=lambda device: budget)
    cache.get(MINILM)
    cache.get(MINILM, variant="eager")  # built over the default entry's weights: nothing evicted
    assert [k.variant for k in cache.keys()] == ["default", "eager"] and cache.evictions == 0
    assert cache.used_bytes("cpu") <= budget
    cache.get(SMOLLM2)  # does not fit beside MiniLM: both MiniLM entries go, least recently used first
    assert [k.model for k in cache.keys()] == [SMOLLM2]
    assert cache.evictions == 2
    cache.get(MINILM)  # evicted, so loaded again
    assert len(loader.calls) == 3
    assert [k.model for k in cache.keys()] == [MINILM], "SmolLM2 alone is over this budget, so it went"


def test_variants_share_one_copy_of_the_weights():
    cache = ModelCache(budget=_unlimited)
    default = cache.get(MINILM)
    eager = cache.get(MINILM, variant="eager")
    sentence = cache.get(MINILM, variant="sentence")
    base = dict(default.model.named_parameters())
    for variant, model in (("eager", eager.model), ("sentence", sentence.model[0].auto_model)):
        mine = dict(model.named_parameters())
        assert mine.keys() == base.keys(), variant
        assert all(mine[n].data_ptr() == base[n].data_ptr() for n in base), f"{variant} holds its own copy"
    assert eager.shares_weights_with == sentence.shares_weights_with == default.key
    assert default.model.config._attn_implementation != "eager", "the default entry was not switched"
    # The three entries hold one MiniLM's memory between them.
    assert cache.used_bytes("cpu") < default.nbytes * 1.05
    vec = sentence.model.encode(["weights shared"])
    assert vec.shape == (1, 384) and abs(float((vec**2).sum()) - 1) < 1e-3  # MiniLM's pipeline normalises
    lm = cache.get(SMOLLM2)
    lm_eager = cache.get(SMOLLM2, variant="eager")
    ids = lm.tokenizer("The cat sat", return_tensors="pt")
    with torch.no_grad():
        out = lm_eager.model(**ids, output_attentions=True)
        assert torch.allclose(out.logits, lm.model(**ids).logits, atol=1e-4)
    assert out.attentions[0] is not None
    assert lm_eager.model.lm_head.weight.data_ptr() == lm.model.lm_head.weight.data_ptr()


def test_unload_frees_the_entry_and_its_memory():
    cache = ModelCache(budget=_unlimited)
    entry = cache.get(MINILM)
    key, nbytes = entry.key, entry.nbytes
    model_ref = weakref.ref(entry.model)
    del entry
    assert cache.used_bytes("cpu") == nbytes > 50 * 2**20
    assert cache.unload(key) == nbytes
    assert cache.keys() == [] and cache.used_bytes("cpu") == 0
    assert model_ref() is None, "the model is still referenced after unload"
    assert cache.unload(key) == 0


def test_models_are_handed_out_frozen_for_inference():
    cache = ModelCache(budget=_unlimited)
    entry = cache.get(MINILM)
    assert not entry.model.training
    assert not any(p.requires_grad for p in entry.model.parameters())
    assert entry.nbytes == sum(p.numel() * p.element_size() for p in entry.model.parameters()) + sum(
        b.numel() * b.element_size() for b in entry.model.buffers()
    )
    assert next(entry.model.parameters()).dtype == torch.float32


def test_bad_dtype_or_variant_is_refused():
    with pytest.raises(ValueError, match="dtype"):
        CacheKey(MINILM, dtype="int3")
    with pytest.raises(ValueError, match="variant"):
        CacheKey(MINILM, variant="flash")
