"""The exporter's HTTP side: /metrics from memory, / a page linking to it.

Rendering 50 targets' series takes milliseconds of Python, and a busy probe loop holds the
GIL, so the exposition is rendered in the background whenever a snapshot changes (at most
every REFRESH seconds; Prometheus scrapes every 15 s or so) and a scrape only copies the
latest bytes out: it never waits for a probe, nor for a rendering.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Hashable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from assure_doctor import __version__, logs
from assure_doctor.errors import InputError

REFRESH = 1.0
PAGE = """<!doctype html><html><head><title>assure-doctor monitor</title></head>
<body><h1>assure-doctor monitor {version}</h1>
<p>Watching the Evotix Assure Customer API. Prometheus scrapes <a href="/metrics">/metrics</a>.
</p></body></html>
"""
log = logs.get("exporter")


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT (all interfaces)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InputError(f"--listen {text!r}: give HOST:PORT, e.g. 127.0.0.1:9464")
    return host or "0.0.0.0", int(port)


class Exposition:
    """The latest text exposition of a registry, re-rendered when `version()` changes."""

    def __init__(self, registry: CollectorRegistry, version: Callable[[], Hashable]) -> None:
        self.registry = registry
        self.version = version
        self._rendered: tuple[Hashable, bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, name="exposition", daemon=True)

    def latest(self) -> bytes:
        rendered = self._rendered
        if rendered is None:
            rendered = self._render()
        return rendered[1]

    def _render(self) -> tuple[Hashable, bytes]:
        version = self.version()
        self._rendered = (version, generate_latest(self.registry))
        return self._rendered

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH):
            rendered = self._rendered
            if rendered is None or rendered[0] != self.version():
                try:
                    self._render()
                except Exception:  # a rendering bug must not stop the refreshing
                    log.exception("Rendering the metrics failed")

    def start(self) -> None:
        self._render()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
        pass


class Exporter:
    """Serve /metrics and / on HOST:PORT in background threads."""

    def __init__(self, exposition: Exposition, listen: str) -> None:
        self.exposition = exposition
        host, port = parse_listen(listen)
        server_class = _Server6 if ":" in host else _Server
        try:
            self.server = make_server(host, port, self._app, server_class, _QuietHandler)
        except OSError as exc:
            raise InputError(f"--listen {listen}: cannot listen ({exc.strerror})") from None
        self.thread = threading.Thread(target=self.server.serve_forever, name="exporter",
                                       daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.exposition.start()
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.exposition.stop()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]
             ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            body = self.exposition.latest()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST),
                                      ("Content-Length", str(len(body)))])
            return [body]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [PAGE.format(version=__version__).encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics\n"]
