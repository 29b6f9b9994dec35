"""GPT from scratch: pick a text, train a small GPT written here in the background, climb the ladder of
models, look inside the trained one, save it and export it for the other pages."""

import io
import zipfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from backends.core.jobs import shared_runner
from backends.scratch_gpt import (
    BABY,
    CORPORA,
    GPT,
    MAX_UPLOAD_BYTES,
    POSITIONS,
    RUNGS,
    Checkpoint,
    GPTConfig,
    SubwordTokenizer,
    TrainSettings,
    decode_text_upload,
    export_hf,
    inspect_prompt,
    ladder_job,
    load,
    load_corpus,
    prepare,
    runs_dir,
    safe_name,
    sample,
    train_job,
)
from backends.scratch_gpt.attention import CausalSelfAttention
from backends.scratch_gpt.positions import Rotary
from components.attention import heatmap_figure
from components.experiments import experiments_panel
from components.i18n import t
from components.job_status import newly_finished
from components.model_picker import add_session_model
from components.scratch_gpt import (
    absorb_finished,
    baselines,
    ladder_figure,
    live_view,
    next_char_figure,
    running_job,
    runs,
    start_run,
)
from components.show_code import show_code

P = "scratch_gpt."
if P + "cfg" not in st.session_state:
    st.session_state[P + "cfg"] = {**BABY[0].to_dict(), **BABY[1].to_dict()}
cfg = st.session_state[P + "cfg"]
MODEL_KEYS = ("block_size", "n_layer", "n_head", "n_embd", "dropout", "positions")


def setting(name: str, widget, label: str, *args, **kwargs):
    cfg[name] = widget(label, *args, value=cfg[name], key=P + "w." + name, **kwargs)
    return cfg[name]


def settings() -> tuple[GPTConfig, TrainSettings]:
    """The widgets' values as the backend's configs; ValueError quotes a bad one."""
    model = GPTConfig(**{k: cfg[k] for k in MODEL_KEYS})
    train = TrainSettings(**{k: cfg[k] for k in TrainSettings().to_dict()})
    return model, train


def text_source() -> tuple[str | None, str, str | None]:
    """(text, name, problem) of this session's chosen corpus."""
    source = st.session_state.get(P + "corpus", "shakespeare")
    if source != "upload":
        return load_corpus(source), source, None
    upload = st.session_state.get(P + "upload")
    if upload is None:
        return None, "upload", t("scratch_gpt.data.upload_first")
    cached = st.session_state.get(P + "decoded")
    if cached is None or cached[0] != upload.file_id:
        try:
            text, note = decode_text_upload(upload.name, upload.getvalue())
            cached = (upload.file_id, text, note, None)
        except ValueError as exc:
            cached = (upload.file_id, None, None, str(exc))
        st.session_state[P + "decoded"] = cached
    if cached[2]:
        st.caption(cached[2])
    return cached[1], upload.name, cached[3]


def subword_choices() -> dict:
    """Tokenizers this session trained on the Tokenizers page that a GPT can use (the `tokenizers` JSON ones)."""
    trained = st.session_state.get("tok.trained", {})
    return {key: r for key, r in trained.items() if r.file_name.endswith(".json")}


def chosen_tokenizer():
    choice = st.session_state.get(P + "tokenizer", "char")
    found = subword_choices().get(choice)
    if found is None:
        return None
    return SubwordTokenizer(found.tok.label, found.data.decode("utf-8"))


def prepared_data(text: str, name: str):
    choice = st.session_state.get(P + "tokenizer", "char")
    key = (name, len(text), hash(text), int(cfg["block_size"]), choice)
    kept = st.session_state.get(P + "prepared")
    if kept is None or kept[0] != key:
        kept = (key, prepare(name, text, int(cfg["block_size"]), tokenizer=chosen_tokenizer()))
        st.session_state[P + "prepared"] = kept
    return kept[1]


st.title(t("page.scratch_gpt.title"))
st.markdown(t("scratch_gpt.intro"))
absorb_finished()

