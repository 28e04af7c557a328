"""`check` against hostile servers on loopback: every answer bounded, sanitised, key-free.

Each server presents a certificate the check trusts, so the key is sent and the keyed
request's answer is the hostile part (or the clock's keyless one).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests import hostile
from tests.conftest import Run, clean_env, run_cli
from tests.hostile import KEY, HostileServer, dribbles, endless_chunks, head, sends

pytestmark = pytest.mark.slow  # hostile servers against whole checks in processes

QUICK = ["--retry-pause", "0.1"]
# Runs `check` in this process after the imports, and reports its peak RSS over that floor.
_MEASURED = """
import json, resource, sys
import assure_doctor.cli, assure_doctor.engine, h11
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = assure_doctor.cli.main(sys.argv[1:])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sys.stderr.write("\\nRSS " + json.dumps({"base_kib": base, "peak_kib": peak}) + "\\n")
raise SystemExit(code)
"""
MAX_GROWTH_KIB = 100 * 1024


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[HostileServer] = []

    def start(**behaviours: hostile.Behaviour) -> HostileServer:
        server = HostileServer(**behaviours).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def measured(*args: str) -> tuple[Run, int]:
    """`check` in a subprocess, and how far its peak RSS grew past the imports (KiB)."""
    import time

    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _MEASURED, "check", *args],
                          capture_output=True, text=True, env=clean_env(), timeout=120)
    run = Run(done.returncode, done.stdout, done.stderr, time.monotonic() - start)
    figures = json.loads(run.stderr.rsplit("RSS ", 1)[1])
    return run, figures["peak_kib"] - figures["base_kib"]


def stages(run: Run) -> dict[str, dict[str, Any]]:
    return {stage["name"]: stage for stage in run.json()["stages"]}


def assert_clean(run: Run) -> None:
    """No traceback, no raw escape or bell, and no key, anywhere the check wrote."""
    for text in (run.stdout, run.stderr):
        assert "Traceback" not in text
        assert "\x1b" not in text and "\x07" not in text
        assert KEY not in text


def test_a_superscript_retry_after_is_no_number(serve: Any) -> None:
    server = serve(keyed=sends(head("429 Too Many Requests", raw=b"Retry-After: \xb2\r\n")))
    run = run_cli("check", *server.check_args(), "--json", "--retries", "1", *QUICK)
    assert_clean(run)
    ping = stages(run)["ping"]
    assert run.returncode == 1 and ping["condition"] == "http_throttled"
    assert ping["evidence"]["attempts"] == 2 and "retry_after" not in ping["evidence"]


def test_a_huge_retry_after_stops_the_retries(serve: Any) -> None:
    server = serve(keyed=sends(head("429 Too Many Requests", {"Retry-After": "9" * 5000})))
    run = run_cli("check", *server.check_args(), "--json", *QUICK)
    assert_clean(run)
    assert stages(run)["ping"]["evidence"]["attempts"] == 1 and server.seen.keyed == 1


def test_a_superscript_status_in_the_clock_stage(serve: Any) -> None:
    server = serve(keyless=sends(head("200 OK", raw=b"X: y\r\n").replace(b"200", b"\xb2\xb2\xb2")))
    run = run_cli("check", *server.check_args(), "--json")
    assert_clean(run)
    found = stages(run)
    assert run.returncode == 0, found
    clock = found["clock"]  # no status, no HTTP: its Date is no evidence of the server's clock
    assert clock["status"] == "skip" and "not HTTP/1.1" in clock["evidence"]["error"], clock
    assert server.seen.connections == 2  # an unreadable answer: the ping starts afresh


def test_dribbled_headers_end_within_the_timeout(serve: Any) -> None:
    slow = dribbles(head("200 OK", body=b"{}"), every=1.0)
    server = serve(keyed=slow, keyless=slow)
    run = run_cli("check", *server.check_args(), "--json", "--timeout", "2", "--retries", "1",
                  *QUICK, timeout=60)
    assert_clean(run)
    found = stages(run)
    assert found["clock"]["duration_ms"] < 2000 + 300
    assert found["ping"]["condition"] == "http_timeout"
    assert found["ping"]["duration_ms"] < 2 * (2000 + 100) + 500  # attempts x (timeout + pause)
    assert run.seconds < 15  # today: more than a minute


@pytest.mark.parametrize("status", ["200 OK", "500 Internal Server Error"])
def test_an_endless_chunked_body_is_cut(serve: Any, status: str) -> None:
    server = serve(keyed=endless_chunks(status))
    run, growth = measured(*server.check_args(), "--json", "--timeout", "3", *QUICK)
    assert_clean(run)
    ping = stages(run)["ping"]
    assert growth < MAX_GROWTH_KIB, f"peak RSS grew {growth} KiB"
    assert ping["evidence"]["status_code"] == int(status[:3]), ping["evidence"]["history"]
    assert "[cut:" in ping["evidence"]["response_body"]
    assert ping["duration_ms"] < ping["evidence"]["attempts"] * 3100
    assert (ping["status"], ping["evidence"]["attempts"]) == (
        ("pass", 1) if status.startswith("200") else ("fail", 3))


def test_a_gzip_bomb_does_not_grow_the_process(serve: Any) -> None:
    server = serve(keyed=hostile.bomb())
    run, growth = measured(*server.check_args(), "--json", "--timeout", "5")
    assert_clean(run)
    ping = stages(run)["ping"]
    assert growth < MAX_GROWTH_KIB, f"peak RSS grew {growth} KiB"
    assert ping["status"] == "pass"
    assert ping["evidence"]["response_body"].startswith("\\x00" * 10)
    asked = [r for r in server.seen.requests if r.key is not None]
    assert len(asked) == 1


ESCAPES = "\x1b]0;pwned\x07\x1b[2J"
MARKUP = "[/]x[@click=app.quit]y[/]"


def test_escapes_markup_and_the_key_come_out_escaped(serve: Any, tmp_path: Any) -> None:
    location = f"/portal/{ESCAPES}{MARKUP}?echo={KEY}"
    body = f'{{"message": "{ESCAPES} {MARKUP} your key is {KEY}"}}'
    server = serve(keyed=sends(head("500 Oops", {"Location": location}, body.encode())),
                   keyless=sends(head("401 No", raw=f"Date: {ESCAPES}\r\n".encode())))
    log_file = tmp_path / "doctor.log"
    human = run_cli("check", *server.check_args(), "--retries", "0", "--log-file",
                    str(log_file))
    document = run_cli("check", *server.check_args(), "--retries", "0", "--json")
    for run in (human, document):
        assert_clean(run)
        assert run.returncode == 1
    log_text = log_file.read_text()
    assert "\x1b" not in log_text and "\x07" not in log_text and KEY not in log_text
    assert "\\x1b]0;pwned\\x07" in log_text  # the body, in the failure's log line
    assert "\\x1b]0;pwned\\x07" in human.stdout and MARKUP in human.stdout
    ping = stages(document)["ping"]["evidence"]
    assert ping["location"] == "/portal/\\x1b]0;pwned\\x07\\x1b[2J" + MARKUP + "?echo=[REDACTED]"
    assert "[REDACTED]" in ping["response_body"] and "\\x1b[2J" in ping["response_body"]
    assert stages(document)["clock"]["status"] == "skip"  # an escape is no date


@pytest.mark.parametrize(("framing", "connections", "clock"), [
    (b"Content-Length: 2\r\n\r\n{}", 1, "pass"),
    (b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: 1\r\n\r\n", 1, "pass"),
    # A head that breaks HTTP (a superscript length) is not read at all, its Date neither.
    (b"Content-Length: \xb2\r\n\r\n{}", 2, "skip"),
    (b"Transfer-Encoding: chunked\r\n\r\n\xb2\r\n{}\r\n0\r\n\r\n", 2, "pass"),
    (b"Connection: close\r\nContent-Length: 2\r\n\r\n{}", 2, "pass"),
    (b"\r\n", 2, "pass"),  # no framing: the body runs to the close
])
def test_odd_framing_of_the_clock_answer(serve: Any, framing: bytes, connections: int,
                                         clock: str) -> None:
    answer = b"HTTP/1.1 401 Unauthorized\r\nDate: " + hostile.date().encode() + b"\r\n" + framing
    server = serve(keyless=sends(answer))
    run = run_cli("check", *server.check_args(), "--json")
    assert_clean(run)
    assert run.returncode == 0, stages(run)
    assert stages(run)["clock"]["status"] == clock
    assert server.seen.connections == connections and server.seen.keyed == 1
