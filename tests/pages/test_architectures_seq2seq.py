"""The Architectures page's encoder-decoder tab in AppTest: a pinyin model trained by the real job
(held-out scoring left to the backend tests: decoding 424 lines twice is slow), its greedy and beam
outputs on the page equal transformers' generate() on the folder the page exports, and the
cross-attention map has one row per output character (+ the end) and one column per input character."""

from dataclasses import replace

import pytest

from backends import architectures as arch
from backends.core.jobs import shared_runner
from components.i18n import strings
from components.page_registry import PAGES

from .plotly_helpers import figures, values

PAGE = next(p for p in PAGES if p.key == "architectures")
EN = strings("en")
P = "architectures.seq2seq."


@pytest.fixture(scope="module")
def pinyin_run():
    config, settings = arch.TASK_DEFAULTS["pinyin"]
    settings = replace(settings, max_iters=300, lr_decay_iters=300, eval_interval=150)
    job = shared_runner().submit("test-seq2seq", arch.seq2seq_job, config, settings, 4, False, "pinyin")
    job.wait()
    assert job.status == "done", job.error
    return job.result


def test_greedy_and_beam_on_the_page_equal_the_exported_blenderbot(open_page, pinyin_run):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    at = open_page(PAGE)
    at.session_state["architectures.tab"] = EN["architectures.tab.seq2seq"]
    at.run()
    assert EN[P + "no_model"] in [i.value for i in at.info]
    at.session_state[P + "run.pinyin"] = pinyin_run
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    text = at.text_input(key=P + "input").value
    width = at.slider(key=P + "beam").value
    greedy, beam = (m.value for m in at.metric[:2])
    at.button(key=P + "export_btn").click().run()
    folder = at.session_state[P + "exported"]
    hf, tok = AutoModelForSeq2SeqLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    inputs = tok([text], return_tensors="pt")
    with torch.no_grad():
        out_greedy = hf.generate(**inputs, num_beams=1, do_sample=False, max_new_tokens=60)
        out_beam = hf.generate(
            **inputs, num_beams=width, do_sample=False, max_new_tokens=60, early_stopping=True, length_penalty=1.0
        )
    assert greedy == tok.decode(out_greedy[0], skip_special_tokens=True)
    assert beam == tok.decode(out_beam[0], skip_special_tokens=True)
    heat = next(f for f in figures(at) if f.data and f.data[0].type == "heatmap")
    z = values(heat.data[0].z)
    shown = beam if at.radio(key=P + "attn.which").value == "beam" else greedy
    assert z.shape == (len(shown) + 1, len(text))
    assert abs(z.sum(axis=1) - 1).max() < 1e-4  # each output position's weights over the input sum to 1
