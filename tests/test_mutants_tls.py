"""The tls stage against real handshakes on loopback, in-process: what it reports for a
verified certificate, for each verification failure, for a handshake that stalls, is cut or
meets no TLS, for a certificate only the machine's store trusts, and which anchor sets it says
verify the API (offline from the chain, or by handshakes, cached for a while).

Each test runs the stage's own coroutine (tests/stages.py) against a sandbox scenario or a TLS
server whose certificate the test chooses; the fast tests `bench.mutation` runs for tls.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from assure_doctor import trust
from assure_doctor.kinds import CertKind, ChainLink, Condition, ConnectKind, HandshakeKind
from assure_doctor.model import Outcome, Status
from assure_doctor.probes import chaincheck, tls
from assure_doctor.probes.results import CertProblem, TcpFound, TlsFound, TrustVerdicts
from assure_doctor.proxyconfig import load as load_proxy
from assure_doctor.sandbox import pki
from assure_doctor.sandbox.stack import (
    HOST,
    expired_intermediate,
    inspection_ca,
    proxy_ca,
    sandbox_ca,
    sandbox_intermediate,
)
from tests.stages import TlsServer, context, leaf, run, sandbox, stages, tls_context
from tests.waiting import wait_until


@pytest.fixture(autouse=True)
def fresh_trust_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no anchor-set verdicts remembered from another."""
    monkeypatch.setattr(tls, "_TRUST_SEEN", {})


