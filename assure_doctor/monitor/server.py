"""The exporter's HTTP side: /metrics from the registry, / a page linking to it.

It runs in its own threads, so a scrape is answered from memory while probes run.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from assure_doctor import __version__
from assure_doctor.errors import InputError

PAGE = """<!doctype html><html><head><title>assure-doctor monitor</title></head>
<body><h1>assure-doctor monitor {version}</h1>
<p>Watching the Evotix Assure Customer API. Prometheus scrapes <a href="/metrics">/metrics</a>.
</p></body></html>
"""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
        pass


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT (all interfaces)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InputError(f"--listen {text!r}: give HOST:PORT, e.g. 127.0.0.1:9464")
    return host or "0.0.0.0", int(port)


def _app(registry: CollectorRegistry) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [PAGE.format(version=__version__).encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics\n"]

    return app


class Exporter:
    """Serve the registry on HOST:PORT in a background thread."""

    def __init__(self, registry: CollectorRegistry, listen: str) -> None:
        host, port = parse_listen(listen)
        server_class = _Server6 if ":" in host else _Server
        try:
            self.server = make_server(host, port, _app(registry), server_class, _QuietHandler)
        except OSError as exc:
            raise InputError(f"--listen {listen}: cannot listen ({exc.strerror})") from None
        self.thread = threading.Thread(target=self.server.serve_forever, name="exporter",
                                       daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
