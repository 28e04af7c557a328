"""certchain: a presented chain judged link by link at chosen times, and the total readers of
what an AIA caIssuers URL names and answers. Pure: real certificates, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assure_doctor.kinds import ChainLink
from assure_doctor.probes import certchain
from assure_doctor.probes.results import CertProblem
from assure_doctor.sandbox import pki

T = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
HOST = "api.uk2.sheassure.net"


@cache
def root() -> pki.Issued:
    return pki.make_ca("Test Root", None, T - 3000 * DAY, T + 3000 * DAY)


@cache
def intermediate() -> pki.Issued:
    return pki.make_ca("Test Issuing CA", root(), T - 400 * DAY, T + 400 * DAY)


@cache
def old_intermediate() -> pki.Issued:
    """Expired ten days before T."""
    return pki.make_ca("Test Issuing CA 0", root(), T - 400 * DAY, T - 10 * DAY)


def leaf(issuer: pki.Issued | None, start: int = -30, end: int = 60,
         names: tuple[str, ...] = (HOST,), aia: str | None = None) -> x509.Certificate:
    return pki.make_leaf(list(names), issuer, T + start * DAY, T + end * DAY, aia).cert


def anchors(*issued: pki.Issued) -> certchain.Anchors:
    return certchain.Anchors.of([i.cert for i in issued])


def problems(found: certchain.Links | None) -> list[CertProblem | None]:
    assert found is not None
    return [c.problem for c in found.chain]


def test_a_complete_chain_has_no_problem_and_ends_at_the_anchor_not_sent() -> None:
    found = certchain.links([leaf(intermediate()), intermediate().cert], anchors(root()), HOST,
                            T)
    assert problems(found) == [None, None]
    assert found is not None and found.end is certchain.End.ANCHORED
    assert found.path == (0, 1)
    assert found.anchor is not None and found.anchor.subject.startswith("CN=Test Root")
    assert found.anchor.problem is None


def test_an_expired_intermediate_under_a_valid_leaf_is_the_failing_link() -> None:
    chain = [leaf(old_intermediate()), old_intermediate().cert]
    found = certchain.links(chain, anchors(root()), HOST, T)
    assert problems(found) == [None, CertProblem.EXPIRED]
    assert found is not None
    failing = found.failing(CertProblem.EXPIRED)
    assert failing is not None
    cert, link = failing
    assert link is ChainLink.INTERMEDIATE and "Test Issuing CA 0" in cert.subject
    assert cert.not_after == T - 10 * DAY
    # Eleven days earlier the same chain was fine: the window, not the chain, decides.
    earlier = certchain.links(chain, anchors(root()), HOST, T - 11 * DAY)
    assert problems(earlier) == [None, None]


def test_the_failing_link_is_the_one_nearest_the_root_as_a_verifier_reports_it() -> None:
    chain = [leaf(old_intermediate(), -60, -20), old_intermediate().cert]
    found = certchain.links(chain, anchors(root()), HOST, T)
    assert problems(found) == [CertProblem.EXPIRED, CertProblem.EXPIRED]
    assert found is not None
    failing = found.failing(CertProblem.EXPIRED)
    assert failing is not None and failing[1] is ChainLink.INTERMEDIATE
    only_leaf = certchain.links([leaf(intermediate(), -60, -20), intermediate().cert],
                                anchors(root()), HOST, T)
    assert only_leaf is not None
    failing = only_leaf.failing(CertProblem.EXPIRED)
    assert failing is not None and failing[1] is ChainLink.LEAF


def test_a_root_anchor_outside_its_window_is_the_failing_link() -> None:
    young_root = pki.make_ca("Young Root", None, T + 5 * DAY, T + 3000 * DAY)
    issuing = pki.make_ca("Young Issuing CA", young_root, T - DAY, T + 400 * DAY)
    found = certchain.links([leaf(issuing), issuing.cert], anchors(young_root), HOST, T)
    assert problems(found) == [None, None]
    assert found is not None and found.anchor is not None
    assert found.anchor.problem is CertProblem.NOT_YET_VALID
    failing = found.failing(CertProblem.NOT_YET_VALID)
    assert failing is not None and failing[1] is ChainLink.ROOT
    assert "Young Root" in failing[0].subject


def test_a_root_sent_by_the_server_is_a_link_of_the_chain() -> None:
    old_root = pki.make_ca("Old Root", None, T - 3000 * DAY, T - DAY)
    issuing = pki.make_ca("Under Old Root", old_root, T - 300 * DAY, T + 300 * DAY)
    chain = [leaf(issuing), issuing.cert, old_root.cert]
    found = certchain.links(chain, anchors(old_root), HOST, T)
    assert problems(found) == [None, None, CertProblem.EXPIRED]
    assert found is not None and found.anchor is None and found.path == (0, 1, 2)
    failing = found.failing(CertProblem.EXPIRED)
    assert failing is not None and failing[1] is ChainLink.ROOT


def test_a_leaf_whose_issuer_was_not_sent_ends_the_path_until_its_issuer_is_found() -> None:
    found = certchain.links([leaf(intermediate())], anchors(root()), HOST, T)
    assert found is not None and found.end is certchain.End.MISSING_ISSUER
    assert problems(found) == [CertProblem.UNTRUSTED]
    claimed = certchain.claim_missing(found)
    assert problems(claimed) == [CertProblem.MISSING_ISSUER]


def test_untrusted_and_self_signed_ends() -> None:
    rogue = pki.make_ca("Rogue Root", None, T - DAY, T + DAY)
    found = certchain.links([leaf(rogue), rogue.cert], anchors(root()), HOST, T)
    assert found is not None and found.end is certchain.End.UNTRUSTED_ROOT
    assert problems(found) == [None, CertProblem.UNTRUSTED]
    alone = certchain.links([leaf(None)], anchors(root()), HOST, T)
    assert problems(alone) == [CertProblem.SELF_SIGNED]


def test_a_pinned_leaf_is_its_own_anchor() -> None:
    pinned = pki.make_leaf([HOST], None, T - DAY, T + DAY)
    found = certchain.links([pinned.cert], anchors(pinned), HOST, T)
    assert found is not None and found.end is certchain.End.ANCHORED
    assert problems(found) == [None]


def test_the_leaf_for_another_name() -> None:
    found = certchain.links([leaf(intermediate(), names=("portal.example.net",)),
                             intermediate().cert], anchors(root()), HOST, T)
    assert problems(found) == [CertProblem.HOSTNAME_MISMATCH, None]


def test_order_and_strays_do_not_matter_only_who_signed_whom() -> None:
    stray = pki.make_ca("Stray CA", None, T - 3000 * DAY, T - 2000 * DAY)
    found = certchain.links([leaf(intermediate()), stray.cert, intermediate().cert],
                            anchors(root()), HOST, T)
    assert found is not None and found.path == (0, 2) and found.end is certchain.End.ANCHORED
    assert problems(found) == [None, CertProblem.EXPIRED, None]  # true, but not on the path
    assert found.failing(CertProblem.EXPIRED) is None


def test_a_certificate_with_the_right_issuer_name_but_another_key_did_not_issue() -> None:
    impostor = pki.make_ca("Test Issuing CA", root(), T - DAY, T + DAY)  # same name, new key
    assert impostor.cert.subject == intermediate().cert.subject
    issued = leaf(intermediate())
    assert certchain.issued_by(issued, intermediate().cert)
    assert not certchain.issued_by(issued, impostor.cert)
    found = certchain.links([issued, impostor.cert], anchors(root()), HOST, T)
    assert found is not None and found.end is certchain.End.MISSING_ISSUER
    assert found.path == (0,)


def test_no_readable_leaf_gives_nothing() -> None:
    assert certchain.links([], anchors(root()), HOST, T) is None
    assert certchain.chain_of([]) == ()


def test_window_problem_bounds_are_inclusive() -> None:
    cert = leaf(intermediate(), 0, 10)
    assert certchain.window_problem(cert, T) is None
    assert certchain.window_problem(cert, T + 10 * DAY) is None
    assert certchain.window_problem(cert, T - timedelta(seconds=1)) is CertProblem.NOT_YET_VALID
    assert certchain.window_problem(cert, T + 10 * DAY + timedelta(seconds=1)) is (
        CertProblem.EXPIRED)


# --- the caIssuers URL: what a server may put there --------------------------------------
@pytest.mark.parametrize("url", [
    "http://crt.example.com/ca.crt", "https://pki.example.net:8443/a/b.cer?x=1",
    "http://127.0.0.1:8080/i.der", "http://[::1]:80/i.der", "HTTP://Upper.Example/ca",
    "http://crt.example.com", "http://a-b.c-d.example/x%20y",
])
def test_safe_urls(url: str) -> None:
    assert certchain.safe_url(url) == url


@pytest.mark.parametrize("url", [
    "ldap://ldap.example.com/cn=CA?cACertificate", "file:///etc/passwd", "ftp://x/y",
    "http://user:pass@crt.example.com/ca.crt", "http://user@crt.example.com/",
    "http://crt.example.com:99999/ca", "http://crt.example.com:port/ca", "http:///ca.crt",
    "http://crt example.com/", "http://crt.example.com/\r\nX-Evil: 1", "http://é.example/",
    "http://" + "a" * 2100 + ".example/", "javascript:alert(1)", "http://a..b/",
    "http://-a.example/", "http://a.example./../", "http://[::1/x", "http://a%2eb/", "",
    "http://crt.example.com/ca\x00.crt", "http://1.2.3.4:0x50/",
])
def test_unsafe_urls(url: str) -> None:
    assert certchain.safe_url(url) is None


@given(st.text(max_size=300))
def test_safe_url_is_total_and_keeps_its_promises(url: str) -> None:
    safe = certchain.safe_url(url)
    if safe is not None:
        assert safe == url and len(safe) <= certchain.MAX_URL and safe.isascii()
        assert safe.lower().startswith(("http://", "https://"))
        assert "@" not in safe.split("/")[2] and not any(c.isspace() for c in safe)


@given(st.from_regex(r"https?://[a-z0-9.:@\[\]-]{0,40}(/[ -~]{0,40})?", fullmatch=True))
def test_safe_url_on_url_shaped_text(url: str) -> None:
    safe = certchain.safe_url(url)
    if safe is not None:
        assert "@" not in safe.split("/")[2]


def test_ca_issuers_reads_only_safe_urls() -> None:
    assert certchain.ca_issuers(leaf(intermediate(), aia="http://crt.example/i.crt")) == (
        "http://crt.example/i.crt",)
    assert certchain.ca_issuers(leaf(intermediate(), aia="ldap://crt.example/x")) == ()
    assert certchain.ca_issuers(leaf(intermediate())) == ()


# --- what a caIssuers URL answers ----------------------------------------------------------
def _issuing_der() -> bytes:
    return intermediate().cert.public_bytes(Encoding.DER)


def test_fetched_certificates_in_each_form() -> None:
    inter, top = intermediate().cert, root().cert
    forms = {
        "der": _issuing_der(),
        "pem": intermediate().cert_pem,
        "pem bundle": intermediate().cert_pem + root().cert_pem,
        "pkcs7 der": pkcs7.serialize_certificates([inter, top], Encoding.DER),
        "pkcs7 pem": pkcs7.serialize_certificates([inter, top], Encoding.PEM),
    }
    for form, data in forms.items():
        found = certchain.fetched_certificates(data)
        assert inter.subject in [cert.subject for cert in found], form  # PKCS#7: a SET, unordered
        assert certchain.issuer_among(leaf(intermediate()), list(found)) is not None, form


@pytest.mark.parametrize("data", [b"", b"\x00", b"<html>not found</html>",
                                  b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----",
                                  b"-----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----",
                                  b"0" * (certchain.MAX_FETCHED_BYTES + 1)])
def test_fetched_certificates_of_junk_is_empty(data: bytes) -> None:
    assert certchain.fetched_certificates(data) == ()


def test_an_oversized_answer_is_not_read_even_if_it_holds_a_certificate() -> None:
    padded = intermediate().cert_pem + b"\n" * certchain.MAX_FETCHED_BYTES
    assert certchain.fetched_certificates(padded) == ()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_fetched_certificates_is_total_on_any_bytes(data: bytes) -> None:
    found = certchain.fetched_certificates(data)
    assert isinstance(found, tuple) and len(found) <= certchain.MAX_FETCHED


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fetched_certificates_is_total_on_damaged_certificates(data: st.DataObject) -> None:
    der = bytearray(_issuing_der())
    for _ in range(data.draw(st.integers(1, 8))):
        where = data.draw(st.integers(0, len(der) - 1))
        der[where] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(der)))
    for candidate in (bytes(der), bytes(der[:cut]),
                      b"-----BEGIN CERTIFICATE-----\n" + bytes(der) + b"\n-----END CERTIFICATE"):
        found = certchain.fetched_certificates(candidate)
        for cert in found:  # whatever parsed can be judged without raising
            certchain.issued_by(leaf(intermediate()), cert)
            certchain.entry(cert)
            certchain.ca_issuers(cert)
