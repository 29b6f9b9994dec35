"""Serving: run the OpenAI-compatible API from the app, see each endpoint as curl / openai / LangChain,
send a request and read the raw answer (JSON, or every server-sent event)."""

import streamlit as st

from backends.serving import trial as T
from components.i18n import t
from components.serving import request_form, server_panel, snippet_tabs, trial_view
from components.show_code import show_code

P = "serving."

st.title(t("page.serving.title"))
st.markdown(t("serving.intro"))

running_url = server_panel()

st.subheader(t("serving.request.header"))
endpoint, base_url, body, api_key = request_form(running_url)
snippet_tabs(base_url, endpoint, body, with_key=bool(api_key))

st.subheader(t("serving.try.header"))
if st.button(t("serving.send"), key=P + "send", type="primary"):
    with st.spinner(t("serving.sending", url=base_url)):
        st.session_state[P + "trial"] = (endpoint, T.send(base_url, endpoint, body, api_key))
last = st.session_state.get(P + "trial")
if last is not None:
    if last[0] != endpoint:
        st.caption(t("serving.last_for", endpoint=t("serving.endpoint." + last[0])))
    trial_view(last[1])
elif running_url is None:
    st.caption(t("serving.start_first"))
show_code(T.send)
