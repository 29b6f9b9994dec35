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
    # SmolLM2 chosen: in Chinese the page opens on Gemma 3 270M (tests/pages/test_gemma_pages.py)
    at = open_page(QUANT, **{"app.lang": "zh", "quantization.model": "smollm2-135m-instruct"})
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

    at = how(
        open_page(QUANT, **{"app.lang": "zh", "quantization.model": "smollm2-135m-instruct"}), "model", strings("zh")
    )
    assert at.warning[0].value.startswith("**这些数值已经落在 Q4_1 网格上，因此下面的比较是失真的。**")
    assert any(c.value.startswith("**矩阵：** `HuggingFaceTB/SmolLM2-135M-Instruct`，第 3 层") for c in at.caption)
    assert [w for text in visible_texts(at) for w in english_words(text)] == []


def test_how_it_works_names_the_granularities_in_chinese(open_page):
    """tensor / channel / group32 were left in English in the table cells and the heatmaps' titles."""
    zh = strings("zh")
    at = how(open_page(QUANT, **{"app.lang": "zh"}), "model", zh)
    grain = next(d.value for d in at.dataframe if zh["quantization.how.col.granularity"] in d.value.columns)
    names = [zh[f"quantization.how.gran.{g}"] for g in ("tensor", "channel", "group32", "group64", "group128")]
    assert list(dict.fromkeys(grain[zh["quantization.how.col.granularity"]])) == names
    assert names[:3] == ["整个张量（tensor）", "每个输出通道（channel）", "每组 32 个（group32）"]
    heat = figure_titled(at, zh["quantization.how.heatmap"])
    assert [a.text for a in heat.layout.annotations] == names[:3]
    measured = next(m.value for m in at.markdown if m.value.startswith("本矩阵实测"))
    assert "缩放因子按每组 32 个（`group32`）设置" in measured and "对比按整个张量（`tensor`）只设一个" in measured


def test_reasons_are_sentences_in_the_page_s_language(monkeypatch):
    """A variant that cannot run says why in a sentence, not the library's exception (kept for the expander)."""
    from components import i18n
    from components.quantization.table import reason_sentence

    torchao = "torchao: ImportError: Requires mslk >= 1.0.0"
    expected = {
        "en": {
            torchao: "torchao's int4 kernel for CPUs is not installed here (mslk >= 1.0.0 is missing).",
            "bitsandbytes is not installed (pip install bitsandbytes)": (
                "bitsandbytes is not installed here: `pip install bitsandbytes`."
            ),
            "bitsandbytes: RuntimeError: no kernel": (
                "bitsandbytes could not run one small test layer of this variant here, so the variant is left out."
            ),
        },
        "zh": {
            torchao: "本机没有安装 torchao 的 CPU int4 内核（缺少 mslk >= 1.0.0）。",
            "bitsandbytes is not installed (pip install bitsandbytes)": (
                "本机没有安装 bitsandbytes：`pip install bitsandbytes`。"
            ),
            "bitsandbytes: RuntimeError: no kernel": (
                "bitsandbytes 无法在本机运行这个变体的一个小测试层，因此不运行该变体。"
            ),
        },
    }
    for lang, cases in expected.items():
        monkeypatch.setattr(i18n, "current_lang", lambda lang=lang: lang)
        for raw, sentence in cases.items():
            key = "torchao-int4-wo" if raw.startswith("torchao") else "bnb-int8"
            assert reason_sentence(key, raw) == sentence
        assert "GPU" in reason_sentence("fp16", "float16 matmuls are a GPU format (slow or missing on CPU)")


def test_the_variants_table_says_why_in_chinese_with_the_library_s_words_below(open_page):
    from backends.quantization import availability

    zh = strings("zh")
    at = open_page(QUANT, **{"app.lang": "zh"})
    frame = at.dataframe[0]
    table = frame.value
    raw = availability("cpu")
    here = dict(zip(table[zh["quantization.col.variant"]], table[zh["quantization.col.here"]]))
    reasons = [cell for cell in here.values() if cell != zh["quantization.runs_here"]]
    assert len(reasons) == sum(r is not None for r in raw.values()) >= 1, "fp16 needs a GPU"
    for cell in reasons:
        assert any("\u4e00" <= c <= "\u9fff" for c in cell) and "Error" not in cell, cell
    assert here["fp16"] == zh["quantization.why.gpu_only"]
    assert frame.proto.placeholder == "—"
    expander = next(e for e in at.expander if e.label == zh["quantization.why.raw_title"])
    words = "\n".join(m.value for m in expander.markdown)
    for reason in filter(None, raw.values()):
        assert f"`{reason}`" in words, reason


