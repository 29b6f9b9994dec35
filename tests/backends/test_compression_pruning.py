"""Pruning on SmolLM2 (and GPT-NeoX, the demo GPT's architecture), against computations written out here:
Wanda's scores from the inputs captured at one layer, magnitude pruning zeroing exactly the smallest |w|
of every row, the sparsity reached, and structured pruning removing the parameters its new shapes say,
keeping the highest-scoring heads and channels, and loading back by path with the same logits."""

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM, GPTNeoXConfig, GPTNeoXForCausalLM

from backends import compression as cp
from backends.models.cache import shared_cache

LAYER0 = "model.layers.0."


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def smol():
    return shared_cache().get("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def calib(smol):
    return cp.calibration_ids(smol.tokenizer, 2, 32)


@pytest.fixture(scope="module")
def stats(smol, calib):
    return cp.calibration_stats(smol.model, calib)


@pytest.fixture(scope="module")
def norms(stats):
    return stats.sq


@pytest.fixture(scope="module")
def captured(smol, calib):
    """The inputs of three layer-0 projections over the calibration tokens, by a hook of this test."""
    model = copy.deepcopy(smol.model)
    names = ("self_attn.k_proj", "self_attn.o_proj", "mlp.down_proj")
    seen = {n: [] for n in names}
    modules = dict(model.named_modules())
    hooks = [
        modules[LAYER0 + n].register_forward_pre_hook(lambda m, args, n=n: seen[n].append(args[0][0].detach().clone()))
        for n in names
    ]
    with torch.no_grad():
        for row in calib:
            model(input_ids=row[None], use_cache=False)
    for h in hooks:
        h.remove()
    return {n: torch.cat(xs).double() for n, xs in seen.items()}  # (tokens, in_features)


def test_wanda_scores_are_weight_times_input_norm_by_hand(smol, norms, captured):
    x = captured["self_attn.k_proj"]
    assert x.shape == (64, 576)
    w = dict(smol.model.named_modules())[LAYER0 + "self_attn.k_proj"].weight.detach().double()
    by_hand = w.abs() * torch.sqrt((x * x).sum(dim=0))[None, :]
    ours = cp.wanda_scores(w.float(), norms[LAYER0 + "self_attn.k_proj"])
    torch.testing.assert_close(ours.double(), by_hand, rtol=2e-5, atol=1e-7)
    # the embeddings and the output head are not pruned: 30 layers x 7 projections
    assert len(norms) == 30 * 7 and not any("embed" in n or "lm_head" in n for n in norms)


def test_wanda_drops_the_lowest_scores_of_every_row(smol, norms, captured):
    name = LAYER0 + "self_attn.k_proj"
    w = dict(smol.model.named_modules())[name].weight.detach()
    x = captured["self_attn.k_proj"]
    score = w.double().abs() * torch.sqrt((x * x).sum(dim=0))[None, :]
    pruned = w.clone()
    assert cp.prune_rows_(pruned, cp.wanda_scores(w, norms[name]), 0.5) == 192 * 288
    zero = pruned == 0
    assert (zero.sum(dim=1) == 288).all() and torch.equal(pruned[~zero], w[~zero])
    dropped = torch.where(zero, score, -torch.inf).amax(dim=1)
    kept = torch.where(~zero, score, torch.inf).amin(dim=1)
    assert (dropped <= kept).all()


def test_magnitude_zeroes_exactly_the_smallest_weights_of_each_row(smol):
    pruned, report = cp.pruned_copy(smol.model, "magnitude", 0.5)
    base_layers = dict(smol.model.named_modules())
    zeros = total = 0
    for name, layer in cp.block_linears(pruned).items():
        orig, new = base_layers[name].weight.detach(), layer.weight.detach()
        k = round(0.5 * orig.shape[1])
        zeros += int(torch.clamp((orig == 0).sum(dim=1), min=k).sum())  # a row's zeros: k, or more if it had more
        total += orig.numel()
        if not name.startswith(("model.layers.0.", "model.layers.29.")):
            continue
        gone = new == 0
        assert torch.equal(new[~gone], orig[~gone]), name  # nothing else changed
        assert torch.equal(gone.sum(dim=1), torch.clamp((orig == 0).sum(dim=1), min=k)), name
        largest_gone = torch.where(gone, orig.abs(), -torch.inf).amax(dim=1)
        smallest_kept = torch.where(~gone, orig.abs(), torch.inf).amin(dim=1)
        assert (largest_gone <= smallest_kept).all(), name
    assert report.achieved == pytest.approx(zeros / total) and abs(report.achieved - 0.5) < 1e-3
    assert torch.equal(pruned.model.embed_tokens.weight, smol.model.model.embed_tokens.weight)
    assert cp.sparsity_of(smol.model) < 1e-3  # the cached model is untouched


def test_structured_30_removes_what_its_shapes_say_and_loads_back_by_path(smol, stats, captured, tmp_path):
    base = smol.model
    pruned, report = cp.structured_copy(base, 0.3, stats)  # FLAP: fluctuation scores, means folded into biases
    c = pruned.config
    assert (c.num_attention_heads, c.num_key_value_heads, c.head_dim) == (6, 3, 64)  # one query head per KV group
    assert c.attention_bias and c.mlp_bias
    d, layers, kept = 576, 30, c.intermediate_size
    removed = layers * (3 * 2 * d * 64 + (1536 - kept) * 3 * d)  # q rows + o columns; gate, up rows + down columns
    biases = layers * (384 + 192 + 192 + d + 2 * kept + d)  # q, k, v, o, gate, up, down
    before = sum(p.numel() for p in base.parameters())
    after = sum(p.numel() for p in pruned.parameters())
    assert before - after == removed - biases == report.params_before - report.params_after
    with torch.device("meta"):  # transformers' own model of the edited config has exactly these parameters
        assert sum(p.numel() for p in AutoModelForCausalLM.from_config(c).parameters()) == after
    prunable = layers * (2 * d * 576 + 2 * d * 192 + 3 * d * 1536)
    assert report.achieved == pytest.approx((removed - biases) / prunable)
    assert abs(report.achieved - 0.3) < 0.01

    # layer 0 by hand: the channels and query heads kept are those whose removal (replaced by their mean
    # over the calibration tokens) changes the output most, and the means went into the biases
    block, old = pruned.model.layers[0], base.model.layers[0]
    x = captured["mlp.down_proj"]
    mean, w = x.mean(dim=0), old.mlp.down_proj.weight.detach().double()
    score = w.norm(dim=0) * (x - mean).norm(dim=0)
    keep = torch.sort(torch.topk(score, kept).indices).values
    gone = torch.tensor([j for j in range(1536) if j not in set(keep.tolist())])
    assert torch.equal(block.mlp.down_proj.weight, old.mlp.down_proj.weight[:, keep])
    assert torch.equal(block.mlp.gate_proj.weight, old.mlp.gate_proj.weight[keep])
    torch.testing.assert_close(block.mlp.down_proj.bias.double(), w[:, gone] @ mean[gone], rtol=1e-4, atol=1e-6)
    assert not block.mlp.up_proj.bias.any()
    x = captured["self_attn.o_proj"]
    mean, w = x.mean(dim=0), old.self_attn.o_proj.weight.detach().double()
    col = w.pow(2).sum(dim=0) * (x - mean).pow(2).sum(dim=0)
    head = col.view(9, 64).sum(dim=1).view(3, 3)  # 3 KV groups of 3 query heads
    heads = [g * 3 + h for g in range(3) for h in sorted(torch.topk(head[g], 2).indices.tolist())]
    rows = torch.cat([torch.arange(h * 64, (h + 1) * 64) for h in heads])
    assert torch.equal(block.self_attn.q_proj.weight, old.self_attn.q_proj.weight[rows])
    assert torch.equal(block.self_attn.k_proj.weight, old.self_attn.k_proj.weight)
    lost = torch.cat([torch.arange(h * 64, (h + 1) * 64) for h in range(9) if h not in heads])
    torch.testing.assert_close(block.self_attn.o_proj.bias.double(), w[:, lost] @ mean[lost], rtol=1e-4, atol=1e-6)

    pruned.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(str(tmp_path), dtype=torch.float32)
    assert sum(p.numel() for p in reloaded.parameters()) == after
    ids = cp.calibration_ids(smol.tokenizer, 1, 24)
    with torch.no_grad():
        assert torch.equal(pruned(input_ids=ids).logits, reloaded(input_ids=ids).logits)


def test_structured_whole_kv_groups(smol):
    pruned, report = cp.structured_copy(smol.model, 0.3, importance="weight", attention="groups")
    c = pruned.config
    assert (c.num_attention_heads, c.num_key_value_heads) == (6, 2)  # one KV head and its 3 query heads gone
    attn = pruned.model.layers[0].self_attn
    assert attn.k_proj.weight.shape == (128, 576) and attn.o_proj.weight.shape == (576, 384)
    removed = 30 * (3 * 2 * 576 * 64 + 2 * 576 * 64 + (1536 - c.intermediate_size) * 3 * 576)
    assert report.params_before - report.params_after == removed
    ids = torch.tensor([[1, 504, 3458, 314, 260]])
    with torch.no_grad():
        assert torch.isfinite(pruned(input_ids=ids).logits).all()


@pytest.fixture(scope="module")
def neox():
    """transformers' GPT-NeoX at the demo GPT's shape (2 layers, 4 heads, 256 wide, MLP 1024, 64 positions)."""
    torch.manual_seed(0)
    config = GPTNeoXConfig(
        vocab_size=77,
        hidden_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    return GPTNeoXForCausalLM(config).eval()


@pytest.mark.parametrize("sparsity", [0.1, 0.3, 0.5, 0.7])
def test_the_sparsity_reached_is_the_one_asked_for(neox, sparsity):
    names = set(cp.block_linears(neox))
    assert {n.rsplit(".", 1)[-1] for n in names} == {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"}
    pruned, report = cp.pruned_copy(neox, "magnitude", sparsity)
    per_row = {256: round(sparsity * 256), 1024: round(sparsity * 1024)}
    weights = [m.weight for m in cp.block_linears(pruned).values()]
    expected = sum(w.shape[0] * per_row[w.shape[1]] for w in weights) / sum(w.numel() for w in weights)
    assert report.achieved == pytest.approx(expected) and abs(report.achieved - sparsity) < 0.002
    assert cp.sparsity_of(pruned) == pytest.approx(expected)


def test_gpt_neox_structured_keeps_its_heads_and_loads_back(neox, tmp_path):
    ids = torch.randint(0, 77, (4, 64))
    pruned, report = cp.structured_copy(neox, 0.3, cp.calibration_stats(neox, ids))
    cut = 1024 - pruned.config.intermediate_size
    assert pruned.config.num_attention_heads == 4  # GPT-NeoX: MLP channels only
    assert report.params_before - report.params_after == 2 * cut * (2 * 256 + 1)  # its MLP has biases already
    assert abs(report.achieved - 0.3) < 0.01
    cp.save_pruned(pruned, tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(str(tmp_path), dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(pruned(input_ids=ids[:1]).logits, reloaded(input_ids=ids[:1]).logits)
