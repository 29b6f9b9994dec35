"""The Gradio demo, mounted on the API server at /gradio: chat with any served model, and one prompt
under two decoding settings side by side.

It calls the same functions as the REST endpoints (`chat.Run` on the shared cache, one scheduler
turn per token), so there is no second copy of any model and the demo, the API and the Streamlit
pages share one compute queue. Conversations live in each browser's Gradio state; nothing per
user is kept here. Gradio 6's ChatInterface hands the history over as OpenAI-style messages.
"""

from __future__ import annotations

import os

from backends.serving import chat as C
from backends.serving.models import find_model, list_models, load_served
from backends.serving.openai_schema import ApiError

PATH = "/gradio"
MAX_DEMO_TOKENS = 256


def chat_models() -> list[str]:
    return [m.id for m in list_models() if m.kind == "causal-lm"]


def _run(
    settings,
    model_id: str,
    messages: list[dict],
    max_tokens: int,
    temperature: float,
    top_p: float = 1.0,
    seed: int | None = 0,
) -> C.Run:
    served = find_model(model_id, "causal-lm")
    loaded = load_served(served, settings.device)
    ids = C.chat_prompt_ids(loaded, messages)
    budget = C.token_budget(loaded, len(ids), int(max_tokens), min(settings.max_tokens, MAX_DEMO_TOKENS))
    config = C.decoding_config(float(temperature), float(top_p), 0, 0.0, 1.0, seed, budget)
    return C.Run(loaded, ids, config, scheduler=settings.scheduler)


def history_messages(message: str, history: list[dict]) -> list[dict]:
    """Gradio's messages (content may be a string or a list of parts) plus the new user turn."""
    turns = []
    for turn in history or []:
        content = turn.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if turn.get("role") in ("user", "assistant", "system") and isinstance(content, str):
            turns.append({"role": turn["role"], "content": content})
    return [*turns, {"role": "user", "content": message}]


def chat_fn(settings):
    def respond(message, history, model_id, max_tokens, temperature):
        import gradio as gr

        try:
            answer = ""
            for delta in _run(settings, model_id, history_messages(message, history), max_tokens, temperature):
                answer += delta.text
                yield answer
        except (ApiError, ValueError) as exc:
            raise gr.Error(str(exc)) from None

    return respond


def compare_fn(settings):
    def compare(prompt, model_id, max_tokens, t1, p1, t2, p2, seed):
        """Both settings take turns one token each, so the two answers grow together."""
        import gradio as gr

        try:
            runs = [
                iter(_run(settings, model_id, [{"role": "user", "content": prompt}], max_tokens, t, p, int(seed)))
                for t, p in ((t1, p1), (t2, p2))
            ]
        except (ApiError, ValueError) as exc:
            raise gr.Error(str(exc)) from None
        texts, live = ["", ""], [True, True]
        while any(live):
            for i, run in enumerate(runs):
                if live[i]:
                    delta = next(run, None)
                    if delta is None:
                        live[i] = False
                    else:
                        texts[i] += delta.text
            yield texts[0], texts[1]

    return compare


def build(settings):
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    models = chat_models()
    default = models[0] if models else None
    with gr.Blocks(title="LLM Playground demo") as demo:
        gr.Markdown(
            "# LLM Playground\nThe same models and token loop as the API under `/v1` "
            "(OpenAPI docs at `/docs`). Temperature 0 is greedy."
        )
        with gr.Tab("Chat"):
            gr.ChatInterface(
                chat_fn(settings),
                api_name="chat",
                additional_inputs=[
                    gr.Dropdown(models, value=default, label="Model"),
                    gr.Slider(1, MAX_DEMO_TOKENS, value=96, step=1, label="Max new tokens"),
                    gr.Slider(0, 2, value=0, step=0.05, label="Temperature"),
                ],
                examples=[["What is the capital of France?"], ["Write a haiku about tokens."]],
                cache_examples=False,
            )
        with gr.Tab("Compare decoding"):
            prompt = gr.Textbox("Tell me a short story about a robot.", label="Prompt")
            with gr.Row():
                model = gr.Dropdown(models, value=default, label="Model")
                max_tokens = gr.Slider(1, MAX_DEMO_TOKENS, value=64, step=1, label="Max new tokens")
                seed = gr.Number(0, precision=0, minimum=0, label="Seed")
            with gr.Row():
                with gr.Column():
                    t1 = gr.Slider(0, 2, value=0, step=0.05, label="A: temperature")
                    p1 = gr.Slider(0.05, 1, value=1, step=0.05, label="A: top-p")
                    out1 = gr.Textbox(label="A", lines=8)
                with gr.Column():
                    t2 = gr.Slider(0, 2, value=1.0, step=0.05, label="B: temperature")
                    p2 = gr.Slider(0.05, 1, value=0.9, step=0.05, label="B: top-p")
                    out2 = gr.Textbox(label="B", lines=8)
            gr.Button("Generate both", variant="primary").click(
                compare_fn(settings),
                [prompt, model, max_tokens, t1, p1, t2, p2, seed],
                [out1, out2],
                api_name="compare",
            )
    return demo


def mount(app, settings):
    import gradio as gr

    return gr.mount_gradio_app(app, build(settings), path=PATH, ssr_mode=False, footer_links=["api"])
