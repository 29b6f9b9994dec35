"""The "how it works" tab: one weight matrix, named with where its values come from, quantized by hand.

The matrix is real-valued by default: all-MiniLM-L6-v2's fp32 weights when the loaded model is the
embedded SmolLM2 (whose "fp32" weights are its shipped Q4_1 blocks dequantized, already on a 4-bit
grid), the loaded model's own otherwise; the learner may switch, and the grid is then said plainly.
Every comparison in the text quotes the errors measured on the matrix shown.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backends.models.registry import MINILM, find_spec
from backends.quantization import describe
from backends.quantization import kquants as K
from backends.quantization import teaching as Q
from backends.quantization.baseline import GGUF
from components.i18n import t
from components.model_picker import load_or_explain
from components.option_labels import follow_language
from components.quantization.charts import error_heatmaps, histogram_figure
from components.show_code import show_code

P = "quantization."
SOURCES = ("reference", "model")  # MiniLM's real fp32 weights | the loaded model's own


def model_name(loaded) -> str:
    spec = find_spec(loaded.key.model)
    return spec.hub_id if spec else loaded.key.model


@st.cache_data(max_entries=8, show_spinner=False)
def measure(key: tuple, _w) -> dict:
    """Everything the tab measures on one matrix (key: model, folder, layer, name; _w: its weights)."""
    cols = _w.shape[1]
    grids = {g: Q.error_grid(Q.quantize_int8(_w, g).error(_w)) for g in ("tensor", "channel", "group32")}
    return {
        "stats": Q.weight_stats(_w),
        "granularity": Q.granularity_table(_w),
        "formats": Q.format_table(_w) if cols % Q.BLOCK == 0 else [],
        "grids": {g: v for g, v in grids.items() if g in Q.fitting_granularities(_w)},
    }


def number(x: float) -> str:
    return "0" if x == 0 else f"{x:.2e}"


def versus(a: str, ra: float, b: str, rb: float) -> str:
    """One measured comparison of two RMSEs, in words that follow the numbers."""
    if ra == 0:
        return t("quantization.how.vs.exact", a=a, b=b)
    if ra <= rb:
        return t("quantization.how.vs.lower", a=a, b=b, ratio=f"{rb / ra:.2f}")
    return t("quantization.how.vs.higher", a=a, b=b, ratio=f"{ra / rb:.2f}")


def granularity_label(granularity: str) -> str:
    """tensor / channel / group32...: in Chinese a phrase with the term in parentheses."""
    return t(f"quantization.how.gran.{granularity}")


def granularity_term(granularity: str) -> str:
    """The same inside a sentence, the term as code."""
    return t(f"quantization.how.gran_prose.{granularity}")


def source_label(source: str, loaded) -> str:
    if source == "reference":
        return t("quantization.how.source.reference")
    return t("quantization.how.source.model", model=model_name(loaded))


def origin_text(origin) -> str:
    """Whether the matrix's values are real-valued, from where its weights came (a Baseline's form)."""
    return {
        "native": lambda: t("quantization.how.origin.native"),
        "cast": lambda: t("quantization.how.origin.cast", weights=origin.weights),
        "checkpoint": lambda: t("quantization.how.origin.checkpoint"),
        GGUF: lambda: t("quantization.how.origin.gguf", weights=origin.weights),
        "unknown": lambda: t("quantization.how.origin.unknown"),
    }[origin.form]()


def how_it_works(loaded, baseline) -> None:
    """loaded: the page's model; baseline: `describe(loaded)` (a GGUF baseline is not real-valued)."""
    source = st.radio(
        t("quantization.how.source"),
        SOURCES,
        index=0 if baseline.kind == GGUF else 1,
        format_func=lambda s: source_label(s, loaded),
        horizontal=True,
        help=t("quantization.how.source_help"),
        key=follow_language(P + "how.source"),
        persist_state="session",
    )
    picked = load_or_explain(MINILM.key) if source == "reference" else loaded
    if picked is None:
        return
    origin = baseline if picked is loaded else describe(picked)
    layers = Q.layer_stack(picked.model)
    if layers is None:
        st.info(t("quantization.how.no_layers"))
        return
    c1, c2 = st.columns(2)
    index = int(
        c1.number_input(
            t("quantization.how.layer"),
            0,
            len(layers) - 1,
            min(3, len(layers) - 1),
            key=P + "how.layer." + source,
            persist_state="session",
        )
    )
    names = Q.matrix_names(layers[index])
    if st.session_state.get(P + "how.matrix." + source, names[0]) not in names:  # another model's name
        del st.session_state[P + "how.matrix." + source]
    name = c2.selectbox(
        t("quantization.how.matrix"),
        names,
        index=names.index(Q.default_matrix(layers[index])),
        key=P + "how.matrix." + source,
        persist_state="session",
    )
    w = Q.matrix(layers[index], name)
    st.caption(
        t(
            "quantization.how.which",
            model=model_name(picked),
            layer=index,
            name=name,
            rows=w.shape[0],
            cols=w.shape[1],
            origin=origin_text(origin),
        )
    )
    m = measure((picked.key, picked.location, id(picked.model), index, name), w)
    formats = {r["format"]: r for r in m["formats"]}
    if origin.kind == GGUF:
        exact = formats.get(origin.weights)
        extra = t("quantization.how.grid_rmse", kind=origin.weights, rmse=number(exact["rmse"])) if exact else ""
        st.warning(t("quantization.how.grid_warning", weights=origin.weights) + extra)
    matrix_view(w, m)
    formats_view(w, formats)
    show_code(Q.quantize_int8, Q.q8_0, Q.q4_0, Q.round_trip, K.quantize_q4_k)


