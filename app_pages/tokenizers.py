"""Tokenizer explorer: many tokenizers side by side, chat templates, batches, and train your own."""

import json
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from backends.core.jobs import DONE, shared_runner
from backends.models.registry import ModelNotAvailable
from backends.tokenizers import merges, training
from backends.tokenizers import tokenization as tz
from components.experiments import experiments_panel
from components.i18n import t
from components.job_status import job_status
from components.show_code import show_code
from components.token_chips import token_chips, visible_whitespace

P = "tok."
SAMPLES = json.loads(
    (Path(__file__).resolve().parent.parent / "assets/samples/tokenizer_texts.json").read_text("utf-8")
)
DEFAULT = ["gpt2", "cl100k_base", "o200k_base", "qwen3", "bert-wordpiece"]
OFFLINE = [s.key for s in tz.TOKENIZERS]
URL_TEXT_MAX = 2000  # longer texts are not put in the share link
UPLOAD_MAX_MB = 10
PER_PAGE = 400


def trained() -> dict:
    return st.session_state.setdefault(P + "trained", {})


def label(key: str) -> str:
    if key in trained():
        return trained()[key].tok.label
    spec = next((s for s in tz.TOKENIZERS if s.key == key), None)
    return spec.label if spec else key


def resolve(key: str):
    """Trained tokenizers live in this session only; the rest come from the backend's shared registry."""
    return trained()[key].tok if key in trained() else key


# The text and the chosen tokenizers come from the link on a session's first run.
if P + "text" not in st.session_state:
    query = st.query_params
    st.session_state[P + "text"] = query.get("text", SAMPLES["mixed"])
    from_link = [k.strip() for k in query.get("tok", "").split(",") if k.strip()]
    st.session_state[P + "extra"] = [k for k in from_link if k not in OFFLINE]
    st.session_state[P + "chosen"] = from_link or DEFAULT


def load_sample():
    name = st.session_state[P + "sample"]
    if name in SAMPLES:
        st.session_state[P + "text"] = SAMPLES[name]


def load_upload():
    upload = st.session_state.get(P + "upload")
    st.session_state[P + "upload_note"] = None
    if upload is None:
        return
    if upload.size > UPLOAD_MAX_MB * 2**20:
        st.session_state[P + "upload_note"] = (
            "error",
            t("tok.upload_too_big", mb=UPLOAD_MAX_MB, size=f"{upload.size / 2**20:.1f}"),
        )
        return
    text, warning = tz.decode_upload(upload.getvalue())
    st.session_state[P + "text"] = text
    if warning:
        st.session_state[P + "upload_note"] = ("warning", warning)


def add_hub_tokenizer():
    name = st.session_state.get(P + "hub_id", "").strip()
    if not name:
        return
    try:
        tz.get_tokenizer(name)
    except (ModelNotAvailable, ValueError, OSError) as exc:
        st.session_state[P + "hub_error"] = str(exc)
        return
    st.session_state[P + "hub_error"] = None
    if name not in st.session_state[P + "extra"]:
        st.session_state[P + "extra"].append(name)
    if name not in st.session_state[P + "chosen"]:
        st.session_state[P + "chosen"] = [*st.session_state[P + "chosen"], name]


st.title(t("page.tokenizers.title"))
st.markdown(t("tok.intro"))

c1, c2 = st.columns([1, 1])
c1.selectbox(
    t("tok.sample"),
    ["", *SAMPLES],
    key=P + "sample",
    on_change=load_sample,
    format_func=lambda s: t(f"tok.sample.{s}") if s else t("tok.sample_pick"),
    persist_state="session",
)
c2.file_uploader(
    t("tok.upload"),
    type=["txt", "md", "py", "json", "csv"],
    key=P + "upload",
    max_upload_size=UPLOAD_MAX_MB,
    on_change=load_upload,
    help=t("tok.upload_help", mb=UPLOAD_MAX_MB),
)
note = st.session_state.get(P + "upload_note")
if note:
    getattr(st, note[0])(note[1])
text = st.text_area(t("tok.text"), key=P + "text", height=140, persist_state="session")

options = [*OFFLINE, *st.session_state[P + "extra"], *trained()]
chosen = st.multiselect(t("tok.choose"), options, key=P + "chosen", format_func=label, persist_state="session")
with st.expander(t("tok.add_hub")):
    st.text_input(
        t("tok.hub_id"),
        key=P + "hub_id",
        placeholder="Qwen/Qwen2.5-0.5B-Instruct",
        on_change=add_hub_tokenizer,
        persist_state="session",
    )
    if st.session_state.get(P + "hub_error"):
        st.error(st.session_state[P + "hub_error"])