@pytest.fixture
def unreadable_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anchor stores that cannot be read as a list (Windows, macOS): each set is asked with a
    handshake of its own."""
    monkeypatch.setattr(chaincheck, "store_of_pem", lambda pem: None)


def found(outcome: Outcome) -> TlsFound:
    assert isinstance(outcome.found, TlsFound)
    return outcome.found


def subject_of(issued: pki.Issued) -> str:
    return issued.cert.subject.rfc4514_string()


def minute(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


_ANCHORS = tempfile.TemporaryDirectory(prefix="assure-anchors-")  # removed at exit
_written = itertools.count()


def pem_file(*issued: pki.Issued) -> str:
    path = Path(_ANCHORS.name) / f"anchors-{next(_written)}.pem"
    path.write_bytes(b"".join(i.cert_pem for i in issued))
    return str(path)


# --- a verified handshake --------------------------------------------------------------------
def test_a_verified_handshake_reports_its_certificate_and_chain_and_hands_the_connection_on(
        ) -> None:
    with sandbox("healthy") as api:
        ctx = context(api)

        async def go() -> tuple[Outcome, bytes, bool]:
            try:
                outcome = await stages(ctx, "dns", "tcp", "proxy", "tls")
                tcp_left = ctx.found(TcpFound).connection
                taken = tcp_left is not None and tcp_left.take() is None  # by the tls stage
                handed = found(outcome).connection
                assert handed is not None
                stream = handed.take()
                assert stream is not None
                reader, writer = stream
                writer.write(f"GET /v1/ping HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
                return outcome, await asyncio.wait_for(reader.readuntil(b"\r\n"), 5), taken
            finally:
                ctx.close_streams()

        outcome, status_line, taken = asyncio.run(go())
        connections = api.traffic.connections
    assert status_line.startswith(b"HTTP/1.1 401")  # over TLS, keyless: the API itself
    assert connections == 1  # the tcp stage's connection, upgraded; trust judged offline
    assert taken  # the tcp stage's connection is the one upgraded
    tls_found = found(outcome)
    certificate = tls_found.certificate
    assert outcome.status is Status.PASS and outcome.condition is None
    assert certificate is not None and HOST in certificate.names
    assert outcome.summary == (f"verified {tls_found.tls_version}, certificate valid until "
                               f"{certificate.not_after:%Y-%m-%d} (60 days)")
    assert tls_found.verified is True and tls_found.address == "127.0.0.1"
    assert tls_found.tls_version == "TLSv1.3"
    ciphers = {c["name"] for c in ssl.create_default_context().get_ciphers()}
    assert tls_found.cipher in ciphers
    assert tls_found.days_left is not None and 59.9 < tls_found.days_left < 60
    assert tls_found.verified_with is ctx.options.trust.strict
    assert [(c.subject, c.problem) for c in tls_found.chain] == [
        (certificate.subject, None), (subject_of(sandbox_intermediate()), None)]
    assert tls_found.anchor is None
    assert tls_found.trust == TrustVerdicts(certifi=False, system=False, ca_bundle=True)


def test_a_certificate_about_to_expire_is_a_warning_with_its_days() -> None:
    with sandbox("tls-expiring-soon") as api:
        outcome = run(context(api), "dns", "tcp", "tls")
    tls_found = found(outcome)
    assert outcome.status is Status.WARN
    assert outcome.condition is Condition.TLS_CERTIFICATE_ERROR
    assert outcome.summary.endswith("(5 days): renewal is due")
    assert outcome.facts["kind"] is CertKind.EXPIRING
    assert tls_found.days_left is not None and 4.9 < tls_found.days_left < 5
    assert outcome.facts["verify_error"] == f"expires in {tls_found.days_left:.1f} days"
    assert tls_found.certificate is not None
    assert outcome.facts["issuer"] == tls_found.certificate.issuer


# --- verification failures -------------------------------------------------------------------
NAMES = f"{HOST}, 127.0.0.1, ::1"
LEAF_SUBJECT = subject_of(leaf())


@pytest.mark.parametrize(("scenario", "kind", "summary", "names", "said", "problem"), [
    ("tls-expired", CertKind.EXPIRED, "the certificate has expired", NAMES,
     "certificate has expired", CertProblem.EXPIRED),
    ("tls-not-yet-valid", CertKind.NOT_YET_VALID, "the certificate is not yet valid", NAMES,
     "certificate is not yet valid", CertProblem.NOT_YET_VALID),
    ("tls-hostname-mismatch", CertKind.HOSTNAME_MISMATCH, f"the certificate is not for {HOST}",
     "portal.example.net", "Hostname mismatch", CertProblem.HOSTNAME_MISMATCH),
    ("tls-unknown-issuer", CertKind.UNKNOWN_ISSUER,
     f"the certificate's issuer is not trusted ({subject_of(proxy_ca())})",
     NAMES, "unable to get local issuer certificate", CertProblem.UNTRUSTED),
    ("tls-self-signed", CertKind.SELF_SIGNED, f"the certificate is self-signed ({LEAF_SUBJECT})",
     NAMES, "self-signed certificate", CertProblem.SELF_SIGNED),
])
def test_each_verification_failure_says_what_is_wrong_with_the_certificate(
        scenario: str, kind: CertKind, summary: str, names: str, said: str,
        problem: CertProblem) -> None:
    with sandbox(scenario) as api:
        outcome = run(context(api), "dns", "tcp", "tls")
    tls_found, facts = found(outcome), outcome.facts
    assert tls_found.verify_error is not None and tls_found.verify_error.startswith(said)
    assert tls_found.chain[0].problem is problem  # judged link by link
    # the chain ends at the sandbox's root (not sent) where the issuer is the sandbox's
    anchored = problem in (CertProblem.EXPIRED, CertProblem.NOT_YET_VALID,
                           CertProblem.HOSTNAME_MISMATCH)
    assert (tls_found.anchor.subject if tls_found.anchor else None) == (
        subject_of(sandbox_ca()) if anchored else None)
    info = tls_found.certificate
    assert info is not None
    assert outcome.status is Status.FAIL
    assert outcome.condition is Condition.TLS_CERTIFICATE_ERROR
    assert outcome.summary == summary
    assert facts["kind"] is kind and tls_found.verify_kind is kind
    assert tls_found.verified is False and tls_found.address == "127.0.0.1"
    assert tls_found.verify_error and facts["verify_error"] == tls_found.verify_error
    assert tls_found.verify_code is not None and tls_found.verify_code > 0
    assert facts["issuer"] == info.issuer and facts["cert_names"] == names
    assert facts["cert_subject"] == info.subject
    assert facts["not_before"] == minute(info.not_before)
    assert facts["not_after"] == minute(info.not_after)
    # the names are the API's domain's, but for the certificate of another site
    assert facts["same_domain"] is (kind is not CertKind.HOSTNAME_MISMATCH)
    assert tls_found.matches_host is (kind is not CertKind.HOSTNAME_MISMATCH)
    assert tls_found.valid_now is (kind not in (CertKind.EXPIRED, CertKind.NOT_YET_VALID))
    assert tls_found.chain and tls_found.chain[0].subject == info.subject
    # certifi + bundle did not verify it, so neither does the bundle alone
    assert tls_found.trust == TrustVerdicts(False, False, False)
    assert tls_found.connection is None and tls_found.verified_with is None


@pytest.mark.parametrize(("scenario", "kind", "link"), [
    ("tls-expired", CertKind.EXPIRED, ChainLink.LEAF),
    ("tls-not-yet-valid", CertKind.NOT_YET_VALID, ChainLink.LEAF),
    ("tls-expired-intermediate", CertKind.EXPIRED, ChainLink.INTERMEDIATE),
])
def test_a_date_failure_names_the_certificate_of_the_chain_whose_dates_fail(
        scenario: str, kind: CertKind, link: ChainLink) -> None:
    with sandbox(scenario) as api:
        outcome = run(context(api), "dns", "tcp", "tls")
    tls_found, facts = found(outcome), outcome.facts
    failing = tls_found.failing
    assert failing is not None and facts["link"] is link
    assert facts["cert_subject"] == failing.subject
    assert (facts["not_before"], facts["not_after"]) == (minute(failing.not_before),
                                                         minute(failing.not_after))
    problem = CertProblem.EXPIRED if kind is CertKind.EXPIRED else CertProblem.NOT_YET_VALID
    assert failing.problem is problem
    if link is ChainLink.LEAF:
        assert tls_found.certificate is not None
        assert failing.subject == tls_found.certificate.subject
    else:
        intermediate = expired_intermediate().cert
        assert failing.subject == intermediate.subject.rfc4514_string()
        assert outcome.summary == (
            f"the intermediate certificate {failing.subject} has expired (valid "
            f"{minute(intermediate.not_valid_before_utc)} to "
            f"{minute(intermediate.not_valid_after_utc)})")


def test_an_intermediate_not_yet_valid_is_named() -> None:
    now = datetime.now(UTC)
    future = pki.make_ca("assure-doctor sandbox Issuing CA 2", sandbox_ca(),
                         now + timedelta(days=5), now + timedelta(days=400))
    with TlsServer(leaf(issuer=future), future) as server:
        outcome = asyncio.run(tls.run(tls_context(server.port, trust.load(str(server.bundle)))))
    failing = found(outcome).failing
    assert outcome.facts["kind"] is CertKind.NOT_YET_VALID
    assert outcome.facts["link"] is ChainLink.INTERMEDIATE
    assert failing is not None and failing.subject == subject_of(future)
    assert outcome.summary == (
        f"the intermediate certificate {failing.subject} is not yet valid (valid "
        f"{minute(future.cert.not_valid_before_utc)} to {minute(future.cert.not_valid_after_utc)})")


def test_a_certificate_that_cannot_be_looked_at_again_is_still_named_by_its_error() -> None:
    """The server takes the first handshake only: the look-only one gets nothing."""
    with TlsServer(leaf(issuer=proxy_ca())) as server:
        server.limit = 1
        outcome = asyncio.run(tls.run(tls_context(server.port, trust.load(str(server.bundle)))))
    tls_found = found(outcome)
    assert outcome.facts["kind"] is CertKind.UNKNOWN_ISSUER
    assert outcome.summary == "the certificate's issuer is not trusted (?)"
    assert tls_found.certificate is None and tls_found.chain == () and tls_found.anchor is None


def test_an_expired_certificate_naming_its_issuers_url_is_not_completed_from_it() -> None:
    """Only a missing issuer sends us to the AIA URL: an expired chain is complete."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/issuer.crt"
        now = datetime.now(UTC)
        old = pki.make_leaf([HOST], sandbox_intermediate(), now - timedelta(days=90),
                            now - timedelta(days=10), ca_issuers=url)
        with TlsServer(old, sandbox_intermediate()) as server:
            outcome = asyncio.run(tls.run(tls_context(server.port,
                                                      trust.load(str(server.bundle)))))
    assert outcome.facts["kind"] is CertKind.EXPIRED
    assert found(outcome).aia_url is None and found(outcome).aia_error is None


