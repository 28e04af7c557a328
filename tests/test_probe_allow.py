"""`/probe` as an allow-list: no open relay, no port scanner, no use of the proxy's password.

The decision is made from the URL alone: a target off the list gets 403 and nothing is
looked up or connected to. A real monitor process proves it with listening sockets that
would see the attempt: TCP listeners (a loopback "service" and an authenticated proxy) that
accept nothing, a UDP "resolver" that receives nothing, while an allowed probe to another
listener, made after them, does connect.
"""

from __future__ import annotations

import contextlib
import select
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from assure_doctor import redact
from assure_doctor.errors import InputError
from assure_doctor.monitor import allow
from assure_doctor.monitor.probe import NotAllowed, Prober
from assure_doctor.options import CheckOptions
from tests.conftest import clean_env
from tests.monitoring import MonitorProcess

CONFIGURED = "https://127.0.0.1:9/v1/ping"  # nothing listens: the monitor's own checks fail fast


# --- the rule ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("entries", "host", "port", "allowed"), [
    ([], "api.uk2.sheassure.net", 443, True),
    ([], "API.UK2.SHEASSURE.NET.", 8443, True),  # any port, any case, a trailing dot
    ([], "sheassure.net", 443, True),
    ([], "evilsheassure.net", 443, False),
    ([], "sheassure.net.evil.example", 443, False),
    ([], "127.0.0.1", 443, False),
    ([], "10.0.0.1", 22, False),
    ([], "::1", 443, False),
    (["intranet.example"], "intranet.example", 8443, True),  # a host alone: any port
    (["intranet.example:443"], "intranet.example", 8443, False),
    (["intranet.example:443"], "intranet.example", 443, True),
    (["[::1]:9443"], "0:0::1", 9443, True),  # addresses compared in their short form
    (["127.0.0.1:9443"], "127.0.0.2", 9443, False),
])
def test_the_allow_list(entries: list[str], host: str, port: int, allowed: bool) -> None:
    assert allow.permits([allow.parse(entry) for entry in entries], host, port) is allowed


@pytest.mark.parametrize("text", ["", "  ", "host/path", "user@host", "host:99999", "host:²",
                                  "host:0", "::1", "[::1", "a b", "https://host"])
def test_bad_allow_entries_are_refused_without_echo(text: str) -> None:
    with pytest.raises(InputError, match=r"--probe\.allow") as caught:
        allow.parse(text)
    assert text.strip() == "" or text not in str(caught.value)


def test_a_strangers_password_is_refused_unread() -> None:
    """A /probe parameter comes from whoever reaches the exporter: its password is not
    registered as a secret (a flood of them would slow and blank every log line)."""
    prober = Prober(lambda: [], CheckOptions())
    with pytest.raises(InputError, match="credentials"):
        prober.resolve("https://u:Unregistered-Pw0rd@api.uk2.sheassure.net/v1/ping")
    assert redact.scrub("Unregistered-Pw0rd") == "Unregistered-Pw0rd"
    with pytest.raises(NotAllowed):
        prober.resolve("https://127.0.0.1:22/")
    assert prober.resolve("https://api.uk2.sheassure.net/v1/ping")[1].port == 443


# --- a real monitor ---------------------------------------------------------------------------
@contextlib.contextmanager
def listening() -> Iterator[socket.socket]:
    """A TCP listener on loopback that accepts nothing by itself."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def attempted(sock: socket.socket) -> bool:
    """Whether anything connected (a listener with a pending connection is readable) or, for
    UDP, anything arrived."""
    return bool(select.select([sock], [], [], 0)[0])


def probe(monitor: MonitorProcess, target: str) -> tuple[int, str]:
    url = (f"http://127.0.0.1:{monitor.port}/probe?"
           f"{urllib.parse.urlencode({'target': target})}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.slow
def test_probe_refuses_what_is_not_allowed_before_any_connection_or_lookup(
        tmp_path: Path) -> None:
    with listening() as service, listening() as proxy, listening() as allowed, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as resolver:
        resolver.bind(("127.0.0.1", 0))
        args = ["--url", CONFIGURED, "--no-ping", "--timeout", "2", "--interval", "3600",
                "--resolver", f"127.0.0.1:{port_of(resolver)}",
                "--probe.allow", f"127.0.0.1:{port_of(allowed)}"]
        # The operator's authenticated proxy; the configured target itself goes direct.
        env = clean_env(HTTPS_PROXY=f"http://operator:Pr0xyPassw0rd@127.0.0.1:{port_of(proxy)}",
                        NO_PROXY="127.0.0.1:9")
        monitor = MonitorProcess(args, tmp_path / "state", env)
        try:
            for target in (f"https://127.0.0.1:{port_of(service)}/",
                           f"https://localhost:{port_of(service)}/",
                           "https://intranet.example/", "https://10.1.2.3:22/",
                           f"https://[::1]:{port_of(service)}/"):
                status, body = probe(monitor, target)
                assert status == 403, (target, status, body)
                assert "not allowed" in body and target not in body
            # Allowed: this one is made, through the proxy (which answers nothing).
            status, _ = probe(monitor, f"https://127.0.0.1:{port_of(allowed)}/")
            assert status == 200
            connection, _ = proxy.accept()
            with connection:
                connection.settimeout(10)
                request = connection.recv(4096)
            assert request.startswith(f"CONNECT 127.0.0.1:{port_of(allowed)} ".encode())
            assert b"Proxy-Authorization: Basic" in request  # its credentials: allowed only
            # The configured target is allowed too.
            assert probe(monitor, CONFIGURED)[0] == 200
        finally:
            monitor.stop()
        assert not attempted(proxy)  # the one CONNECT above was the proxy's only use
        assert not attempted(service)  # no connection was ever made to it
        assert not attempted(resolver)  # nor any name looked up
        assert not attempted(allowed)  # the proxy, not the target, got the allowed probe


@pytest.mark.slow
def test_probe_answers_400_for_what_is_not_a_target(tmp_path: Path) -> None:
    monitor = MonitorProcess(["--url", CONFIGURED, "--no-ping", "--interval", "3600"],
                             tmp_path / "state")
    try:
        for bad in ("http://plain.example/", "nobody", "https://",
                    "https://u:Pw0rd@x.sheassure.net/"):
            status, body = probe(monitor, bad)
            assert status == 400, (bad, status, body)
            assert "Pw0rd" not in body
    finally:
        monitor.stop()