# Keep the comparison shareable: the link reopens the same text and tokenizers.
shareable = [k for k in chosen if k not in trained()]
st.query_params["tok"] = ",".join(shareable)
if len(text) <= URL_TEXT_MAX:
    st.query_params["text"] = text
else:
    st.query_params.pop("text", None)
    st.caption(t("tok.link_no_text", n=URL_TEXT_MAX))

tabs = st.tabs(
    [t("tok.tab.compare"), t("tok.tab.chat"), t("tok.tab.batch"), t("tok.tab.train")], key=P + "tab", on_change="rerun"
)


def tokenized_all():
    """One encode per (tokenizer, text), kept for reruns that only change the view."""
    cache = st.session_state.setdefault(P + "results", {})
    results, errors = {}, {}
    for key in chosen:
        sig = (key, hash(text), len(text))
        if sig not in cache:
            try:
                cache[sig] = tz.tokenize(resolve(key), text)
            except (ModelNotAvailable, ValueError, OSError) as exc:
                errors[key] = str(exc)
                continue
        results[key] = cache[sig]
    # Forget texts that are no longer on screen (a 5 MB paste should not stay in memory twice).
    for sig in [s for s in cache if (s[1], s[2]) != (hash(text), len(text))]:
        del cache[sig]
    return results, errors


def compare_tab():
    if not text.strip():
        st.info(t("tok.empty"))
        return
    if not chosen:
        st.info(t("tok.none_chosen"))
        return
    results, errors = tokenized_all()
    for key, message in errors.items():
        st.error(t("tok.failed", name=label(key), error=message))
    if not results:
        return
    columns = {
        "tokenizer": "tok.col.tokenizer",
        "tokens": "tok.col.tokens",
        "chars_per_token": "tok.col.chars",
        "bytes_per_token": "tok.col.bytes",
        "unknown": "tok.col.unknown",
        "round_trips": "tok.col.roundtrip",
    }
    table = pd.DataFrame([tz.summary(r) for r in results.values()])[list(columns)]
    table["tokenizer"] = [label(k) for k in results]  # trained tokenizers carry session labels
    st.caption(t("tok.table_help", chars=len(text), bytes=len(text.encode("utf-8", "surrogatepass"))))
    st.dataframe(
        table.rename(columns={k: t(v) for k, v in columns.items()}),
        hide_index=True,
        key=P + "table",
        column_config={t("tok.col.roundtrip"): st.column_config.CheckboxColumn()},
    )
    ordered = sorted(results.items(), key=lambda kv: kv[1].n_tokens)
    bars = go.Figure(
        go.Bar(
            x=[r.n_tokens for _, r in ordered],
            y=[label(k) for k, _ in ordered],
            orientation="h",
            marker_color="#6c4cf4",
            text=[f"{r.n_tokens:,} · {r.chars_per_token:.2f} chars/token" for _, r in ordered],
            hovertemplate="%{y}: %{x:,} tokens<extra></extra>",
        )
    )
    bars.update_layout(
        height=60 + 34 * len(ordered), margin=dict(l=10, r=10, t=10, b=10), xaxis_title=t("tok.col.tokens")
    )
    st.plotly_chart(bars, key=P + "bars")

    v1, v2 = st.columns(2)
    whitespace = v1.toggle(t("tok.whitespace"), key=P + "whitespace", persist_state="session")
    show_ids = v2.toggle(t("tok.show_ids"), key=P + "show_ids", persist_state="session")
    cols = st.columns(2)
    for n, (key, result) in enumerate(results.items()):
        with cols[n % 2].container(border=True):
            token_card(key, result, whitespace, show_ids)


