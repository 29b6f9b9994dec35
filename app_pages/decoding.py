"""Decoding strategies side by side: one prompt, several configs, every token's probability."""

import functools

import streamlit as st

from backends import decoding as dec
from backends.decoding import sampling
from backends.decoding.metrics import kv_cache_comparison
from backends.models.registry import find_spec
from backends.serving import unsupported_code
from components import engine, url_state
from components.backend_text import said
from components.decoding.charts import beam_tree_figure, distribution_figure, probability_chips
from components.decoding.columns import (
    MAX_COLUMNS,
    PRESET_LINK,
    add_column,
    columns,
    columns_to_link,
    config_editor,
    duplicate_column,
    remove_column,
    reset_presets,
    shown_name,
)
from components.decoding.export import export_tab
from components.decoding.runs import run_columns, run_remote_columns
from components.decoding.structured import structured_tab
from components.experiments import experiments_panel
from components.guard import allow, queue_status
from components.i18n import strings, t
from components.model_picker import language_default, load_or_explain, model_picker
from components.option_labels import follow_language
from components.show_code import show_code

P = "dec."


st.title(t("page.decoding.title"))
st.markdown(t("dec.intro"))

# A teacher's link reopens the same view: model (the picker), seed, length, prompt, chat mode and columns.
url_state.bind(P + "seed", "seed", default=42, parse=int, valid=lambda v: 0 <= v < 2**31)
url_state.bind(P + "max_new", "max_new", default=40, parse=int, valid=lambda v: 1 <= v <= dec.MAX_NEW_TOKENS)
# In Chinese the default is the multilingual base model (Gemma 3 270M) continuing a Chinese sentence;
# SmolLM2 is English-only, so its default prompt stays English in both languages (the picker says why).
DEFAULT_MODEL = language_default("smollm2-135m-instruct", "gemma-3-270m")
BASE_DEFAULT = find_spec(DEFAULT_MODEL).style == "base"
url_state.bind(
    P + "prompt",
    "prompt",
    default=t("dec.prompt_default_base") if BASE_DEFAULT else strings("en")["dec.prompt_default"],
)
url_state.bind(P + "chat", "chat", default=not BASE_DEFAULT, parse=url_state.parse_bool, dump=url_state.dump_bool)

left, right = st.columns([1, 2])
with left:
    name = model_picker("decoding", kinds=("causal-lm",), default=DEFAULT_MODEL)
    seed = st.number_input(
        t("dec.seed"), 0, 2**31 - 1, key=P + "seed", help=t("dec.seed_help"), persist_state="session"
    )
    max_new = st.number_input(
        t("dec.max_new"),
        1,
        dec.MAX_NEW_TOKENS,
        key=P + "max_new",
        help=t("dec.max_new_help", cap=dec.MAX_NEW_TOKENS),
        persist_state="session",
    )
    remote_model = None
    if engine.remote_on():
        remote_model = engine.remote_model_input(P + "remote_model", name or "smollm2-135m-instruct")
        st.caption(t("dec.remote_note", server=engine.server_label()))
with right:  # before the model loads (tens of seconds on a fresh server): the learner can write meanwhile
    prompt = st.text_area(t("dec.prompt"), key=P + "prompt", height=100, persist_state="session")
loaded = load_or_explain(name) if name else None
if loaded is None:
    st.stop()
with right:
    has_template = bool(getattr(loaded.tokenizer, "chat_template", None))
    if not has_template:  # a base model: its tokenizer has no chat template, the prompt is continued as is
        st.session_state[P + "chat"] = False
    chat = st.toggle(
        t("dec.chat"), key=P + "chat", help=t("dec.chat_help"), disabled=not has_template, persist_state="session"
    )
    if not has_template:
        st.caption(t("dec.no_template"))

tabs = st.tabs(
    [
        t("dec.tab.compare"),
        t("dec.tab.inspect"),
        t("dec.tab.prompting"),
        t("dec.tab.kv"),
        t("dec.tab.export"),
        t("dec.tab.structured"),
    ],
    key=P + "tab",
    on_change="rerun",
)


def prompt_ids_or_warn():
    """The prompt's ids, or None with a warning (empty, or longer than the model's context)."""
    try:
        ids = dec.encode_prompt(loaded, prompt, chat)
        dec.new_token_budget(loaded, len(ids), 1)
        return ids
    except ValueError as exc:
        st.warning(said(exc, "dec.error."))
        return None


def say_if_capped(prompt_ids: list[int], max_new: int) -> None:
    """A caption when the model's context ends before `max_new` new tokens (the loops stop there)."""
    budget = dec.new_token_budget(loaded, len(prompt_ids), max_new)
    if budget < max_new:
        st.caption(t("dec.context_capped", limit=dec.context_limit(loaded), prompt=len(prompt_ids), n=budget))


