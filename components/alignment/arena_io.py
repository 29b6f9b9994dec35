"""The arena's votes out as TRL preference pairs (JSONL), and a pairs file read back for the DPO tab.

Both end in `st.session_state["alignment.imported_pairs"]` (a list of `backends.alignment.Pair`),
which the DPO tab trains on; neither ever writes to the preference store.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from backends.alignment import PairsError, parse_jsonl, votes_to_pairs
from backends.alignment import arena as A
from components.builtin_text import file_uploader
from components.i18n import t
from components.option_labels import follow_language

P = "alignment.arena."
IMPORTED = "alignment.imported_pairs"  # list[Pair] for the DPO tab
UPLOAD_MAX_MB = 20
PREVIEW = 5
MAX_LINES_NAMED = 20


def _use(pairs, origin: str) -> None:
    st.session_state[IMPORTED] = list(pairs)
    st.session_state[P + "pairs_from"] = origin


def export_view(current, voter: str) -> None:
    st.subheader(t(P + "export.header"))
    if current is None:
        st.info(t(P + "export.no_set"))
        return
    scope = st.radio(
        t(P + "export.scope"),
        ["all", "mine"],
        horizontal=True,
        key=follow_language(P + "export_scope"),
        format_func=lambda s: t(P + "export.scope." + s),
        persist_state="session",
    )
    store = A.shared_store()
    votes = store.my_votes(current.code, voter) if scope == "mine" else store.votes(current.code)
    export = votes_to_pairs(votes, current.prompts)
    skipped = export.skipped
    if not export.pairs:
        st.info(t(P + "export.empty", n=len(votes), tie=skipped["tie"], both_bad=skipped["both_bad"]))
        return
    st.caption(t(P + "export.counts", n=len(export.pairs), tie=skipped["tie"], both_bad=skipped["both_bad"]))
    left, right = st.columns(2)
    left.download_button(
        t(P + "export.download"),
        export.jsonl(),
        file_name=f"preferences-{current.code}.jsonl",
        mime="application/jsonl",
        key=P + "export.download",
        icon=":material/download:",
    )
    if right.button(t(P + "export.use"), key=P + "export.use", icon=":material/school:"):
        _use(export.pairs, current.code)
        st.success(t(P + "export.used", n=len(export.pairs)))


def bad_lines(text: str) -> list[int]:
    """Numbers of the lines that are not a preference pair on their own (each line checked by the
    backend alone), so the page can name them in its language; the reasons stay the backend's."""
    bad = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                parse_jsonl(line)
            except PairsError:
                bad.append(number)
    return bad


def _parsed(upload) -> tuple[list | None, tuple | None]:
    """(pairs, None) or (None, (message key, its values, the backend's details)), once per file."""
    cached = st.session_state.get(P + "parsed")
    if cached is not None and cached[0] == upload.file_id:
        return cached[1], cached[2]
    pairs, problem = None, None
    if upload.size > UPLOAD_MAX_MB * 2**20:
        problem = ("import.too_big", {"mb": UPLOAD_MAX_MB}, "")
    else:
        try:
            text = upload.getvalue().decode("utf-8-sig")
            pairs = parse_jsonl(text)
        except UnicodeDecodeError as exc:
            problem = ("import.not_utf8", {"at": exc.start}, "")
        except PairsError as exc:  # nothing of a file with a bad line is used
            lines = bad_lines(text)
            shown = ", ".join(map(str, lines[:MAX_LINES_NAMED])) + (" …" if len(lines) > MAX_LINES_NAMED else "")
            problem = ("import.bad", {"lines": shown}, str(exc)) if lines else ("import.empty", {}, "")
    if pairs is not None:
        _use(pairs, upload.name)  # once per file: a later "use votes" click is not undone by a rerun
    st.session_state[P + "parsed"] = (upload.file_id, pairs, problem)
    return pairs, problem


def import_view() -> None:
    st.markdown(t(P + "import.header"))
    st.caption(t(P + "import.note"))
    upload = file_uploader(
        t(P + "import.file"),
        key=P + "import",
        type=["jsonl"],
        max_upload_size=UPLOAD_MAX_MB,
        help=t(P + "import.help", mb=UPLOAD_MAX_MB),
    )
    if upload is not None:
        pairs, problem = _parsed(upload)
        if problem is not None:
            key, values, details = problem
            st.error(t(P + key, name=upload.name, **values))
            if details:
                st.code(details, language=None, wrap_lines=True)
            st.caption(t(P + "import.kept"))
        else:
            st.success(t(P + "import.ok", n=len(pairs), name=upload.name))
    ready = st.session_state.get(IMPORTED)
    if ready:
        st.caption(t(P + "import.ready", n=len(ready), origin=st.session_state.get(P + "pairs_from", "—")))
        rows = [
            {t(P + "col.prompt"): p.prompt, t(P + "col.chosen"): p.chosen, t(P + "col.rejected"): p.rejected}
            for p in ready[:PREVIEW]
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key=P + "import.preview")
