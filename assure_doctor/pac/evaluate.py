"""Evaluate a PAC's FindProxyForURL for one URL, bounded in time, memory and output.

JavaScript can loop for ever and a thread cannot be killed, so the script runs in a short-lived
Python process (`_child.py`, pypac's PACFile on dukpy's QuickJS) that is killed at the
deadline. It starts with an environment of a few harmless variables (never the API key or a
proxy password), and its DNS lookups (dnsResolve, isResolvable, myIpAddress) go through the
operating system's resolver, as the integration's would; the deadline bounds them too, and a
PAC cut off while waiting for one is named with the name it was looking up.

`timeout` bounds the script, from the moment the evaluator has started (its start-up has a
bound of its own, STARTUP_LIMIT). Cost: one Python start-up plus pypac and dukpy, measured by
`python -m bench.pac_eval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from assure_doctor import logs, sanitize
from assure_doctor.pac.errors import PacEvalError, PacEvalTimeout
from assure_doctor.pac.fetch import PacScript
from assure_doctor.pac.rules import PacDecision, decision

log = logs.get("pac")
CHILD = Path(__file__).with_name("_child.py")
MEMORY_LIMIT = 256 * 1024 * 1024  # address space of the evaluating process (POSIX)
OUTPUT_LIMIT = 1024 * 1024  # its answer: a rule of at most 64 Ki characters, JSON-escaped
STARTUP_LIMIT = 15  # seconds for the evaluator to start, before the script's `timeout`
READY = b"ready\n"  # what the evaluator writes on stderr once it has started
STDERR_TAIL = 4096  # the end of its stderr, for the DNS lookup it may be waiting on
# What the child may see of our environment: enough to start Python and resolve names
# (Windows needs SYSTEMROOT), and the local time zone for timeRange(); nothing secret.
_ENVIRONMENT = ("PATH", "SYSTEMROOT", "WINDIR", "TEMP", "TMP", "TZ", "LANG",
                "LC_ALL", "LC_CTYPE", "LC_TIME")
_JS_TYPES = {"NoneType": "null or undefined", "int": "a number", "float": "a number",
             "bool": "a boolean", "list": "an array", "dict": "an object"}


@dataclass
class _Output:
    """What the child wrote, bounded: all of stdout up to a limit, the tail of stderr."""

    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    overflow: bool = False
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # READY seen on stderr


def pac_url(url: str) -> tuple[str, str]:
    """The URL FindProxyForURL is given (without userinfo or fragment) and its host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host


async def evaluate(script: PacScript, url: str, *, timeout: float) -> PacDecision:
    """FindProxyForURL(url, host) of `script`, as a decision; PacEvalError (PacEvalTimeout)
    when the script cannot be evaluated, fails, or returns no route."""
    location = script.location
    pac_target, host = pac_url(url)
    request = json.dumps({"script": script.text, "url": pac_target, "host": host,
                          "memory": MEMORY_LIMIT, "cpu": math.ceil(timeout) + 1}).encode()
    output = _Output()
    log.info("Evaluating %s for %s", location.named, sanitize.text(pac_target, 200))
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", str(CHILD), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={name: os.environ[name] for name in _ENVIRONMENT if name in os.environ})
    except OSError as exc:
        raise _error(script, f"cannot start the PAC evaluator ({exc.strerror})") from None
    exchange = asyncio.create_task(_exchange(process, request, output))
    try:
        await _started(script, exchange, output)
        start = time.perf_counter()  # the script's own time: `timeout` is about the PAC
        async with asyncio.timeout(timeout):
            await exchange
            await process.wait()
    except TimeoutError:
        waiting = waiting_on(bytes(output.stderr))
        why = f"waiting for DNS to answer for {waiting}" if waiting else "a loop?"
        log.warning("%s: no answer from FindProxyForURL within %g s (%s)", location.named,
                    timeout, why)
        what = f"FindProxyForURL did not return within {timeout:g} s ({why})"
        raise PacEvalTimeout(f"{location.named}: {what}", source=location.source.value,
                             url=location.shown, reason=what, waiting=waiting) from None
    finally:
        exchange.cancel()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await exchange
    ms = (time.perf_counter() - start) * 1000
    answer = _answer(script, output, process.returncode)
    try:
        found = decision(answer, location.source, location.shown, ms, script.ms)
    except PacEvalError as exc:
        raise _error(script, exc.message) from None
    log.info("%s chose %s for %s in %.0f ms", location.named, found.rule,
             sanitize.text(pac_target, 200), ms)
    return found


