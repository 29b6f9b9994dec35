"""GPT from scratch: pick a text, train a small GPT written here in the background, climb the ladder of
models, look inside the trained one, save it and export it for the other pages."""

import functools
from dataclasses import replace

import pandas as pd
import streamlit as st

from backends.scratch_gpt import CORPORA, GPT, MAX_UPLOAD_BYTES, inspect_prompt, sample, train_job
from backends.scratch_gpt.attention import CausalSelfAttention
from backends.scratch_gpt.positions import Rotary
from components.attention import heatmap_figure
from components.builtin_text import file_uploader
from components.experiments import experiments_panel
from components.i18n import t
from components.option_labels import follow_language
from components.scratch_gpt.charts import next_char_figure
from components.scratch_gpt.config import settings, settings_dict, settings_editor
from components.scratch_gpt.data import prepared_data, subword_choices, text_source
from components.scratch_gpt.ladder import ladder_tab
from components.scratch_gpt.saved import active_model, default_prompt, save_tab
from components.scratch_gpt.train import absorb_finished, baselines, live_view, running_job, runs, start_run
from components.show_code import show_code

P = "scratch_gpt."
cfg = settings_dict()


st.title(t("page.scratch_gpt.title"))
st.markdown(t("scratch_gpt.intro"))
absorb_finished()