def compare_tab():
    cols = columns()
    b1, b2, b3 = st.columns([1, 1, 2])
    b1.button(
        t("dec.add_column"),
        key=P + "add",
        disabled=len(cols) >= MAX_COLUMNS,
        on_click=add_column,
        args=(t("dec.new_column"), dec.DecodingConfig(strategy="sample", top_p=0.9)),
    )
    b2.button(t("dec.reset"), key=P + "reset", on_click=reset_presets)
    run = b3.button(t("dec.run"), type="primary", key=P + "run", width="stretch")
    st.caption(t("dec.stop_help"))
    results = st.session_state.setdefault(P + "results", {})
    failed = {}  # column id -> the server's error, this run only
    grid = st.columns(len(cols)) if cols else []
    outs, configs = {}, {}
    unsupported = {}
    for column, slot in zip(cols, grid):
        with slot:
            st.markdown(f"**{shown_name(column['name'])}**")
            with st.expander(t("dec.settings")):
                configs[column["id"]] = config_editor(column, int(seed), int(max_new))
                d1, d2 = st.columns(2)
                d1.button(
                    t("dec.duplicate"),
                    key=f"{P}dup.{column['id']}",
                    on_click=duplicate_column,
                    args=(column["id"],),
                    disabled=len(cols) >= MAX_COLUMNS,
                )
                d2.button(t("dec.remove"), key=f"{P}rm.{column['id']}", on_click=remove_column, args=(column["id"],))
            why = (
                unsupported_code(configs[column["id"]], engine.extensions_on())
                if remote_model and configs[column["id"]] is not None
                else None
            )
            if why:  # the API cannot express this column: say why, and run the others
                unsupported[column["id"]] = why
                st.caption(t("dec.remote_unsupported", reason=t("dec.remote_why." + why[0], **why[1])))
            outs[column["id"]] = st.empty()
    valid = [(c["name"], configs[c["id"]]) for c in cols if configs.get(c["id"]) is not None]
    url_state.write("cols", columns_to_link(valid) if valid else None, default=PRESET_LINK)
    if run and allow("generate"):
        prompt_ids = prompt_ids_or_warn()
        if prompt_ids is not None:
            st.session_state[P + "prompt_ids"] = prompt_ids
            if not remote_model:
                say_if_capped(prompt_ids, int(max_new))
            runnable = [c for c in cols if configs[c["id"]] is not None and c["id"] not in unsupported]
            if remote_model:
                try:
                    failed = run_remote_columns(remote_model, prompt, chat, runnable, outs, results)
                except ValueError as exc:  # a bad server URL or an empty model id
                    st.error(t("dec.remote_failed", error=str(exc)))
            else:
                with queue_status():
                    run_columns(loaded, prompt_ids, runnable, outs, results)
    for column, _slot in zip(cols, grid):
        result = results.get(column["id"])
        if column["id"] in failed:
            outs[column["id"]].error(t("dec.remote_failed", error=failed[column["id"]]))
            continue
        if result is None:
            outs[column["id"]].caption(t("dec.not_run"))
            continue
        with outs[column["id"]].container():
            show_result(result)
    for column in cols:  # beam trees need the page's full width
        result = results.get(column["id"])
        if result is not None and result["beam"] is not None:
            st.markdown(t("dec.beam_tree", name=shown_name(column["name"])))
            st.plotly_chart(beam_tree_figure(result["beam"], loaded.tokenizer.decode), key=f"{P}beam.{column['id']}")
    with st.expander(t("dec.code")):
        for column in cols:
            if configs.get(column["id"]) is not None:
                st.code(configs[column["id"]].to_snippet(), language="python")
    show_code(
        sampling.process_logits,
        sampling.top_k_filter,
        sampling.top_p_filter,
        sampling.min_p_filter,
        sampling.pick_token,
    )


def show_result(result):
    if result.get("remote"):
        st.caption(t("dec.remote_result", model=result["remote"]))
    if result["steps"]:
        st.markdown(probability_chips(result["steps"]), unsafe_allow_html=True)
    else:
        st.markdown(result["text"])
    m = result["metrics"]
    if m is not None:
        st.caption(
            t(
                "dec.metrics",
                tokens=m.tokens,
                tps=f"{m.tokens_per_s:.1f}",
                ppl=f"{m.perplexity:.2f}",
                d1=f"{m.distinct_1:.2f}",
                d2=f"{m.distinct_2:.2f}",
                rep=f"{m.repetition_rate:.2f}",
            )
        )


