"""Attention backend: parity of the hand-written attention with the real models, and the summaries.

Uses the two embedded models through the shared cache (eager attention variant).
"""

from __future__ import annotations

import hashlib
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from backends import attention as A
from backends.models.cache import shared_cache

LONG_TEXT = " ".join(
    f"Sentence {i}: attention lets every token look back at the words that came before it." for i in range(12)
)
CHINESE = "注意力机制让每个词都能看到句子里的其他词。"
PAIR = ("The cat sat on the mat.", "It was very happy there.")


@pytest.fixture(scope="module")
def enc():
    return shared_cache().get("all-minilm-l6-v2", variant="eager")


@pytest.fixture(scope="module")
def dec():
    return shared_cache().get("smollm2-135m-instruct", variant="eager")


def _check_parity(loaded, text, text_pair=None, heads=None):
    cfg = loaded.model.config
    fp = A.forward_pass(loaded, text, text_pair, hidden_states=True)
    heads = range(cfg.num_attention_heads) if heads is None else heads
    worst = 0.0
    for layer in range(cfg.num_hidden_layers):
        for head in heads:
            m = A.manual_attention(loaded, text, layer, head, text_pair=text_pair, forward=fp)
            assert m.max_abs_diff < 1e-4, (layer, head, m.max_abs_diff)
            np.testing.assert_allclose(m.probs, m.model_probs, atol=1e-4)
            worst = max(worst, m.max_abs_diff)
    return fp, worst


# --- parity: hand-written attention == the model's own --------------------------------------------


@pytest.mark.parametrize(
    "text,text_pair", [(PAIR[0], PAIR[1]), (CHINESE, None), (LONG_TEXT, None)], ids=["pair", "chinese", "long"]
)
def test_encoder_parity_all_layers_all_heads(enc, text, text_pair):
    fp, _ = _check_parity(enc, text, text_pair)
    if text_pair is not None:
        assert set(fp.inputs["token_type_ids"][0].tolist()) == {0, 1}


@pytest.mark.parametrize(
    "text", ["The cat sat on the mat because it was warm.", CHINESE, LONG_TEXT], ids=["short", "chinese", "long"]
)
def test_decoder_parity_all_layers_all_heads(dec, text):
    # SmolLM2: RoPE, and 9 query heads sharing 3 key/value heads (grouped-query attention).
    fp, _ = _check_parity(dec, text)
    if text == LONG_TEXT:
        assert fp.inputs["input_ids"].shape[1] > 150


def test_manual_attention_fields(dec):
    m = A.manual_attention(dec, "Hello there, friend.", layer=2, head=5)
    seq = len(m.tokens)
    head_dim = dec.model.config.head_dim
    assert m.q.shape == m.k.shape == (seq, head_dim)
    assert m.scores.shape == m.mask.shape == m.probs.shape == (seq, seq)
    assert m.kv_head == 5 // 3
    assert np.array_equal(m.mask, np.tril(np.ones((seq, seq), dtype=bool)))
    np.testing.assert_allclose(m.probs.sum(-1), 1.0, atol=1e-5)
    assert np.all(m.probs[~m.mask] == 0)
    np.testing.assert_allclose(m.scores, m.q @ m.k.T / math.sqrt(head_dim), rtol=1e-4, atol=1e-4)


def test_manual_attention_encoder_mask_is_full(enc):
    m = A.manual_attention(enc, PAIR[0], layer=0, head=0, text_pair=PAIR[1])
    assert m.mask.all() and m.kv_head == 0


def test_manual_attention_rejects_bad_layer_and_mismatched_forward(dec):
    with pytest.raises(ValueError, match="layer"):
        A.manual_attention(dec, "hi there", layer=30, head=0)
    with pytest.raises(ValueError, match="head"):
        A.manual_attention(dec, "hi there", layer=0, head=9)
    fp = A.forward_pass(dec, "hi there", hidden_states=True)
    with pytest.raises(ValueError, match="same text"):
        A.manual_attention(dec, "something else", 0, 0, forward=fp)


# --- compute_attention ---------------------------------------------------------------------------