c1, c2 = st.columns([1, 2])
with c1:
    st.radio(
        t("scratch_gpt.data.source"),
        [*CORPORA, "upload"],
        key=follow_language(P + "corpus"),
        format_func=lambda k: t(f"scratch_gpt.corpus.{k}"),
        persist_state="session",
    )
    if st.session_state.get(P + "corpus") == "upload":
        file_uploader(
            t("scratch_gpt.data.upload"),
            type=["txt", "md", "csv", "json", "py"],
            key=P + "upload",
            help=t("scratch_gpt.data.upload_help", mb=MAX_UPLOAD_BYTES // 2**20),
        )
    subwords = subword_choices()
    if st.session_state.get(P + "tokenizer", "char") not in ("char", *subwords):
        st.session_state[P + "tokenizer"] = "char"
    st.selectbox(
        t("scratch_gpt.data.tokenizer"),
        ["char", *subwords],
        key=follow_language(P + "tokenizer"),
        format_func=lambda k: (
            t("scratch_gpt.data.tokenizer.char")
            if k == "char"
            else t("scratch_gpt.data.tokenizer.trained", name=subwords[k].tok.label)
        ),
        persist_state="session",
    )
    if not subwords:
        st.caption(t("scratch_gpt.data.tokenizer_hint"))
text, name, problem = text_source()
prepared = None
if text is not None:
    try:
        prepared = prepared_data(text, name, int(cfg["block_size"]))
    except ValueError as exc:
        problem = str(exc)
with c2:
    if prepared is None:
        (st.error if st.session_state.get(P + "upload") is not None else st.info)(problem)
    else:
        if prepared.tokenizer.kind == "subword":
            st.success(
                t(
                    "scratch_gpt.data.ready_subword",
                    tokens=f"{prepared.n_tokens:,}",
                    name=prepared.tokenizer.name,
                    vocab=f"{prepared.tokenizer.vocab_size:,}",
                    cpt=f"{prepared.chars_per_token:.2f}",
                    train=f"{len(prepared.train):,}",
                    val=f"{len(prepared.val):,}",
                )
            )
        else:
            st.success(
                t(
                    "scratch_gpt.data.ready",
                    chars=f"{prepared.n_tokens:,}",
                    vocab=prepared.tokenizer.vocab_size,
                    train=f"{len(prepared.train):,}",
                    val=f"{len(prepared.val):,}",
                )
            )
        if name in CORPORA:
            st.caption(t(f"scratch_gpt.corpus.{name}.source"))
        st.code(text[:300], language=None, height=140)
if prepared is None:
    st.stop()
lines = baselines(prepared)

tabs = st.tabs(
    [
        t("scratch_gpt.tab.train"),
        t("scratch_gpt.tab.ladder"),
        t("scratch_gpt.tab.inspect"),
        t("scratch_gpt.tab.save"),
        t("scratch_gpt.tab.code"),
    ],
    key=P + "tab",
    on_change="rerun",
)


def train_tab():
    settings_editor(expanded=not runs())
    try:
        config, train = settings()
        config = replace(config, vocab_size=prepared.tokenizer.vocab_size)
    except ValueError as exc:
        st.error(t("scratch_gpt.cfg.invalid", error=str(exc)))
        return
    params = GPT(config).num_params()
    st.caption(
        t(
            "scratch_gpt.cfg.plan",
            params=f"{params:,}",
            tokens=f"{train.max_iters * train.batch_size * config.block_size:,}",
        )
    )
    busy = running_job() is not None
    active = st.session_state.get(P + "model")
    b1, b2 = st.columns(2)
    if b1.button(
        t("scratch_gpt.train.start"), key=P + "start", type="primary", disabled=busy, icon=":material/play_arrow:"
    ):
        start_run(prepared, config, train)
        st.rerun()
    ckpt = active["checkpoint"] if active and active["source"] == "trained" else None
    can_resume = ckpt is not None and ckpt.corpus == prepared.name and ckpt.tokenizer.itos == prepared.tokenizer.itos
    if b2.button(
        t("scratch_gpt.train.resume", steps=train.max_iters),
        key=P + "resume",
        icon=":material/redo:",
        disabled=busy or not can_resume or ckpt.step >= train.max_iters,
        help=t("scratch_gpt.train.resume_help"),
    ):
        start_run(prepared, ckpt.config, replace(ckpt.settings, max_iters=train.max_iters), resume=ckpt)
        st.rerun()
    live_view(lines)
    if runs():
        table = [
            {
                t("scratch_gpt.col.run"): r["label"],
                t("scratch_gpt.col.corpus"): r["corpus"],
                t("scratch_gpt.col.positions"): t(f"scratch_gpt.pos.{r['positions']}"),
                t("scratch_gpt.col.status"): r["status"],
                t("scratch_gpt.col.steps"): r["steps"][-1]["step"] if r["steps"] else 0,
                t("scratch_gpt.col.val"): round(r["evals"][-1]["val_loss"], 4) if r["evals"] else None,
                t("scratch_gpt.col.seconds"): round(r["seconds"], 1),
                t("scratch_gpt.cfg.seed"): r["settings"]["seed"],
                t("scratch_gpt.cfg.n_layer"): r["config"]["n_layer"],
                t("scratch_gpt.cfg.n_embd"): r["config"]["n_embd"],
                t("scratch_gpt.cfg.lr"): r["settings"]["learning_rate"],
            }
            for r in runs()
        ]
        st.dataframe(pd.DataFrame(table), hide_index=True, key=P + "runs_table")


def inspect_tab():
    model, tok = active_model()
    if model is None:
        return
    corpus, first_prompt = default_prompt(tok)
    prompt = st.text_input(
        t("scratch_gpt.inspect.prompt"),
        first_prompt,
        key=f"{P}prompt.{corpus}",
        persist_state="session",
    )
    if not prompt:
        st.warning(t("scratch_gpt.inspect.empty"))
        return
    unknown = tok.unknown(prompt)
    if unknown:
        st.warning(t("scratch_gpt.inspect.unknown", chars=" ".join(repr(c) for c in unknown[:20])))
    try:
        ids, result = inspect_prompt(model, tok, prompt)
    except ValueError as exc:
        st.warning(str(exc))
        return
    seen = tok.decode(ids)
    if len(seen) < len(prompt):
        st.caption(t("scratch_gpt.inspect.cut", n=model.config.block_size))
    a, b = st.columns([1, 2])
    with a:
        st.plotly_chart(next_char_figure(result.next_probs.numpy(), tok.itos), key=P + "next_chart")
    with b:
        l1, l2 = st.columns(2)
        layer = l1.selectbox(
            t("scratch_gpt.inspect.layer"), range(len(result.attentions)), key=P + "layer", persist_state="session"
        )
        head = l2.selectbox(
            t("scratch_gpt.inspect.head"), range(model.config.n_head), key=P + "head", persist_state="session"
        )
        chars = [c if c not in " \n" else {" ": "␣", "\n": "⏎"}[c] for c in seen]
        st.plotly_chart(
            heatmap_figure(
                result.attentions[layer][head].numpy(), chars, t("scratch_gpt.inspect.map", layer=layer, head=head)
            ),
            key=P + "attn_map",
        )
    st.subheader(t("scratch_gpt.gen.title"))
    g1, g2, g3, g4 = st.columns(4)
    n = g1.number_input(t("scratch_gpt.gen.n"), 1, 2000, 300, key=P + "gen_n", persist_state="session")
    temperature = g2.slider(
        t("scratch_gpt.cfg.temperature"), 0.1, 2.0, 0.8, step=0.1, key=P + "gen_t", persist_state="session"
    )
    top_k = g3.number_input(
        t("scratch_gpt.gen.top_k"),
        0,
        tok.vocab_size,
        0,
        key=P + "gen_k",
        help=t("scratch_gpt.gen.top_k_help"),
        persist_state="session",
    )
    seed = g4.number_input(t("scratch_gpt.cfg.seed"), 0, 2**31 - 1, 0, key=P + "gen_seed", persist_state="session")
    if st.button(t("scratch_gpt.gen.go"), key=P + "generate", icon=":material/auto_awesome:"):
        with st.spinner(t("scratch_gpt.gen.running")):
            st.session_state[P + "generated"] = sample(
                model, tok, prompt, int(n), float(temperature), int(seed), int(top_k) or None
            )
    if st.session_state.get(P + "generated"):
        st.code(st.session_state[P + "generated"], language=None, wrap_lines=True)


def code_tab():
    st.markdown(t("scratch_gpt.code.intro"))
    show_code(CausalSelfAttention.forward, Rotary.forward, train_job, expanded=True)


ladder = functools.partial(ladder_tab, prepared)
save = functools.partial(save_tab, prepared)
for tab, body in zip(tabs, (train_tab, ladder, inspect_tab, save, code_tab)):
    if tab.open:
        with tab:
            body()

experiments_panel("scratch_gpt")
