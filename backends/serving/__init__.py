"""Serving: the playground's models behind OpenAI's HTTP API, a Gradio demo, and a client for remote engines.

One concept a file:
  openai_schema.py  request models (validated, shown in /docs), OpenAI's error shape (`ApiError`, 400
                    for every bad request) and `field_param` (a field in OpenAI's notation)
  models.py         what is served: registry models and LoRA adapters saved on disk (`list_models`)
  chat.py           chat and text completions on backends.decoding's token loop (`Run`), one
                    scheduler turn per token; stop sequences, token budget
  logprobs.py       per-token logprobs in OpenAI's chat and legacy shapes, with each token's true
                    bytes (byte-level BPE alphabet mapped back)
  responses.py      OpenAI response bodies, whole or as server-sent events
  tools_api.py      response_format / tools / tool_choice -> a grammar (backends.structured), replies
                    -> OpenAI `tool_calls`, whole or as streamed deltas
  embeddings.py     /v1/embeddings on the shared cache's sentence-transformers variant
  metrics.py        GET /metrics: Prometheus metrics under vLLM's names (requests running and
                    waiting for a compute turn, prompt and generated tokens, finished requests by
                    reason, time to first token, inter-token latency, end-to-end latency; vLLM's
                    buckets), one CollectorRegistry per app; chat.Run reports to it (`RunObserver`)
  app.py            the FastAPI app factory (`create_app`), API key, body limit, error handlers
  guarded.py        /guarded/v1/chat/completions and /models: the chat route behind backends.trust's
                    guardrails (input checked before the model, the answer after; "content_filter")
  gradio_demo.py    the Gradio demo mounted at /gradio
  remote.py         `RemoteEngine`: any OpenAI-compatible server through the official `openai`
                    client, streaming with per-token logprobs (what generation pages call)
  local.py          the server on a thread of this process (`ServerThread`, `api_server`, the
                    serving page's `local_server`)
  __main__.py       `python -m backends.serving` (`make serve`): uvicorn on localhost

Only remote.py, the adapters folder and the in-process server thread are re-exported here: importing
the package must stay light (no FastAPI, no Gradio), because generation pages import it for the remote engine. A page
that wants its LoRA adapter served saves it (peft's save_pretrained, safetensors) into
`adapters_dir() / <name>`; the server then lists it as `<base key>+<name>`.

Notes (how it works, what is left out, measured figures): docs/serving.md.
"""

from backends.serving.local import ServerThread, api_server
from backends.serving.models import adapters_dir, saved_adapters
from backends.serving.remote import (
    RemoteEngine,
    RemoteError,
    RemoteStep,
    Unsupported,
    api_params,
    unsupported_code,
    unsupported_reason,
)

__all__ = [
    "RemoteEngine",
    "RemoteError",
    "RemoteStep",
    "ServerThread",
    "Unsupported",
    "adapters_dir",
    "api_params",
    "api_server",
    "saved_adapters",
    "unsupported_code",
    "unsupported_reason",
]