def test_an_inspecting_proxys_certificate_nobody_trusts_names_the_product() -> None:
    with TlsServer(leaf(issuer=inspection_ca())) as server:
        outcome = asyncio.run(tls.run(tls_context(server.port, trust.load(str(server.bundle)))))
    assert outcome.facts["kind"] is CertKind.UNKNOWN_ISSUER
    assert outcome.summary.endswith(": Zscaler TLS inspection")
    assert found(outcome).inspection_product == "Zscaler"


def der_answer(issued: pki.Issued) -> bytes:
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-cert\r\nContent-Length: "
            + str(len(der)).encode() + b"\r\n\r\n" + der)


@pytest.mark.parametrize("bundle", [True, False])
def test_an_issuer_fetched_that_does_not_complete_the_chain_is_named(
        caplog: pytest.LogCaptureFixture, bundle: bool) -> None:
    """It issued the certificate, but no store trusts the root above it (nor a bundle)."""
    root = pki.make_ca("Nobody's Root")
    issuing = pki.make_ca("Nobody's Issuing CA", root)
    with TlsServer(None, answer=der_answer(issuing)) as aia:
        url = f"http://127.0.0.1:{aia.port}/issuer.crt"
        with TlsServer(leaf(issuer=issuing, ca_issuers=url)) as server, \
                caplog.at_level(logging.INFO, "assure_doctor.tls"):
            anchors = trust.load(str(server.bundle)) if bundle else trust.NO_BUNDLE
            outcome = asyncio.run(tls.run(tls_context(server.port, anchors)))
    assert outcome.facts["kind"] is CertKind.UNKNOWN_ISSUER
    assert found(outcome).aia_url == url
    assert found(outcome).aia_error == "the chain completed with it does not verify either"
    assert any(r.getMessage().startswith(f"The issuer named at {url} did not tell: ")
               for r in caplog.records)


