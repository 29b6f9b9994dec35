"""The LoRA page's after-training view: base vs LoRA answers, adapter on/off, merge, save and load adapters."""

from __future__ import annotations

import re

import streamlit as st

from backends.lora import adapters as A
from backends.lora import data as D
from backends.lora import train as T
from backends.serving import RemoteError, adapters_dir
from components import engine
from components.builtin_text import file_uploader
from components.guard import queue_status
from components.i18n import current_lang, t
from components.show_code import show_code

P = "lora."
UPLOAD_MAX_MB = 200


def load_uploaded_adapter(loaded, name: str) -> None:
    upload = st.session_state.get(P + "adapter_upload")
    st.session_state[P + "adapter_error"] = None
    if upload is None:
        return
    if upload.size > UPLOAD_MAX_MB * 2**20:
        st.session_state[P + "adapter_error"] = t("lora.adapter.too_big", mb=UPLOAD_MAX_MB)
        return
    try:
        model, config = A.load_adapter_zip(upload.getvalue(), loaded.model, name)
    except A.AdapterError as exc:
        st.session_state[P + "adapter_error"] = str(exc)
        return
    st.session_state[P + "active"] = {
        "model": model,
        "label": upload.name,
        "base": name,
        "source": "upload",
        "settings": None,
        "rank": config.get("r"),
    }
    for key in ("answers", "merged", "zip", "try"):
        st.session_state.pop(P + key, None)


ADAPTER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def publish(model, name: str) -> None:
    """A callback: save the adapter where `make serve` finds it (served as `<base>+<adapter name>`).

    It runs before the page is drawn, so it may also point the remote comparison at the new id."""
    adapter_name = st.session_state.get(P + "publish_name", "").strip()
    st.session_state[P + "publish_error"] = None
    if not ADAPTER_NAME.match(adapter_name):
        st.session_state[P + "publish_error"] = t("lora.publish.bad_name")
        return
    folder = adapters_dir() / adapter_name
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        A.save_adapter(model, folder, name)
    except OSError as exc:
        st.session_state[P + "publish_error"] = t("lora.publish.failed", error=str(exc))
        return
    st.session_state[P + "published"] = st.session_state[P + "remote_adapter"] = f"{name}+{adapter_name}"


def show_answers(answers: list[A.Answer]) -> None:
    """Each prompt with the base model's answer beside the adapter's."""
    for answer in answers:
        st.markdown(f"**{answer.prompt}**")
        left, right = st.columns(2)
        left.container(border=True).markdown(f"*{t('lora.compare.base')}*\n\n{answer.base}")
        right.container(border=True).markdown(f"*{t('lora.compare.lora')}*\n\n{answer.lora}")


def remote_compare(name: str) -> None:
    """Before/after on the sidebar's server: the base model and the adapter it hosts, greedy, same prompts."""
    st.caption(t("lora.remote.note", server=engine.server_label()))
    c1, c2 = st.columns(2)
    with c1:
        base_id = engine.remote_model_input(P + "remote_base", name, label=t("lora.remote.base"))
    with c2:
        adapter_id = engine.remote_model_input(
            P + "remote_adapter", st.session_state.get(P + "published", f"{name}+"), label=t("lora.remote.adapter")
        )
    prompts_text = st.text_area(
        t("lora.compare.prompts"),
        "\n".join((*T.SAMPLE_PROMPTS, "Who wrote Hamlet?")),
        key=P + "remote_prompts",
        height=120,
        persist_state="session",
    )
    max_new = st.slider(t("lora.compare.max_new"), 8, 120, 48, key=P + "remote_max_new", persist_state="session")
    prompts = [line.strip() for line in prompts_text.splitlines() if line.strip()]
    if st.button(t("lora.compare.run"), key=P + "remote_run", type="primary", disabled=not prompts):
        answers = []
        try:
            base, tuned = engine.make_engine(base_id), engine.make_engine(adapter_id)
            with st.spinner(t("lora.compare.running", n=len(prompts))):
                for prompt in prompts:
                    messages = [{"role": "user", "content": prompt}]
                    answers.append(
                        A.Answer(
                            prompt,
                            base.chat(messages, max_tokens=int(max_new)).strip(),
                            tuned.chat(messages, max_tokens=int(max_new)).strip(),
                        )
                    )
        except (ValueError, RemoteError) as exc:
            st.error(t("lora.remote.failed", error=str(exc)))
        else:
            st.session_state[P + "remote_answers"] = answers
    show_answers(st.session_state.get(P + "remote_answers", []))


