"""Pure helpers: certificates, HTTP statuses, Retry-After, network errors, clock wording."""

from __future__ import annotations

import errno
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from assure_doctor.probes import certinfo, netclass
from assure_doctor.probes.clock import skew_text
from assure_doctor.probes.ping import classify, retry_after_seconds
from assure_doctor.render.human import use_colour
from assure_doctor.sandbox import pki

NOW = datetime.now(UTC)


def leaf(names: list[str], days: tuple[int, int] = (-1, 30)) -> certinfo.CertInfo:
    issued = pki.make_leaf(names, pki.make_ca("test CA"), NOW + timedelta(days=days[0]),
                           NOW + timedelta(days=days[1]))
    return certinfo.describe(issued.cert.public_bytes(serialization.Encoding.DER))


def test_describe_reads_names_issuer_and_validity() -> None:
    info = leaf(["api.uk2.sheassure.net", "192.0.2.1"])
    assert info.names == ("api.uk2.sheassure.net", "192.0.2.1")
    assert "CN=test CA" in info.issuer and "CN=api.uk2.sheassure.net" in info.subject
    assert certinfo.valid_at(info, NOW)
    assert not certinfo.valid_at(info, NOW + timedelta(days=31))
    assert 29 < certinfo.days_left(info, NOW) < 31


@pytest.mark.parametrize(("names", "host", "matches"), [
    (["*.uk2.sheassure.net"], "api.uk2.sheassure.net", True),
    (["*.sheassure.net"], "api.uk2.sheassure.net", False),  # a wildcard covers one label
    (["api.uk2.sheassure.net"], "API.uk2.sheassure.net", True),
    (["192.0.2.1"], "192.0.2.1", True),
    (["portal.example.net"], "api.uk2.sheassure.net", False),
])
def test_host_matching(names: list[str], host: str, matches: bool) -> None:
    assert certinfo.matches_host(leaf(names), host) is matches


def test_same_domain() -> None:
    assert certinfo.same_domain(leaf(["*.uk.sheassure.net"]), "api.uk2.sheassure.net")
    assert not certinfo.same_domain(leaf(["portal.example.net"]), "api.uk2.sheassure.net")


@pytest.mark.parametrize(("code", "kind"), [
    (10, "expired"), (9, "not_yet_valid"), (62, "hostname_mismatch"), (20, "unknown_issuer"),
    (19, "unknown_issuer"), (18, "self_signed"), (None, "other"), (999, "other"),
])
def test_verify_codes(code: int | None, kind: str) -> None:
    assert certinfo.verify_kind(code) == kind


@pytest.mark.parametrize(("status", "body", "location", "condition"), [
    (200, "", None, None), (204, "", None, None),
    (301, "", "/v2/ping", "http_redirect"), (308, "", "https://x.example/", "http_redirect"),
    (400, "", None, "http_bad_request"), (401, "", None, "http_unauthorized"),
    (403, '{"message":"Forbidden"}', None, "http_unauthorized"),
    (403, '{"message":"Missing Authentication Token"}', None, "http_not_found"),
    (404, "", None, "http_not_found"), (405, "", None, "http_unexpected"),
    (429, "", None, "http_throttled"), (500, "", None, "http_server_error"),
    (503, "", None, "http_server_error"), (599, "", None, "http_server_error"),
    (418, "", None, "http_unexpected"), (102, "", None, "http_unexpected"),
])
def test_status_conditions(status: int, body: str, location: str | None,
                           condition: str | None) -> None:
    assert classify(status, body, location, "api.uk2.sheassure.net")[0] == condition


@pytest.mark.parametrize(("body", "kind"), [
    ('{"message": "Forbidden"}', None),  # a plain refusal: the key itself
    ('{"message": "Missing API key"}', "key_missing_reported"),
    ('{"message": "This key is not valid for this stack"}', "wrong_stack_reported"),
])
def test_unauthorized_bodies_are_evidence(body: str, kind: str | None) -> None:
    assert classify(401, body, None, "api.uk2.sheassure.net")[1].get("kind") == kind


def test_redirect_facts_tell_on_site_from_off_site() -> None:
    host = "api.uk2.sheassure.net"
    assert classify(301, "", "/v2/ping", host)[1]["location_host"] == "same"
    assert classify(302, "", f"https://{host}/x", host)[1]["location_host"] == "same"
    assert classify(302, "", "https://portal.example/", host)[1]["location_host"] == "other"


def test_retry_after_forms() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    http_date = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 55 <= (retry_after_seconds(http_date) or 0) <= 61
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize(("exc", "kind"), [
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "refused"),
    (TimeoutError(), "timeout"),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "unreachable"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "unreachable"),
    (PermissionError(errno.EPERM, "Operation not permitted"), "blocked_locally"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "reset"),
    (ValueError("odd"), "error"),
])
def test_connect_kinds(exc: BaseException, kind: str) -> None:
    assert netclass.connect_kind(exc) == kind
    assert netclass.connect_condition(kind) == ("connect_timeout" if kind == "timeout"
                                                else "connect_failed")


def test_handshake_kinds() -> None:
    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    wrong.reason = "WRONG_VERSION_NUMBER"
    assert netclass.handshake_kind(wrong) == "not_tls"
    alert = ssl.SSLError(1, "[SSL: TLSV1_ALERT_PROTOCOL_VERSION]")
    alert.reason = "TLSV1_ALERT_PROTOCOL_VERSION"
    assert netclass.handshake_kind(alert) == "alert"
    assert netclass.handshake_kind(TimeoutError()) == "timeout"
    assert netclass.handshake_kind(ConnectionResetError()) == "reset"


def test_skew_wording() -> None:
    assert skew_text(90.2) == "90.2 s behind the API's"
    assert skew_text(-3 * 86400 + 5) == "3 days 0 h ahead of the API's"
    assert skew_text(-600) == "10 min ahead of the API's"


class _Tty:
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(_Tty())
    assert not use_colour(object())
    monkeypatch.setenv("NO_COLOR", "")
    assert not use_colour(_Tty())
