"""certinfo: verify codes, host matching, domains and validity dates, without any I/O."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from assure_doctor.probes import certinfo
from assure_doctor.sandbox import pki

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 3, 1, tzinfo=UTC)


def info(*names: str) -> certinfo.CertInfo:
    return certinfo.CertInfo(subject="CN=x", issuer="CN=ca", not_before=START, not_after=END,
                             names=names, serial="1", sha256="00")


@pytest.mark.parametrize(("code", "kind"), [
    (10, "expired"), (9, "not_yet_valid"), (62, "hostname_mismatch"), (64, "hostname_mismatch"),
    (18, "self_signed"), (2, "unknown_issuer"), (19, "unknown_issuer"), (20, "unknown_issuer"),
    (21, "unknown_issuer"), (23, "revoked"), (None, "other"), (0, "other"), (1, "other"),
    (11, "other"), (63, "other"), (999, "other"),
])
def test_verify_kind(code: int | None, kind: str) -> None:
    assert certinfo.verify_kind(code) == kind


@pytest.mark.parametrize(("names", "host", "matches"), [
    (("api.uk2.sheassure.net",), "api.uk2.sheassure.net", True),
    (("api.uk2.sheassure.net",), "API.UK2.sheassure.net", True),
    (("API.uk2.SHEASSURE.net",), "api.uk2.sheassure.net", True),
    (("api.uk2.sheassure.net",), "api.uk.sheassure.net", False),
    (("api.uk2.sheassure.net",), "x.api.uk2.sheassure.net", False),
    (("*.uk2.sheassure.net",), "api.uk2.sheassure.net", True),
    (("*.UK2.sheassure.net",), "Api.uk2.sheassure.net", True),
    (("*.uk2.sheassure.net",), "uk2.sheassure.net", False),  # the wildcard needs a label
    (("*.uk2.sheassure.net",), "a.b.uk2.sheassure.net", False),  # and covers only one
    (("*.sheassure.net",), "api.uk2.sheassure.net", False),
    (("*.uk2.sheassure.net",), "api.uk2.sheassure.net.evil.example", False),
    (("*.uk2.sheassure.net",), "apiuk2.sheassure.net", False),
    (("portal.example.net", "api.uk2.sheassure.net"), "api.uk2.sheassure.net", True),
    (("portal.example.net", "other.example.net"), "api.uk2.sheassure.net", False),
    (("192.0.2.1",), "192.0.2.1", True),
    (("192.0.2.1",), "192.0.2.2", False),
    (("api.uk2.sheassure.net", "192.0.2.1"), "192.0.2.1", True),  # skips the DNS name
    (("api.uk2.sheassure.net",), "192.0.2.1", False),
    (("192.0.2.1",), "api.uk2.sheassure.net", False),
    (("::1",), "0:0::1", True),  # addresses compare as addresses, not text
    (("*.0.2.1",), "192.0.2.1", False),  # no wildcards for addresses
    ((), "api.uk2.sheassure.net", False),
])
def test_matches_host(names: tuple[str, ...], host: str, matches: bool) -> None:
    assert certinfo.matches_host(info(*names), host) is matches


@pytest.mark.parametrize(("names", "host", "same"), [
    (("*.uk.sheassure.net",), "api.uk2.sheassure.net", True),
    (("api.uk.SHEASSURE.net",), "api.uk2.sheassure.net", True),
    (("sheassure.net",), "API.uk2.SheAssure.net", True),
    (("portal.example.net",), "api.uk2.sheassure.net", False),
    (("portal.example.net", "www.sheassure.net"), "api.uk2.sheassure.net", True),
    (("sheassure.org",), "api.uk2.sheassure.net", False),
    ((), "api.uk2.sheassure.net", False),
])
def test_same_domain(names: tuple[str, ...], host: str, same: bool) -> None:
    assert certinfo.same_domain(info(*names), host) is same


@pytest.mark.parametrize(("when", "valid"), [
    (START, True), (END, True), (START + timedelta(days=10), True),
    (START - timedelta(seconds=1), False), (END + timedelta(seconds=1), False),
])
def test_valid_at(when: datetime, valid: bool) -> None:
    assert certinfo.valid_at(info("x"), when) is valid


def test_days_left() -> None:
    assert certinfo.days_left(info("x"), END) == 0
    assert certinfo.days_left(info("x"), END - timedelta(days=5)) == 5
    assert certinfo.days_left(info("x"), END + timedelta(hours=12)) == -0.5
    assert certinfo.days_left(info("x")) == pytest.approx(  # without `now`: the real time
        (END - datetime.now(UTC)).total_seconds() / 86400, abs=0.01)


def test_cert_info_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        info("x").names = ("y",)  # type: ignore[misc]


def test_describe_reads_a_real_certificate() -> None:
    ca = pki.make_ca("Test Root CA")
    leaf = pki.make_leaf(["api.uk2.sheassure.net", "*.uk2.sheassure.net", "192.0.2.1"], ca,
                         START, END)
    parsed = certinfo.describe(leaf.cert.public_bytes(serialization.Encoding.DER))
    assert parsed.names == ("api.uk2.sheassure.net", "*.uk2.sheassure.net", "192.0.2.1")
    assert parsed.not_before == START and parsed.not_after == END
    assert "CN=Test Root CA" in parsed.issuer
    assert "CN=api.uk2.sheassure.net" in parsed.subject
    assert parsed.serial == format(leaf.cert.serial_number, "x")
    assert len(parsed.sha256) == 64 and int(parsed.sha256, 16) >= 0
    evidence = parsed.to_evidence()
    assert evidence == {
        "subject": parsed.subject, "issuer": parsed.issuer,
        "not_before": "2026-01-01T00:00:00+00:00", "not_after": "2026-03-01T00:00:00+00:00",
        "names": ["api.uk2.sheassure.net", "*.uk2.sheassure.net", "192.0.2.1"],
        "serial": parsed.serial, "sha256": parsed.sha256,
    }


def test_describe_falls_back_to_the_common_name_without_alt_names() -> None:
    ca = pki.make_ca("legacy.example.net")  # a CA certificate carries no subjectAltName
    parsed = certinfo.describe(ca.cert.public_bytes(serialization.Encoding.DER))
    assert parsed.names == ("legacy.example.net",)
    assert parsed.issuer == parsed.subject


def test_describe_bounds_the_names_the_server_chose() -> None:
    """At most 100 names, each cut to 300 characters: the server chose them all."""
    long = ".".join(["a" * 63] * 5)  # 319 characters
    many = [f"n{i}.example.net" for i in range(150)]
    leaf = pki.make_leaf(["api.uk2.sheassure.net", long, *many], None, START, END)
    parsed = certinfo.describe(leaf.cert.public_bytes(serialization.Encoding.DER))
    assert parsed is not None
    assert len(parsed.names) == 100
    assert parsed.names[0] == "api.uk2.sheassure.net"
    assert parsed.names[1] == long[:299] + "…"
    assert parsed.names[-1] == "n97.example.net"
