"""A real local OpenAI-compatible HTTP server for tests: it streams server-sent events the way
the OpenAI chat completions API does, and fails the ways real servers fail. The `server`
fixture (registered in tests/conftest.py) yields its base URL."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

KEY = "sk-test-0123456789SECRET"
ANSWER_PIECES = ["Ingrid", " Halvorsen", " founded", " it", " [1]."]


class Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list] = []  # every request the server saw, for the tests to read

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, status, body: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _events(self, events, done=True):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b": keep-alive\n\n")
        for event in events:
            data = event if isinstance(event, str) else json.dumps(event)
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()
        if done:
            self.wfile.write(b"data: [DONE]\n\n")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.path != "/v1/chat/completions":
            return self._send(404, b'{"error": {"message": "Not found"}}', "application/json")
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            # Real servers echo (part of) a wrong key; ours echoes all of it to prove it is redacted.
            msg = {"error": {"message": f"Incorrect API key provided: {self.headers.get('Authorization')}"}}
            return self._send(401, json.dumps(msg).encode(), "application/json")
        model = body["model"]

        def chunk(content=None, finish=None):
            return {
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [
                    {"index": 0, "delta": {} if content is None else {"content": content}, "finish_reason": finish}
                ],
            }

        if model == "missing":
            return self._send(404, b'{"error": {"message": "The model `missing` does not exist"}}', "application/json")
        if model == "slow":
            time.sleep(2)
        if model == "broken":
            return self._events([chunk("Hel"), "{not json"])
        if model == "cut":
            return self._events([chunk("Hel"), chunk("lo")], done=False)
        if model == "html":
            return self._send(200, b"<html><body>Welcome to my web UI</body></html>", "text/html")
        if model == "plain":
            whole = {"choices": [{"message": {"role": "assistant", "content": "all at once"}}]}
            return self._send(200, json.dumps(whole).encode(), "application/json")
        if model == "rewriter":
            return self._events(
                [chunk('Standalone question: "When was the Aurora station founded?"\nMore.'), chunk(finish="stop")]
            )
        if model == "mute":
            return self._events([chunk(finish="stop")])
        role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        self._events([role, *(chunk(p) for p in ANSWER_PIECES), chunk(finish="stop")])


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()
