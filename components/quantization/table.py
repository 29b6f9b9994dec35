"""The quantization page's tables: the variants on this machine and the results, each cell in the page's
language: why a variant does not run here as a sentence (the library's own words in an expander), blanks
where a measurement has no value, why a per-tensor int8 row loses quality, and each row's note."""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from backends.models.registry import SMOLLM2, find_spec
from backends.quantization import QUALITY_KLD, Baseline, VariantResult, availability
from backends.quantization.catalog import SPECS
from backends.quantization.notes import parts as note_parts
from components.i18n import t

P = "quantization."
BLANK = "—"  # a cell with no value: the baseline's interval against itself, a GGUF row's speed
# Dynamic int8 that quantizes each layer's input activations with one scale per tensor (fbgemm, ONNX
# Runtime's DynamicQuantizeLinear); torchao's dynamic int8 scales each token's row on its own.
PER_TENSOR_ACTIVATIONS = ("torch-dynamic-int8", "onnx-int8")
LIBRARIES = {"torch": "PyTorch", "torchao": "torchao", "onnx": "ONNX Runtime", "gguf": "gguf", "bnb": "bitsandbytes"}


def label(key: str, baseline: Baseline | None = None) -> str:
    """A variant's name in the page's language (the backend's English label is the JSON's); the fp32
    row named by what its weights are (the embedded SmolLM2's: a copy of the shipped Q4_1 weights)."""
    if key == "fp32" and baseline is not None:
        return t(f"quantization.baseline.label.{baseline.form}", weights=baseline.weights)
    return t(f"quantization.variant.{key}")


def reason_sentence(key: str, reason: str) -> str:
    """Why variant `key` cannot run here, as a sentence in the page's language, from the reason its
    backend gives (a library's own words: they stay available in `raw_reasons`)."""
    family = next((s.family for s in SPECS if s.key == key), "")
    library = LIBRARIES.get(family, family)
    needs = re.search(r"Requires ([\w.-]+) >= ?([\d.]+)", reason)
    pip = re.search(r"\(pip install ([^)]+)\)", reason)
    if needs and key == "torchao-int4-wo":
        return t("quantization.why.torchao_int4", need=f"{needs[1]} >= {needs[2]}")
    if needs:
        return t("quantization.why.requires", library=library, need=f"{needs[1]} >= {needs[2]}")
    if pip:
        return t("quantization.why.not_installed", package=", ".join(pip[1].split()), pip=f"pip install {pip[1]}")
    if "GPU format" in reason:
        return t("quantization.why.gpu_only")
    if "run on the CPU only" in reason:
        return t("quantization.why.cpu_only")
    if "no fbgemm engine" in reason:
        return t("quantization.why.no_fbgemm")
    if "no folder to load from" in reason:
        return t("quantization.why.no_folder")
    if reason.startswith((f"{family}:", "bitsandbytes:")):
        return t("quantization.why.probe_failed", library=library)
    return t("quantization.why.other")


def raw_reasons(items: list[tuple[str, str]]) -> None:
    """(variant label, the backend's own words) of every variant that did not run, behind an expander."""
    if not items:
        return
    with st.expander(t("quantization.why.raw_title")):
        # as code, whatever the library wrote
        lines = [t("quantization.why.raw_item", variant=name, raw=raw.replace("`", "'")) for name, raw in items]
        st.markdown("\n".join(lines))


def variants_table(device: str, baseline: Baseline, model=None) -> dict[str, str | None]:
    """Every variant, its library, its bits per weight (a GGUF row's: the whole file's for this model,
    as llama-quantize would write it) and whether it runs here, or why not in a sentence."""
    reasons = availability(device)
    bits = {s.key: round(s.file_bits(model), 2) if s.file_bits and model is not None else s.bits for s in SPECS}
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("quantization.col.variant"): label(s.key, baseline),
                    t("quantization.col.family"): s.family,
                    t("quantization.col.bits"): bits[s.key],
                    t("quantization.col.here"): t("quantization.runs_here")
                    if reasons[s.key] is None
                    else reason_sentence(s.key, reasons[s.key]),
                }
                for s in SPECS
            ]
        ),
        hide_index=True,
        key=P + "variants_table",
        placeholder=BLANK,
        column_config={
            t("quantization.col.variant"): st.column_config.TextColumn(width="medium"),
            t("quantization.col.family"): st.column_config.TextColumn(width="small"),
            t("quantization.col.bits"): st.column_config.NumberColumn(
                help=t("quantization.col.bits_help"), width="small"
            ),
            t("quantization.col.here"): st.column_config.TextColumn(
                help=t("quantization.col.here_help"), width="large"
            ),
        },
    )
    raw_reasons([(label(s.key, baseline), reasons[s.key]) for s in SPECS if reasons[s.key]])
    return reasons


def fmt(value, digits=1, scale=1.0):
    return None if value is None else round(value / scale, digits)