def matrix_view(w, m: dict) -> None:
    """Spread and outliers, then int8 with one scale per tensor, channel or group."""
    stats = m["stats"]
    cols = st.columns(4)
    cols[0].metric(t("quantization.how.shape"), f"{w.shape[0]} × {w.shape[1]}")
    cols[1].metric(t("quantization.how.std"), f"{stats['std']:.4f}")
    cols[2].metric(
        t("quantization.how.absmax"),
        f"{stats['absmax']:.3f}",
        help=t("quantization.how.absmax_help", ratio=f"{stats['absmax_over_std']:.1f}"),
    )
    cols[3].metric(
        t("quantization.how.outliers", sigmas=f"{stats['sigmas']:g}"),
        f"{stats['outliers']:,}",
        help=t("quantization.how.outliers_help", share=f"{100 * stats['outlier_share']:.3f}"),
    )
    st.plotly_chart(
        histogram_figure(w.flatten().numpy(), stats["absmax"], stats["std"], stats["sigmas"]), key=P + "how.hist"
    )
    st.markdown(t("quantization.how.granularity"))
    rows = [r for r in m["granularity"] if r["symmetric"]]
    coarse, fine = rows[0], max(rows, key=lambda r: r["scales"])  # one scale per tensor; the most scales
    st.markdown(
        t(
            "quantization.how.granularity_measured",
            fine=granularity_term(fine["granularity"]),
            tensor=granularity_term(coarse["granularity"]),
            scales=f"{fine['scales']:,}",
            bits=f"{fine['bits_per_weight']:.3f}",
            tensor_bits=f"{coarse['bits_per_weight']:.3f}",
            versus=versus(
                granularity_term(fine["granularity"]),
                fine["rmse"],
                granularity_term(coarse["granularity"]),
                coarse["rmse"],
            ),
        )
    )
    table = pd.DataFrame(m["granularity"])
    kinds = {True: t("quantization.how.absmax_kind"), False: t("quantization.how.zero_point_kind")}
    table["symmetric"] = table["symmetric"].map(kinds)
    table["granularity"] = table["granularity"].map(granularity_label)
    st.dataframe(
        table.rename(
            columns={
                "granularity": t("quantization.how.col.granularity"),
                "symmetric": t("quantization.how.col.kind"),
                "scales": t("quantization.how.col.scales"),
                "rmse": "RMSE",
                "max_error": t("quantization.how.col.max_error"),
                "bits_per_weight": t("quantization.how.col.bits"),
            }
        ),
        hide_index=True,
        key=P + "how.table",
    )
    skipped = [g[5:] for g in Q.GRANULARITIES if g not in Q.fitting_granularities(w)]
    if skipped:
        st.caption(t("quantization.how.groups_skipped", sizes=", ".join(skipped), cols=w.shape[1]))
    grids = {granularity_label(g): grid for g, grid in m["grids"].items()}
    st.plotly_chart(error_heatmaps(grids), key=P + "how.heatmap")
    st.caption(t("quantization.how.heatmap_note", count=len(m["grids"])))


