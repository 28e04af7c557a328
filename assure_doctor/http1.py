"""HTTP/1.1 over asyncio streams, framed by h11: the one reader of message heads and bodies.

The proxy stage's CONNECT, the clock stage's GET, the keyed ping and the exporter's server
all read what a peer sent through here. h11 parses (status and request lines, fields,
Content-Length, chunked coding, keep-alive); this module bounds it: a head may not exceed its
limit however it arrives (counted here, not only by h11, which checks only incomplete heads),
a body is capped, and at most a few interim (1xx) answers are skipped. Time is the caller's: one
deadline around the whole exchange (`asyncio.timeout`).

A peer that breaks the protocol raises `Malformed`, one that sends too much `TooLarge`, one
that hangs up before its message ends `Closed`: all are `HttpError`, and none carries what
the peer sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import h11

from assure_doctor import numbers

READ_SIZE = 16384
MAX_INTERIM = 8  # 1xx answers skipped before the final one
_SAMPLE = 80  # the first bytes a peer sent, kept to say what it spoke when it was not HTTP
_NO_BODY = {204, 304}


class HttpError(Exception):
    """What the peer sent cannot be taken as HTTP/1.x; `status` is a server's answer to it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Malformed(HttpError):
    """Not HTTP/1.x: a bad start line, field or framing (501: a transfer coding we lack)."""


class TooLarge(HttpError):
    """A head over its limit (431), or a body over its cap (413)."""


class Closed(HttpError):
    """The peer closed the connection before its message ended."""


@dataclass(frozen=True)
class Fields:
    """Header fields in order: names lower-cased, values as Latin-1 text (any byte maps)."""

    items: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str | None:
        """The field's value, repeats joined with ", " (RFC 9110 5.3); None when absent."""
        values = self.all(name)
        return ", ".join(values) if values else None

    def all(self, name: str) -> list[str]:
        """Every value of the field, in order."""
        return [value for key, value in self.items if key == name]

    def as_dict(self) -> dict[str, str]:
        joined: dict[str, str] = {}
        for key, value in self.items:
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        return joined


@dataclass(frozen=True)
class ResponseHead:
    """A response's status line and fields (the reason as sent: sanitise before showing)."""

    status: int
    reason: str
    version: str
    fields: Fields
    close_delimited: bool  # the body runs until the server closes: never reusable


@dataclass(frozen=True)
class RequestHead:
    """A request's line and fields."""

    method: str
    target: str
    version: str
    fields: Fields

    @property
    def content_length(self) -> int | None:
        """The Content-Length h11 accepted (one value, ASCII digits); None: chunked or none."""
        values = self.fields.all("content-length")
        return numbers.whole(values[0], 0, 10**20) if values else None