def test_smollm2_s_first_token_is_the_outlier_the_page_names():
    """The lossy note quotes |h| ~ 22,000 on SmolLM2's first token against under 1,000 elsewhere."""
    import torch

    from backends.models.cache import shared_cache
    from backends.quantization.text import held_out_text

    loaded = shared_cache().get("smollm2-135m-instruct")
    ids = loaded.tokenizer(held_out_text()[:2000], return_tensors="pt").input_ids[:, :256]
    with torch.inference_mode():
        states = torch.stack(loaded.model(ids, output_hidden_states=True).hidden_states)
    per_token = states.abs().amax(dim=(0, 1, 3))
    assert 20_000 < float(per_token[0]) < 24_000
    assert float(per_token[1:].max()) < 1_000


def test_a_per_tensor_int8_row_says_why_it_is_lossy_and_empty_cells_are_blank(open_page):
    """PyTorch's dynamic int8 on SmolLM2: its note names per-tensor activation scales, a caption under the
    table its measured KLD and the outlier; the baseline's own ±95% cell is blank, not "None"; the charts'
    labels stay inside them. Then the same report in Chinese."""
    page = small(open_page, variants=["fp32", "torch-dynamic-int8"])
    page.button(key="quantization.start").click().run()
    wait(page, shared_runner().get(page.session_state["quantization.job"]))
    frame = next(d for d in page.dataframe if EN["quantization.col.ppl"] in d.value.columns)
    rows = frame.value.set_index(EN["quantization.col.variant"])
    fp32, dyn = rows.loc[BASELINE], rows.loc["PyTorch dynamic int8 (fbgemm)"]
    kld = dyn[EN["quantization.col.kld"]]
    assert kld >= 0.05, "per-tensor activation scales on SmolLM2's outlier token"
    note = dyn[EN["quantization.col.note"]]
    assert note.startswith(f"Lossy (KLD {kld:g}): activations are quantized with one int8 scale per tensor")
    assert np.isnan(fp32[EN["quantization.col.ppl_ci"]]) and frame.proto.placeholder == "—", "blank, not None"
    assert "None" not in set(map(str, frame.value.astype(object).where(frame.value.notna(), "").values.ravel()))
    assert fp32[EN["quantization.col.status"]] == EN["quantization.status.ok"]
    caption = next(c.value for c in page.caption if c.value.startswith("**Lossy rows**"))
    assert f"(KLD to the baseline ≥ 0.05: their predictions moved): PyTorch dynamic int8 (fbgemm) {kld:g}" in caption
    assert "per-tensor activation scales" in caption and "|h| ≈ 22,000" in caption
    size = figure_titled(page, EN["quantization.chart.size_ppl"])
    points = size.data[0]
    assert points.cliponaxis is False
    xs, ys = values(points.x), values(points.y)
    assert list(points.textposition) == ["top left" if x == xs.max() else "top right" for x in xs], "turned inwards"
    assert size.layout.yaxis.range[1] > ys.max() + 0.2 * (ys.max() - ys.min()), "room above the top label"
    assert size.layout.xaxis.range[0] < xs.min() < xs.max() < size.layout.xaxis.range[1]
    speed = figure_titled(page, EN["quantization.chart.speed"])
    assert speed.layout.xaxis.automargin is True and speed.data[0].cliponaxis is False
    assert "<br>" in speed.layout.xaxis.ticktext[0], "the baseline's long name on several lines"
    page.session_state["app.lang"] = "zh"
    page.run()
    zh = strings("zh")
    rows = next(d.value for d in page.dataframe if zh["quantization.col.ppl"] in d.value.columns)
    dyn = rows.set_index(zh["quantization.col.variant"]).loc[zh["quantization.variant.torch-dynamic-int8"]]
    lossy = f"有损（KLD {kld:g}）：激活按整个张量共用一个 int8 缩放因子量化"
    assert dyn[zh["quantization.col.note"]].startswith(lossy)
    caption = next(c.value for c in page.caption if c.value.startswith("**有损的行**"))
    assert f"PyTorch 动态 int8 {kld:g}" in caption and "逐张量激活缩放" in caption and "22,000" in caption
