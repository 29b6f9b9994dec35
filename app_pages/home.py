"""Home: the learning map and what this machine can run."""

import streamlit as st

from backends.core.jobs import DONE, shared_runner
from backends.models.env import environment
from backends.models.loaders import prepare_job
from backends.models.registry import GEMMA3, SPACE_VISION_LICENCES, find_spec, package_folder, terms_path
from components.first_visit import first_visit_tip
from components.i18n import t
from components.job_status import job_status
from components.page_registry import STAGES, pages_in_stage
from components.sidebar import current_device

JOB_KEY = "home.prepare_job"

st.title(t("page.home.title"))
st.markdown(t("home.intro"))
first_visit_tip()

st.header(t("home.map"))
# Long page titles wrap instead of being cut off mid-word in the narrow map columns.
st.html(
    "<style>[data-testid='stPageLink'] p, [data-testid='stPageLink-NavLink'] p "
    "{white-space: normal !important; overflow: visible !important; text-overflow: clip !important}</style>"
)
for row_start in range(0, len(STAGES), 4):
    cols = st.columns(4)
    for col, stage in zip(cols, STAGES[row_start : row_start + 4]):
        number = STAGES.index(stage) + 1
        with col.container(border=True):
            st.markdown(f"**{number}. {t(f'stage.{stage}')}**")
            st.caption(t(f"stage.{stage}.blurb"))
            pages = pages_in_stage(stage)
            for page in pages:
                st.page_link(page.path, label=t(f"page.{page.key}.title"), icon=page.icon)
                st.caption(t(f"page.{page.key}.blurb"))
            if not pages:
                st.caption(t("home.stage_empty"))

st.header(t("home.env"))
env = environment()
cols = st.columns(4)
cols[0].metric(t("home.network"), t("home.online") if env.online else t("home.offline"))
cols[1].metric(t("home.device"), current_device(), help=t("home.devices_found", devices=", ".join(env.devices)))
cols[2].metric("torch", env.versions.get("torch") or "-")
cols[3].metric("transformers", env.versions.get("transformers") or "-")
st.caption(
    f"Python {env.python} · streamlit {env.versions.get('streamlit')} · "
    f"tokenizers {env.versions.get('tokenizers')} · gguf {env.versions.get('gguf')}"
)

st.subheader(t("home.embedded"))
# Ticks as checkboxes and words, not ✅/❌: without a colour-emoji font those were tofu boxes.
st.dataframe(
    [
        {
            t("home.col.model"): m.hub_id,
            t("home.col.kind"): t("kind." + m.kind) if t("kind." + m.kind) != "kind." + m.kind else m.kind,
            t("home.col.license"): m.license,
            t("home.col.installed"): m.installed,
            t("home.col.ready"): t("home.ready")
            if m.ready
            else t("home.needs_prepare")
            if m.installed
            else t("home.not_installed"),
        }
        for m in env.models
    ],
    hide_index=True,
    width="stretch",
    column_config={t("home.col.installed"): st.column_config.CheckboxColumn(disabled=True)},
)
if not all(m.installed for m in env.models):
    st.warning(t("home.missing_models"))
space_models = " · ".join(f"{repo} ({lic})" for repo, lic in SPACE_VISION_LICENCES.items())
st.caption(t("vision.cached.home", models=space_models))
# The Gemma Terms of Use ask that every user gets the notice, the use restrictions and the terms.
gemma_terms = terms_path(GEMMA3)
if gemma_terms is not None:
    with st.expander(t("home.gemma.title"), expanded=False, key="home.gemma"):
        st.markdown(t("home.gemma.body"))
        st.download_button(
            t("home.gemma.download"),
            gemma_terms.read_bytes(),
            file_name="GEMMA_TERMS.html",
            mime="text/html",
            key="home.gemma.terms",
        )

to_prepare = [m for m in env.models if m.installed and not m.ready]
runner = shared_runner()
job = runner.get(st.session_state.get(JOB_KEY))
if to_prepare and (job is None or job.done):
    model = to_prepare[0]
    if st.button(t("home.prepare", model=model.hub_id), key="home.prepare_button"):
        spec = find_spec(model.key)
        job = runner.submit("prepare", prepare_job, spec, package_folder(spec))
        st.session_state[JOB_KEY] = job.id


def prepared(job):
    if job.status == DONE:
        st.success(t("home.prepared", s=f"{job.elapsed:.1f}"))
    else:
        st.error(t("home.prepare_failed", error=job.error))


job_status(JOB_KEY, lambda job: t("home.preparing", s=f"{job.elapsed:.0f}"), prepared, interval=1.0)