def test_an_issuers_url_that_does_not_answer_in_time() -> None:
    with TlsServer(None, answer=None) as aia:
        url = f"http://127.0.0.1:{aia.port}/issuer.crt"
        with TlsServer(leaf(ca_issuers=url)) as server:
            outcome = asyncio.run(tls.run(tls_context(
                server.port, trust.load(str(server.bundle)), timeout=0.5)))
    assert (found(outcome).aia_url, found(outcome).aia_error) == (url, "timed out")


@pytest.mark.parametrize("trusted_by", ["system", "certifi"])
def test_a_chain_completed_from_its_aia_url_may_verify_in_any_store(
        monkeypatch: pytest.MonkeyPatch, trusted_by: str) -> None:
    """No bundle: the root is in the machine's store only, or in certifi only."""
    with TlsServer(None, answer=der_answer(sandbox_intermediate())) as aia, \
            system_store(monkeypatch, sandbox_ca() if trusted_by == "system"
                         else inspection_ca()):
        url = f"http://127.0.0.1:{aia.port}/issuer.crt"
        anchors = certifi_trusting(sandbox_ca()) if trusted_by == "certifi" else trust.Trust()
        with TlsServer(leaf(ca_issuers=url)) as server:
            outcome = asyncio.run(tls.run(tls_context(server.port, anchors)))
    assert outcome.facts["kind"] is CertKind.MISSING_INTERMEDIATE
    assert found(outcome).trust == TrustVerdicts(False, False, None)


def test_a_chain_sent_without_its_intermediate_is_completed_from_its_aia_url() -> None:
    with sandbox("tls-missing-intermediate") as api:
        outcome = run(context(api), "dns", "tcp", "tls")
        url = api.issuer_url
    tls_found, facts = found(outcome), outcome.facts
    subject = subject_of(sandbox_intermediate())
    assert outcome.status is Status.FAIL
    assert outcome.condition is Condition.TLS_CERTIFICATE_ERROR
    assert outcome.summary == (f"the server does not send its intermediate certificate "
                               f"({subject}): browsers fetch it from {url} and work, API "
                               "clients fail")
    assert facts["kind"] is CertKind.MISSING_INTERMEDIATE
    assert tls_found.verify_kind is CertKind.MISSING_INTERMEDIATE
    assert facts["missing_intermediate"] == tls_found.missing_intermediate == subject
    assert facts["aia_url"] == tls_found.aia_url == url
    assert facts["verify_error"] == tls_found.verify_error  # the facts of the failure kept
    assert [(c.subject, c.problem) for c in tls_found.chain] == [
        (LEAF_SUBJECT, CertProblem.MISSING_ISSUER)]
    # the chain completed with the fetched intermediate ends at the sandbox's root
    assert tls_found.anchor is not None
    assert tls_found.anchor.subject == subject_of(sandbox_ca())


