"""The decoding page's export / import tab: this session's runs as one JSON record, and a record opened again."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import streamlit as st

from backends import decoding as dec
from components.builtin_text import file_uploader
from components.decoding.columns import add_column, columns, reset_presets
from components.i18n import t

P = "dec."


def export_tab(loaded, prompt: str, chat: bool, seed: int) -> None:
    """Download this session's runs as JSON; open such a file again and apply its columns, prompt and seed."""
    results = st.session_state.get(P + "results", {})
    done = [c for c in columns() if c["id"] in results]
    if done:
        record = dec.run_record(
            prompt,
            chat,
            [results[c["id"]]["config"] for c in done],
            int(seed),
            [
                dec.RunOutput(
                    results[c["id"]]["ids"],
                    results[c["id"]]["text"],
                    dataclasses.asdict(results[c["id"]]["metrics"]) if results[c["id"]]["metrics"] else None,
                )
                for c in done
            ],
            model=loaded.key.model,
        )
        st.download_button(
            t("dec.export"),
            json.dumps(record, ensure_ascii=False, indent=2),
            file_name="decoding-run.json",
            mime="application/json",
            key=P + "export",
        )
    else:
        st.info(t("dec.export_first"))
    upload = file_uploader(t("dec.import"), type=["json"], key=P + "import", max_upload_size=5)
    if upload is not None:
        try:
            record = dec.load_run(json.loads(upload.getvalue().decode("utf-8")))
        except (ValueError, UnicodeDecodeError) as exc:
            st.error(t("dec.import_failed", error=str(exc)))
            return
        st.success(t("dec.imported", n=len(record.configs), model=record.model))
        st.dataframe(
            pd.DataFrame(
                [{"config": json.dumps(c.to_dict()), "text": o.text} for c, o in zip(record.configs, record.outputs)]
            ),
            hide_index=True,
        )
        st.button(t("dec.import_apply"), key=P + "import_apply", on_click=apply_record, args=(record,))


def apply_record(record):
    """A callback: it sets the prompt and seed widgets before they are drawn."""
    reset_presets()
    st.session_state[P + "columns"], st.session_state[P + "next_id"] = [], 0
    for i, config in enumerate(record.configs):
        add_column(f"{i + 1}: {config.strategy}", config)
    st.session_state[P + "seed"] = record.seed
    st.session_state[P + "prompt"] = record.prompt
    st.session_state[P + "chat"] = record.chat
    st.session_state[P + "tab"] = t("dec.tab.compare")
