"""The preference arena tab: a class set by its code, two blind answers to one prompt, a vote, the
reveal; then (arena_results.py) my votes, the class totals, ratings and win rates, and
(arena_io.py) the votes as TRL preference pairs and a pairs file read back.

Session state (this browser session only): `alignment.arena.voter` (a random token: which votes are
mine), `alignment.arena.code` (the set votes go to), `alignment.arena.personal` (this session's own
set, made on its first vote without a class set), `alignment.arena.owned` (sets created here: their
teacher view), `alignment.arena.shown` (the match on screen). Votes live in the shared SQLite store.
"""

from __future__ import annotations

import random
import uuid

import streamlit as st

from backends.alignment import arena as A
from backends.alignment.store import CODE_ALPHABET, CODE_LENGTH, MAX_TEXT, StoreError, UnknownSet, normalize_code
from backends.serving import RemoteError
from components import engine
from components.alignment.arena_io import export_view, import_view
from components.alignment.arena_results import results_view, source_label
from components.backend_text import said
from components.guard import allow, queue_status
from components.i18n import t
from components.option_labels import follow_language

P = "alignment.arena."
VERDICT_BUTTONS = (("A", "primary"), ("B", "primary"), ("tie", "secondary"), ("both_bad", "secondary"))
MAX_NEW_TOKENS = (8, 128, 64)  # the answer-length slider: min, max, default


def voter() -> str:
    return st.session_state.setdefault(P + "voter", uuid.uuid4().hex)


def _personal_mode() -> bool:
    code = st.session_state.get(P + "code")
    return code is None or code == st.session_state.get(P + "personal")


def _say(kind: str, key: str, **values) -> None:
    """A message from a callback, worded and shown on the run it triggered (in that run's language)."""
    st.session_state[P + "msg"] = (kind, key, values)


def _show_message() -> None:
    found = st.session_state.pop(P + "msg", None)
    if found:
        kind, key, values = found
        getattr(st, kind)(t(key, **values))


# ---- class set ---------------------------------------------------------------------------------


def _join() -> None:
    typed = str(st.session_state.get(P + "join_code") or "").strip()
    code = normalize_code(typed)
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        _say("error", P + "set.bad_code", code=typed, n=CODE_LENGTH)
        return
    try:
        found = A.shared_store().open_set(code)
    except UnknownSet:
        _say("error", P + "set.unknown_code", code=typed)
        return
    st.session_state[P + "code"] = found.code
    st.session_state[P + "shown"] = None
    _say("success", P + "set.joined", code=found.code, n=len(found.prompts))


def _create() -> None:
    lines = str(st.session_state.get(P + "new_prompts") or "").splitlines()
    prompts = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
    if not prompts:
        _say("error", P + "set.no_prompts")
        return
    too_long = [i + 1 for i, p in enumerate(prompts) if len(p) > MAX_TEXT]
    if too_long:
        _say("error", P + "set.prompt_too_long", line=too_long[0], limit=MAX_TEXT)
        return
    title = str(st.session_state.get(P + "new_title") or "").strip()
    try:
        made = A.shared_store().create_set(prompts, title)
    except StoreError as exc:
        _say("error", P + "set.failed", error=str(exc))
        return
    st.session_state[P + "code"] = made.code
    st.session_state.setdefault(P + "owned", []).append(made.code)
    st.session_state[P + "shown"] = None
    _say("success", P + "set.created", code=made.code, n=len(made.prompts))


def _leave() -> None:
    st.session_state[P + "code"] = st.session_state.get(P + "personal")
    st.session_state[P + "shown"] = None


def set_panel():
    """The class set votes go to (None: the personal set, not made yet)."""
    store = A.shared_store()
    code = st.session_state.setdefault(P + "code", None)
    current = None
    if code:
        try:
            current = store.open_set(code)
        except UnknownSet:  # the store file was replaced under a running session
            st.session_state[P + "code"] = None
    _show_message()
    if current is not None and not _personal_mode():
        left, right = st.columns([1, 2])
        left.metric(t(P + "set.code"), current.code)
        right.markdown(t(P + "set.in_class", title=current.title or "—", n=len(current.prompts)))
        right.caption(t(P + "set.share"))
        right.button(t(P + "set.leave"), key=P + "leave", on_click=_leave)
    elif current is not None:
        st.info(t(P + "set.personal_on", code=current.code))
    else:
        st.info(t(P + "set.personal_new"))
    with st.expander(t(P + "set.join_title"), expanded=current is None or _personal_mode()):
        st.text_input(
            t(P + "set.join_code"), key=P + "join_code", placeholder="ABC234", max_chars=20, persist_state="session"
        )
        st.button(t(P + "set.join"), key=P + "join", on_click=_join)
    with st.expander(t(P + "set.create_title")):
        st.caption(t(P + "set.create_note"))
        st.text_input(t(P + "set.title"), key=P + "new_title", max_chars=120, persist_state="session")
        st.session_state.setdefault(P + "new_prompts", "\n".join(A.shipped_prompts()))
        st.text_area(t(P + "set.prompts"), key=P + "new_prompts", height=160, persist_state="session")
        st.button(t(P + "set.create"), key=P + "create", on_click=_create, type="primary")
    return current