def test_decoder_maps_are_causal_and_rows_sum_to_one(dec):
    r = A.compute_attention(dec, "Attention is all you need, they said.")
    cfg = dec.model.config
    seq = len(r.tokens)
    assert r.attentions.shape == (cfg.num_hidden_layers, cfg.num_attention_heads, seq, seq)
    assert r.attentions.dtype == np.float32 and r.attentions.flags["C_CONTIGUOUS"]
    assert r.is_causal and not r.truncated and r.n_input_tokens == seq
    np.testing.assert_allclose(r.attentions.sum(-1), 1.0, atol=1e-4)
    upper = np.triu(np.ones((seq, seq), dtype=bool), k=1)
    assert np.all(r.attentions[..., upper] == 0)
    assert r.segment_ids is None
    assert r.token_ids == dec.tokenizer("Attention is all you need, they said.")["input_ids"]


def test_encoder_pair_maps_are_not_causal(enc):
    r = A.compute_attention(enc, *PAIR)
    seq = len(r.tokens)
    assert r.attentions.shape == (6, 12, seq, seq)
    np.testing.assert_allclose(r.attentions.sum(-1), 1.0, atol=1e-4)
    upper = np.triu(np.ones((seq, seq), dtype=bool), k=1)
    assert not r.is_causal
    assert r.attentions[..., upper].max() > 0.05  # tokens do look ahead
    assert r.tokens[0] == "[CLS]" and r.tokens.count("[SEP]") == 2
    assert r.special_mask.tolist() == [t in ("[CLS]", "[SEP]") for t in r.tokens]
    assert r.segment_ids is not None and set(r.segment_ids.tolist()) == {0, 1}
    assert r.segment_ids[-1] == 1 and r.segment_ids[0] == 0
    assert r.model_key == "all-minilm-l6-v2"


def test_attention_from_forward_matches_and_shares_memory(enc):
    fp = A.forward_pass(enc, *PAIR, hidden_states=True)
    r = A.attention_from_forward(enc, fp)
    direct = A.compute_attention(enc, *PAIR)
    np.testing.assert_allclose(r.attentions, direct.attentions, atol=1e-6)
    assert r.tokens == direct.tokens and r.segment_ids.tolist() == direct.segment_ids.tolist()
    assert np.shares_memory(r.attentions, fp.attentions[3].numpy())
    m = A.manual_attention(enc, PAIR[0], 3, 7, text_pair=PAIR[1], forward=fp)
    np.testing.assert_array_equal(m.model_probs, r.attentions[3, 7])
    assert m.max_abs_diff < 1e-4


def test_readable_tokens_byte_level(dec):
    r = A.compute_attention(dec, "我爱 hello\nworld")
    assert "␣hello" in r.tokens and "↵" in r.tokens
    assert not any("Ġ" in t or "Ċ" in t for t in r.tokens)
    assert r.tokens[0].startswith("我")  # a split character is shown on its pieces, not as bytes
    assert all(len(t) <= A.MAX_TOKEN_CHARS for t in r.tokens)


def test_truncation_reports_original_length(enc, dec):
    r = A.compute_attention(dec, LONG_TEXT, max_tokens=32)
    assert len(r.tokens) == 32 and r.attentions.shape[-1] == 32
    assert r.truncated and r.n_input_tokens == len(dec.tokenizer(LONG_TEXT)["input_ids"]) > 32
    r = A.compute_attention(enc, LONG_TEXT, max_tokens=20)
    assert len(r.tokens) == 20 and r.truncated and r.n_input_tokens > 20
    assert r.tokens[-1] == "[SEP]"  # truncation keeps the closing special token
    # The model's own position limit caps a larger request (MiniLM has 512 positions).
    very_long = " ".join(["word"] * 700)
    r = A.compute_attention(enc, very_long, max_tokens=10_000)
    assert len(r.tokens) == 512 and r.truncated and r.n_input_tokens == 702


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_empty_text_raises(enc, dec, bad):
    for loaded in (enc, dec):
        with pytest.raises(ValueError, match="empty"):
            A.compute_attention(loaded, bad)
    with pytest.raises(ValueError, match="empty"):
        A.compute_attention(enc, "fine", text_pair=bad)


def test_text_pair_on_decoder_raises(dec):
    with pytest.raises(ValueError, match="decoder"):
        A.compute_attention(dec, "first", text_pair="second")


def test_non_eager_model_is_refused():
    fake = SimpleNamespace(
        model=SimpleNamespace(config=SimpleNamespace(_attn_implementation="sdpa")),
        key=SimpleNamespace(model="fake"),
        kind="causal-lm",
    )
    with pytest.raises(ValueError, match="eager"):
        A.compute_attention(fake, "hello")


# --- head_stats ----------------------------------------------------------------------------------


