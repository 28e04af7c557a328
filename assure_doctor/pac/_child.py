"""Evaluate one PAC in a short-lived process: the parent (`evaluate`) can kill it at its
deadline, which a thread running JavaScript could not be.

Run as `python -I _child.py`: it imports nothing of assure-doctor, only pypac and dukpy (a
QuickJS interpreter). Reads `{"script", "url", "host", "memory", "cpu"}` as JSON on stdin,
writes `ready` on stderr once pypac and dukpy are loaded, and one JSON object on stdout:
`{"rule": ...}` or `{"error": KIND, "message": ...}`. Before and after each DNS lookup the
script makes (dnsResolve, isResolvable, myIpAddress, ...) it writes `dns-start "NAME"` /
`dns-end` on stderr, so a parent that gives up knows what the PAC was waiting for.

The script is hostile: it gets no environment (dukpy hands JavaScript `process.env`, which
would hold the API key) and no `require` (dukpy's reads files), and on POSIX the process is
capped in address space and CPU time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import socket
import sys
from collections.abc import Callable
from typing import Any

MAX_RULE_CHARS = 65536
_LOOKUPS = ("gethostbyname", "gethostbyname_ex", "getaddrinfo")


def _limit(memory: int, cpu: int) -> None:
    if sys.platform == "win32":  # no resource module: the parent's deadline is the only bound
        return
    import resource

    for kind, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, cpu)):
        # A hard limit already lower, or one the system does not enforce: leave it.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(kind, (value, value))


def _reported(lookup: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        name = args[0] if args else kwargs.get("host")
        sys.stderr.write(f"dns-start {json.dumps(str(name))}\n")
        sys.stderr.flush()
        try:
            return lookup(*args, **kwargs)
        finally:
            sys.stderr.write("dns-end\n")
            sys.stderr.flush()

    return wrapper


def _load_pypac() -> Any:
    """pypac's parser, without running pypac/__init__: it imports requests (~90 ms) for the
    parts of pypac that fetch over HTTP, which this process does not use."""
    spec = importlib.util.find_spec("pypac")
    if spec is None:
        raise ImportError("pypac is not installed")
    sys.modules["pypac"] = importlib.util.module_from_spec(spec)
    import dukpy

    class Bare(dukpy.JSInterpreter):  # type: ignore[misc]
        """An interpreter without `process.env` and without `require`."""

        def _init_process(self) -> None:
            pass

        def _init_require(self) -> None:
            pass

    dukpy.JSInterpreter = Bare  # pypac looks it up at each PACFile()
    import pypac.parser

    return pypac.parser


def evaluate(request: dict[str, Any]) -> dict[str, Any]:
    parser = _load_pypac()
    from dukpy import JSRuntimeError

    sys.stderr.write("ready\n")  # started: the parent's deadline for the script begins
    sys.stderr.flush()
    try:
        pac = parser.PACFile(request["script"])
    except parser.MalformedPacError as exc:
        return {"error": "malformed", "message": str(exc.original_exc or exc)}
    try:
        rule = pac.find_proxy_for_url(request["url"], request["host"])
    except JSRuntimeError as exc:
        return {"error": "runtime", "message": str(exc)}
    if not isinstance(rule, str):
        return {"error": "not_string", "message": type(rule).__name__}
    return {"rule": rule[:MAX_RULE_CHARS], "truncated": len(rule) > MAX_RULE_CHARS}


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    _limit(int(request["memory"]), int(request["cpu"]))
    for name in _LOOKUPS:
        setattr(socket, name, _reported(getattr(socket, name)))
    # Nothing but our markers on stderr: the script's console.log and console.error (dukpy
    # logs them) must not pass for a lookup in progress.
    logging.disable(logging.CRITICAL)
    try:
        answer = evaluate(request)
    except MemoryError:
        answer = {"error": "memory", "message": "out of memory"}
    except Exception as exc:  # a failure of pypac or dukpy themselves, reported, not raised
        answer = {"error": "internal", "message": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
