"""The ledger against a real HTTP server on loopback, in-process: the cap it computes from the
other spenders' spend, what it falls back to when the ledger cannot be asked (and says so
once), the request it sends (directly, never through a proxy from the environment, never
following a redirect), the bounds on its answer, and this state directory's spender id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import time
from pathlib import Path

import pytest

from assure_doctor.monitor import ledger
from assure_doctor.monitor.config import MonitorConfig, WatchedTarget
from assure_doctor.monitor.ledger import Ledger, LedgerError, LedgerView, parse_answer
from assure_doctor.options import CheckOptions
from assure_doctor.sandbox.stack import sandbox_ca, sandbox_intermediate
from assure_doctor.target import from_url
from tests.stages import TlsServer, leaf

KEY_ID, TODAY = "0123456789abcdef", "2026-12-07"


def rows(*spent: tuple[str, str]) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"spender": spender}, "value": [1.7e9, value]} for spender, value in spent
    ]}}).encode()


def http(body: bytes, status: str = "200 OK", *fields: str) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
    return (head + "".join(f"{f}\r\n" for f in fields) + "\r\n").encode() + body


def prometheus(answer: bytes | None) -> TlsServer:
    """A plain-HTTP server answering every query with `answer` (None: never answering)."""
    return TlsServer(None, answer=answer)


def cap(server: TlsServer, budget: int = 20, local: int = 100, own: int = 0,
        timeout: float = 2.0) -> ledger.Cap:
    asker = Ledger(f"http://127.0.0.1:{server.port}", budget, "me", timeout)
    return asyncio.run(asker.cap(KEY_ID, TODAY, local, own))


# --- the cap --------------------------------------------------------------------------------
@pytest.mark.parametrize(("others", "local", "daily", "customer"), [
    ((("a", "9"), ("b", "6")), 100, 5, True),  # 20 - 15: the customer budget is tighter
    ((("a", "9"), ("b", "6")), 5, 5, False),  # the same: neither is tighter, the local holds
    ((("a", "9"), ("b", "6")), 3, 3, False),
    ((("a", "30"),), 100, 0, True),  # the others spent more than the budget: none left
])
def test_the_cap_is_the_tighter_of_the_customer_and_the_local_budget(
        others: tuple[tuple[str, str], ...], local: int, daily: int, customer: bool) -> None:
    with prometheus(http(rows(*others, ("me", "7")))) as server:
        got = cap(server, local=local, own=2)
    assert (got.daily, got.customer) == (daily, customer)
    spent = sum(int(value) for _, value in others)
    assert got.view == LedgerView(True, spent + 2, 20)  # own spend counted exactly, not "me"


def test_a_spender_seen_twice_counts_its_largest_spend() -> None:
    assert parse_answer(rows(("a", "3"), ("a", "5"), ("a", "4"))) == {"a": 5}


@pytest.mark.parametrize(("value", "spent"), [("0", 0), ("1000000000", 10**9), ("0.2", 1)])
def test_a_spend_from_0_to_a_billion_is_read_rounded_up(value: str, spent: int) -> None:
    assert parse_answer(rows(("a", value))) == {"a": spent}


@pytest.mark.parametrize("value", ["1000000001", "-0.5"])
def test_a_spend_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(LedgerError, match="out of range"):
        parse_answer(rows(("a", value)))


def test_a_row_without_a_spender_is_the_empty_spender() -> None:
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1, "2"]}]}}).encode()
    assert parse_answer(body) == {"": 2}


def test_nesting_to_the_depth_of_an_answer_and_no_deeper() -> None:
    nested = rows(("a", "1"))  # {data: {result: [{value: [..]}]}}: 5 levels
    extra = b'{"x": [[' + nested + b"]]}"  # 8 levels: still read (then refused: no status)
    with pytest.raises(LedgerError, match="status"):
        parse_answer(extra)
    with pytest.raises(LedgerError, match="nested deeper than 8"):
        parse_answer(b'{"x": [[[' + nested + b"]]]}")  # 9


def test_a_thousand_rows_are_read() -> None:
    spent = tuple((f"s{n}", "1") for n in range(1000))
    assert len(parse_answer(rows(*spent))) == 1000


def test_depth_is_counted_down_by_one_at_each_close() -> None:
    """Ten empty lists side by side, then nine levels: nine deep, never less."""
    body = b"[" + b"[], " * 10 + b"[[[[[[[[[]]]]]]]]]]"
    with pytest.raises(LedgerError, match="nested deeper than 8"):
        parse_answer(body)


def test_an_answer_of_the_size_limit_is_read_and_one_byte_more_is_not() -> None:
    body = rows(("a", "1"))
    exact = body + b" " * (ledger.MAX_BODY - len(body))
    assert parse_answer(exact) == {"a": 1}
    with pytest.raises(LedgerError, match="larger than"):
        parse_answer(exact + b" ")
    with prometheus(http(exact)) as server:
        assert cap(server).view.up
    with prometheus(http(exact + b" ")) as server:
        assert not cap(server).view.up


# --- the request ----------------------------------------------------------------------------
def test_the_query_goes_straight_to_the_ledger_without_compression(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens: unusable
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with prometheus(http(rows(("a", "1")))) as server:
        got = cap(server)
        [head] = server.requests
    assert got.view.up
    request = head.decode()
    assert request.startswith("GET /api/v1/query?query=max+by+%28spender%29+")
    assert "\r\naccept-encoding: identity\r\n" in request.lower()


@pytest.mark.parametrize(("answer", "error"), [
    (http(b"", "302 Found", "Location: /api/v1/query?query=1"), "HTTP 302"),
    (http(b"<html>down</html>", "503 Service Unavailable"), "HTTP 503"),
    (http(b"{not json"), "the answer is not JSON"),
])
def test_an_answer_that_is_no_vector_is_the_ledger_down(
        caplog: pytest.LogCaptureFixture, answer: bytes, error: str) -> None:
    with prometheus(answer) as server, caplog.at_level(logging.INFO, "assure_doctor.ledger"):
        got = cap(server, local=7, own=2)
        queries = len(server.requests)
    assert (got.daily, got.customer, got.view) == (7, False, LedgerView(False, 2, 20))
    assert queries == 1  # the redirect is not followed
    [alert] = [r for r in caplog.records if "ALERT" in r.getMessage()]
    assert f"({error})" in alert.getMessage()
    assert "own --ping-budget 7 limits" in alert.getMessage()
    assert alert.name == "assure_doctor.ledger"


def test_an_unparsable_answer_is_logged_with_what_came(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    with prometheus(http(b"{not json")) as server, caplog.at_level(logging.WARNING):
        cap(server)
    assert any(r.getMessage() == "The ledger's answer: {not json" for r in caplog.records)


def test_a_silent_ledger_holds_a_ping_three_seconds_at_most() -> None:
    with prometheus(None) as server:
        asker = Ledger(f"http://127.0.0.1:{server.port}", 20, "me")
        start = time.monotonic()
        with pytest.raises(LedgerError, match=r"no answer within 3 s"):
            asyncio.run(asker.others_spent(KEY_ID, TODAY))
        took = time.monotonic() - start
    assert 2.9 < took < 3.9


def test_an_answer_that_never_ends_is_cut_at_its_limit() -> None:
    """It promises 100 MB and sends 300 KB, then nothing: refused at once, not waited for."""
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n" + b" " * 300_000
    with prometheus(reply) as server:
        asker = Ledger(f"http://127.0.0.1:{server.port}", 20, "me", 5.0)
        with pytest.raises(LedgerError, match="larger than"):
            asyncio.run(asker.others_spent(KEY_ID, TODAY))


def test_a_ledger_over_https_is_trusted_by_the_machines_store(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "system.pem"
    bundle.write_bytes(sandbox_ca().cert_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # the machine's store: the sandbox root
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with TlsServer(leaf(), sandbox_intermediate(), answer=http(rows(("a", "4")))) as server:
        asker = Ledger(f"https://127.0.0.1:{server.port}", 20, "me", 3.0)
        assert asyncio.run(asker.others_spent(KEY_ID, TODAY)) == 4


def test_a_ledger_that_cannot_be_reached_names_the_error() -> None:
    asker = Ledger("http://127.0.0.1:9", 20, "me", 1.0)
    with pytest.raises(LedgerError, match=r"^ConnectError: "):
        asyncio.run(asker.others_spent(KEY_ID, TODAY))


@pytest.mark.parametrize("answer", [http(b"{\xff not json"), http(b"\xff", "503 Unavailable")])
def test_an_answer_in_bytes_that_are_no_utf8_is_the_ledger_down(answer: bytes) -> None:
    with prometheus(answer) as server:
        assert not cap(server).view.up


def test_a_ledger_up_from_the_start_never_says_it_is_back(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    with prometheus(http(rows(("a", "1")))) as up, \
            caplog.at_level(logging.WARNING, "assure_doctor.ledger"):
        asker = Ledger(f"http://127.0.0.1:{up.port}", 20, "me", 2.0)
        for _ in range(2):
            asyncio.run(asker.cap(KEY_ID, TODAY, 100, 0))
    assert not any("answers again" in r.getMessage() for r in caplog.records)


def test_down_is_said_once_and_back_up_once(caplog: pytest.LogCaptureFixture) -> None:
    with prometheus(http(b"", "503 Unavailable")) as down, \
            prometheus(http(rows(("a", "1")))) as up:
        asker = Ledger(f"http://127.0.0.1:{down.port}", 20, "me", 2.0)

        def ask() -> ledger.Cap:
            return asyncio.run(asker.cap(KEY_ID, TODAY, 100, 0))

        with caplog.at_level(logging.WARNING, "assure_doctor.ledger"):
            ask()
            ask()
            asker.url = f"http://127.0.0.1:{up.port}"
            ask()
            ask()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("ALERT" in m for m in messages) == 1
    assert sum("answers again" in m for m in messages) == 1


# --- the spender id -------------------------------------------------------------------------
def test_a_new_state_dir_gets_a_private_spender_id_of_16_hex_digits(tmp_path: Path) -> None:
    state = tmp_path / "a" / "state"
    spender = ledger.spender_id(state)
    path = state / ledger.SPENDER_FILE
    assert path.read_text() == spender + "\n"
    assert len(spender) == 16 and int(spender, 16) >= 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ledger.spender_id(state) == spender


def test_a_spender_file_of_bytes_that_are_no_ascii_is_replaced(tmp_path: Path) -> None:
    (tmp_path / ledger.SPENDER_FILE).write_bytes(b"\xff" * 16)
    spender = ledger.spender_id(tmp_path)
    assert len(spender) == 16 and int(spender, 16) >= 0


def test_a_malformed_spender_id_is_replaced_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / ledger.SPENDER_FILE).write_text("0123456789ABCDEF\n")  # upper case: not ours
    with caplog.at_level(logging.WARNING):
        spender = ledger.spender_id(tmp_path)
    assert spender != "0123456789ABCDEF" and spender == spender.lower()
    assert any("is malformed; choosing a new spender id" in r.getMessage()
               for r in caplog.records)


def test_the_fleet_ledger_is_made_only_with_a_ledger_url(tmp_path: Path) -> None:
    target = WatchedTarget("uk2", from_url("https://api.uk2.sheassure.net/v1/ping"),
                           CheckOptions(no_ping=True), None)
    alone = MonitorConfig((target,), state_dir=tmp_path)
    spender, none = ledger.fleet_ledger(alone)
    assert none is None and spender == ledger.spender_id(tmp_path)
    shared = MonitorConfig((target,), state_dir=tmp_path, site="leeds",
                           ledger_url="http://127.0.0.1:9090/", customer_budget=40)
    same, asker = ledger.fleet_ledger(shared)
    assert same == spender and asker is not None
    assert (asker.url, asker.customer_budget, asker.spender) == (
        "http://127.0.0.1:9090", 40, spender)
