"""The GPT-from-scratch page's settings: one plain dict in the session, its widgets, the backend's configs."""

from __future__ import annotations

import streamlit as st

from backends.scratch_gpt import BABY, POSITIONS, GPTConfig, TrainSettings
from components.i18n import t
from components.option_labels import follow_language

P = "scratch_gpt."
MODEL_KEYS = ("block_size", "n_layer", "n_head", "n_embd", "dropout", "positions")


def settings_dict() -> dict:
    """The settings outlive the tabs: a lazy tab's widgets are not drawn when another tab is open."""
    if P + "cfg" not in st.session_state:
        st.session_state[P + "cfg"] = {**BABY[0].to_dict(), **BABY[1].to_dict()}
    return st.session_state[P + "cfg"]


def setting(name: str, widget, label: str, *args, **kwargs):
    cfg = settings_dict()
    cfg[name] = widget(label, *args, value=cfg[name], key=P + "w." + name, **kwargs)
    return cfg[name]


def settings() -> tuple[GPTConfig, TrainSettings]:
    """The widgets' values as the backend's configs; ValueError quotes a bad one."""
    cfg = settings_dict()
    model = GPTConfig(**{k: cfg[k] for k in MODEL_KEYS})
    train = TrainSettings(**{k: cfg[k] for k in TrainSettings().to_dict()})
    return model, train


def settings_editor(expanded: bool) -> None:
    """The model, training and watching settings, in three columns of one expander."""
    cfg = settings_dict()
    with st.expander(t("scratch_gpt.cfg.title"), expanded=expanded):
        a, b, c = st.columns(3)
        with a:
            st.markdown(t("scratch_gpt.cfg.model"))
            setting("n_layer", st.number_input, t("scratch_gpt.cfg.n_layer"), 1, 12)
            setting("n_head", st.number_input, t("scratch_gpt.cfg.n_head"), 1, 16)
            setting("n_embd", st.number_input, t("scratch_gpt.cfg.n_embd"), 8, 512, step=8)
            setting("block_size", st.number_input, t("scratch_gpt.cfg.block_size"), 8, 512, step=8)
            cfg["positions"] = st.selectbox(
                t("scratch_gpt.cfg.positions"),
                POSITIONS,
                key=follow_language(P + "w.positions"),
                index=POSITIONS.index(cfg["positions"]),
                format_func=lambda p: t(f"scratch_gpt.pos.{p}"),
                persist_state="session",
            )
            setting("dropout", st.slider, t("scratch_gpt.cfg.dropout"), 0.0, 0.5, step=0.05)
        with b:
            st.markdown(t("scratch_gpt.cfg.training"))
            setting("max_iters", st.number_input, t("scratch_gpt.cfg.max_iters"), 1, 100_000, step=100)
            setting("batch_size", st.number_input, t("scratch_gpt.cfg.batch_size"), 1, 512)
            setting("learning_rate", st.number_input, t("scratch_gpt.cfg.lr"), 1e-5, 1.0, format="%.5f", step=1e-4)
            setting("min_lr", st.number_input, t("scratch_gpt.cfg.min_lr"), 0.0, 1.0, format="%.5f", step=1e-5)
            setting("warmup_iters", st.number_input, t("scratch_gpt.cfg.warmup"), 0, 100_000)
            setting("lr_decay_iters", st.number_input, t("scratch_gpt.cfg.decay"), 0, 100_000)
        with c:
            st.markdown(t("scratch_gpt.cfg.watch"))
            setting("eval_interval", st.number_input, t("scratch_gpt.cfg.eval_interval"), 0, 100_000)
            setting("eval_iters", st.number_input, t("scratch_gpt.cfg.eval_iters"), 1, 1000)
            setting("sample_interval", st.number_input, t("scratch_gpt.cfg.sample_interval"), 0, 100_000)
            setting("temperature", st.slider, t("scratch_gpt.cfg.temperature"), 0.1, 2.0, step=0.1)
            setting("seed", st.number_input, t("scratch_gpt.cfg.seed"), 0, 2**31 - 1)