def inspect_tab():
    results = st.session_state.get(P + "results", {})
    runnable = [
        c for c in columns() if c["id"] in results and results[c["id"]]["steps"] and not results[c["id"]].get("remote")
    ]
    if not runnable:
        st.info(t("dec.inspect_first"))
        return
    column = st.selectbox(
        t("dec.inspect_column"),
        runnable,
        key=follow_language(P + "inspect_col"),
        format_func=lambda c: shown_name(c["name"]),
        persist_state="session",
    )
    result = results[column["id"]]
    steps = result["steps"]
    step = st.select_slider(
        t("dec.inspect_step"),
        options=list(range(len(steps))),
        key=P + "inspect_step",
        format_func=lambda i: f"{i}: {steps[i].text!r}",
        persist_state="session",
    )
    prompt_ids = st.session_state[P + "prompt_ids"]
    before = prompt_ids + result["ids"][:step]
    dist = dec.distribution_at(loaded, before, result["config"], top_n=15)
    st.plotly_chart(
        distribution_figure(dist, t("dec.dist_title", step=step, kept=dist.kept, vocab=dist.vocab_size)),
        key=P + "dist",
    )
    st.markdown(t("dec.branch_intro"))
    # The default alternative is the most likely token the run did NOT take: branching on the
    # token already taken would only reproduce the same text.
    taken = steps[step].token_id
    others = [i for i, a in enumerate(dist.raw) if a.token_id != taken]
    alt = st.selectbox(
        t("dec.branch_with"),
        dist.raw,
        index=others[0] if others else 0,
        key=f"{P}branch_alt.{column['id']}.{step}",
        format_func=lambda a: f"{a.text!r} (p={a.prob:.3f})" + (" ✓" if a.token_id == taken else ""),
        persist_state="session",
    )
    if st.button(t("dec.branch"), key=P + "branch"):
        out, branched = st.empty(), []
        with queue_status():
            for s in dec.branch(loaded, prompt_ids, result["ids"], step, alt.token_id, result["config"]):
                branched.append(s)
                out.markdown(probability_chips(steps[:step] + branched), unsafe_allow_html=True)
        out.empty()  # shown once, below, with its caption
        st.session_state[P + "branch_result"] = (column["id"], step, branched)
    saved = st.session_state.get(P + "branch_result")
    if saved and saved[0] == column["id"]:
        st.caption(t("dec.branched_from", step=saved[1]))
        st.markdown(probability_chips(steps[: saved[1]] + saved[2]), unsafe_allow_html=True)


def prompting_tab():
    st.markdown(t("dec.prompting_intro"))
    styles = ["zero", "few", "instruction"]
    cols = st.columns(3)
    texts = {}
    for style, col in zip(styles, cols):
        texts[style] = col.text_area(
            t(f"dec.prompt.{style}"),
            t(f"dec.prompt.{style}.default"),
            key=f"{P}pstyle.{style}",
            height=200,
            persist_state="session",
        )
    if st.button(t("dec.prompting_run"), key=P + "prompting_run"):
        config = dec.DecodingConfig(strategy="greedy", max_new_tokens=int(min(max_new, 40)))
        for style, col in zip(styles, cols):
            try:
                ids = dec.encode_prompt(loaded, texts[style], chat=style == "instruction")
            except ValueError as exc:
                col.warning(said(exc, "dec.error."))
                continue
            out, steps = col.empty(), []
            for s in dec.generate_stream(loaded, ids, config):
                steps.append(s)
                out.markdown(probability_chips(steps), unsafe_allow_html=True)


def kv_tab():
    st.markdown(t("dec.kv_intro"))
    n = st.slider(t("dec.kv_tokens"), 8, 128, 32, key=P + "kv_n", persist_state="session")
    if st.button(t("dec.kv_run"), key=P + "kv_run"):
        ids = prompt_ids_or_warn()
        if ids is not None:
            with st.spinner(t("dec.kv_running")):
                st.session_state[P + "kv"] = kv_cache_comparison(loaded, ids, int(n))
    kv = st.session_state.get(P + "kv")
    if kv is not None:
        k1, k2, k3 = st.columns(3)
        k1.metric(t("dec.kv_with"), f"{kv.with_cache_s_per_token * 1000:.1f} ms")
        k2.metric(t("dec.kv_without"), f"{kv.without_cache_s_per_token * 1000:.1f} ms")
        k3.metric(t("dec.kv_speedup"), f"{kv.speedup:.1f}×")
        st.caption(t("dec.kv_same") if kv.same_tokens else t("dec.kv_differ"))


export = functools.partial(export_tab, loaded, prompt, chat, seed)
structured = functools.partial(structured_tab, loaded, chat, max_new, seed)
for tab, render in zip(tabs, (compare_tab, inspect_tab, prompting_tab, kv_tab, export, structured)):
    if tab.open:
        with tab:
            if remote_model and render in (inspect_tab, prompting_tab, kv_tab, structured):
                st.caption(t("dec.remote_in_app", model=name))  # they need the model's own tensors
            render()

experiments_panel("decoding", loaded)
