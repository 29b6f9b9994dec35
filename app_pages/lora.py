"""LoRA trainer: pick data, configure, train in the background with live curves, compare before and after."""

import json

import pandas as pd
import streamlit as st

from backends.lora import data as D
from backends.lora import train as T
from backends.lora.config import (
    NO_BITSANDBYTES,
    NO_CUDA,
    QUANTIZATION,
    SCHEDULES,
    LoraSettings,
    SettingsError,
    linear_layers,
    plan,
    quantization_available,
    snippet,
)
from backends.models.registry import find_spec
from components.backend_text import said
from components.builtin_text import file_uploader
from components.experiments import experiments_panel
from components.i18n import current_lang, t
from components.lora.compare import compare_view
from components.lora.train import absorb_finished, history_view, live_view, runs, start_disabled, start_run
from components.model_picker import load_or_explain, model_picker
from components.option_labels import follow_language
from components.show_code import show_code

P = "lora."
UPLOAD_MAX_MB = 20
PREVIEW_ROWS = 50

# Settings outlive the tabs: a lazy tab's widgets are not drawn when another tab is open,
# so their values are kept in one plain dict and every widget starts from it.
if P + "cfg" not in st.session_state:
    st.session_state[P + "cfg"] = LoraSettings().to_dict()
cfg = st.session_state[P + "cfg"]


def setting(name: str, widget, label: str, *args, **kwargs):
    start = {"default" if widget is st.multiselect else "value": cfg[name]}
    cfg[name] = widget(label, *args, **start, key=P + "w." + name, **kwargs)
    return cfg[name]


def current_settings() -> LoraSettings:
    return LoraSettings(**{**cfg, "target_modules": tuple(cfg["target_modules"])})


def dataset() -> tuple[list | None, str | None]:
    """This session's chosen examples, or the reason there are none."""
    if st.session_state.get(P + "source", "shipped") == "shipped":
        return D.shipped_examples(), None
    upload = st.session_state.get(P + "upload")
    if upload is None:
        return None, t("lora.data.upload_first")
    if upload.size > UPLOAD_MAX_MB * 2**20:
        return None, t("lora.data.too_big", mb=UPLOAD_MAX_MB, size=f"{upload.size / 2**20:.1f}")
    parsed = st.session_state.get(P + "parsed")
    if parsed is None or parsed[0] != upload.file_id:
        try:
            parsed = (upload.file_id, D.parse_upload(upload.name, upload.getvalue()), None)
        except D.DataError as exc:
            parsed = (upload.file_id, None, exc)  # worded when shown, in the language of the moment
        st.session_state[P + "parsed"] = parsed
    return parsed[1], said(parsed[2], "lora.data.error.") if parsed[2] is not None else None


st.title(t("page.lora.title"))
st.markdown(t("lora.intro"))
left, right = st.columns([1, 2])
with left:
    name = model_picker("lora", kinds=("causal-lm",), default="smollm2-135m-instruct")
loaded = load_or_explain(name) if name else None
if loaded is None:
    st.stop()
with right:
    spec = find_spec(name)
    st.caption(
        t(
            "lora.model_note",
            model=spec.hub_id if spec else name,
            params=f"{sum(p.numel() for p in loaded.model.parameters()) / 1e6:.1f}",
        )
    )
    st.caption(t("lora.copy_note"))

absorb_finished()
tabs = st.tabs(
    [t("lora.tab.data"), t("lora.tab.config"), t("lora.tab.train"), t("lora.tab.compare"), t("lora.tab.history")],
    key=P + "tab",
    on_change="rerun",
)


