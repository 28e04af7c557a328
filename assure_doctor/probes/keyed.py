"""The connection the ping sends the key over: the one the earlier stages verified, kept.

A fresh connection would cost a second TCP and TLS handshake, so the ping first takes the
verified stream the earlier stages handed over, and keeps it between attempts while the
server keeps it open. Only when there is none, or the server has closed it, is a new one
opened with the same opener (same address, SNI and verifying context). Either way the key
travels only over a connection verified with the check's context: a stream whose TLS was set
up with any other context is refused.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

from assure_doctor.probes.results import Stream

Opener = Callable[[], Awaitable[Stream]]


class NotConnected(Exception):
    """No verified connection could be opened; the low-level error is its `__cause__`."""


def verified(stream: Stream, context: ssl.SSLContext, server_hostname: str) -> bool:
    """Whether a stream is open and its TLS was verified with `context` for that name."""
    reader, writer = stream
    ssl_object = writer.get_extra_info("ssl_object")
    return (ssl_object is not None and ssl_object.context is context
            and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
            and ssl_object.server_hostname == server_hostname
            and not reader.at_eof() and not writer.transport.is_closing())


class KeyedConnection:
    """The handed-over stream first, then fresh ones from `opener`; one at a time."""

    def __init__(self, first: Stream | None, opener: Opener, verify_context: ssl.SSLContext,
                 server_hostname: str) -> None:
        self._first = first
        self._idle: Stream | None = None  # ours, after a response read to its end
        self._opener = opener
        self._context = verify_context
        self._hostname = server_hostname
        self.connecting = False  # True while a new connection is being opened
        self.reused = 0  # handed-over connections used
        self.opened = 0  # connections this stage opened

    async def stream(self) -> Stream:
        """A verified, open stream for the next request (NotConnected, or TimeoutError while
        connecting, when none can be had)."""
        idle, self._idle = self._idle, None
        if idle is not None and verified(idle, self._context, self._hostname):
            return idle
        _abort(idle)
        first, self._first = self._first, None
        if first is not None and verified(first, self._context, self._hostname):
            self.reused += 1
            return first
        _abort(first)
        self.connecting = True  # stays True if the attempt's deadline cancels us here
        try:
            stream = await self._opener()
        except TimeoutError:
            raise
        except OSError as exc:  # ssl.SSLError included
            self.connecting = False
            raise NotConnected("no connection") from exc
        self.connecting = False
        if not verified(stream, self._context, self._hostname):
            _abort(stream)
            raise NotConnected("the new connection is not verified")
        self.opened += 1
        return stream

    def keep(self, stream: Stream) -> None:
        """The response was read to its end and the stream may carry the next request."""
        self._idle = stream

    def release(self) -> None:
        """Close whatever this connection still holds."""
        for stream in (self._first, self._idle):
            _abort(stream)
        self._first = self._idle = None


def _abort(stream: Stream | None) -> None:
    # No close_notify exchange: a hostile server could hold it open forever.
    if stream is not None:
        stream[1].transport.abort()