def _synthetic(n=8):
    identity = np.eye(n)
    previous = np.eye(n, k=-1)
    previous[0, 0] = 1.0
    sink = np.zeros((n, n))
    sink[:, 0] = 1.0
    uniform_causal = np.tril(np.ones((n, n)))
    uniform_causal /= uniform_causal.sum(-1, keepdims=True)
    return np.stack([identity, previous, sink, uniform_causal])[None].astype(np.float32)  # [1, 4, n, n]


def test_head_stats_labels_on_synthetic_heads():
    stats = A.head_stats(_synthetic(), is_causal=True)
    assert stats.labels == [["same-token", "previous-token", "first-token / sink", "broad"]]
    assert stats.entropy.shape == (1, 4)
    np.testing.assert_allclose(stats.entropy[0, :3], 0.0, atol=1e-6)
    np.testing.assert_allclose(stats.normalized_entropy[0, 3], 1.0, atol=1e-5)
    np.testing.assert_allclose(stats.mean_distance[0, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(stats.mean_distance[0, 1], 1.0, atol=1e-6)
    np.testing.assert_allclose(stats.dominant_share[0, :3], 1.0, atol=1e-6)
    # Inferred causality gives the same labels.
    assert A.head_stats(_synthetic()).labels == stats.labels


def test_head_stats_uniform_row_entropy_is_log2_n():
    n = 16
    attn = np.full((2, 3, n, n), 1.0 / n, dtype=np.float32)
    stats = A.head_stats(attn, is_causal=False)
    np.testing.assert_allclose(stats.entropy, math.log2(n), rtol=1e-5)
    np.testing.assert_allclose(stats.normalized_entropy, 1.0, rtol=1e-5)
    assert all(label == "broad" for row in stats.labels for label in row)
    expected_distance = np.abs(np.arange(n)[:, None] - np.arange(n)).mean()
    np.testing.assert_allclose(stats.mean_distance, expected_distance, rtol=1e-5)


def test_head_stats_mixed_and_special_rows():
    n = 6
    rng = np.random.default_rng(0)
    peaked = rng.random((n, n)) ** 8  # uneven rows that match no rule
    np.fill_diagonal(peaked, 0)
    peaked[:, 0] = 0
    peaked[np.arange(1, n), np.arange(n - 1)] = 0
    peaked /= peaked.sum(-1, keepdims=True)
    stats = A.head_stats(peaked[None, None].astype(np.float32), is_causal=False)
    assert stats.labels == [["mixed"]]
    # Excluding every row but the last changes the averages to that row alone.
    mask = np.ones(n, dtype=bool)
    mask[-1] = False
    only_last = A.head_stats(peaked[None, None].astype(np.float32), special_mask=mask, is_causal=False)
    p = peaked[-1]
    expected = -(p[p > 0] * np.log2(p[p > 0])).sum()
    np.testing.assert_allclose(only_last.entropy[0, 0], expected, rtol=1e-5)


def test_head_stats_on_real_model(dec):
    r = A.compute_attention(dec, LONG_TEXT, max_tokens=64)
    stats = A.head_stats(r)
    assert stats.entropy.shape == (30, 9) and len(stats.labels) == 30 and len(stats.labels[0]) == 9
    assert np.all(stats.normalized_entropy >= 0) and np.all(stats.normalized_entropy <= 1 + 1e-5)
    assert {label for row in stats.labels for label in row} <= set(A.LABELS)
    # Small LLaMA-style models park most attention on the first token in many heads.
    assert sum(label == "first-token / sink" for row in stats.labels for label in row) > 10


# --- rollout and drop_special --------------------------------------------------------------------


def test_rollout_rows_sum_to_one(enc, dec):
    for r in (A.compute_attention(enc, *PAIR), A.compute_attention(dec, CHINESE)):
        roll = A.rollout(r)
        assert roll.shape == (len(r.tokens),) * 2
        np.testing.assert_allclose(roll.sum(-1), 1.0, atol=1e-5)
        assert np.all(roll >= 0)
    causal_roll = A.rollout(A.compute_attention(dec, CHINESE), residual=False)
    np.testing.assert_allclose(causal_roll.sum(-1), 1.0, atol=1e-5)
    assert np.allclose(np.triu(causal_roll, k=1), 0)


def test_rollout_identity_layer_is_identity():
    eye = np.eye(5, dtype=np.float32)[None, None]
    np.testing.assert_allclose(A.rollout(eye), np.eye(5), atol=1e-7)
    np.testing.assert_allclose(A.rollout(eye, residual=False), np.eye(5), atol=1e-7)


def test_rollout_two_layers_is_product_with_residual():
    rng = np.random.default_rng(1)
    a = rng.random((2, 3, 4, 4))
    a /= a.sum(-1, keepdims=True)
    steps = [(layer.mean(0) + np.eye(4)) / 2 for layer in a]
    np.testing.assert_allclose(A.rollout(a), steps[1] @ steps[0], atol=1e-6)


def test_drop_special_renormalises():
    attn = np.array([[0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], dtype=np.float32)
    special = np.array([True, False, False])
    m, kept = A.drop_special(attn, special)
    assert kept.tolist() == [1, 2]
    np.testing.assert_allclose(m, [[0.375, 0.625], [0.0, 0.0]], atol=1e-6)  # an all-special row stays zero
    four_d = np.broadcast_to(attn, (2, 3, 3, 3))
    m4, _ = A.drop_special(four_d, special)
    assert m4.shape == (2, 3, 2, 2)
    np.testing.assert_allclose(m4[1, 2], m, atol=1e-6)


def test_drop_special_on_real_encoder(enc):
    r = A.compute_attention(enc, *PAIR)
    m, kept = A.drop_special(r.attentions, r.special_mask)
    assert m.shape[-1] == len(kept) == len(r.tokens) - 3
    np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-5)


# --- position encodings --------------------------------------------------------------------------


def test_sinusoidal_encoding_matches_formula():
    pe = A.sinusoidal_encoding(50, 16)
    assert pe.shape == (50, 16)
    for pos, i in [(0, 0), (1, 0), (7, 3), (49, 7)]:
        angle = pos / 10000 ** (2 * i / 16)
        assert pe[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
        assert pe[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)
    assert A.sinusoidal_encoding(4, 5).shape == (4, 5)  # odd width works too


def test_rope_rotation_preserves_norm_and_angle():
    positions = np.arange(0, 100, 7)
    for pair in (0, 5, 31):
        v = A.rope_rotation_demo(positions, head_dim=64, theta=10000.0, pair_index=pair)
        assert v.shape == (len(positions), 2)
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-12)
        angle = positions * 10000.0 ** (-2 * pair / 64)
        np.testing.assert_allclose(v, np.stack([np.cos(angle), np.sin(angle)], axis=1), atol=1e-12)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 64))
    cos, sin = A.rope_cos_sin(np.arange(10), 64, 100000.0)
    np.testing.assert_allclose(np.linalg.norm(A.apply_rope(x, cos, sin), axis=1), np.linalg.norm(x, axis=1))