c1, c2 = st.columns([1, 2])
with c1:
    st.radio(
        t("scratch_gpt.data.source"),
        [*CORPORA, "upload"],
        key=P + "corpus",
        format_func=lambda k: t(f"scratch_gpt.corpus.{k}"),
        persist_state="session",
    )
    if st.session_state.get(P + "corpus") == "upload":
        st.file_uploader(
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
        key=P + "tokenizer",
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
        prepared = prepared_data(text, name)
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
    with st.expander(t("scratch_gpt.cfg.title"), expanded=not runs()):
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
                key=P + "w.positions",
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


def ladder_tab():
    st.markdown(t("scratch_gpt.ladder.intro"))
    steps = st.number_input(
        t("scratch_gpt.ladder.steps"), 10, 5000, 300, step=50, key=P + "ladder_steps", persist_state="session"
    )
    job = shared_runner().get(st.session_state.get(P + "ladder_job"))
    if st.button(t("scratch_gpt.ladder.start"), key=P + "ladder_start", disabled=job is not None and not job.done):
        try:
            config, train = settings()
        except ValueError as exc:
            st.error(t("scratch_gpt.cfg.invalid", error=str(exc)))
            return
        job = shared_runner().submit("scratch_gpt-ladder", ladder_job, prepared, config, train, int(steps), RUNGS)
        st.session_state[P + "ladder_job"] = job.id
        st.rerun()

    @st.fragment(run_every=1.0 if job is not None and not job.done else None)
    def ladder_panel():
        current = shared_runner().get(st.session_state.get(P + "ladder_job"))
        if current is not None and newly_finished(P + "ladder_job") is not None:
            st.session_state[P + "ladder"] = {
                "results": current.result or [],
                "corpus": prepared.name,
                "steps": int(steps),
                "error": current.error,
            }
            st.rerun(scope="app")
        if current is not None and not current.done:
            st.progress(
                current.progress or 0.0, text=current.events_since(0)[-1].message if current.events_since(0) else "…"
            )
            if st.button(t("scratch_gpt.train.stop"), key=P + "ladder_stop"):
                current.stop()
        done = st.session_state.get(P + "ladder")
        if done and done["error"]:
            st.error(t("scratch_gpt.train.failed", error=done["error"]))
        if done and done["results"]:
            st.plotly_chart(ladder_figure(done["results"]), key=P + "ladder_chart")
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            t("scratch_gpt.col.model"): t(f"scratch_gpt.rung.{r['rung']}"),
                            t("scratch_gpt.col.params"): r["params"],
                            t("scratch_gpt.col.val"): round(r["val_loss"], 4),
                            t("scratch_gpt.col.seconds"): round(r["seconds"], 1),
                        }
                        for r in done["results"]
                    ]
                ),
                hide_index=True,
                key=P + "ladder_table",
            )
            st.caption(
                t(
                    "scratch_gpt.ladder.note",
                    steps=done["steps"],
                    corpus=done["corpus"],
                    unigram=f"{prepared.unigram_loss():.3f}",
                )
            )

    ladder_panel()


def active_model():
    active = st.session_state.get(P + "model")
    if active is None:
        st.info(t("scratch_gpt.inspect.none"))
        return None, None
    ckpt = active["checkpoint"]
    st.caption(
        t(
            "scratch_gpt.inspect.which",
            label=active["label"],
            positions=t(f"scratch_gpt.pos.{ckpt.config.positions}"),
            params=f"{ckpt.model.num_params():,}",
        )
    )
    return ckpt.model, ckpt.tokenizer


def inspect_tab():
    model, tok = active_model()
    if model is None:
        return
    prompt = st.text_input(
        t("scratch_gpt.inspect.prompt"),
        "ROMEO:\nBut soft, what light"
        if tok.kind == "subword" or "\n" in tok.stoi
        else tok.decode(range(1, min(12, tok.vocab_size))),
        key=P + "prompt",
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


def save_tab():
    model, tok = active_model()
    saved = sorted(p.name for p in runs_dir().iterdir() if (p / "scratch_gpt.json").is_file())
    if model is not None:
        run_name = st.text_input(
            t("scratch_gpt.save.name"),
            f"shakespeare-{model.config.positions}"
            if prepared.name == "shakespeare"
            else f"{prepared.name}-{model.config.positions}"[:40],
            key=P + "save_name",
            persist_state="session",
        )
        if st.button(t("scratch_gpt.save.go"), key=P + "save", type="primary", icon=":material/save:"):
            try:
                folder = export_hf(model, tok, runs_dir() / safe_name(run_name), {"corpus": prepared.name})
                st.session_state[P + "exported"] = str(folder)
                add_session_model(f"scratch_gpt/{Path(folder).name}", str(folder))
            except (ValueError, OSError) as exc:
                st.error(t("scratch_gpt.save.failed", name=run_name, error=str(exc)))
    exported = st.session_state.get(P + "exported")
    if exported:
        st.success(t("scratch_gpt.save.done"))
        st.code(exported, language=None)
        st.caption(t("scratch_gpt.save.picker", name=f"scratch_gpt/{Path(exported).name}"))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(Path(exported).iterdir()):
                zf.write(f, f"{Path(exported).name}/{f.name}")
        st.download_button(
            t("scratch_gpt.save.download"),
            buffer.getvalue(),
            file_name=Path(exported).name + ".zip",
            mime="application/zip",
            key=P + "download",
        )
    if saved:
        st.divider()
        pick = st.selectbox(
            t("scratch_gpt.save.load"),
            saved,
            key=P + "load_pick",
            format_func=lambda n: f"scratch_gpt/{n}",
            persist_state="session",
        )
        if st.button(t("scratch_gpt.save.load_go"), key=P + "load"):
            try:
                loaded, loaded_tok, meta = load(runs_dir() / pick)
            except (ValueError, OSError) as exc:
                st.error(t("scratch_gpt.save.load_failed", name=pick, error=str(exc)))
            else:
                ckpt = Checkpoint(
                    loaded.config, TrainSettings(), loaded_tok, meta.get("corpus", pick), loaded, {}, None
                )
                st.session_state[P + "model"] = {"checkpoint": ckpt, "label": pick, "source": "loaded"}
                st.rerun()


def code_tab():
    st.markdown(t("scratch_gpt.code.intro"))
    show_code(CausalSelfAttention.forward, Rotary.forward, train_job, expanded=True)


for tab, body in zip(tabs, (train_tab, ladder_tab, inspect_tab, save_tab, code_tab)):
    if tab.open:
        with tab:
            body()

experiments_panel("scratch_gpt")