def test_an_aia_url_that_cannot_be_fetched_is_named_with_why() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: a refusal
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/issuer.crt"
        with TlsServer(leaf(ca_issuers=url)) as server:  # sent without its intermediate
            outcome = asyncio.run(tls.run(tls_context(
                server.port, trust.load(str(server.bundle)))))
    tls_found = found(outcome)
    assert outcome.facts["kind"] is CertKind.UNKNOWN_ISSUER
    assert tls_found.aia_url == url and tls_found.aia_error
    assert tls_found.missing_intermediate is None
    assert outcome.summary.startswith("the certificate's issuer is not trusted")


def test_a_certificate_whose_issuer_is_no_ca_is_a_verification_failure_of_another_kind(
        ) -> None:
    not_a_ca = leaf(names=("issuer.example",))
    with TlsServer(leaf(issuer=not_a_ca), not_a_ca, sandbox_intermediate()) as server:
        outcome = asyncio.run(tls.run(tls_context(server.port, trust.load(str(server.bundle)))))
    assert outcome.facts["kind"] is CertKind.OTHER
    assert outcome.summary == "certificate verification failed"


# --- handshakes that fail ----------------------------------------------------------------------
@pytest.mark.parametrize(("scenario", "kind", "retry"), [
    ("tls-handshake-stall", HandshakeKind.TIMEOUT, "stalled too"),
    ("tls-handshake-reset", HandshakeKind.RESET, None),
    ("tls-not-tls", HandshakeKind.NOT_TLS, None),
])
def test_a_failed_handshake_says_how_it_failed(scenario: str, kind: HandshakeKind,
                                               retry: str | None) -> None:
    with sandbox(scenario) as api:
        outcome = run(context(api, timeout=0.4), "dns", "tcp", "tls")
    tls_found, facts = found(outcome), outcome.facts
    assert outcome.status is Status.FAIL
    assert outcome.condition is Condition.TLS_HANDSHAKE_FAILED
    assert facts["kind"] is kind and tls_found.handshake is kind
    assert tls_found.small_mss_retry == retry
    error = facts["error"]
    assert error and tls_found.error == error and tls_found.verify_error == error
    assert outcome.summary == f"TLS handshake {facts['kind_text']}: {error}"
    assert facts["kind_text"] and facts["kind_text"] not in ("failed",)
    assert "mss" not in facts
    assert tls_found.verified is False and tls_found.address == "127.0.0.1"
    assert tls_found.trust == TrustVerdicts(False, False, False)


class MtuBlackHole:
    """A TLS server behind a path that drops large packets: a connection whose segments are
    small (a clamped MSS, as the server sees it) gets its handshake; the others stall."""

    SMALL = 1000  # bytes: loopback's usual MSS is ~65,000

    def __init__(self, certificate: pki.Issued) -> None:
        self.server = TlsServer(certificate)
        self.sizes: list[int] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> MtuBlackHole:
        self.server.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        socket.create_connection(("127.0.0.1", self.port)).close()  # wakes the accept
        self._thread.join(5)
        self._listener.close()
        self.server.__exit__()

    def _accept(self) -> None:
        held: list[socket.socket] = []
        with contextlib.ExitStack() as stack:
            while not self._stop.is_set():
                try:
                    conn, _ = self._listener.accept()
                except OSError:
                    return
                stack.callback(conn.close)
                size = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
                self.sizes.append(size)
                if size <= self.SMALL:  # small segments pass: relay to the TLS server
                    threading.Thread(target=self._relay, args=(conn,), daemon=True).start()
                else:
                    held.append(conn)  # large ones are lost: read nothing, answer nothing

    def _relay(self, conn: socket.socket) -> None:
        with socket.create_connection(("127.0.0.1", self.server.port)) as upstream:
            pumps = [threading.Thread(target=_pump, args=pair, daemon=True)
                     for pair in ((conn, upstream), (upstream, conn))]
            for pump in pumps:
                pump.start()
            for pump in pumps:
                pump.join(10)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.mark.skipif(not hasattr(socket, "TCP_MAXSEG"), reason="no TCP_MAXSEG here")
def test_a_handshake_that_passes_only_in_small_segments_is_a_path_mtu_black_hole() -> None:
    with MtuBlackHole(leaf()) as path:
        ctx = tls_context(path.port, trust.load(str(path.server.bundle)), timeout=0.5)
        outcome = asyncio.run(tls.run(ctx))
        sizes = list(path.sizes)
    tls_found, facts = found(outcome), outcome.facts
    assert len(sizes) == 2 and sizes[1] <= 500 < sizes[0]  # once as usual, then clamped
    assert outcome.status is Status.FAIL
    assert outcome.condition is Condition.TLS_HANDSHAKE_FAILED
    assert facts["kind"] is HandshakeKind.MTU and tls_found.handshake is HandshakeKind.MTU
    assert tls_found.small_mss_retry == "completed" and facts["mss"] == 500
    assert facts["kind_text"] == "stalled until its segments were small"
    assert outcome.summary == ("TLS handshake got no answer, but completed with 500-byte "
                               "segments: a path MTU black hole")


