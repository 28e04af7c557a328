"""The exporter's HTTP side: /metrics from memory, the exporter conventions' /-/ paths, and
/probe (blackbox_exporter's multi-target pattern).

Rendering 50 targets' series takes milliseconds of Python, and a busy probe loop holds the
GIL, so the exposition is rendered in the background whenever a snapshot changes (at most
every REFRESH seconds; Prometheus scrapes every 15 s or so) and a scrape only copies the
latest bytes out: it never waits for a probe, nor for a rendering.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Protocol, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from assure_doctor import __version__, logs, sanitize
from assure_doctor.errors import InputError
from assure_doctor.monitor.probe import Busy, NotAllowed
from assure_doctor.monitor.web import MAX_CONNECTIONS, Request, Response, WebServer, text
from assure_doctor.monitor.webconfig import WebConfigFile

REFRESH = 1.0
PAGE = """<!doctype html><html><head><title>assure-doctor monitor</title></head>
<body><h1>assure-doctor monitor {version}</h1>
<p>Watching the Evotix Assure Customer API. Prometheus scrapes <a href="/metrics">/metrics</a>;
<a href="/-/healthy">/-/healthy</a>, <a href="/-/ready">/-/ready</a>, <code>POST /-/reload</code>,
<code>/probe?target=NAME_OR_URL</code> (the network stages, now, with no key).</p>
</body></html>
"""
PROBE_WAIT = 120.0  # the longest a /probe answer may take, whatever the target's timeouts
log = logs.get("exporter")
T = TypeVar("T")


class Backend(Protocol):
    """What the web side asks of the monitor; the coroutines run on the monitor's loop."""

    loop: asyncio.AbstractEventLoop

    def waiting_for(self) -> tuple[str, ...]:
        """Targets whose first network cycle has not finished yet."""
        ...

    async def reload(self) -> str:
        """Re-read --config; a one-line summary, or InputError saying why not."""
        ...

    async def probe(self, target: str) -> bytes:
        """The network stages of one target, now, as an exposition; InputError: bad target,
        NotAllowed: a URL off the allow-list (nothing was looked up or connected to)."""
        ...


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


class Exporter:
    """The routes of the monitor's web interface, served by a `WebServer`."""

    def __init__(self, exposition: Exposition, listen: str, backend: Backend,
                 web_config: WebConfigFile | None = None,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.exposition = exposition
        self.backend = backend
        self.server = WebServer(listen, self._route, web_config or WebConfigFile(None),
                                max_connections)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        self.exposition.start()
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.exposition.stop()

    async def _on_monitor(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.backend.loop)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        finally:
            future.cancel()

    async def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/-/reload":
            if method != "POST":
                return Response(405, b"use POST\n", headers=(("Allow", "POST"),))
            try:
                return text(200, await self._on_monitor(self.backend.reload(), 30))
            except InputError as exc:
                return text(500, f"reload failed, the running config is kept: {exc}")
        if method not in ("GET", "HEAD"):
            return Response(405, b"use GET\n", headers=(("Allow", "GET, HEAD"),))
        if path == "/metrics":
            return Response(200, self.exposition.latest(), CONTENT_TYPE_LATEST)
        if path == "/probe":
            return await self._probe(request)
        if path == "/-/healthy":
            return text(200, "Healthy")
        if path == "/-/ready":
            waiting = self.backend.waiting_for()
            if waiting:
                names = sanitize.text(", ".join(waiting), 200)
                return text(503, f"Not ready: waiting for the first network cycle of {names}")
            return text(200, "Ready")
        if path == "/":
            return Response(200, PAGE.format(version=__version__).encode(),
                            "text/html; charset=utf-8")
        return text(404, "not found: try /metrics")

    async def _probe(self, request: Request) -> Response:
        values = request.query.get("target", [])
        if len(values) != 1 or not values[0]:
            return text(400, "give exactly one target: /probe?target=NAME_OR_URL")
        try:
            body = await self._on_monitor(self.backend.probe(values[0]), PROBE_WAIT)
        except NotAllowed as exc:
            return text(403, str(exc))
        except InputError as exc:
            return text(400, str(exc))
        except Busy:
            return text(429, "too many probes at once; try again shortly")
        except TimeoutError:
            return text(503, "the probe did not finish in time")
        return Response(200, body, CONTENT_TYPE_LATEST)
