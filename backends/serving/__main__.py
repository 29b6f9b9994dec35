"""`python -m backends.serving [--host H] [--port P] [--no-gradio]`: the API server (what `make serve` runs)."""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m backends.serving",
        description="OpenAI-compatible API (+ Gradio demo at /gradio) over the LLM Playground's models.",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("LLMPG_SERVE_HOST", "127.0.0.1"),
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("LLMPG_SERVE_PORT", "8000")))
    parser.add_argument("--no-gradio", action="store_true", help="serve the API only")
    args = parser.parse_args(argv)

    import uvicorn

    from backends.core.memory import tune_allocator
    from backends.serving.app import ServerSettings, create_app

    tune_allocator()
    app = create_app(ServerSettings.from_env(gradio=not args.no_gradio))
    print(
        f"LLM Playground API on http://{args.host}:{args.port}/v1  (docs: /docs, metrics: /metrics"
        f"{', demo: /gradio' if not args.no_gradio else ''})",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
