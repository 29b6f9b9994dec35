"""The decoding page's columns: this session's list, its short JSON for shared links, and one column's editor."""

from __future__ import annotations

import contextlib
import dataclasses
import json

import streamlit as st

from backends import decoding as dec
from components import url_state
from components.i18n import t
from components.option_labels import follow_language

P = "dec."
MAX_COLUMNS = 6
STRATEGIES = dec.STRATEGIES


DEFAULT_FIELDS = dec.DecodingConfig().to_dict()


def columns_to_link(named: list[tuple[str, dec.DecodingConfig]]) -> str:
    """Columns as short JSON for the address bar: each name with the fields that differ from the defaults."""
    out = []
    for name, config in named:
        fields = {
            k: v for k, v in config.to_dict().items() if v != DEFAULT_FIELDS[k] and k not in ("seed", "max_new_tokens")
        }
        out.append({"name": name, **fields})
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


def columns_from_link(text: str) -> list[tuple[str, dec.DecodingConfig]]:
    data = json.loads(text)
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_COLUMNS:
        raise ValueError("cols must be a list of 1 to 6 columns")
    return [
        (str(item.pop("name", f"column {i + 1}"))[:60], dec.DecodingConfig.from_dict(item))
        for i, item in enumerate(data)
    ]


PRESET_LINK = columns_to_link(list(dec.PRESETS.items()))


PRESET_KEYS = dict(zip(dec.PRESETS, ("greedy", "beam", "sampling", "nucleus")))


def shown_name(name: str) -> str:
    """A preset's name in the UI language (the stored name, also in links and exports, stays the preset's)."""
    return t("dec.preset." + PRESET_KEYS[name]) if name in PRESET_KEYS else name


def columns() -> list[dict]:
    """This session's decoding columns: {"id", "name", "config"}; ids keep widget keys stable.

    A shared link's `cols` sets them on the session's first run; otherwise the presets."""
    if P + "columns" not in st.session_state:
        st.session_state[P + "columns"] = []
        st.session_state[P + "next_id"] = 0
        named = list(dec.PRESETS.items())
        linked = url_state.read("cols")
        if linked:
            with contextlib.suppress(ValueError, TypeError, AttributeError):  # a hand-edited link: the presets
                named = columns_from_link(linked)
        for name, config in named:
            add_column(name, config)
    return st.session_state[P + "columns"]


def add_column(name: str, config: dec.DecodingConfig) -> None:
    cid = st.session_state[P + "next_id"]
    st.session_state[P + "next_id"] = cid + 1
    st.session_state[P + "columns"].append({"id": cid, "name": name, "config": config})


def remove_column(cid: int) -> None:
    st.session_state[P + "columns"] = [c for c in columns() if c["id"] != cid]
    st.session_state.get(P + "results", {}).pop(cid, None)
    for key in [k for k in st.session_state if k.startswith(f"{P}col.{cid}.")]:
        del st.session_state[key]  # its widgets persist for the session otherwise


def duplicate_column(cid: int) -> None:
    source = next(c for c in columns() if c["id"] == cid)
    add_column(shown_name(source["name"]) + t("dec.copy_suffix"), source["config"])


def reset_presets() -> None:
    for key in [k for k in st.session_state if k.startswith(P + "col.")]:
        del st.session_state[key]
    st.session_state.pop(P + "columns", None)
    st.session_state.pop(P + "results", None)


def config_editor(column: dict, seed: int, max_new: int) -> dec.DecodingConfig | None:
    """The widgets of one column; returns its validated config or shows why it is invalid."""
    c, k = column["config"], f"{P}col.{column['id']}."
    strategy = st.selectbox(
        t("dec.strategy"),
        STRATEGIES,
        index=STRATEGIES.index(c.strategy),
        key=follow_language(k + "strategy"),
        format_func=lambda s: t(f"dec.strategy.{s}"),
        persist_state="session",
    )
    values = dict(strategy=strategy, seed=seed, max_new_tokens=max_new)
    if strategy == "sample":
        values["temperature"] = st.slider(
            t("dec.param.temperature"),
            0.05,
            2.0,
            float(c.temperature),
            0.05,
            key=k + "temperature",
            persist_state="session",
        )
        values["top_k"] = st.number_input(
            t("dec.param.top_k"), 0, 1000, int(c.top_k), key=k + "top_k", persist_state="session"
        )
        values["top_p"] = st.slider("top-p", 0.05, 1.0, float(c.top_p), 0.05, key=k + "top_p", persist_state="session")
        values["min_p"] = st.slider("min-p", 0.0, 0.5, float(c.min_p), 0.01, key=k + "min_p", persist_state="session")
        values["typical_p"] = st.slider(
            t("dec.param.typical_p"), 0.05, 1.0, float(c.typical_p), 0.05, key=k + "typical_p", persist_state="session"
        )
    if strategy == "beam":
        values["num_beams"] = st.slider(
            t("dec.param.num_beams"),
            2,
            dec.MAX_BEAMS,
            max(2, int(c.num_beams)),
            key=k + "beams",
            persist_state="session",
        )
        values["length_penalty"] = st.slider(
            t("dec.param.length_penalty"),
            -2.0,
            3.0,
            float(c.length_penalty),
            0.1,
            key=k + "length_penalty",
            persist_state="session",
        )
        values["early_stopping"] = st.toggle(
            t("dec.param.early_stopping"), bool(c.early_stopping), key=k + "early", persist_state="session"
        )
    if strategy == "contrastive":
        values["top_k"] = st.number_input(
            t("dec.candidates"), 2, 20, max(2, int(c.top_k) or 4), key=k + "ck", persist_state="session"
        )
        values["penalty_alpha"] = st.slider(
            t("dec.param.penalty_alpha"),
            0.05,
            1.0,
            float(c.penalty_alpha),
            0.05,
            key=k + "alpha",
            persist_state="session",
        )
    values["repetition_penalty"] = st.slider(
        t("dec.param.repetition_penalty"),
        0.5,
        2.0,
        float(c.repetition_penalty),
        0.05,
        key=k + "rep",
        persist_state="session",
    )
    values["no_repeat_ngram_size"] = st.number_input(
        t("dec.param.no_repeat_ngram_size"),
        0,
        10,
        int(c.no_repeat_ngram_size),
        key=k + "ngram",
        persist_state="session",
    )
    try:
        config = dataclasses.replace(c, **values).validate()
    except ValueError as exc:
        st.warning(str(exc))
        return None
    column["config"] = config
    return config
