"""The serving page's pieces: the local server's switch, the request form, the snippets, one answer raw."""

from __future__ import annotations

import json

import streamlit as st

from backends.serving.app import KEY_ENV, ServerSettings
from backends.serving.local import local_server
from backends.serving.models import list_models
from backends.serving.snippets import ENDPOINTS, KINDS, PATHS, request_body, snippets
from backends.serving.trial import Trial
from components.i18n import t

P = "serving."
DEFAULT_PORT = 8000


def server_panel() -> str | None:
    """Start / stop the process's API server; returns its base URL while it runs."""
    server = local_server()
    with st.container(border=True):
        st.subheader(t("serving.server.header"))
        left, right = st.columns([1, 2])
        port = left.number_input(
            t("serving.port"),
            1024,
            65535,
            DEFAULT_PORT,
            step=1,
            key=P + "port",
            disabled=server.running,
            persist_state="session",
        )
        with right:
            if server.running:
                url = server.current.url
                st.success(t("serving.server.running", url=url))
                st.markdown(t("serving.server.links", url=url))
                if st.button(t("serving.stop"), key=P + "stop"):
                    server.stop()
                    st.rerun()
            else:
                st.info(t("serving.server.stopped"))
                if st.button(t("serving.start"), key=P + "start", type="primary"):
                    try:
                        with st.spinner(t("serving.starting")):
                            server.start(int(port), ServerSettings.from_env())
                        st.rerun()
                    except (OSError, RuntimeError) as exc:
                        st.error(t("serving.port_busy", port=int(port), error=str(exc)))
        st.caption(t("serving.shared_note"))
        if ServerSettings.from_env().api_key:
            st.caption(t("serving.key_note", env=KEY_ENV))
    return server.current.url if server.running else None


def request_form(running_url: str | None) -> tuple[str, str, dict | None, str | None]:
    """(endpoint, server base URL, JSON body, API key or None) from the page's widgets."""
    # Paths as labels: they read the same in every language, so a language switch keeps the choice.
    endpoint = st.radio(
        t("serving.endpoint"),
        ENDPOINTS,
        horizontal=True,
        key=P + "endpoint",
        format_func=PATHS.get,
        help=t("serving.endpoint_help"),
        persist_state="session",
    )
    left, right = st.columns(2)
    local = running_url or f"http://127.0.0.1:{int(st.session_state.get(P + 'port', DEFAULT_PORT))}"
    # Follow this app's server unless another one was typed (a language switch redraws the field empty).
    if not st.session_state.get(P + "url") or st.session_state.get(P + "url") == st.session_state.get(P + "url_local"):
        st.session_state[P + "url"] = local
    st.session_state[P + "url_local"] = local
    base_url = left.text_input(t("serving.url"), key=P + "url", help=t("serving.url_help"), persist_state="session")
    api_key = (
        right.text_input(
            t("serving.api_key"),
            type="password",
            key=P + "key",
            help=t("serving.api_key_help"),
            persist_state="session",
        )
        or None
    )
    if endpoint == "models":
        return endpoint, base_url, None, api_key
    kind = KINDS[endpoint]
    models = [m.id for m in list_models() if m.kind == kind]
    model = st.selectbox(
        t("serving.model"),
        models,
        key=P + "model." + endpoint,
        accept_new_options=True,
        help=t("serving.model_help"),
        persist_state="session",
    )
    default_text = {
        "chat": "What is the capital of France?",
        "completions": "The capital of France is",
        "embeddings": "A sentence to embed.",
    }[endpoint]
    text = st.text_area(
        t("serving.text"), default_text, key=P + "text." + endpoint, height=80, persist_state="session"
    )
    if endpoint == "embeddings":
        return endpoint, base_url, request_body(endpoint, model or "", text), api_key
    cols = st.columns(4)
    max_tokens = cols[0].number_input(
        t("serving.max_tokens"), 1, 512, 24, key=P + "max_tokens", persist_state="session"
    )
    temperature = cols[1].slider(
        t("serving.temperature"),
        0.0,
        2.0,
        0.0,
        0.05,
        key=P + "temperature",
        help=t("serving.temperature_help"),
        persist_state="session",
    )
    logprobs = cols[2].number_input(
        t("serving.logprobs"), 0, 5, 0, key=P + "logprobs", help=t("serving.logprobs_help"), persist_state="session"
    )
    stream = cols[3].toggle(t("serving.stream"), key=P + "stream", persist_state="session")
    return (
        endpoint,
        base_url,
        request_body(endpoint, model or "", text, int(max_tokens), float(temperature), stream, int(logprobs)),
        api_key,
    )


def snippet_tabs(base_url: str, endpoint: str, body: dict | None, with_key: bool) -> None:
    st.subheader(t("serving.snippets.header"))
    code = snippets(base_url, endpoint, body, with_key)
    for tab, (name, language) in zip(
        st.tabs([t(f"serving.snippet.{n}") for n in code]),
        (("curl", "bash"), ("openai", "python"), ("langchain", "python")),
    ):
        with tab:
            st.code(code[name], language=language)


def trial_view(trial: Trial) -> None:
    """One answer as it arrived: status, timings, the raw JSON or every SSE event."""
    if trial.error:
        st.error(trial.error)
        return
    cols = st.columns(4)
    cols[0].metric(t("serving.status"), trial.status)
    cols[1].metric(t("serving.elapsed"), f"{trial.elapsed_s * 1000:.0f} ms")
    if trial.ttft_s is not None:
        cols[2].metric(t("serving.ttft"), f"{trial.ttft_s * 1000:.0f} ms")
    if trial.events:
        cols[3].metric(t("serving.events"), len(trial.events))
        st.markdown(t("serving.text_result"))
        st.text(trial.text or "∅")
        st.caption(t("serving.events_caption"))
        st.code(
            "\n".join(f"[{at * 1000:7.0f} ms] data: {raw}" for at, raw in trial.events),
            language="text",
            wrap_lines=True,
        )
        return
    if trial.status and trial.status >= 400:
        st.warning(t("serving.http_error", status=trial.status))
    st.caption(t("serving.raw_json"))
    if isinstance(trial.body, (dict, list)):
        st.json(_shorten(trial.body), expanded=True)
    else:
        st.code(str(trial.body)[:4000], language="text")


def _shorten(body):
    """Embedding vectors shortened to 8 numbers for the screen (how many more is said in their place)."""
    data = json.loads(json.dumps(body))
    for item in data.get("data", []) if isinstance(data, dict) else []:
        vector = item.get("embedding")
        if isinstance(vector, list) and len(vector) > 8:
            item["embedding"] = [*vector[:8], f"… {len(vector) - 8} more"]
    return data
