"""The quantization table's per-row notes in the page's language (they were the backend's English
sentences on the Chinese page): the backends write each part from a code (backends/quantization/notes.py),
the table reads the codes back and translates them; words from elsewhere stay as they are."""

import re

from streamlit.testing.v1 import AppTest

from backends.quantization import notes
from backends.quantization.run import VariantResult
from components.i18n import strings

EN, ZH = strings("en"), strings("zh")
GGUF = notes.note(
    ("gguf_types", {"file_type": "Q4_K_M", "mix": "168 Q4_K, 30 Q6_K"}), ("bits", {"bits": "4.85"}), "gguf_speed"
)
ONNX = notes.note("onnx_no_cache", "export_quantize_time", "reduce_range")


def test_every_note_reads_back_into_its_codes_and_the_english_is_unchanged():
    # the words the rows had before (tests/backends check parts of them on real runs)
    assert GGUF == (
        "llama-quantize's Q4_K_M types: 168 Q4_K, 30 Q6_K matrices; 4.85 bits/weight; quality of the GGUF blocks, "
        "run dequantized in fp32: speed needs llama.cpp (pip install llama-cpp-python, compiles from source)"
    )
    assert notes.parts(GGUF) == [
        ("gguf_types", {"file_type": "Q4_K_M", "mix": "168 Q4_K, 30 Q6_K"}),
        ("bits", {"bits": "4.85"}),
        ("gguf_speed", {}),
    ]
    assert [code for code, _ in notes.parts(ONNX)] == ["onnx_no_cache", "export_quantize_time", "reduce_range"]
    assert notes.parts("a note from elsewhere; export time") == [(None, "a note from elsewhere"), ("export_time", {})]
    for code, template in notes.NOTES.items():
        assert EN[f"quantization.rownote.{code}"] == template, "the English page shows the backend's words"
        assert f"quantization.rownote.{code}" in ZH


def _table():
    import streamlit as st

    from backends.quantization import Baseline
    from components.quantization.table import table

    st.session_state["app.lang"] = st.session_state["lang"]
    table(st.session_state["rows"], "results", Baseline())


def _notes(lang):
    at = AppTest.from_function(_table)
    at.session_state["lang"] = lang
    at.session_state["rows"] = [
        VariantResult("gguf-q4_k_m", "GGUF Q4_K_M", "gguf", 4.85, note=GGUF),
        VariantResult("onnx-int8", "ONNX int8", "onnx", 8.0, note=ONNX, kld=0.01),
        VariantResult("bf16", "bf16", "torch", 16.0, note=notes.note("cast") + "; an imported remark"),
    ]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    strings_ = strings(lang)
    return list(at.dataframe[0].value[strings_["quantization.col.note"]])


def test_the_chinese_table_translates_the_backends_notes():
    gguf, onnx, bf16 = _notes("zh")
    assert gguf.startswith("llama-quantize 的 Q4_K_M 类型") and "每个权重 4.85 位" in gguf and "；" in gguf
    assert "GGUF 块的质量" in gguf
    assert "导出时没有 KV 缓存" in onnx and "VNNI" in onnx
    assert bf16 == ZH["quantization.rownote.cast"] + "；an imported remark", "unknown words stay as they are"
    english_words = re.compile(r"\b(quality|exported|weights|matrices|time|every)\b")
    assert not any(english_words.search(n) for n in (gguf, onnx)), (gguf, onnx)


def test_the_english_table_shows_the_backends_words():
    gguf, onnx, _ = _notes("en")
    assert gguf == GGUF
    assert onnx.endswith(ONNX)