# ---- sources and prompt ------------------------------------------------------------------------


def _option_label(option: str) -> str:
    if option.startswith("adapter:"):
        return t(P + "src.adapter", name=option.split(":", 1)[1])
    return t(P + "src." + option)


def pick_sources(loaded, adapters: dict) -> tuple[list[A.Source] | None, str | None]:
    """The two sources picked, or None and why not."""
    options = ["base", *(f"adapter:{name}" for name in adapters)]
    if engine.remote_on():
        options.append("remote")
    defaults = ["base", options[1] if len(options) > 1 else "base"]
    st.session_state.setdefault(P + "temp1", 0.0 if len(options) > 1 else 0.8)
    remote_model = None
    if "remote" in options:
        remote_model = engine.remote_model_input(P + "remote_model", loaded.key.model, label=t(P + "src.remote_model"))
        st.caption(t(P + "src.remote_note", server=engine.server_label()))
    sources, columns = [], st.columns(2)
    for i, column in enumerate(columns):
        key = P + f"src{i}"
        if st.session_state.get(key) not in options:  # an adapter of an earlier run, or the remote switched off
            st.session_state[key] = defaults[i]
        st.session_state.setdefault(P + f"temp{i}", 0.0)
        with column:
            option = st.selectbox(
                t(P + "src.side", n=i + 1),
                options,
                key=follow_language(key),
                format_func=_option_label,
                persist_state="session",
            )
            temperature = st.slider(
                t(P + "src.temperature"),
                0.0,
                1.5,
                step=0.1,
                key=P + f"temp{i}",
                help=t(P + "src.temperature_help"),
                persist_state="session",
            )
        kind, _, name = option.partition(":")
        name = {"adapter": name, "remote": remote_model or ""}.get(kind, "base")
        try:
            sources.append(A.Source(kind, name, round(float(temperature), 2)))
        except A.ArenaError as exc:
            return None, said(exc, P + "error.")
    if sources[0].id == sources[1].id:
        return None, t(P + "src.same", source=source_label(sources[0]))
    return sources, None


def pick_prompt(current) -> tuple[int, str | None]:
    """(prompt id in the set's list, or -1 for a typed one; the prompt text or None)."""
    personal = _personal_mode()
    prompts = list(current.prompts) if current is not None else A.shipped_prompts()
    mode = "set"
    if personal:
        mode = st.radio(
            t(P + "prompt.mode"),
            ["set", "typed"],
            horizontal=True,
            key=follow_language(P + "prompt_mode"),
            format_func=lambda m: t(P + "prompt.mode." + m),
            persist_state="session",
        )
    else:
        st.caption(t(P + "prompt.class_only"))
    if mode == "typed":
        text = st.text_area(t(P + "prompt.typed"), key=P + "typed", height=80, persist_state="session")
        if not text.strip():
            st.info(t(P + "prompt.type_first"))
            return -1, None
        if len(text) > MAX_TEXT:
            st.error(t(P + "prompt.too_long", n=len(text), limit=MAX_TEXT))
            return -1, None
        return -1, text.strip()
    if st.session_state.get(P + "prompt", 0) not in range(len(prompts)):
        st.session_state[P + "prompt"] = 0
    st.session_state.setdefault(P + "prompt", 0)
    index = st.selectbox(
        t(P + "prompt.pick"),
        range(len(prompts)),
        key=P + "prompt",
        format_func=lambda i: f"{i + 1}. “{prompts[i][:90]}”",  # quoted: the prompt is data, not UI text
        persist_state="session",
    )
    return int(index), prompts[int(index)]


# ---- match and vote ----------------------------------------------------------------------------


def _produce(source: A.Source, loaded, adapters: dict, prompt: str, seed: int, max_new: int) -> str:
    if source.kind == "remote":
        return A.remote_answer(engine.make_engine(source.name), prompt, source.temperature, seed, max_new)
    model = loaded.model if source.kind == "base" else adapters[source.name]
    return A.answer(model, loaded.tokenizer, prompt, source.temperature, seed, max_new)