def formats_view(w, formats: dict) -> None:
    """GGUF's block formats on the matrix, then one Q8_0 / Q4_0 block and one Q4_K super-block."""
    if not formats:
        st.caption(t("quantization.how.blocks_unfit", cols=w.shape[1]))
        return
    st.markdown(t("quantization.how.formats"))
    st.dataframe(
        pd.DataFrame(formats.values()).rename(
            columns={
                "format": t("quantization.how.col.format"),
                "bits_per_weight": t("quantization.how.col.format_bits"),
                "rmse": "RMSE",
                "max_error": t("quantization.how.col.max_error"),
                "vs_q4_0": t("quantization.how.col.vs_q4_0"),
            }
        ),
        hide_index=True,
        key=P + "how.formats",
    )

    def cmp(a: str, b: str) -> str:
        return versus(a, formats[a]["rmse"], b, formats[b]["rmse"])

    q4_1, q5_1, q5_0 = cmp("Q4_1", "Q4_0"), cmp("Q5_1", "Q5_0"), cmp("Q5_0", "Q4_0")
    note = t("quantization.how.formats_note", q4_1=q4_1, q5_1=q5_1, q5_0=q5_0)
    if "Q4_K" in formats:
        note += t("quantization.how.formats_note_k", versus=cmp("Q4_K", "Q5_0"))
    st.caption(note)
    blocks_view(w)
    k_block_view(w, cmp("Q4_K", "Q4_0") if "Q4_K" in formats else "")


def blocks_view(w) -> None:
    """The GGUF block holding this matrix's largest weight, taken apart in Q8_0 and Q4_0."""
    flat = w.flatten()
    start = int(flat.abs().argmax()) // Q.BLOCK * Q.BLOCK
    original = flat[start : start + Q.BLOCK].numpy()
    st.markdown(t("quantization.how.blocks", start=start))
    cols = st.columns(2)
    for col, kind, quantize in ((cols[0], "Q8_0", Q.q8_0), (cols[1], "Q4_0", Q.q4_0)):
        block = Q.decode_block(kind, quantize(original)[0], original)
        col.caption(
            t(
                "quantization.how.block_caption",
                kind=kind,
                scale=f"{block.scale:.6f}",
                nbytes=block.nbytes,
                bits=f"{8 * block.nbytes / Q.BLOCK:g}",
            )
        )
        col.dataframe(
            pd.DataFrame(
                {
                    t("quantization.how.col.original"): block.original,
                    t("quantization.how.col.code"): block.codes,
                    t("quantization.how.col.decoded"): block.values,
                }
            ).round(5),
            hide_index=True,
            height=260,
            key=P + "how.block." + kind,
        )


def k_block_view(w, versus_q4_0: str) -> None:
    """The Q4_K super-block (256 weights) holding the matrix's largest weight: two levels of scales."""
    cols = w.shape[1]
    if not K.supports(cols):
        st.caption(t("quantization.how.kblock_fallback", cols=cols))
        return
    flat = w.flatten()
    start = int(flat.abs().argmax()) // K.QK_K * K.QK_K
    original = flat[start : start + K.QK_K].numpy()
    part = K.superblock(K.quantize_q4_k(original[None])[0], original)
    st.markdown(
        t(
            "quantization.how.kblock",
            start=start,
            end=start + K.QK_K - 1,
            d=f"{part['d']:.6f}",
            dmin=f"{part['dmin']:.6f}",
            nbytes=part["nbytes"],
            versus=versus_q4_0,
        )
    )
    st.dataframe(
        pd.DataFrame(part["rows"])
        .rename(
            columns={
                "sub_block": t("quantization.how.col.sub_block"),
                "sc": t("quantization.how.col.sc"),
                "m": t("quantization.how.col.m"),
                "step": t("quantization.how.col.step"),
                "offset": t("quantization.how.col.offset"),
                "rmse": "RMSE",
            }
        )
        .round(6),
        hide_index=True,
        key=P + "how.kblock",
    )
