"""The Architectures page in AppTest, on real runs: the encoder trained with masked LM, its blanks
filled and checked against the exported folder opened by transformers; dense vs mixture of experts
with the parameter counts and the routing of a text; the memory calculator against transformers'
own parameter count. (The encoder-decoder tab: test_architectures_seq2seq.py; torchrun runs:
tests/backends/test_distributed.py.)"""

import time

import numpy as np
import pytest
import torch

from backends.core.jobs import shared_runner
from components.i18n import strings
from components.page_registry import PAGES

from .plotly_helpers import figure_titled, figures, values

PAGE = next(p for p in PAGES if p.key == "architectures")
EN = strings("en")
P = "architectures."

# The encoder tab opens first; before any run it asks for one.
BROWSER_MUST_SHOW = "text=" + EN[P + "encoder.no_model"]


def check_page(at):
    """What the page must show when a user arrives (tests/pages/test_pages.py runs it in AppTest)."""
    assert EN[P + "encoder.no_model"] in [i.value for i in at.info]
    both = values(figure_titled(at, EN[P + "encoder.masks.bidirectional"]).data[0].z)
    causal = values(figure_titled(at, EN[P + "encoder.masks.causal"]).data[0].z)
    n = both.shape[0]
    assert both.shape == causal.shape == (n, n) and n > 2
    assert (both == 1).all() and (causal == np.tril(np.ones((n, n)))).all()
    assert at.button(key=P + "encoder.train")


@pytest.fixture
def page(open_page):
    return open_page(PAGE)


def open_tab(at, key):
    at.session_state[P + "tab"] = EN[P + "tab." + key]
    return at.run()


def wait_for(at, key, seconds=600):
    job = shared_runner().get(at.session_state[key])
    deadline = time.time() + seconds
    while not job.done and time.time() < deadline:  # the fragment keeps polling while the job trains
        time.sleep(1)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert job.done and job.status == "done", job.error
    return at.run()


def test_an_encoder_run_fills_blanks_as_the_exported_bert_does(page):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    at = page
    at.number_input(key=P + "encoder.steps").set_value(50).run()
    at.button(key=P + "encoder.train").click().run()
    at = wait_for(at, P + "encoder.job")
    run = at.session_state[P + "encoder.run"]
    assert run.step == 50
    text = at.text_input(key=P + "encoder.fill.shakespeare").value
    assert text.count("_") == 2
    bars = [f for f in figures(at) if f.data and f.data[0].type == "bar" and f.data[0].orientation == "h"]
    assert len(bars) == 2, "one chart per blank"
    at.button(key=P + "encoder.export_btn").click().run()
    folder = at.session_state[P + "encoder.exported"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForMaskedLM.from_pretrained(folder).eval()
    mask_id = tokenizer.convert_tokens_to_ids("[MASK]")
    ids = [mask_id if c == "_" else tokenizer.convert_tokens_to_ids(c) for c in text]
    with torch.no_grad():
        probs = model(torch.tensor([ids])).logits[0].softmax(-1)
    for bar, position in zip(bars, [i for i, c in enumerate(text) if c == "_"], strict=True):
        top = torch.topk(probs[position], 5)
        shown = list(zip(bar.data[0].y[::-1], values(bar.data[0].x)[::-1], strict=True))
        expected = [(tokenizer.convert_ids_to_tokens(int(i)), float(p)) for p, i in zip(top.values, top.indices)]
        assert [c for c, _ in shown] == ["␣" if c == " " else repr(c)[1:-1] if c.isspace() else c for c, _ in expected]
        assert np.allclose([p for _, p in shown], [p for _, p in expected], atol=1e-5)


def test_dense_and_moe_train_on_the_same_batches_with_the_routing_of_a_text(page):
    at = open_tab(page, "moe")
    assert EN[P + "moe.no_model"] in [i.value for i in at.info]
    at.number_input(key=P + "moe.steps.shakespeare").set_value(50).run()
    at.button(key=P + "moe.train").click().run()
    at = wait_for(at, P + "moe.job")
    run = at.session_state[P + "moe.run"]
    counts = at.table[0].value
    dense_total = sum(p.numel() for p in run.dense.parameters())
    moe_total = sum(p.numel() for p in run.moe.parameters())
    assert counts.iloc[0, 2] == f"{dense_total:,}" and counts.iloc[1, 2] == f"{moe_total:,}"
    # active: every parameter but the experts not taken (n - k of n per layer)
    per_expert = sum(p.numel() for p in run.moe.h[0].mlp.experts[0].parameters())
    idle = run.config.n_layer * (run.n_experts - run.top_k) * per_expert
    assert counts.iloc[1, 1] == f"{moe_total - idle:,}"
    heat = figures(at)
    routing = next(f for f in heat if f.data and f.data[0].type == "heatmap" and f.data[0].colorbar.title.text)
    z = values(routing.data[0].z)
    text = at.text_input(key=P + "moe.routing.shakespeare").value
    assert z.shape == (run.config.n_layer, len(text))
    assert set(np.unique(z)) <= set(range(run.n_experts))
    # the top-1 expert of each token, by hand from the router's weights on the model's own hidden states
    ids = torch.tensor([run.tokenizer.encode(text)])
    hidden = []
    hooks = [b.mlp.register_forward_pre_hook(lambda m, a: hidden.append(a[0])) for b in run.moe.h]
    with torch.no_grad():
        run.moe.eval()
        run.moe(ids)
        for hook in hooks:
            hook.remove()
        for layer, (block, x) in enumerate(zip(run.moe.h, hidden, strict=True)):
            assert (torch.argmax(x[0] @ block.mlp.router.weight.T, dim=-1).numpy() == z[layer]).all()


def test_the_calculator_counts_smollm2_as_transformers_does(page):
    from transformers import LlamaConfig, LlamaForCausalLM

    at = open_tab(page, "distributed")
    at.selectbox(key=P + "distributed.calc.model").set_value("smollm2-135m").run()
    config = LlamaConfig(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
        tie_word_embeddings=True,
    )
    with torch.device("meta"):
        n = sum(p.numel() for p in LlamaForCausalLM(config).parameters())
    assert EN[P + "distributed.calc.params"].format(n=f"{n:,}") in [c.value for c in at.caption]
    table = at.dataframe[-1].value
    params = table[EN[P + "distributed.part.params"]]
    assert params.iloc[0] == f"{n * 4 / 1e6:,.2f} MB"  # DDP, fp32: a whole replica of 4-byte weights
