"""Cache variants on SmolLM2-135M-Instruct: dynamic and static greedy loops give model.generate's tokens;
the one-pass masked window / sinks losses equal a true token-by-token rolling DynamicCache; the quantized
cache's perplexity stays near float32 and its bytes shrink by the hand-computed factor."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import DynamicCache

from backends import inference as inf
from backends.models.cache import shared_cache

SHORT = (
    "Every morning, before the kettle had finished its complaint, Mara climbed the steps of the lighthouse "
    "and wrote down what she saw. She did not write poems. She wrote numbers, mostly: the height of the swell, "
    "the colour of the sky, the number of fishing boats that left the harbour before seven."
)


@pytest.fixture(scope="module")
def loaded():
    return shared_cache().get("smollm2-135m-instruct")


@pytest.mark.parametrize("kind", ["dynamic", "static"])
def test_greedy_loop_equals_generate(loaded, kind):
    model = loaded.model
    ids = inf.text_ids(loaded.tokenizer, 24)
    ours = inf.greedy_decode(model, ids, 8, kind)
    extra = {"cache_implementation": "static"} if kind == "static" else {}
    with torch.inference_mode():
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False, pad_token_id=0, **extra
        )
    assert ours["tokens"] == out[0, ids.shape[1] :].tolist()
    assert len(ours["step_ms"]) == 7


def test_dynamic_vs_static_rows(loaded):
    rows = inf.dynamic_vs_static(loaded, prompt_tokens=16, new_tokens=4)
    assert rows["same_tokens"]
    # dynamic holds prompt + 3 fed-back tokens; static its whole allocation of prompt + 4
    assert rows["dynamic"]["cache_bytes"] == 30 * 2 * 3 * 64 * 4 * 19 == rows["dynamic"]["formula_bytes"]
    assert rows["static"]["cache_bytes"] == 30 * 2 * 3 * 64 * 4 * 20


def rolling_losses(model, ids: torch.Tensor, window: int, n_sink: int) -> torch.Tensor:
    """The reference: token by token through a DynamicCache that, after each step, keeps the first n_sink
    tokens and the newest window - n_sink - 1 (so the next query sees at most `window` keys with itself);
    every token keeps its original position."""
    cache = DynamicCache(config=model.config)
    keep = window - n_sink - 1
    losses = []
    with torch.inference_mode():
        for i in range(ids.shape[1] - 1):
            logits = model(ids[:, i : i + 1], position_ids=torch.tensor([[i]]), past_key_values=cache).logits
            losses.append(torch.nn.functional.cross_entropy(logits[0, -1:], ids[0, i + 1 : i + 2]))
            for layer in cache.layers:
                for name in ("keys", "values"):
                    t = getattr(layer, name)
                    if t.shape[-2] > n_sink + keep:
                        rest = t[..., n_sink:, :]
                        kept = rest[..., rest.shape[-2] - keep :, :] if keep else rest[..., :0, :]
                        setattr(layer, name, torch.cat([t[..., :n_sink, :], kept], dim=-2))
    return torch.stack(losses)


@pytest.mark.parametrize(("window", "n_sink"), [(12, 0), (12, 4)])
def test_masked_pass_equals_token_by_token_rolling_cache(loaded, window, n_sink):
    ids = inf.text_ids(loaded.tokenizer, 48, SHORT)
    ours = inf.token_losses(loaded.model, ids, inf.band_mask(ids.shape[1], window, n_sink))
    ref = rolling_losses(loaded.model, ids, window, n_sink)
    assert torch.allclose(ours, ref, atol=1e-4, rtol=0)
    assert abs(math.exp(ours.mean().item()) - math.exp(ref.mean().item())) < 1e-4 * math.exp(ref.mean().item())


def test_window_sinks_ppl_rows(loaded):
    ids = inf.text_ids(loaded.tokenizer, 64, SHORT)
    got = inf.window_sinks_ppl(loaded, SHORT, window=16, sinks=4, n_tokens=64)
    with torch.inference_mode():
        full = loaded.model(ids, labels=ids).loss.exp().item()  # transformers' own shifted loss
    assert got["full"] == pytest.approx(full, rel=1e-5)
    assert got["n_tokens"] == 64 and len(got["losses"]["sinks"]) == 63
    # within the window all three see the same keys
    assert got["losses"]["window"][:16] == pytest.approx(got["losses"]["full"][:16], abs=1e-4)


@pytest.mark.parametrize(("bits", "bound"), [(8, 0.01), (4, 0.15)])
def test_quantized_cache_ppl_and_bytes(loaded, bits, bound):
    # 129 tokens: 128 fed in 4 chunks of 32, each flushed into the quantized store (no float residual left)
    got = inf.quantized_cache_ppl(loaded, SHORT, bits=bits, chunk=32, n_tokens=129)
    ids = inf.text_ids(loaded.tokenizer, 129, SHORT)
    with torch.inference_mode():
        reference = loaded.model(ids, labels=ids).loss.exp().item()
    assert got["fp_ppl"] == pytest.approx(reference, rel=1e-4)
    assert abs(got["q_ppl"] - got["fp_ppl"]) / got["fp_ppl"] < bound
    assert got["q_ppl"] != got["fp_ppl"]  # the cache really was quantized
    fp_bytes = 30 * 2 * 3 * 64 * 4 * 128
    assert got["fp_bytes"] == fp_bytes
    # a token's head: 64 numbers x bits/8 bytes + a float32 scale and zero point, against 64 x 4 bytes
    per_group = 64 * bits // 8 + 8
    assert got["q_bytes"] == 30 * 2 * 3 * 128 * per_group
    assert got["q_bytes"] / fp_bytes == pytest.approx({8: 72 / 256, 4: 40 / 256}[bits])
