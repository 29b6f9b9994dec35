"""The quantization page on the real offline SmolLM2: what a user sees on arrival, a two-variant run, bad input."""

import json
import time
from dataclasses import asdict

import numpy as np
import pytest

from backends.core.jobs import shared_runner
from backends.quantization import BenchConfig
from backends.quantization import report as R
from components.i18n import strings
from components.page_registry import PAGES

from .plotly_helpers import figure_titled, values

QUANT = next(p for p in PAGES if p.key == "quantization")
EN = strings("en")
# The embedded SmolLM2 ships as a Q4_1 GGUF: its fp32 row is those weights dequantized.
BASELINE = "fp32 copy of the shipped Q4_1 weights (baseline)"

# What a browser must see once the page has run (tests/e2e/test_browser.py): the table of variants.
BROWSER_MUST_SHOW = "text=" + EN["quantization.variants_here"].replace("**", "").format(device="cpu")


def check_page(at):
    """On arrival: every variant with whether it runs here (or why not), and the settings to start a run."""
    table = at.dataframe[0].value
    here = dict(zip(table[EN["quantization.col.variant"]], table[EN["quantization.col.here"]]))
    assert here[BASELINE] == "runs here" and here["GGUF Q8_0"] == "runs here"
    assert "GPU" in here["fp16"], "a variant that cannot run says why"
    assert len(here) >= 10
    assert at.button(key="quantization.start").label == EN["quantization.start"]
    assert "fp32" in at.multiselect(key="quantization.w.variants").value
    assert any(i.value == EN["quantization.none_yet"] for i in at.info)
    note = next(c.value for c in at.caption if c.value.startswith("**Baseline:"))
    assert note.startswith("**Baseline: fp32 copy of the shipped Q4_1 weights.**") and "210 × Q4_1" in note


@pytest.fixture
def page(open_page):
    return open_page(QUANT)


def small(open_page, **extra):
    """The page opened with short settings (set before its first run, as the widgets start from them)."""
    cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(BenchConfig()).items()}
    cfg.update(
        {
            "variants": ["fp32", "gguf-q8_0"],
            "ppl_tokens": 200,
            "window": 100,
            "stride": 50,
            "kld_tokens": 64,
            "prefill_tokens": 16,
            "new_tokens": 5,
            "runs": 1,
            "keep": [],
            **extra,
        }
    )
    return open_page(QUANT, **{"quantization.cfg": cfg})


def wait(at, job):
    deadline = time.time() + 400
    while not job.done and time.time() < deadline:
        time.sleep(2)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    assert job.done and job.status == "done", job.error
    at.run()


def test_two_variants_fill_the_table_charts_and_texts(open_page):
    page = small(open_page, keep=["gguf-q8_0"])
    page.button(key="quantization.start").click().run()
    job = shared_runner().get(page.session_state["quantization.job"])
    assert job is not None, "the run went to the background runner"
    wait(page, job)
    assert any(s.value.startswith("2 of 2 variants measured") for s in page.success)
    table = next(d.value for d in page.dataframe if EN["quantization.col.ppl"] in d.value.columns)
    rows = table.set_index(EN["quantization.col.variant"])
    assert list(rows.index) == [BASELINE, "GGUF Q8_0"]
    fp32, q8 = rows.loc[BASELINE], rows.loc["GGUF Q8_0"]
    assert fp32[EN["quantization.col.kld"]] == 0 and 0 < q8[EN["quantization.col.kld"]] < 0.05
    assert 0 < q8[EN["quantization.col.ppl_ci"]] < 0.2 * q8[EN["quantization.col.ppl"]], "the paired interval"
    assert q8[EN["quantization.col.disk"]] < 0.3 * fp32[EN["quantization.col.disk"]]
    assert fp32[EN["quantization.col.decode"]] > 0 and fp32[EN["quantization.col.text"]].strip()
    size = figure_titled(page, EN["quantization.chart.size_ppl"])
    assert sorted(values(size.data[0].x).round(1)) == sorted(
        [q8[EN["quantization.col.disk"]], fp32[EN["quantization.col.disk"]]]
    )
    speed = figure_titled(page, EN["quantization.chart.speed"])
    assert list(speed.data[0].x) == [BASELINE], "GGUF speed needs llama.cpp: no bar"
    assert any(c.value.startswith("Perplexity over 200 tokens") and BASELINE in c.value for c in page.caption)
    kept = page.session_state["quantization.kept"]
    assert set(kept) == {"gguf-q8_0"} and kept["gguf-q8_0"]["bytes"] > 0
    assert any("GGUF Q8_0: " in c.value and "MiB" in c.value for c in page.caption)
    sidebar = [m.value for m in page.sidebar.markdown]
    assert any(v.startswith("GGUF Q8_0") and "MiB" in v for v in sidebar), "the sidebar lists the kept variant"
    assert any(d.proto.label == EN["quantization.export"] for d in page.get("download_button"))
    exported = json.loads(R.to_json(page.session_state["quantization.report"]))
    assert [b["name"] for b in exported["benchmarks"]] == ["fp32", "gguf-q8_0"]
    assert exported["baseline"] == "fp32 copy of the shipped Q4_1 weights"
    assert exported["benchmarks"][0]["label"] == BASELINE
    page.session_state["quantization.tab"] = EN["quantization.tab.earlier"]
    page.run()
    page.file_uploader(key="quantization.overlay_file").upload(
        "run.json", json.dumps(exported).encode(), "application/json"
    ).run()
    assert any("run.json" in c.value and "2 rows" in c.value for c in page.caption)
    page.file_uploader(key="quantization.overlay_file").set_value(("bad.json", b"[1, 2]", "application/json"))
    page.run()
    assert any("'bad.json' is not a quantization benchmark report" in e.value for e in page.error)


