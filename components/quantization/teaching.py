"""The "how it works" tab: one real weight matrix of the chosen model, quantized by hand."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backends.quantization import kquants as K
from backends.quantization import teaching as Q
from components.i18n import t
from components.quantization.charts import error_heatmaps, histogram_figure
from components.show_code import show_code

P = "quantization."


def linear_names(layer) -> list[str]:
    import torch

    return [name for name, m in layer.named_modules() if isinstance(m, torch.nn.Linear)]


def how_it_works(model) -> None:
    layers = getattr(getattr(model, "model", None), "layers", None)
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
            key=P + "how.layer",
            persist_state="session",
        )
    )
    names = linear_names(layers[index])
    default = names.index("mlp.down_proj") if "mlp.down_proj" in names else 0
    name = c2.selectbox(
        t("quantization.how.matrix"), names, index=default, key=P + "how.matrix", persist_state="session"
    )
    w = layers[index].get_submodule(name).weight.detach().float().cpu()
    stats = Q.weight_stats(w)
    m = st.columns(4)
    m[0].metric(t("quantization.how.shape"), f"{w.shape[0]} × {w.shape[1]}")
    m[1].metric(t("quantization.how.std"), f"{stats['std']:.4f}")
    m[2].metric(
        t("quantization.how.absmax"),
        f"{stats['absmax']:.3f}",
        help=t("quantization.how.absmax_help", ratio=f"{stats['absmax_over_std']:.1f}"),
    )
    m[3].metric(
        t("quantization.how.outliers", sigmas=f"{stats['sigmas']:g}"),
        f"{stats['outliers']:,}",
        help=t("quantization.how.outliers_help", share=f"{100 * stats['outlier_share']:.3f}"),
    )
    st.plotly_chart(
        histogram_figure(w.flatten().numpy(), stats["absmax"], stats["std"], stats["sigmas"]), key=P + "how.hist"
    )
    st.markdown(t("quantization.how.granularity"))
    table = pd.DataFrame(Q.granularity_table(w))
    table["symmetric"] = table["symmetric"].map(
        {True: t("quantization.how.absmax_kind"), False: t("quantization.how.zero_point_kind")}
    )
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
    grids = {g: Q.error_grid(Q.quantize_int8(w, g).error(w)) for g in ("tensor", "channel", "group32")}
    st.plotly_chart(error_heatmaps(grids), key=P + "how.heatmap")
    st.caption(t("quantization.how.heatmap_note"))
    blocks_view(w)
    k_block_view(w)
    show_code(Q.quantize_int8, Q.q8_0, Q.q4_0, K.quantize_q4_k)


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


def k_block_view(w) -> None:
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