def token_card(key, result, whitespace, show_ids):
    st.markdown(f"**{label(key)}**")
    flagged = sum(result.unknown)
    st.caption(
        t("tok.card", tokens=result.n_tokens, cpt=f"{result.chars_per_token:.2f}", bpt=f"{result.bytes_per_token:.2f}")
        + (" · " + t("tok.flagged", n=flagged) if flagged else "")
    )
    pages = max(1, -(-result.n_tokens // PER_PAGE))
    page = 1
    if pages > 1:
        page = st.number_input(t("tok.page", pages=pages), 1, pages, 1, key=P + f"page.{key}", persist_state="session")
    start = (page - 1) * PER_PAGE
    rows = result.rows(start, start + PER_PAGE)
    token_chips(
        [r.string for r in rows],
        [r.id for r in rows],
        [r.special for r in rows],
        unknown=[r.unknown for r in rows],
        palette=True,
        show_whitespace=whitespace,
        start=start,
        details=[
            f"bytes {r.piece.hex(' ')}"
            + (" · special" if r.special else "")
            + (" · unknown/byte-fallback" if r.unknown else "")
            for r in rows
        ],
        max_tokens=PER_PAGE,
    )
    if show_ids:
        st.code(", ".join(str(r.id) for r in rows), language=None, wrap_lines=True)


def chat_tab():
    st.markdown(t("tok.chat_intro"))
    with_template = [s.key for s in tz.TOKENIZERS if s.chat_template] + st.session_state[P + "extra"]
    key = st.selectbox(
        t("tok.chat_tokenizer"), with_template, key=P + "chat_tok", format_func=label, persist_state="session"
    )
    default = pd.DataFrame(
        [
            {"role": "system", "content": t("tok.chat_default_system")},
            {"role": "user", "content": t("tok.chat_default_user")},
            {"role": "assistant", "content": t("tok.chat_default_assistant")},
        ]
    )
    edited = st.data_editor(
        default,
        num_rows="dynamic",
        key=P + "chat_messages",
        hide_index=True,
        column_config={
            "role": st.column_config.SelectboxColumn(options=["system", "user", "assistant"], required=True)
        },
    )
    prompt = st.toggle(t("tok.chat_generation_prompt"), value=True, key=P + "chat_prompt", persist_state="session")
    messages = [
        {"role": str(r["role"]), "content": str(r["content"] or "")}
        for _, r in edited.iterrows()
        if isinstance(r["role"], str)
    ]
    try:
        chat = tz.chat_template_tokens(key, messages, add_generation_prompt=prompt)
    except (ModelNotAvailable, ValueError) as exc:
        st.warning(str(exc))
        return
    added = sum(chat.added)
    st.caption(t("tok.chat_added", added=added, total=len(chat.ids)))
    strings = tz.token_strings(key, chat.ids)
    token_chips(
        strings,
        chat.ids,
        chat.added,
        palette=True,
        max_tokens=2000,
        details=["added by the template" if a else "message text" for a in chat.added],
    )
    st.code(chat.rendered, language=None, wrap_lines=True)
    show_code(tz.chat_template_tokens)


def batch_tab():
    st.markdown(t("tok.batch_intro"))
    lines = st.text_area(
        t("tok.batch_texts"), t("tok.batch_default"), key=P + "batch_texts", height=110, persist_state="session"
    )
    b1, b2, b3 = st.columns(3)
    key = b1.selectbox(
        t("tok.batch_tokenizer"), options, key=P + "batch_tok", format_func=label, persist_state="session"
    )
    side = b2.radio(
        t("tok.padding_side"),
        ["right", "left"],
        horizontal=True,
        key=P + "batch_side",
        format_func=lambda s: t(f"tok.side.{s}"),
        persist_state="session",
    )
    cut = b3.number_input(
        t("tok.truncation"), 0, 512, 0, key=P + "batch_cut", help=t("tok.truncation_help"), persist_state="session"
    )
    texts = [line for line in lines.splitlines() if line.strip()]
    if not texts:
        st.info(t("tok.batch_empty"))
        return
    try:
        batch = tz.batch_encode(resolve(key), texts, padding_side=side, truncation_max=cut or None)
    except (ModelNotAvailable, ValueError) as exc:
        st.warning(str(exc))
        return
    if batch.pad_note:  # the tokenizer has no padding token of its own: say which one stands in
        st.caption(t("tok.pad_standin", name=label(key), pad=repr(batch.pad_token)))
    st.caption(
        t(
            "tok.batch_shape",
            rows=len(batch.ids),
            width=len(batch.ids[0]),
            pad=batch.pad_token,
            pad_id=batch.pad_id,
            cut=sum(batch.truncated),
        )
    )
    names = [f"{i}: {x[:24]}" for i, x in enumerate(texts)]
    ids = pd.DataFrame(batch.ids, index=names)
    mask = pd.DataFrame(batch.attention_mask, index=names)
    grey = mask.replace({0: "background-color: #e6e6e6; color: #999", 1: ""})
    st.markdown("**input_ids**")
    st.dataframe(ids.style.apply(lambda _: grey, axis=None), key=P + "batch_ids")
    st.markdown("**attention_mask**")
    st.dataframe(mask.style.apply(lambda _: grey, axis=None), key=P + "batch_mask")


def train_tab():
    st.markdown(t("tok.train_intro"))
    source = st.radio(
        t("tok.corpus"),
        ["sample", "text", "upload"],
        horizontal=True,
        key=P + "corpus_source",
        format_func=lambda s: t(f"tok.corpus.{s}"),
        persist_state="session",
    )
    corpus = ""
    if source == "sample":
        corpus = training.sample_corpus()
    elif source == "text":
        corpus = text
    else:
        file = st.file_uploader(
            t("tok.corpus_upload"), type=["txt", "md"], key=P + "corpus_file", max_upload_size=UPLOAD_MAX_MB
        )
        if file is not None:
            if file.size > UPLOAD_MAX_MB * 2**20:
                st.error(t("tok.upload_too_big", mb=UPLOAD_MAX_MB, size=f"{file.size / 2**20:.1f}"))
            else:
                corpus, warning = tz.decode_upload(file.getvalue())
                if warning:
                    st.warning(warning)
    st.caption(t("tok.corpus_size", chars=len(corpus)))
    k1, k2 = st.columns(2)
    kind = k1.selectbox(
        t("tok.kind"),
        training.KINDS,
        key=P + "kind",
        format_func=lambda k: t(f"tok.kind.{k}"),
        persist_state="session",
    )
    vocab = k2.slider(t("tok.vocab_size"), 100, 8000, 600, step=50, key=P + "vocab", persist_state="session")
    runner = shared_runner()
    job = runner.get(st.session_state.get(P + "train_job"))
    if st.button(t("tok.train"), type="primary", key=P + "train_button", disabled=job is not None and not job.done):
        if not corpus.strip():
            st.warning(t("tok.corpus_empty"))
        else:
            job = runner.submit("train-tokenizer", training.train_job, kind, corpus, int(vocab))
            st.session_state[P + "train_job"] = job.id
    job_status(P + "train_job", lambda job: t("tok.training", s=f"{job.elapsed:.1f}"), trained_result)


def trained_result(job):
    if job.status == DONE:
        show_trained(job.result)
    else:
        st.error(job.error or job.status)


def add_trained(result):
    """A callback, so it runs before the multiselect it changes is drawn. The button sits in the job's
    fragment, whose rerun would not redraw the comparison: show_trained asks for a full rerun."""
    trained()[result.tok.name] = result
    st.session_state[P + "chosen"] = [*st.session_state[P + "chosen"], result.tok.name]
    st.session_state[P + "tab"] = t("tok.tab.compare")
    st.session_state[P + "added"] = True


def show_trained(result):
    if st.session_state.pop(P + "added", False):
        st.rerun(scope="app")  # the comparison (outside this fragment) shows the new tokenizer at once
    st.success(
        t(
            "tok.trained",
            kind=result.kind,
            got=result.vocab_size,
            asked=result.requested_vocab_size,
            s=f"{result.seconds:.2f}",
        )
    )
    if result.note:
        st.info(result.note)
    name = result.tok.name
    a1, a2 = st.columns(2)
    a1.button(
        t("tok.add_to_compare"),
        key=P + f"add.{name}",
        disabled=name in trained(),
        on_click=add_trained,
        args=(result,),
    )
    a2.download_button(
        t("tok.download", file=result.file_name),
        result.to_bytes(),
        file_name=result.file_name,
        key=P + f"download.{name}",
    )
    if result.merges:
        st.markdown(t("tok.merges", n=len(result.merges)))
        ws = visible_whitespace  # a merge of " " + "t" must show its space
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "#": m.rank + 1,
                        t("tok.merge.pair"): f"{ws(m.left)} + {ws(m.right)}",
                        t("tok.merge.new"): ws(m.new),
                        t("tok.merge.count"): m.count,
                    }
                    for m in result.merges
                ]
            ),
            hide_index=True,
            key=P + f"merges.{name}",
        )
    show_code(training.train, merges.merge_counts)


for tab, render in zip(tabs, (compare_tab, chat_tab, batch_tab, train_tab)):
    if tab.open:
        with tab:
            render()

experiments_panel("tokenizers")