def generate(loaded, adapters: dict, sources, prompt_id: int, prompt: str, max_new: int) -> None:
    match = A.match(prompt_id, sources, random.Random())
    try:
        with queue_status(), st.spinner(t(P + "match.generating")):
            texts = [_produce(match.source(side), loaded, adapters, prompt, match.seed, max_new) for side in "AB"]
    except (RemoteError, ValueError) as exc:
        st.session_state[P + "shown"] = None
        st.error(t(P + "match.failed", error=said(exc, P + "error.")))
        return
    code = None if _personal_mode() else st.session_state.get(P + "code")
    st.session_state[P + "shown"] = {"match": match, "prompt": prompt, "answers": texts, "code": code, "verdict": None}


def _vote(verdict: str) -> None:
    shown = st.session_state.get(P + "shown")
    if not shown:
        return
    if shown["verdict"] is not None:  # a second click on the same match: stored once already
        shown["note"] = "already"
        return
    store, match = A.shared_store(), shown["match"]
    try:
        if shown["code"] is None:
            was = st.session_state.get(P + "personal")
            target = A.personal_set(store, was, shown["prompt"], A.shipped_prompts())
            st.session_state[P + "personal"] = target.code
            if st.session_state.get(P + "code") in (None, was):
                st.session_state[P + "code"] = target.code
        else:
            target = store.open_set(shown["code"])
        vote, is_new = store.add_vote(
            target.code,
            voter(),
            target.prompts.index(shown["prompt"]),
            match.source_a.id,
            match.source_b.id,
            shown["answers"][0],
            shown["answers"][1],
            verdict,
            vote_id=match.vote_id,
        )
    except (StoreError, ValueError) as exc:
        shown["error"] = str(exc)
        return
    shown.update(verdict=vote.verdict, stored_in=target.code, note=None if is_new else "already", error=None)


def match_view() -> None:
    shown = st.session_state.get(P + "shown")
    if not shown:
        st.caption(t(P + "match.none"))
        return
    match, answers, verdict = shown["match"], shown["answers"], shown["verdict"]
    st.caption(t(P + "match.prompt"))
    st.code(shown["prompt"], language=None, wrap_lines=True)
    for side, text, column in zip("AB", answers, st.columns(2)):
        box = column.container(border=True)
        box.markdown(f"**{side}**")
        box.code(text or t(P + "match.empty"), language=None, wrap_lines=True)
        if verdict is not None:
            box.caption(t(P + "match.was", side=side, source=source_label(match.source(side))))
    if verdict is None:
        if not all(a.strip() for a in answers):
            st.warning(t(P + "match.empty_answer"))
            return
        st.caption(t(P + "match.blind"))
        for (choice, kind), column in zip(VERDICT_BUTTONS, st.columns(4)):
            column.button(
                t(P + "verdict." + choice),
                key=P + "vote." + choice,
                type=kind,
                on_click=_vote,
                args=(choice,),
                width="stretch",
            )
        if shown.get("error"):
            st.error(t(P + "match.vote_failed", error=shown["error"]))
        return
    st.success(
        t(
            P + "match.voted",
            verdict=t(P + "verdict." + verdict),
            a=source_label(match.source_a),
            b=source_label(match.source_b),
            code=shown["stored_in"],
        )
    )
    if shown.get("note") == "already":
        st.info(t(P + "match.already"))


# ---- the tab -----------------------------------------------------------------------------------


def arena_tab(loaded, adapters: dict[str, object]) -> None:
    """The arena for the base model `loaded` (a LoadedModel from the shared cache) and this session's
    adapters (name -> PeftModel); votes go to the shared preference store."""
    voter()
    st.markdown(t(P + "intro"))
    st.subheader(t(P + "set.header"))
    current = set_panel()
    st.subheader(t(P + "match.header"))
    sources, problem = pick_sources(loaded, adapters)
    prompt_id, prompt = pick_prompt(current)
    lo, hi, default = MAX_NEW_TOKENS
    st.session_state.setdefault(P + "max_new", default)
    max_new = st.slider(t(P + "match.max_new"), lo, hi, step=8, key=P + "max_new", persist_state="session")
    if problem:
        st.warning(problem)
    if st.button(
        t(P + "match.generate"),
        key=P + "generate",
        type="primary",
        disabled=problem is not None or prompt is None,
        icon=":material/casino:",
    ) and allow("alignment.arena"):
        generate(loaded, adapters, sources, prompt_id, prompt, int(max_new))
    match_view()
    code = st.session_state.get(P + "code")
    current = A.shared_store().open_set(code) if code else None  # a first vote may have made the personal set
    st.divider()
    results_view(current, voter(), current is not None and current.code in st.session_state.get(P + "owned", []))
    st.divider()
    export_view(current, voter())
    import_view()
