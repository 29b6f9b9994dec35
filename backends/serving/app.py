"""The FastAPI app: OpenAI's /v1 endpoints over the shared model cache, /health, /metrics (Prometheus,
vLLM's names: metrics.py, one registry per app), OpenAPI docs at /docs.

`create_app(settings)` builds it (tests start several, each with its own settings); `make serve`
runs it with uvicorn (see __main__.py). Endpoints are plain `def`s, so FastAPI runs each request
in its thread pool and a long generation never blocks the event loop; a stream's tokens are
produced as the client reads them, one scheduler turn each.

Errors always have OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`: 401 a
missing or wrong key (only when LLMPG_API_KEY is set), 404 an unknown model or path, 413 a body
over the limit, 400 a bad request (every bad field named in the message, the first in `param`;
pydantic's own validation errors included, and `context_length_exceeded`), 429 the compute queue
is full (with Retry-After), 500 anything unexpected. 400 is what OpenAI and vLLM answer, so the
official SDK raises `openai.BadRequestError`.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backends.core.scheduler import Cancelled, QueueFull, shared_scheduler
from backends.decoding import MAX_NEW_TOKENS
from backends.serving import chat as C
from backends.serving import embeddings as E
from backends.serving import responses as R
from backends.serving import tools_api as T
from backends.serving.metrics import ServerMetrics
from backends.serving.models import find_model, list_models, load_served
from backends.serving.openai_schema import (
    ApiError,
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    error_body,
    field_param,
)

KEY_ENV, MAX_TOKENS_ENV, MAX_BODY_ENV, DEVICE_ENV = (
    "LLMPG_API_KEY",
    "LLMPG_SERVE_MAX_TOKENS",
    "LLMPG_SERVE_MAX_BODY_KB",
    "LLMPG_SERVE_DEVICE",
)
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class ServerSettings:
    api_key: str | None = None
    max_tokens: int = MAX_NEW_TOKENS
    max_body_bytes: int = 1 << 20
    device: str = "cpu"
    gradio: bool = True
    scheduler: object = field(default=None, compare=False)  # None: the process-wide one

    @classmethod
    def from_env(cls, **overrides) -> ServerSettings:
        env = os.environ
        values = {
            "api_key": env.get(KEY_ENV) or None,
            "max_tokens": int(env.get(MAX_TOKENS_ENV, str(MAX_NEW_TOKENS))),
            "max_body_bytes": int(float(env.get(MAX_BODY_ENV, "1024")) * 1024),
            "device": env.get(DEVICE_ENV, "cpu"),
        }
        return cls(**(values | overrides))


class BodyLimit:
    """ASGI middleware: a request body over the limit gets 413 before the app reads it all."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, send)
        # Read the body first (at most the limit), so a chunked upload is counted before the app sees it.
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            if seen > self.limit:
                return await self._refuse(scope, send)
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)

    def _message(self) -> str:
        return f"The request body is larger than this server's limit of {self.limit // 1024} KB."

    async def _refuse(self, scope, send):
        response = JSONResponse(error_body(self._message(), code="request_too_large"), status_code=413)
        await response(scope, None, send)


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings.from_env()
    scheduler = settings.scheduler or shared_scheduler()
    app = FastAPI(
        title="LLM Playground API",
        version="1",
        description="OpenAI-compatible endpoints over the LLM Playground's models (offline by default).",
    )
    app.state.settings = settings
    metrics = app.state.metrics = ServerMetrics([m.id for m in list_models() if m.kind == "causal-lm"])

    def check_key(request: Request) -> None:
        if not settings.api_key:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), settings.api_key.encode()):
            raise ApiError(
                401,
                "Missing or incorrect API key: send the header 'Authorization: Bearer <key>' "
                f"with the key set in {KEY_ENV} on the server.",
                code="invalid_api_key",
            )

    @app.exception_handler(ApiError)
    async def api_error(_request, exc: ApiError):
        headers = {"Retry-After": "1"} if exc.status == 429 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(QueueFull)
    async def queue_full(_request, exc: QueueFull):
        return JSONResponse(
            error_body(
                f"The compute queue is full ({exc}): retry in a moment.", "rate_limit_exceeded", code="queue_full"
            ),
            status_code=429,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Cancelled)
    async def cancelled(_request, exc: Cancelled):
        return JSONResponse(error_body(f"Cancelled while waiting: {exc}", "server_error"), status_code=503)

    @app.exception_handler(RequestValidationError)
    async def bad_params(_request, exc: RequestValidationError):
        problems, params = [], []
        for err in exc.errors():
            params.append(field_param(tuple(err.get("loc", ())), err.get("type", "")))
            problems.append(f"{params[-1] or 'body'}: {err.get('msg')} (got {err.get('input')!r:.80})")
        return JSONResponse(
            error_body(
                "Invalid request: " + "; ".join(problems),
                param=params[0] if params else None,
                code="invalid_parameters",
            ),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = (
            f"No route {request.method} {request.url.path}." if exc.status_code in (404, 405) else str(exc.detail)
        )
        return JSONResponse(
            error_body(message, code="not_found" if exc.status_code == 404 else None), status_code=exc.status_code
        )

    @app.exception_handler(Exception)
    async def unexpected(_request, exc: Exception):
        return JSONResponse(error_body(f"{type(exc).__name__}: {exc}", "server_error"), status_code=500)

    @app.get("/health", tags=["server"])
    def health() -> dict:
        state = scheduler.state()
        return {
            "status": "ok",
            "models": [m.id for m in list_models()],
            "queue": {
                "slots": state.slots,
                "running": state.running,
                "waiting": state.waiting,
                "max_waiting": scheduler.max_waiting,
            },
        }

    @app.get("/metrics", tags=["server"])
    def prometheus_metrics() -> Response:
        """Prometheus text format, vLLM's metric names (backends/serving/metrics.py); no API key, as vLLM."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/v1/models", tags=["openai"], dependencies=[Depends(check_key)])
    def models() -> dict:
        return {
            "object": "list",
            "data": [
                {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by} for m in list_models()
            ],
        }

    @app.get("/v1/models/{model_id:path}", tags=["openai"], dependencies=[Depends(check_key)])
    def model(model_id: str) -> dict:
        match = next((m for m in list_models() if m.id == model_id), None)
        if match is None:
            raise ApiError(404, f"The model {model_id!r} does not exist on this server.", code="model_not_found")
        return {"id": match.id, "object": "model", "created": match.created, "owned_by": match.owned_by}

    def run_for(req, prompt_ids_of, top_n: int, prompt_param: str, plan=None) -> tuple[C.Run, str]:
        req.check()
        served = find_model(req.model, "causal-lm")
        loaded = load_served(served, settings.device)
        ids = prompt_ids_of(loaded)
        if plan is not None:
            T.check_compiles(loaded, plan)
        budget = C.token_budget(loaded, len(ids), req.new_tokens(), settings.max_tokens, prompt_param)
        config = C.decoding_config(
            req.temperature, req.top_p, req.top_k, req.min_p, req.repetition_penalty, req.seed, budget
        )
        constraint = plan.constraint if plan is not None else None
        observer = metrics.request(served.id)
        return C.Run(loaded, ids, config, req.stop, top_n, scheduler, constraint, observer), served.id

    @app.post("/v1/chat/completions", tags=["openai"], dependencies=[Depends(check_key)])
    def chat_completions(req: ChatCompletionRequest):
        plan = T.plan(req)
        messages = T.prompt_messages(req, plan)
        top_n = (req.top_logprobs or 0) if req.logprobs else 0
        run, model_id = run_for(req, lambda loaded: C.chat_prompt_ids(loaded, messages), top_n, "messages", plan)
        if req.stream:
            return StreamingResponse(
                R.chat_stream(run, model_id, req.logprobs, top_n, req.include_usage(), plan.tools),
                media_type="text/event-stream",
                headers=STREAM_HEADERS,
            )
        return R.chat_completion(run, model_id, req.logprobs, top_n, plan.tools)

    from backends.serving.guarded import add_guarded_routes  # /guarded/v1: the same route behind backends.trust

    add_guarded_routes(app, run_for, check_key, models)

    @app.post("/v1/completions", tags=["openai"], dependencies=[Depends(check_key)])
    def completions(req: CompletionRequest):
        run, model_id = run_for(
            req, lambda loaded: C.completion_prompt_ids(loaded, req.prompt), req.logprobs or 0, "prompt"
        )
        if req.stream:
            return StreamingResponse(
                R.completion_stream(run, model_id, req.logprobs, req.include_usage()),
                media_type="text/event-stream",
                headers=STREAM_HEADERS,
            )
        return R.text_completion(run, model_id, req.logprobs)

    @app.post("/v1/embeddings", tags=["openai"], dependencies=[Depends(check_key)])
    def embeddings(req: EmbeddingRequest):
        texts = E.check_inputs(req.input)
        served = find_model(req.model, "embedding")
        loaded = load_served(served, settings.device, variant="sentence")
        E.check_dimensions(served.id, loaded, req.dimensions)
        vectors, tokens = E.embed_texts(loaded, texts, scheduler)
        return E.embeddings_response(served.id, vectors, tokens, req.encoding_format)

    @app.get("/", include_in_schema=False)
    def root() -> dict:
        links = {
            "docs": "/docs",
            "openapi": "/openapi.json",
            "health": "/health",
            "metrics": "/metrics",
            "models": "/v1/models",
        }
        return links | ({"gradio": "/gradio"} if settings.gradio else {})

    if settings.gradio:
        from backends.serving.gradio_demo import mount

        app = mount(app, settings)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
