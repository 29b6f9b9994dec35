"""The GPT-from-scratch page's current model: which one it is, and the save tab (export, download, load)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import streamlit as st

from backends.scratch_gpt import Checkpoint, Prepared, TrainSettings, export_hf, load, runs_dir, safe_name
from components.i18n import t
from components.model_picker import add_session_model

P = "scratch_gpt."


def active_model():
    """(model, tokenizer) of this session's current model, with a caption saying which; (None, None) if none."""
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


# A prompt each shipped corpus's model has seen every character of: a Shakespeare model reads Chinese
# as unknown tokens, a Tang-poem model reads English so (issue: "ROMEO:" was its default).
CORPUS_PROMPTS = {"shakespeare": "ROMEO:\nBut soft, what light", "tang_song": "《夜思》\n作者：李白\n床前明月光，"}


def default_prompt(tok) -> tuple[str, str]:
    """(corpus, prompt): the inspect tab's first prompt for the current model, a line of its own corpus
    (else its first characters); the corpus names the prompt's widget, so each corpus keeps its own."""
    active = st.session_state.get(P + "model")
    corpus = active["checkpoint"].corpus if active else None
    prompt = CORPUS_PROMPTS.get(corpus)
    if prompt is not None and not tok.unknown(prompt):
        return corpus, prompt
    if tok.kind == "subword":
        return "other", CORPUS_PROMPTS["shakespeare"]
    return "other", tok.decode(range(1, min(12, tok.vocab_size)))


def save_tab(prepared: Prepared) -> None:
    """Export the current model for the other pages (and as a zip); load a saved one back."""
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