def compare_view(loaded, name: str) -> None:
    if engine.remote_on():
        remote_compare(name)
        st.divider()
    with st.expander(t("lora.adapter.upload_title"), expanded=P + "active" not in st.session_state):
        file_uploader(
            t("lora.adapter.upload"),
            type=["zip"],
            key=P + "adapter_upload",
            help=t("lora.adapter.help"),
            max_upload_size=UPLOAD_MAX_MB,
        )
        st.button(t("lora.adapter.load"), key=P + "adapter_load", on_click=load_uploaded_adapter, args=(loaded, name))
        if st.session_state.get(P + "adapter_error"):
            st.error(st.session_state[P + "adapter_error"])
    active = st.session_state.get(P + "active")
    if active is None:
        st.info(t("lora.compare.none"))
        return
    if active["base"] != name:
        st.warning(t("lora.compare.other_base", label=active["label"], base=active["base"], model=name))
        return
    model = active["model"]
    st.caption(t("lora.compare.active", label=active["label"], source=t(f"lora.source.{active['source']}")))
    if current_lang() != "en":
        st.info(t("lora.english_only"))

    prompts_text = st.text_area(
        t("lora.compare.prompts"),
        "\n".join((*T.SAMPLE_PROMPTS, "Who wrote Hamlet?")),
        key=P + "compare_prompts",
        height=120,
        persist_state="session",
    )
    max_new = st.slider(t("lora.compare.max_new"), 8, 120, 48, key=P + "compare_max_new", persist_state="session")
    prompts = [line.strip() for line in prompts_text.splitlines() if line.strip()]
    if st.button(t("lora.compare.run"), key=P + "compare_run", type="primary", disabled=not prompts):
        with st.spinner(t("lora.compare.running", n=len(prompts))), queue_status():
            st.session_state[P + "answers"] = A.compare_answers(model, loaded.tokenizer, prompts, int(max_new))
    show_answers(st.session_state.get(P + "answers", []))

    st.divider()
    st.markdown(t("lora.try.title"))
    c1, c2 = st.columns([3, 1])
    prompt = c1.text_input(t("lora.try.prompt"), T.SAMPLE_PROMPTS[0], key=P + "try_prompt", persist_state="session")
    on = c2.toggle(t("lora.try.adapter_on"), value=True, key=P + "adapter_on", persist_state="session")
    if st.button(t("lora.try.run"), key=P + "try_run", disabled=not prompt.strip()):
        with queue_status():
            if on:
                text = T.generate(model, loaded.tokenizer, prompt, int(max_new))
            else:
                with model.disable_adapter():
                    text = T.generate(model, loaded.tokenizer, prompt, int(max_new))
        st.session_state[P + "try"] = (prompt, on, text)
    tried = st.session_state.get(P + "try")
    if tried:
        st.markdown(f"{t('lora.try.on') if tried[1] else t('lora.try.off')}: {tried[2]}")

    st.divider()
    m1, m2 = st.columns(2)
    if m1.button(t("lora.merge.run"), key=P + "merge", help=t("lora.merge.help")):
        with st.spinner(t("lora.merge.running")):
            merged = A.merged_copy(model)
            probe = D.prompt_ids(loaded.tokenizer, prompt or T.SAMPLE_PROMPTS[0])
            st.session_state[P + "merged"] = {
                "kind": type(merged).__name__,
                "diff": A.max_logit_difference(model, merged, probe),
                "params": sum(p.numel() for p in merged.parameters()),
            }
            del merged  # the numbers are the lesson; keeping a second full model per session costs 0.5 GB
    merged = st.session_state.get(P + "merged")
    if merged:
        m1.success(
            t("lora.merge.done", kind=merged["kind"], params=f"{merged['params']:,}", diff=f"{merged['diff']:.2e}")
        )
    if P + "zip" not in st.session_state:
        st.session_state[P + "zip"] = A.adapter_zip(model, name)
    m2.download_button(
        t("lora.adapter.download"),
        st.session_state[P + "zip"],
        file_name="lora-adapter.zip",
        mime="application/zip",
        key=P + "download",
        help=t("lora.adapter.download_help", kb=f"{len(st.session_state[P + 'zip']) / 1024:.0f}"),
    )
    st.code(A.loading_snippet(name), language="python")
    p1, p2 = st.columns([2, 1], vertical_alignment="bottom")
    p1.text_input(
        t("lora.publish.name"),
        "my-adapter",
        key=P + "publish_name",
        help=t("lora.publish.help"),
        persist_state="session",
    )
    p2.button(t("lora.publish.run"), key=P + "publish", on_click=publish, args=(model, name))
    if st.session_state.get(P + "publish_error"):
        st.error(st.session_state[P + "publish_error"])
    elif st.session_state.get(P + "published"):
        st.success(t("lora.publish.done", id=st.session_state[P + "published"]))
    show_code(A.compare_answers, A.merged_copy, A.load_adapter_zip)