def test_a_server_gone_between_the_tcp_stage_and_this_one_is_a_connect_failure() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        outcome = asyncio.run(tls.run(tls_context(closed.getsockname()[1], trust.NO_BUNDLE)))
    tls_found, facts = found(outcome), outcome.facts
    assert outcome.status is Status.FAIL and outcome.condition is Condition.CONNECT_FAILED
    assert facts["kind"] is ConnectKind.REFUSED and facts["default_port"] is False
    assert facts["error"] and outcome.summary == f"cannot connect: {facts['error']}"
    assert tls_found.verified is False and tls_found.address == "127.0.0.1"
    assert tls_found.error == tls_found.verify_error == facts["error"]
    assert tls_found.trust is None  # no handshake: no verdict on the anchors


def test_a_connect_failure_on_the_default_port_says_so() -> None:
    outcome = asyncio.run(tls.run(tls_context(443, trust.NO_BUNDLE)))  # nothing on 443 here
    assert outcome.facts["default_port"] is True
    assert outcome.facts["kind"] is ConnectKind.REFUSED


# --- only the machine's store trusts it ---------------------------------------------------------
@contextlib.contextmanager
def system_store(monkeypatch: pytest.MonkeyPatch, *anchors: pki.Issued) -> Iterator[None]:
    """The machine's store (OpenSSL's default paths) holds exactly these anchors."""
    monkeypatch.setenv("SSL_CERT_FILE", pem_file(*anchors))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    yield


@pytest.mark.parametrize(("root", "product"), [
    (None, None),  # the sandbox's own root, named after no product
    ("inspection", "Zscaler"),
])
def test_a_certificate_only_the_machines_store_trusts_is_a_warning_naming_the_inspector(
        monkeypatch: pytest.MonkeyPatch, root: str | None, product: str | None) -> None:
    issuer = inspection_ca() if root else sandbox_intermediate()
    anchors = inspection_ca() if root else sandbox_ca()
    with system_store(monkeypatch, anchors), TlsServer(leaf(issuer=issuer), *(
            () if root else (sandbox_intermediate(),))) as server:
        machine = trust.Trust()  # certifi and this machine's store, no bundle
        ctx = tls_context(server.port, machine)
        outcome = asyncio.run(tls.run(ctx))
        connections = server.connections
        handed = found(outcome).connection
        assert handed is not None and handed.take() is not None  # for the clock and ping
    tls_found, facts = found(outcome), outcome.facts
    info = tls_found.certificate
    assert info is not None
    who = f"a TLS-inspecting proxy ({product})" if product else "a TLS-inspecting proxy"
    assert outcome.status is Status.WARN
    assert outcome.condition is Condition.TLS_CERTIFICATE_ERROR
    assert outcome.summary.startswith(
        f"verified only by this machine's trust store: {who} whose root this machine trusts")
    assert facts["kind"] is CertKind.SYSTEM_ONLY
    assert facts["product"] == (product or "unnamed")
    assert facts["verify_error"] == "not trusted by certifi"
    assert facts["issuer"] == info.issuer and facts["cert_names"] == f"{HOST}, 127.0.0.1"
    assert tls_found.inspection_product == product
    assert tls_found.verified is True and tls_found.verified_with is machine.system
    assert tls_found.trust == TrustVerdicts(certifi=False, system=True, ca_bundle=None)
    assert connections == 2  # refused with certifi, then verified with the machine's store
    # each link judged against certifi, which does not trust the root it ends at
    assert tls_found.chain[0].subject == info.subject
    assert tls_found.chain[-1].problem is CertProblem.UNTRUSTED


def test_the_machines_store_refusing_too_is_the_verification_failure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with system_store(monkeypatch, inspection_ca()), TlsServer(
            leaf(), sandbox_intermediate()) as server:
        outcome = asyncio.run(tls.run(tls_context(server.port, trust.Trust())))
    assert outcome.status is Status.FAIL
    assert outcome.facts["kind"] is CertKind.UNKNOWN_ISSUER
    assert found(outcome).trust == TrustVerdicts(False, False, None)  # no bundle: None