def sig(value, digits=3):
    """Rounded to `digits` significant figures: KLDs of real-valued models run from 1e-6 to 1."""
    return None if value is None else float(f"{value:.{digits}g}")


def lossy(r: VariantResult) -> bool:
    """A measured row whose predictions moved: KLD to the baseline at or above run.QUALITY_KLD."""
    return r.status == "ok" and r.kld is not None and r.kld >= QUALITY_KLD


def is_smollm2(model: str) -> bool:
    """The embedded SmolLM2, whose outlier activations docs/quantization.md measures (and a test holds)."""
    spec = find_spec(model)
    return spec is not None and spec.key == SMOLLM2.key


def row_note(r: VariantResult) -> str:
    """The note column: why a row did not run, or what the page knows about it, then the backend's note."""
    if r.status == "unavailable":
        return reason_sentence(r.key, r.error)
    if r.status == "failed":
        return t("quantization.why.failed")
    if r.key in PER_TENSOR_ACTIVATIONS and r.status == "ok":
        own = (
            t("quantization.note.per_tensor_lossy", kld=f"{sig(r.kld):g}")
            if lossy(r)
            else t("quantization.note.per_tensor")
        )
        return f"{own} {backend_note(r.note)}".strip()
    return backend_note(r.note)


def backend_note(note: str) -> str:
    """The backend's note in the page's language: each part it wrote from a code (backends/quantization/
    notes.py) translated; words it did not (a results file from elsewhere) as they are."""
    words = [t(f"quantization.rownote.{code}", **values) if code else values for code, values in note_parts(note)]
    return t("quantization.rownote.sep").join(words)


def table(rows: list[VariantResult], key: str, baseline: Baseline) -> None:
    """One row per variant: size, decode speed and quality first (what a learner compares), then
    the rest of the measurements; a cell with no value (the baseline's own interval, a GGUF row's
    speed) is blank, not "None"."""
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("quantization.col.variant"): label(r.key, baseline),
                    t("quantization.col.disk"): fmt(r.disk_bytes, 1, 1e6),
                    t("quantization.col.file_bits"): fmt(r.bits, 2),
                    t("quantization.col.ram"): fmt(r.mem_bytes, 1, 1e6),
                    t("quantization.col.decode"): fmt(r.decode_tps, 2),
                    t("quantization.col.bound"): fmt(r.bound_tps, 1),
                    t("quantization.col.ppl"): fmt(r.perplexity, 3),
                    t("quantization.col.ppl_ci"): fmt(r.ppl_half_width(), 3),
                    t("quantization.col.kld"): sig(r.kld),
                    t("quantization.col.top1"): fmt(r.top1, 2, 0.01),
                    t("quantization.col.weight_error"): sig(r.weight_error),
                    t("quantization.col.decode_p90"): fmt(r.decode_tps_p90, 2),
                    t("quantization.col.prefill"): fmt(r.prefill_tps),
                    t("quantization.col.prefill_p90"): fmt(r.prefill_tps_p90),
                    t("quantization.col.quantize"): fmt(r.quantize_s, 2),
                    t("quantization.col.load"): fmt(r.load_s, 2),
                    t("quantization.col.rss"): fmt(r.peak_rss_bytes, 0, 1e6),
                    t("quantization.col.status"): t(f"quantization.status.{r.status}"),
                    t("quantization.col.note"): row_note(r),
                    t("quantization.col.text"): r.continuation,
                }
                for r in rows
            ]
        ),
        hide_index=True,
        key=P + key,
        placeholder=BLANK,
        column_config={
            t("quantization.col.file_bits"): st.column_config.NumberColumn(help=t("quantization.col.file_bits_help")),
            t("quantization.col.weight_error"): st.column_config.NumberColumn(
                help=t("quantization.col.weight_error_help")
            ),
            t("quantization.col.note"): st.column_config.TextColumn(width="large"),
        },
    )


def lossy_note(rows: list[VariantResult], model: str, baseline: Baseline) -> None:
    """Under the results table: the rows whose KLD reaches run.QUALITY_KLD, with their KLD, and why the
    per-tensor int8 ones lose quality (on the embedded SmolLM2 with its measured outlier activations)."""
    bad = [r for r in rows if lossy(r)]
    if not bad:
        return
    listed = t("quantization.lossy.sep").join(f"{label(r.key, baseline)} {sig(r.kld):g}" for r in bad)
    text = t("quantization.lossy.rows", limit=f"{QUALITY_KLD:g}", rows=listed)
    per_tensor = [r for r in bad if r.key in PER_TENSOR_ACTIVATIONS]
    if per_tensor:
        names = t("quantization.lossy.and").join(label(r.key, baseline) for r in per_tensor)
        why = "quantization.lossy.per_tensor_smollm2" if is_smollm2(model) else "quantization.lossy.per_tensor"
        text += " " + t(why, variants=names)
    st.caption(text)