def test_rope_relative_property():
    # q at position m and k at position n score the same as at positions m + s and n + s.
    rng = np.random.default_rng(3)
    q, k = rng.normal(size=(1, 64)), rng.normal(size=(1, 64))

    def score(m, n):
        cq, sq = A.rope_cos_sin(np.array([m]), 64, 10000.0)
        ck, sk = A.rope_cos_sin(np.array([n]), 64, 10000.0)
        return (A.apply_rope(q, cq, sq) @ A.apply_rope(k, ck, sk).T).item()

    assert score(5, 2) == pytest.approx(score(105, 102), abs=1e-9)


# --- the shared models are left untouched --------------------------------------------------------


def _fingerprint(model: torch.nn.Module) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _hooks(model: torch.nn.Module) -> dict[str, list[str]]:
    found = {}
    for name, module in model.named_modules():
        for kind in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_forward_hooks_with_kwargs"):
            for hook in getattr(module, kind, {}).values():
                if callable(hook):
                    found.setdefault(f"{name}.{kind}", []).append(getattr(hook, "__name__", repr(hook)))
    return found


def test_shared_models_are_not_modified(enc, dec):
    for loaded in (enc, dec):
        model = loaded.model
        before = _fingerprint(model)
        impl = model.config._attn_implementation
        config_before = model.config.to_dict()
        A.compute_attention(loaded, "Does anything change?")
        A.manual_attention(loaded, "Does anything change?", layer=1, head=1)
        A.head_stats(A.compute_attention(loaded, CHINESE))
        assert _fingerprint(model) == before
        assert not model.training and not any(m.training for m in model.modules())
        assert model.config._attn_implementation == impl
        assert model.config.to_dict() == config_before
        assert not any(p.requires_grad for p in model.parameters())
        # transformers 5 itself installs inert, thread-local output-capturing hooks the first time
        # output_attentions / output_hidden_states is requested; anything else would be ours.
        foreign = {k: v for k, v in _hooks(model).items() if set(v) != {"output_capturing_hook"}}
        assert foreign == {}