def _fields(headers: Iterable[tuple[bytes, bytes]]) -> Fields:
    return Fields(tuple((bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
                        for name, value in headers))


def _text(value: bytes | bytearray) -> str:
    return bytes(value).decode("latin-1")


class _Peer:
    """One side of an h11 connection over an asyncio stream."""

    def __init__(self, connection: h11.Connection, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, head_limit: int) -> None:
        self._h11 = connection
        self._reader = reader
        self._writer = writer
        self._head_limit = head_limit
        self._head_fed = 0  # bytes fed since the current head began
        self.sample = b""  # the first bytes the peer sent

    async def _next(self, head: bool) -> object:
        """The next h11 event, reading as needed; within a head, at most its limit."""
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                if exc.error_status_hint == 431:
                    raise TooLarge(f"a head over {self._head_limit} bytes", 431) from None
                if self._h11.their_state is h11.ERROR and self._closed():
                    raise Closed("the peer closed the connection mid-message") from None
                raise Malformed("not an HTTP/1.x message", exc.error_status_hint) from None
            if event is not h11.NEED_DATA:
                if head:
                    self._head_fed = 0
                return event
            size = READ_SIZE
            if head:
                if self._head_fed > self._head_limit:
                    raise TooLarge(f"a head over {self._head_limit} bytes", 431)
                size = min(size, self._head_limit + 1 - self._head_fed)
            data = await self._reader.read(size)
            if len(self.sample) < _SAMPLE:
                self.sample += data[: _SAMPLE - len(self.sample)]
            if head:
                self._head_fed += len(data)
            self._h11.receive_data(data)  # b"": the peer closed; h11 decides what that ends

    def _closed(self) -> bool:
        return self._h11.trailing_data[1]

    async def chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        event = await self._next(head=False)
        if isinstance(event, h11.Data):
            return bytes(event.data)
        if isinstance(event, h11.EndOfMessage):
            return None
        if isinstance(event, h11.ConnectionClosed):
            raise Closed("the peer closed the connection mid-message")
        raise Malformed("an unexpected message")

    async def body(self, cap: int) -> bytes:
        """The whole body, at most `cap` bytes (TooLarge beyond: stop reading, drop it)."""
        body = bytearray()
        while (piece := await self.chunk()) is not None:
            body += piece
            if len(body) > cap:
                raise TooLarge(f"a body over {cap} bytes", 413)
        return bytes(body)


class Client(_Peer):
    """Our request, then the server's response, on one stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 head_limit: int) -> None:
        super().__init__(h11.Connection(h11.CLIENT, max_incomplete_event_size=head_limit),
                         reader, writer, head_limit)
        self._method = ""

    def send_request(self, method: str, target: str, fields: list[tuple[str, str]]) -> None:
        """Write a request without a body (the caller drains, within its deadline)."""
        self._method = method
        data = self._h11.send(h11.Request(method=method, target=target, headers=fields))
        data = (data or b"") + (self._h11.send(h11.EndOfMessage()) or b"")
        self._writer.write(data)

    async def response(self) -> ResponseHead:
        """The final response's head (interim 1xx answers skipped)."""
        for _ in range(MAX_INTERIM + 1):
            event = await self._next(head=True)
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                fields = _fields(event.headers)
                framed = (fields.get("content-length") is not None
                          or fields.get("transfer-encoding") is not None
                          or event.status_code in _NO_BODY or self._method == "HEAD"
                          or (self._method == "CONNECT" and 200 <= event.status_code < 300))
                return ResponseHead(event.status_code, _text(event.reason),
                                    _text(event.http_version), fields, not framed)
            if isinstance(event, h11.ConnectionClosed):
                raise Closed("the server closed the connection without an answer")
            raise Malformed("not an HTTP/1.x response")
        raise Malformed(f"more than {MAX_INTERIM} interim answers")

    @property
    def reusable(self) -> bool:
        """Whether the stream can carry another request: both messages complete, keep-alive,
        and nothing unasked-for sent after the response."""
        return (self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE
                and self._h11.trailing_data == (b"", False))


class Server(_Peer):
    """Requests in, responses out, on one client's stream (keep-alive handled by h11)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 head_limit: int) -> None:
        super().__init__(h11.Connection(h11.SERVER, max_incomplete_event_size=head_limit),
                         reader, writer, head_limit)

    async def request(self) -> RequestHead:
        """The next request's head; Closed when the client hung up between requests."""
        event = await self._next(head=True)
        if isinstance(event, h11.Request):
            return RequestHead(_text(event.method), _text(event.target),
                               _text(event.http_version), _fields(event.headers))
        if isinstance(event, h11.ConnectionClosed):
            raise Closed("the client closed the connection")
        raise Malformed("not an HTTP/1.x request")

    async def respond(self, status: int, reason: str, fields: list[tuple[str, str]],
                      body: bytes, *, head_only: bool = False, close: bool = False) -> bool:
        """Write a response and drain it; True when the connection may carry another
        request. `close` ends it after this answer (an error the client caused)."""
        if close:
            fields = [*fields, ("Connection", "close")]
        fields = [*fields, ("Content-Length", str(len(body)))]
        response = h11.Response(status_code=status, headers=fields, reason=reason.encode())
        data = self._h11.send(response) or b""
        if body and not head_only:
            data += self._h11.send(h11.Data(data=body)) or b""
        data += self._h11.send(h11.EndOfMessage()) or b""
        self._writer.write(data)
        await self._writer.drain()
        if close or self._h11.our_state is not h11.DONE or self._h11.their_state is not h11.DONE:
            return False
        self._h11.start_next_cycle()
        return True


def parse_request_head(head: bytes, limit: int = 65536) -> RequestHead | None:
    """A request head already read whole (the sandbox's servers), or None when it is not one."""
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=limit)
    connection.receive_data(head[: limit + 1])
    try:
        event = connection.next_event()
    except h11.RemoteProtocolError:
        return None
    if not isinstance(event, h11.Request):
        return None
    return RequestHead(_text(event.method), _text(event.target), _text(event.http_version),
                       _fields(event.headers))
