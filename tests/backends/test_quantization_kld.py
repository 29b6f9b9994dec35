"""The KLD and same-top-token share of a row (issue 33: the KLD is now summed a few rows at a time) against
a direct torch computation written here: F.kl_div / log_softmax / argmax on the real SmolLM2's logits."""

import copy

import pytest
import torch
import torch.nn.functional as F

from backends.models.cache import shared_cache
from backends.quantization import measure as M
from backends.quantization import text as T
from backends.quantization.variants import TorchRunner


@pytest.fixture(scope="module")
def loaded():
    return shared_cache().get("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def two_models(loaded):
    """The model in float32 and a bfloat16 copy (a real lossy variant), plain forward passes."""
    return copy.deepcopy(loaded.model), copy.deepcopy(loaded.model).to(torch.bfloat16)


def logprobs(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return torch.log_softmax(model(input_ids=ids, use_cache=False).logits[0].float(), dim=-1)


def test_a_rows_kld_and_top1_equal_a_direct_torch_computation(loaded, two_models):
    fp32, bf16 = two_models
    ids = T.token_slice(loaded.tokenizer, 160)
    spans = M.windows(ids.shape[1], 64, 64)  # 3 windows; the first 100 scored tokens keep full distributions
    reference = M.Reference(kld_tokens=100)
    M.quality(TorchRunner(fp32), ids, spans, reference, fill=True)
    q = M.quality(TorchRunner(bf16), ids, spans, reference)

    kl_sum, kl_n, same, scored = 0.0, 0, 0, 0
    for begin, end, first in spans:
        ref = logprobs(fp32, ids[:, begin:end])[first - 1 : -1]
        var = logprobs(bf16, ids[:, begin:end])[first - 1 : -1]
        same += int((ref.argmax(-1) == var.argmax(-1)).sum())
        scored += ref.shape[0]
        keep = min(ref.shape[0], 100 - kl_n)
        if keep > 0:  # KL(fp32 || variant) per token: sum over the vocabulary of p_ref * (log p_ref - log p_var)
            rows = F.kl_div(var[:keep], ref[:keep], log_target=True, reduction="none").sum(-1)
            kl_sum += float(rows.double().sum())
            kl_n += keep
    assert q.kld_tokens == kl_n == 100 and q.tokens == scored
    assert q.kld == kl_sum / kl_n, "the same float32 rows, summed in float64 in the same order"
    assert q.top1 == same / scored
    assert 0 < q.kld < 0.05 and 0.8 < q.top1 < 1.0, "bf16 is close to fp32, not equal"


@pytest.fixture(scope="module")
def both_logprobs(loaded, two_models):
    ids = T.token_slice(loaded.tokenizer, 201)
    return logprobs(two_models[0], ids), logprobs(two_models[1], ids)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("rows", [1, 2, 3, 64, 65, 66, 129, 200])
def test_kl_rows_is_the_one_shot_formula_bit_for_bit(both_logprobs, rows, threads):
    ref, var = both_logprobs[0][:rows], both_logprobs[1][:rows]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        direct = F.kl_div(var, ref, log_target=True, reduction="none").sum(-1)
        chunked = M.kl_rows(ref, var)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(chunked, direct)
    assert (direct > 0).all()


def test_gguf_weight_error_with_the_shared_norms_is_the_hand_computation(loaded, tmp_path):
    """Every GGUF row divides by the same weight norms, computed once per model (issue 33): two builds in
    a row give ||W_q - W|| / ||W|| over the quantized matrices exactly as computed here from both models."""
    from backends.quantization import spec

    base = loaded.model
    original = dict(base.named_parameters())
    for key in ("gguf-q8_0", "gguf-q4_0"):
        built = spec(key).build(base, "cpu", tmp_path)
        err2 = norm2 = 0.0
        for name, p in built.model.named_parameters():
            if built.details["types"].get(name, "F32") == "F32":
                continue
            w, q = original[name].detach(), p.detach()
            err2 += float(((q.double() - w.double()) ** 2).sum())
            norm2 += float((w.double() ** 2).sum())
        assert built.weight_error == (err2 / norm2) ** 0.5
        assert 0 < built.weight_error < 0.1
        built.runner.close()


def test_the_slowest_rows_are_opt_in_on_the_cpu_only():
    """bitsandbytes (~20 s a row on the CPU) and torchao's dynamic int8 (~30 s, 0.3x fp32 there: no fast
    CPU kernel) run there only when picked (issue 33); on a GPU they are ordinary rows."""
    from backends.quantization import opt_in

    assert sorted(opt_in("cpu")) == ["bnb-int8", "bnb-nf4", "torchao-int8-dyn"]
    assert opt_in("cuda") == ()
