"""The quantization page on real-valued weights: the "Try this" panel's first experiment sets up the GPT
trained here, and its table orders the GGUF formats as llama.cpp's tables do, in English and Chinese."""

import time

import pytest

from backends.core.jobs import shared_runner
from backends.quantization import real_gpt
from components.i18n import strings
from components.page_registry import PAGES

QUANT = next(p for p in PAGES if p.key == "quantization")
REAL = ["fp32", "gguf-q8_0", "gguf-q5_1", "gguf-q5_0", "gguf-q4_0", "gguf-q4_k_m"]


def run_after_set_up(open_page, lang: str):
    """Open the page, press the first experiment's set-up button, shorten the run, start it, wait."""
    at = open_page(QUANT, **{"app.lang": lang})
    assert at.selectbox(key="exp.quantization.pick").value.id == "real_grid", "the suggested first run"
    at.button(key="exp.quantization.real_grid.setup").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="quantization.model").value == str(real_gpt.folder())
    assert at.multiselect(key="quantization.w.variants").value == REAL
    at.select_slider(key="quantization.w.ppl_tokens").set_value(2048).run()
    at.number_input(key="quantization.w.runs").set_value(1).run()
    at.button(key="quantization.start").click().run()
    job = shared_runner().get(at.session_state["quantization.job"])
    deadline = time.time() + 400
    while not job.done and time.time() < deadline:
        time.sleep(2)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert job.status == "done", job.error
    at.run()
    return at, strings(lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_trained_gpts_table_orders_the_formats_as_llama_cpp(open_page, lang):
    at, S = run_after_set_up(open_page, lang)
    table = next(d.value for d in at.dataframe if S["quantization.col.kld"] in d.value.columns)
    rows = table.set_index(S["quantization.col.variant"])
    label = {k: S[f"quantization.variant.{k}"] for k in REAL[1:]}
    kld = {k: rows.loc[v, S["quantization.col.kld"]] for k, v in label.items()}
    err = {k: rows.loc[v, S["quantization.col.weight_error"]] for k, v in label.items()}
    bits = {k: rows.loc[v, S["quantization.col.file_bits"]] for k, v in label.items()}
    assert kld["gguf-q8_0"] < kld["gguf-q5_0"] < kld["gguf-q4_0"]
    assert err["gguf-q5_1"] < err["gguf-q5_0"]
    assert bits["gguf-q8_0"] > bits["gguf-q5_1"] > bits["gguf-q5_0"] > bits["gguf-q4_0"] > 4.5
    baseline = S["quantization.baseline.label.native"]  # "the checkpoint's own fp32 weights"
    assert baseline in rows.index and rows.loc[baseline, S["quantization.col.kld"]] == 0
    fitted = S["quantization.fitted"].format(n=64, window=64, stride=64, prefill=64, new=32)
    assert any(i.value == fitted for i in at.info), "the page says the run was cut to the GPT's 64 positions"