def data_tab():
    source = st.radio(
        t("lora.data.source"),
        ["shipped", "upload"],
        horizontal=True,
        key=follow_language(P + "source"),
        format_func=lambda s: t(f"lora.data.source.{s}"),
        persist_state="session",
    )
    if source == "shipped":
        st.caption(t("lora.data.shipped_note"))
        if current_lang() != "en":
            st.info(t("lora.english_only"))
    else:
        file_uploader(
            t("lora.data.upload"),
            type=["jsonl", "json", "csv"],
            key=P + "upload",
            max_upload_size=UPLOAD_MAX_MB,
            help=t("lora.data.upload_help", mb=UPLOAD_MAX_MB),
        )
    examples, problem = dataset()
    if examples is None:
        (st.error if source == "upload" and st.session_state.get(P + "upload") is not None else st.info)(problem)
        return
    st.success(t("lora.data.loaded", n=len(examples)))
    st.dataframe(pd.DataFrame([e.as_row() for e in examples[:PREVIEW_ROWS]]), hide_index=True, key=P + "preview")
    index = st.number_input(
        t("lora.data.example"), 0, len(examples) - 1, 0, key=P + "example_index", persist_state="session"
    )
    example = examples[int(index)]
    encoded = D.encode_example(loaded.tokenizer, example, int(cfg["max_length"]))
    st.markdown(t("lora.data.formatted"))
    st.code(D.format_example(loaded.tokenizer, example), language=None, wrap_lines=True)
    trained = loaded.tokenizer.decode([i for i, lab in zip(encoded.input_ids, encoded.labels) if lab != D.IGNORE])
    st.markdown(t("lora.data.trained_part", n=encoded.trained_tokens, total=len(encoded.input_ids)))
    st.code(trained, language=None, wrap_lines=True)
    stats = D.length_stats(loaded.tokenizer, examples, int(cfg["max_length"]))
    s1, s2, s3, s4, s5 = st.columns(5)
    s1.metric(t("lora.stats.min"), stats.min)
    s2.metric(t("lora.stats.median"), f"{stats.median:g}")
    s3.metric(t("lora.stats.p95"), stats.p95)
    s4.metric(t("lora.stats.max"), stats.max)
    s5.metric(t("lora.stats.truncated", max_length=cfg["max_length"]), stats.truncated)
    st.caption(t("lora.stats.note", trained=f"{stats.mean_trained:.1f}"))
    share = setting("eval_fraction", st.slider, t("lora.data.eval_share"), 0.0, 0.5, step=0.05)
    try:
        train, held = D.split(examples, share, int(cfg["seed"]))
        st.caption(t("lora.data.split", train=len(train), eval=len(held)))
    except D.DataError as exc:
        st.warning(said(exc, "lora.data.error."))
    show_code(D.encode_example)


def config_tab():
    layers = linear_layers(loaded.model)
    c1, c2, c3 = st.columns(3)
    with c1:
        st.markdown(t("lora.cfg.lora"))
        setting("rank", st.number_input, t("lora.cfg.rank"), 1, 4096, help=t("lora.cfg.rank_help"))
        setting("alpha", st.number_input, t("lora.cfg.alpha"), 1, 8192, help=t("lora.cfg.alpha_help"))
        setting("dropout", st.slider, t("lora.cfg.dropout"), 0.0, 0.5, step=0.05)
        options = list(layers)
        cfg["target_modules"] = [m for m in cfg["target_modules"] if m in options] or options[:1]
        setting("target_modules", st.multiselect, t("lora.cfg.targets"), options, help=t("lora.cfg.targets_help"))
        # Shapes under the chips (inside them the text was cut off: "v_proj (576→1").
        st.caption(
            " · ".join(f"`{m}` {layers[m][0][0]}→{layers[m][0][1]} ×{len(layers[m])}" for m in cfg["target_modules"])
        )
    with c2:
        st.markdown(t("lora.cfg.training"))
        setting("learning_rate", st.number_input, t("lora.cfg.lr"), 1e-6, 0.1, format="%.5f", step=1e-4)
        cfg["schedule"] = st.selectbox(
            t("lora.cfg.schedule"),
            SCHEDULES,
            index=SCHEDULES.index(cfg["schedule"]),
            key=P + "w.schedule",
            persist_state="session",
        )
        setting("warmup_steps", st.number_input, t("lora.cfg.warmup"), 0, 10_000)
        unit = st.radio(
            t("lora.cfg.length_unit"),
            ["steps", "epochs"],
            horizontal=True,
            key=follow_language(P + "w.unit"),
            index=1 if cfg["epochs"] > 0 else 0,
            format_func=lambda u: t(f"lora.cfg.unit.{u}"),
            persist_state="session",
        )
        if unit == "steps":
            setting("max_steps", st.number_input, t("lora.cfg.steps"), 1, 100_000)
            cfg["epochs"] = 0.0
        else:
            cfg["epochs"] = cfg["epochs"] or 1.0
            setting("epochs", st.number_input, t("lora.cfg.epochs"), 0.1, 1000.0, step=0.5)
    with c3:
        st.markdown(t("lora.cfg.batching"))
        setting("batch_size", st.number_input, t("lora.cfg.batch"), 1, 256)
        setting("grad_accum", st.number_input, t("lora.cfg.accum"), 1, 256)
        setting("max_length", st.number_input, t("lora.cfg.max_length"), 0, 8192, help=t("lora.cfg.max_length_help"))
        setting("seed", st.number_input, t("lora.cfg.seed"), 0, 2**31 - 1)
    with st.expander(t("lora.cfg.monitoring"), expanded=True):
        m1, m2, m3 = st.columns(3)
        setting("eval_every", m1.number_input, t("lora.cfg.eval_every"), 0, 10_000)
        setting("sample_every", m2.number_input, t("lora.cfg.sample_every"), 0, 10_000)
        setting(
            "early_stopping_patience",
            m3.number_input,
            t("lora.cfg.patience"),
            0,
            100,
            help=t("lora.cfg.patience_help"),
        )
    ok, reason = quantization_ok()
    st.radio(
        t("lora.cfg.quantization"),
        QUANTIZATION,
        index=QUANTIZATION.index(cfg["quantization"]),
        key=follow_language(P + "w.quantization"),
        horizontal=True,
        disabled=not ok,
        format_func=lambda q: t(f"lora.quant.{q}"),
        persist_state="session",
    )
    cfg["quantization"] = st.session_state[P + "w.quantization"] if ok else "none"
    if not ok:
        st.caption(t("lora.cfg.quant_disabled", reason=reason))
    try:
        settings = current_settings().validate(loaded.model)
    except SettingsError as exc:
        st.error(str(exc))
        return
    p = plan(loaded.model, settings)
    examples, _ = dataset()
    n_train = len(D.split(examples, settings.eval_fraction, settings.seed)[0]) if examples else 0
    k1, k2, k3, k4 = st.columns(4)
    k1.metric(t("lora.plan.trainable"), f"{p.trainable_params:,}", help=t("lora.plan.layers", n=p.adapted_layers))
    k2.metric(t("lora.plan.share"), f"{100 * p.share:.3f} %")
    k3.metric(t("lora.plan.adapter"), f"{p.adapter_bytes / 2**20:.2f} MB")
    k4.metric(
        t("lora.plan.memory"),
        f"{p.memory_bytes / 2**30:.2f} GB",
        help=t(
            "lora.plan.memory_help",
            weights=f"{p.weights_bytes / 2**20:.0f}",
            opt=f"{p.optimizer_bytes / 2**20:.1f}",
            act=f"{p.activation_bytes / 2**20:.0f}",
        ),
    )
    if n_train:
        steps = settings.total_steps(n_train)
        epochs = steps * settings.batch_size * settings.grad_accum / n_train
        st.caption(t("lora.plan.steps", steps=steps, n=n_train, epochs=f"{epochs:.1f}"))
    with st.expander(t("lora.cfg.snippet"), expanded=False):
        st.code(snippet(settings, spec.hub_id if spec else name), language="python")
    e1, e2 = st.columns(2)
    e1.download_button(
        t("lora.cfg.export"),
        json.dumps(settings.to_dict(), indent=2),
        file_name="lora-settings.json",
        mime="application/json",
        key=P + "export_settings",
    )
    file_uploader(
        t("lora.cfg.import"),
        type=["json"],
        key=P + "import_settings",
        on_change=import_settings,
        max_upload_size=1,
        where=e2,
    )
    if st.session_state.get(P + "import_error"):
        e2.error(st.session_state[P + "import_error"])


