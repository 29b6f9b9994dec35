"""The Inference page in AppTest, on real runs: the KV formula with SmolLM2's numbers and the calculator
against a hand computation; step costs measured and both batching policies simulated; a prompt-lookup
run whose tokens equal plain greedy's (transformers' own generate as the reference); the sampler's
tokens and perplexity against transformers' loss on the same text."""

import math
import time

import pytest
import torch

from backends.core.jobs import shared_runner
from components.i18n import strings
from components.page_registry import PAGES

PAGE = next(p for p in PAGES if p.key == "inference")
EN = strings("en")
P = "inference."

# The KV cache tab opens first, with the formula.
BROWSER_MUST_SHOW = "text=" + EN[P + "memory.formula.title"].lstrip("# ")


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    # SmolLM2-135M: 30 layers x 2 (K and V) x 3 KV heads x 64 dims x 4 bytes (fp32) = 46,080 bytes a token.
    latex = " ".join(e.value for e in at.get("latex"))
    assert r"30 \times 2 \times 3 \times 64 \times 4" in latex and "46{,}080" in latex
    metrics = {m.label: m.value for m in at.metric}
    # The calculator's default: Llama-3.1-8B (32 layers, 8 KV heads of 128) with a bf16 cache, 8192 tokens.
    per_token = 32 * 2 * 8 * 128 * 2
    assert metrics[EN[P + "memory.calc.per_token"]] == f"{per_token / 1024:,.2f} KiB"
    assert metrics[EN[P + "memory.calc.total"]] == f"{per_token * 8192 / 2**30:,.2f} GiB"


@pytest.fixture
def page(open_page):
    return open_page(PAGE)


def open_tab(at, key):
    at.session_state[P + "tab"] = EN[P + "tab." + key]
    return at.run()


def wait_for(at, key, seconds=600):
    job = shared_runner().get(at.session_state[key])
    deadline = time.time() + seconds
    while not job.done and time.time() < deadline:
        time.sleep(1)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert job.done and job.status == "done", job.error
    return at.run()


def test_batching_measures_step_costs_then_compares_both_policies(page):
    at = open_tab(page, "batching")
    at.button(key=P + "batching.measure").click().run()
    at = wait_for(at, P + "batching.job")
    table = next(tb for tb in at.table if EN[P + "batching.col.policy"] in tb.value.columns)
    rows = table.value
    assert list(rows[EN[P + "batching.col.policy"]]) == [
        EN[P + "batching.policy.static"],
        EN[P + "batching.policy.continuous"],
    ]
    throughput = [float(x) for x in rows[EN[P + "batching.col.throughput"]]]
    # 40 requests at 4/s on a batch of 8: continuous batching never leaves a slot to a finished request.
    assert throughput[1] >= throughput[0] > 0
    metrics = {m.label: m.value for m in at.metric}
    held, reserved = int(metrics[EN[P + "batching.paged.held"]]), int(metrics[EN[P + "batching.paged.reserved"]])
    assert held % 16 == 0 and 0 < held <= reserved


def test_prompt_lookup_gives_plain_greedy_tokens(page):
    from backends import inference as inf
    from backends.models.cache import shared_cache

    at = open_tab(page, "speculative")
    at.slider(key=P + "speculative.max_new").set_value(32).run()
    at.button(key=P + "speculative.run").click().run()
    at = wait_for(at, P + "speculative.job")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[EN[P + "speculative.metric.identical"]] == EN[P + "speculative.yes"]
    run = at.session_state[P + "speculative.result"]
    loaded = shared_cache().get("smollm2-135m-instruct")
    ids = run["spec"].prompt_ids
    with torch.inference_mode():
        ref = loaded.model.generate(
            input_ids=torch.tensor([ids]),
            max_new_tokens=32,
            do_sample=False,
            pad_token_id=loaded.tokenizer.eos_token_id,
        )[0, len(ids) :].tolist()
    ours = run["spec"].tokens
    assert ours == ref[: len(ours)] and len(ours) == len(ref)
    assert inf.lookup_prompts()  # the prompt came from the shipped set


def test_the_sampler_appends_the_picked_token_and_scores_it_like_transformers(page):
    from backends.models.cache import shared_cache

    at = open_tab(page, "sampler")
    at.button(key=P + "sampler.pick.0").click().run()
    at.button(key=P + "sampler.pick.1").click().run()
    at.button(key=P + "sampler.compare_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    loaded = shared_cache().get("smollm2-135m-instruct")
    prompt = at.text_input(key=P + "sampler.prompt").value
    prompt_ids = loaded.tokenizer(prompt)["input_ids"]
    chosen = [p["id"] for p in at.session_state[P + "sampler.picks"]]
    assert len(chosen) == 2
    ids = torch.tensor([prompt_ids + chosen])
    labels = ids.clone()
    labels[0, : len(prompt_ids)] = -100
    with torch.inference_mode():
        loss = loaded.model(input_ids=ids, labels=labels).loss
    assert float(metrics[EN[P + "sampler.ppl.yours"]]) == pytest.approx(math.exp(float(loss)), rel=2e-3)