# --- which anchor sets verify the API ---------------------------------------------------------
def test_the_verdicts_come_from_the_chain_received_each_set_in_its_place(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """certifi no, the machine's store yes, the bundle yes: no handshake beyond the stage's."""
    with system_store(monkeypatch, sandbox_ca()), TlsServer(
            leaf(), sandbox_intermediate()) as server:
        anchors = trust.load(str(server.bundle))
        outcome = asyncio.run(tls.run(tls_context(server.port, anchors)))
        connections = server.connections
    assert outcome.status is Status.PASS
    assert found(outcome).trust == TrustVerdicts(certifi=False, system=True, ca_bundle=True)
    assert connections == 1


def without_authority_key_id(issuer: pki.Issued) -> pki.Issued:
    """A server certificate OpenSSL verifies but the offline verifier refuses (it wants the
    Authority Key Identifier every public leaf has)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
            .issuer_name(issuer.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(issuer.key, hashes.SHA256()))
    return pki.Issued(cert.public_bytes(serialization.Encoding.PEM), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), cert, key)


def test_verdicts_the_offline_check_cannot_agree_on_are_asked_by_handshakes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenSSL verified it with certifi + bundle; offline neither does: handshakes decide."""
    with system_store(monkeypatch, inspection_ca()), TlsServer(
            without_authority_key_id(sandbox_intermediate()), sandbox_intermediate()) as server:
        outcome = asyncio.run(tls.run(tls_context(server.port, trust.load(str(server.bundle)))))
        connections = server.connections
    assert outcome.status is Status.PASS
    assert found(outcome).trust == TrustVerdicts(certifi=False, system=False, ca_bundle=True)
    assert connections == 4  # the stage's, then each anchor set's


def certifi_trusting(*anchors: pki.Issued) -> trust.Trust:
    """A trust whose certifi holds these anchors, as the real certifi holds the public
    roots that sign the API's certificate."""
    made = trust.Trust()
    path = pem_file(*anchors)
    context = ssl.create_default_context(cafile=path)
    made.__dict__["certifi"] = context  # the cached properties, set before their first use
    made.__dict__["certifi_pem"] = Path(path).read_bytes()
    return made


def test_a_certificate_certifi_trusts_needs_no_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    with system_store(monkeypatch, inspection_ca()), TlsServer(
            leaf(), sandbox_intermediate()) as server:
        outcome = asyncio.run(tls.run(tls_context(server.port, certifi_trusting(sandbox_ca()))))
        connections = server.connections
    assert outcome.status is Status.PASS
    assert found(outcome).trust == TrustVerdicts(certifi=True, system=False, ca_bundle=None)
    assert connections == 1


@pytest.mark.usefixtures("unreadable_stores")
def test_stores_that_cannot_be_read_are_asked_by_handshakes_remembered_for_a_while(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with system_store(monkeypatch, sandbox_ca()), TlsServer(
            leaf(), sandbox_intermediate()) as server:
        anchors = trust.load(str(server.bundle))

        def check() -> TrustVerdicts | None:
            return found(asyncio.run(tls.run(tls_context(server.port, anchors)))).trust

        with caplog.at_level(logging.INFO, "assure_doctor.tls"):
            assert check() == TrustVerdicts(certifi=False, system=True, ca_bundle=True)
        # the stage's, then the system's, certifi's and the bundle's alone
        assert server.connections == 4
        [refused] = [r for r in caplog.records if "Verification with" in r.getMessage()]
        assert refused.getMessage().startswith("Verification with the certifi anchors: ")
        assert refused.name == "assure_doctor.tls"
        assert check() == TrustVerdicts(False, True, True)
        assert server.connections == 5  # the same certificate moments later: remembered
        server.serve(leaf(), sandbox_intermediate())  # a new certificate: asked again
        assert check() == TrustVerdicts(False, True, True)
        assert server.connections == 9
        for key, (when, verdicts) in list(tls._TRUST_SEEN.items()):
            tls._TRUST_SEEN[key] = (when - 60.5, verdicts)  # a minute has passed
        assert check() == TrustVerdicts(False, True, True)
        assert server.connections == 13


@pytest.mark.usefixtures("unreadable_stores")
def test_without_a_bundle_the_handshakes_ask_only_the_machines_store(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with system_store(monkeypatch, inspection_ca()), TlsServer(
            leaf(), sandbox_intermediate()) as server, caplog.at_level(logging.INFO):
        outcome = asyncio.run(tls.run(tls_context(server.port, certifi_trusting(sandbox_ca()))))
        connections = server.connections
    assert found(outcome).trust == TrustVerdicts(certifi=True, system=False, ca_bundle=None)
    assert connections == 2  # the stage's, and the machine's store's (which refused)
    [refused] = [r.getMessage() for r in caplog.records if "Verification with" in r.getMessage()]
    assert refused.startswith("Verification with the system anchors: ")


@pytest.mark.usefixtures("unreadable_stores")
def test_a_bundle_that_does_not_verify_the_api_alone_is_said_so(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """certifi trusts the API's root; the bundle holds another: certifi + bundle verify."""
    with system_store(monkeypatch, inspection_ca()), TlsServer(
            leaf(), sandbox_intermediate()) as server, caplog.at_level(logging.INFO):
        anchors = trust.load(pem_file(inspection_ca()))
        anchors.__dict__["certifi"] = certifi_trusting(sandbox_ca()).certifi
        anchors.__dict__["certifi_pem"] = certifi_trusting(sandbox_ca()).certifi_pem
        anchors.__dict__["strict"] = ssl.create_default_context(
            cafile=pem_file(sandbox_ca(), inspection_ca()))
        outcome = asyncio.run(tls.run(tls_context(server.port, anchors)))
    assert outcome.status is Status.PASS
    assert found(outcome).trust == TrustVerdicts(certifi=True, system=False, ca_bundle=False)
    refused = sorted(r.getMessage().split(":")[0] for r in caplog.records
                     if "Verification with" in r.getMessage())
    assert refused == ["Verification with the --ca-bundle anchors",
                       "Verification with the system anchors"]


def test_a_bundle_that_cannot_be_read_as_a_list_is_asked_by_a_handshake(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with system_store(monkeypatch, inspection_ca()), TlsServer(
            leaf(), sandbox_intermediate()) as server:
        anchors = trust.load(str(server.bundle))
        anchors.__dict__["certifi"] = certifi_trusting(sandbox_ca()).certifi
        anchors.__dict__["certifi_pem"] = certifi_trusting(sandbox_ca()).certifi_pem
        readable = chaincheck.store_of_pem
        monkeypatch.setattr(chaincheck, "store_of_pem",
                            lambda pem: None if pem is anchors.ca_pem else readable(pem))
        outcome = asyncio.run(tls.run(tls_context(server.port, anchors)))
    assert found(outcome).trust == TrustVerdicts(certifi=True, system=False, ca_bundle=True)


@pytest.mark.usefixtures("unreadable_stores")
def test_the_remembered_verdicts_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    for number in range(tls._TRUST_SEEN_MAX):
        tls._TRUST_SEEN[("old", number)] = (0.0, TrustVerdicts(True, True, None))
    with system_store(monkeypatch, sandbox_ca()), TlsServer(
            leaf(), sandbox_intermediate()) as server:
        asyncio.run(tls.run(tls_context(server.port, trust.load(str(server.bundle)))))
    assert len(tls._TRUST_SEEN) == tls._TRUST_SEEN_MAX
    assert ("old", 0) not in tls._TRUST_SEEN and ("old", 1) in tls._TRUST_SEEN


# --- through a proxy -------------------------------------------------------------------------
def test_through_a_proxy_the_handshake_upgrades_the_proxy_stages_tunnel(
        caplog: pytest.LogCaptureFixture) -> None:
    with sandbox("proxy-open") as api:
        proxy_url = api.proxy_url
        assert proxy_url is not None and api.proxy is not None
        ctx = context(api, proxy=load_proxy(proxy_url, False, {}))
        with caplog.at_level(logging.INFO, "assure_doctor.tls"):
            outcome = run(ctx, "dns", "tcp", "proxy", "tls")
        tunnels = len(api.proxy.log.connects)
        # The server counts a connection once its side of the handshake is done, which may
        # come after ours: wait for it, then for nothing more.
        connections = wait_until(lambda: api.traffic.connections, 5, "the API's connection")
    assert outcome.status is Status.PASS
    assert connections == 1 and tunnels == 1  # the tunnel the proxy stage opened, upgraded
    assert any(f"via {proxy_url}" in r.getMessage() for r in caplog.records)