async def _started(script: PacScript, exchange: asyncio.Task[None], output: _Output) -> None:
    """Until the evaluator has loaded pypac and dukpy (or ended without): its start-up is not
    the script's time, and takes seconds on a busy or scanned machine."""
    ready = asyncio.create_task(output.ready.wait())
    try:
        done, _ = await asyncio.wait({ready, exchange}, timeout=STARTUP_LIMIT,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
    if not done:
        raise _error(script, f"the PAC evaluator did not start within {STARTUP_LIMIT} s")


async def _exchange(process: asyncio.subprocess.Process, request: bytes, output: _Output
                    ) -> None:
    assert process.stdin and process.stdout and process.stderr  # PIPEs, asked for above

    async def send() -> None:
        assert process.stdin
        with contextlib.suppress(ConnectionError):  # it died early: its exit code says why
            process.stdin.write(request)
            await process.stdin.drain()
            process.stdin.close()

    async def read_out(stream: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):  # a broken pipe ends the answer: it is judged whole
            while chunk := await stream.read(65536):
                if len(output.stdout) + len(chunk) > OUTPUT_LIMIT:
                    output.overflow = True
                    return
                output.stdout += chunk

    async def read_err(stream: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while chunk := await stream.read(65536):
                output.stderr += chunk
                if READY in output.stderr:
                    output.ready.set()
                del output.stderr[:-STDERR_TAIL]

    async with asyncio.TaskGroup() as group:
        group.create_task(send())
        group.create_task(read_out(process.stdout))
        group.create_task(read_err(process.stderr))


def waiting_on(stderr: bytes) -> str | None:
    """The name of a DNS lookup the child started and did not finish, sanitised."""
    lines = stderr.decode("utf-8", "replace").splitlines()
    last = next((line for line in reversed(lines) if line.startswith("dns-")), "")
    if not last.startswith("dns-start "):
        return None
    try:
        name = json.loads(last.removeprefix("dns-start "))
    except ValueError:
        return None
    return sanitize.text(name, 100) if isinstance(name, str) else None


def _error(script: PacScript, what: str) -> PacEvalError:
    location = script.location
    return PacEvalError(f"{location.named}: {what}", source=location.source.value,
                        url=location.shown, reason=what)


def _answer(script: PacScript, output: _Output, returncode: int | None) -> str:
    """The rule the child returned; PacEvalError saying why there is none."""
    if output.overflow:
        raise _error(script, f"the evaluator's answer was over {OUTPUT_LIMIT // 1024} KiB")
    try:
        answer = json.loads(bytes(output.stdout))
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise _error(script, f"the evaluator stopped without an answer (exit code "
                     f"{returncode})")
    rule = answer.get("rule")
    if isinstance(rule, str):
        return rule
    kind, message = answer.get("error"), str(answer.get("message", ""))
    first = sanitize.text(message.strip().split("\n", 1)[0], 160)
    if kind == "not_string":
        raise _error(script, "FindProxyForURL returned "
                     f"{_JS_TYPES.get(message, 'something')}, not a string")
    if "out of memory" in message or kind == "memory":
        raise _error(script, f"evaluating it ran out of memory (limit "
                     f"{MEMORY_LIMIT // (1024 * 1024)} MiB)")
    if kind == "internal":
        raise _error(script, f"the PAC evaluator failed ({first})")
    if "FindProxyForURLEx" in message and "not defined" in message:
        raise _error(script, "the script defines no FindProxyForURL function")
    if kind == "malformed" and first.startswith("SyntaxError"):
        hint = ""
        if script.content_type and "html" in script.content_type.lower():
            hint = f"; the server sent {script.content_type}: a login or error page?"
        raise _error(script, f"not a valid script ({first}){hint}")
    raise _error(script, f"FindProxyForURL failed ({first})")