def test_the_baseline_is_named_in_chinese(open_page):
    at = open_page(QUANT, **{"app.lang": "zh"})
    assert not at.exception
    zh = strings("zh")
    table = at.dataframe[0].value
    assert "随附 Q4_1 权重的 fp32 副本（基线）" in list(table[zh["quantization.col.variant"]])
    assert any(c.value.startswith("**基线：随附 Q4_1 权重的 fp32 副本。**") for c in at.caption)


def test_bad_settings_are_explained_and_start_nothing(open_page):
    page = small(open_page, stride=500)
    page.button(key="quantization.start").click().run()
    assert any("stride = 500 is larger than window = 100" in e.value for e in page.error)
    assert "quantization.job" not in page.session_state


def reference_rmse(w, kind: str) -> float:
    """RMSE of the values the gguf package reads back (Q4_K: our bytes, as gguf 0.19 has no K-quant encoder)."""
    from gguf import GGMLQuantizationType, quants

    from backends.quantization import kquants as K

    x = w.detach().float().numpy()
    qtype = GGMLQuantizationType[kind]
    raw = K.quantize_q4_k(x) if kind == "Q4_K" else quants.quantize(x, qtype)
    return float(np.sqrt(((quants.dequantize(raw, qtype).reshape(x.shape).astype(np.float64) - x) ** 2).mean()))


def phrase(a: str, ra: float, b: str, rb: float) -> str:
    """The tab's words for one comparison, from reference numbers."""
    key, ratio = ("lower", rb / ra) if ra <= rb else ("higher", ra / rb)
    return EN[f"quantization.how.vs.{key}"].format(a=a, b=b, ratio=f"{ratio:.2f}")


def how(at, source=None, lang=EN):
    at.session_state["quantization.tab"] = lang["quantization.tab.how"]
    if source:
        at.session_state["quantization.how.source"] = source
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_how_it_works_compares_quantizers_on_minilm_s_real_weights(page):
    from gguf import GGMLQuantizationType, quants

    from backends.models.cache import shared_cache
    from backends.quantization import kquants as K

    how(page)
    assert page.radio(key="quantization.how.source").value == "reference", "SmolLM2's weights are a Q4_1 grid"
    which = next(c.value for c in page.caption if c.value.startswith("**Matrix:**"))
    assert which == (
        "**Matrix:** `sentence-transformers/all-MiniLM-L6-v2`, layer 3, `output.dense`, 384 × 1536: "
        "real-valued, the checkpoint's own fp32 weights."
    )
    assert not page.warning
    metrics = {m.label: m.value for m in page.metric}
    assert metrics[EN["quantization.how.shape"]] == "384 × 1536"
    w = shared_cache().get("all-minilm-l6-v2").model.encoder.layer[3].output.dense.weight
    ref = {k: reference_rmse(w, k) for k in ("Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_K", "Q4_0")}
    formats = next(d.value for d in page.dataframe if EN["quantization.how.col.format"] in d.value.columns)
    shown = dict(zip(formats[EN["quantization.how.col.format"]], formats["RMSE"]))
    assert shown == pytest.approx(ref, rel=1e-9)
    note = next(c.value for c in page.caption if c.value.startswith("Measured here."))
    for a, b in (("Q4_1", "Q4_0"), ("Q5_1", "Q5_0"), ("Q5_0", "Q4_0"), ("Q4_K", "Q5_0")):
        assert phrase(a, ref[a], b, ref[b]) in note, (a, b)
    assert "Q4_K's RMSE is 1.64× higher than Q5_0's" in note, "not closer than its 5.5-bit fallback"
    grain = next(d.value for d in page.dataframe if EN["quantization.how.col.granularity"] in d.value.columns)
    absmax = grain[grain[EN["quantization.how.col.kind"]] == "symmetric (absmax)"].set_index(
        EN["quantization.how.col.granularity"]
    )
    measured = next(m.value for m in page.markdown if m.value.startswith("Measured here, symmetric"))
    assert phrase("`group32`", absmax["RMSE"]["group32"], "`tensor`", absmax["RMSE"]["tensor"]) in measured
    heat = figure_titled(page, EN["quantization.how.heatmap"])
    assert len(heat.data) == 3
    tops = {float(values(tr.z).max()) for tr in heat.data}
    assert {(tr.zmin, tr.zmax) for tr in heat.data} == {(0, max(tops))}, "one colour range for all three"
    blocks = [d.value for d in page.dataframe if EN["quantization.how.col.code"] in d.value.columns]
    assert (
        len(blocks) == 2 and len(blocks[0]) == 32 and blocks[1][EN["quantization.how.col.code"]].between(0, 15).all()
    )
    largest = blocks[0][EN["quantization.how.col.original"]].abs().max()
    assert f"{largest:.3f}" == metrics[EN["quantization.how.absmax"]], "the block holding the largest weight"
    k_block = next(d.value for d in page.dataframe if EN["quantization.how.col.sc"] in d.value.columns)
    assert len(k_block) == 8 and k_block[EN["quantization.how.col.sc"]].between(0, 63).all()
    assert k_block[EN["quantization.how.col.m"]].between(0, 63).all() and (k_block["RMSE"] > 0).all()
    text = next(m.value for m in page.markdown if m.value.startswith("**A GGUF Q4_K super-block**"))
    d = float(text.split("d = ")[1].split(" ")[0])
    steps = k_block[EN["quantization.how.col.step"]]
    assert np.allclose(steps, d * k_block[EN["quantization.how.col.sc"]], rtol=1e-3), "step = d x the 6-bit scale"
    offsets = k_block[EN["quantization.how.col.offset"]]
    dmin = float(text.split("dmin = ")[1].split(",")[0])
    assert np.allclose(offsets, dmin * k_block[EN["quantization.how.col.m"]], rtol=1e-3), "offset = dmin x m"
    start = int(text.split("(weights ")[1].split(" ")[0])
    x = w.detach().numpy().reshape(-1)[start : start + 256]
    back = quants.dequantize(K.quantize_q4_k(x[None]), GGMLQuantizationType.Q4_K).reshape(8, 32)
    sub_rmse = np.sqrt(((back - x.reshape(8, 32)) ** 2).mean(axis=1))
    assert np.allclose(k_block["RMSE"], sub_rmse, atol=1e-6), "each sub-block's RMSE, read back by gguf"
    assert (k_block["RMSE"] > steps).any(), "sc = 1 against an outlier's d: sub-block 4 clips (0.0070 > 0.0037)"
    assert text.endswith(f"On this matrix, Q4_K's RMSE is {ref['Q4_0'] / ref['Q4_K']:.2f}× lower than Q4_0's.")


