"""The API server inside this process: uvicorn on a thread, sharing the app's model cache and queue.

`ServerThread(settings, port=...)` starts with `start()` (or as a context manager) and stops with
`stop()`; tests, the benchmark and the serving page use it (`api_server()`: one with the API only,
as the Inference page's load runs start). `local_server()` is the one such server
of the Streamlit process: a server is a machine-wide thing (a port), so every session sees the
same one, started and stopped from the serving page.
"""

from __future__ import annotations

import socket
import threading
import time

from backends.core.shared import process_wide


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class ServerThread:
    def __init__(self, settings=None, host: str = "127.0.0.1", port: int | None = None):
        self.settings, self.host, self.port = settings, host, port
        self._server = self._thread = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and bool(self._server.started)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60) -> str:
        """Start (if not running) and wait until it accepts connections; returns the base URL."""
        import uvicorn

        from backends.serving.app import create_app

        with self._lock:
            if self.running:
                return self.url
            if self.port is None:
                self.port = free_port(self.host)
            elif not port_is_free(self.port, self.host):
                raise OSError(f"Port {self.port} on {self.host} is already in use: pick another port.")
            config = uvicorn.Config(create_app(self.settings), host=self.host, port=self.port, log_level="warning")
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._server.run, name=f"api-server-{self.port}", daemon=True)
            self._thread.start()
            deadline = time.monotonic() + timeout
            while not self._server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    self._server.should_exit = True
                    raise RuntimeError(f"The API server did not start on {self.url} within {timeout:g} s.")
                time.sleep(0.05)
            return self.url

    def stop(self, timeout: float = 15) -> None:
        with self._lock:
            if self._server is not None:
                self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout)
            self._server = self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def api_server(max_tokens: int | None = None, port: int | None = None) -> ServerThread:
    """A ServerThread with the API only (no Gradio demo, no API key), not started: for a page's own runs."""
    from backends.serving.app import ServerSettings

    cap = {} if max_tokens is None else {"max_tokens": max_tokens}
    return ServerThread(ServerSettings(gradio=False, **cap), port=port)


class LocalServer:
    """The process's one API server; `start(port, settings)` replaces a stopped one."""

    def __init__(self):
        self._lock = threading.Lock()
        self.current: ServerThread | None = None

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.running

    def start(self, port: int, settings=None) -> str:
        with self._lock:
            if self.running:
                if self.current.port == port:
                    return self.current.url
                raise OSError(f"The API server already runs on {self.current.url}: stop it first.")
            self.current = ServerThread(settings, port=port)
            return self.current.start()

    def stop(self) -> None:
        with self._lock:
            if self.current is not None:
                self.current.stop()
            self.current = None


local_server = process_wide(LocalServer)
