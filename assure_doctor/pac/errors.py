"""What can go wrong with a PAC, httpx-style: one base class, and the two ways it fails.

    PacError                  (DoctorError)
    ├── PacFetchError         the script could not be fetched or read
    │   └── PacFetchTimeout   ... within the time allowed          (also a PacTimeout)
    ├── PacEvalError          the script could not be evaluated for the URL
    │   └── PacEvalTimeout    ... within the time allowed          (also a PacTimeout)
    └── PacTimeout            either of the two timeouts

Each message is one line, sanitised, and never carries a PAC URL's password: the proxy stage
can show it as it is, and word each class as its own `proxy` cause.
"""

from __future__ import annotations

from assure_doctor import sanitize
from assure_doctor.errors import DoctorError

MESSAGE_LIMIT = 240


class PacError(DoctorError):
    """A PAC that cannot be used. `source` and `url` (masked) name the PAC, when known;
    `reason` is what went wrong without naming the PAC (the message names it too)."""

    def __init__(self, message: str, *, source: str | None = None, url: str | None = None,
                 reason: str | None = None) -> None:
        self.message = _line(message)
        self.source = source
        self.url = url
        self.reason = self.message if reason is None else _line(reason)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class PacFetchError(PacError):
    """The PAC could not be fetched (HTTP, TLS, DNS, size) or read from its file."""


class PacEvalError(PacError):
    """The PAC was fetched, but evaluating FindProxyForURL failed or returned no route."""


class PacTimeout(PacError):
    """Fetching or evaluating the PAC took longer than allowed."""


class PacFetchTimeout(PacFetchError, PacTimeout):
    """Fetching the PAC took longer than allowed."""


class PacEvalTimeout(PacEvalError, PacTimeout):
    """Evaluating the PAC took longer than allowed (a loop, or a slow dnsResolve). `waiting`:
    the name a DNS lookup of the script was waiting on when it was cut, when it was."""

    def __init__(self, message: str, *, source: str | None = None, url: str | None = None,
                 reason: str | None = None, waiting: str | None = None) -> None:
        super().__init__(message, source=source, url=url, reason=reason)
        self.waiting = None if waiting is None else sanitize.text(waiting, 100)


def _line(text: str) -> str:
    return sanitize.text(" ".join(text.split()), MESSAGE_LIMIT)