def test_how_it_works_on_smollm2_says_its_values_sit_on_the_q4_1_grid(page):
    how(page, "model")
    which = next(c.value for c in page.caption if c.value.startswith("**Matrix:**"))
    assert which.startswith("**Matrix:** `HuggingFaceTB/SmolLM2-135M-Instruct`, layer 3, `mlp.down_proj`, 576 × 1536")
    assert "not real-valued" in which
    warning = page.warning[0].value
    assert warning.startswith("**These values already sit on a Q4_1 grid, so the comparison below is distorted.**")
    assert warning.endswith("Here Q4_1 reproduces this matrix with an RMSE of 0.")
    formats = next(d.value for d in page.dataframe if EN["quantization.how.col.format"] in d.value.columns)
    shown = dict(zip(formats[EN["quantization.how.col.format"]], formats["RMSE"]))
    assert shown["Q4_1"] == 0 and shown["Q5_1"] > shown["Q5_0"], "the distorted ranking the warning names"
    note = next(c.value for c in page.caption if c.value.startswith("Measured here."))
    assert "Q4_1 reproduces the matrix exactly (RMSE 0)" in note and "Q5_1's RMSE is 1.05× higher" in note
    page.session_state["quantization.how.matrix.model"] = "self_attn.q_proj"
    page.run()
    assert not page.exception, "a 576 x 576 matrix (groups of 128 do not fit its rows) was an exception"
    assert any("rows of 576 weights are not a multiple of 256" in c.value for c in page.caption)
    assert any(c.value.startswith("Groups of 128 do not divide rows of 576") for c in page.caption)
    grain = next(d.value for d in page.dataframe if EN["quantization.how.col.granularity"] in d.value.columns)
    assert "group128" not in set(grain[EN["quantization.how.col.granularity"]]) and len(grain) == 8
    formats = next(d.value for d in page.dataframe if EN["quantization.how.col.format"] in d.value.columns)
    assert list(formats[EN["quantization.how.col.format"]]) == ["Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0"], "no Q4_K"


def test_how_it_works_warns_in_chinese(open_page):
    from .test_chinese_complete import english_words, visible_texts

    at = how(open_page(QUANT, **{"app.lang": "zh"}), "model", strings("zh"))
    assert at.warning[0].value.startswith("**这些数值已经落在 Q4_1 网格上，因此下面的比较是失真的。**")
    assert any(c.value.startswith("**矩阵：** `HuggingFaceTB/SmolLM2-135M-Instruct`，第 3 层") for c in at.caption)
    assert [w for text in visible_texts(at) for w in english_words(text)] == []