def import_settings():
    """A callback: the widgets are drawn afresh from the loaded values."""
    upload = st.session_state.get(P + "import_settings")
    st.session_state[P + "import_error"] = None
    if upload is None:
        return
    try:
        loaded_settings = LoraSettings.from_dict(json.loads(upload.getvalue().decode("utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:  # SettingsError and JSONDecodeError are ValueErrors
        st.session_state[P + "import_error"] = t("lora.cfg.import_failed", error=str(exc))
        return
    cfg.update(loaded_settings.to_dict())
    for key in [k for k in st.session_state if str(k).startswith(P + "w.")]:
        del st.session_state[key]


def quantization_ok():
    ok, reason = quantization_available()
    reason = {NO_BITSANDBYTES: t("lora.cfg.no_bitsandbytes"), NO_CUDA: t("lora.cfg.no_cuda")}.get(reason, reason)
    return ok and loaded.key.device.startswith("cuda"), reason or t("lora.cfg.quant_device")


def train_tab():
    settings = current_settings()
    st.caption(
        t(
            "lora.train.summary",
            rank=settings.rank,
            alpha=settings.alpha,
            targets=", ".join(settings.target_modules),
            lr=f"{settings.learning_rate:g}",
            steps=settings.max_steps if not settings.epochs else f"{settings.epochs:g} ep",
            batch=settings.batch_size,
            max_length=settings.max_length,
        )
    )
    st.button(
        t("lora.train.start"),
        key=P + "start",
        type="primary",
        disabled=start_disabled(),
        icon=":material/play_arrow:",
        on_click=start_clicked,
        args=(loaded, name),
    )
    if st.session_state.get(P + "start_error"):
        st.error(st.session_state[P + "start_error"])
    live_view()
    show_code(T.train_job)


def start_clicked(model, model_name):
    """A callback, so the button is already drawn disabled in the run that starts the job."""
    examples, problem = dataset()
    if examples is None:
        st.session_state[P + "start_error"] = problem
    else:
        start_run(model, model_name, examples, current_settings())


def compare_tab():
    compare_view(loaded, name)


def history_tab():
    history_view()
    if runs():
        st.caption(t("lora.history.note"))


for tab, render in zip(tabs, (data_tab, config_tab, train_tab, compare_tab, history_tab)):
    if tab.open:
        with tab:
            render()

experiments_panel("lora", loaded)
