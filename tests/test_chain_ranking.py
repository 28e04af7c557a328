"""Ranking by the broken link: which certificate of the chain failed, and whether the server's
clock explains that certificate's window, decide between `platform` and `clock`; the advice
names the certificate and its window.

Situations are real chains judged at chosen times (certchain), the server's clock given as a
skew, and the facts the tls stage reports for them; the expected orders are the issue's, not
read back from the tables. The last test goes end to end through the sandbox and the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from assure_doctor.kinds import CertKind, Facts
from assure_doctor.probes import certchain
from assure_doctor.probes.crossfacts import valid_at_server_time
from assure_doctor.probes.results import CertProblem
from assure_doctor.ranking import rank
from assure_doctor.sandbox import pki
from assure_doctor.sandbox.scenarios import DAY, Expect, Scenario
from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import FAST, run_cli

T = datetime(2026, 6, 1, tzinfo=UTC)
D = timedelta(days=1)
HOST = "api.uk2.sheassure.net"


@cache
def root() -> pki.Issued:
    return pki.make_ca("Ranking Root", None, T - 3000 * D, T + 3000 * D)


def chain(leaf_days: tuple[int, int], issuing_days: tuple[int, int]) -> certchain.Links:
    issuing = pki.make_ca("Ranking Issuing CA", root(), T + issuing_days[0] * D,
                          T + issuing_days[1] * D)
    leaf = pki.make_leaf([HOST], issuing, T + leaf_days[0] * D, T + leaf_days[1] * D)
    found = certchain.links([leaf.cert, issuing.cert], certchain.Anchors.of([root().cert]),
                            HOST, T)
    assert found is not None
    return found


def facts(found: certchain.Links, kind: CertKind, skew_days: float | None) -> Facts:
    """What the tls stage reports, with the clock's cross facts, for a date failure at T."""
    problem = CertProblem(kind.value)
    failing = found.failing(problem)
    assert failing is not None
    cert, link = failing
    explains = None if skew_days is None else valid_at_server_time(
        cert.not_before, cert.not_after, skew_days * 86400, T)
    return Facts(kind=kind, link=link, cert_subject=cert.subject, clock_explains=explains,
                 verify_error=f"certificate {kind}", host=HOST,
                 not_before=f"{cert.not_before:%Y-%m-%d %H:%M} UTC",
                 not_after=f"{cert.not_after:%Y-%m-%d %H:%M} UTC",
                 skew_text=None if skew_days is None else f"{abs(skew_days)} days off",
                 cert_names=HOST)


def ids(found: Facts) -> list[str]:
    return [str(cause.id) for cause in rank("tls_certificate_error", found)]


EXPIRED_INTERMEDIATE = ((-30, 60), (-400, -10))
NOT_YET_VALID_INTERMEDIATE = ((-30, 60), (5, 400))
EXPIRED_LEAF = ((-90, -10), (-400, 400))


@pytest.mark.parametrize(("situation", "kind", "skew_days", "first"), [
    # An expired intermediate under a valid leaf, the clocks agreeing: the platform's chain.
    (EXPIRED_INTERMEDIATE, CertKind.EXPIRED, 0.0, "platform"),
    # ... the server's clock unknown: its leaf passed the same clock, so still the platform.
    (EXPIRED_INTERMEDIATE, CertKind.EXPIRED, None, "platform"),
    # ... our clock 20 days ahead of the server's: at its time the intermediate is valid.
    (EXPIRED_INTERMEDIATE, CertKind.EXPIRED, -20.0, "clock"),
    # ... our clock 5 days ahead: the intermediate expired at the server's time too.
    (EXPIRED_INTERMEDIATE, CertKind.EXPIRED, -5.0, "platform"),
    (NOT_YET_VALID_INTERMEDIATE, CertKind.NOT_YET_VALID, 0.0, "platform"),
    (NOT_YET_VALID_INTERMEDIATE, CertKind.NOT_YET_VALID, None, "platform"),
    (NOT_YET_VALID_INTERMEDIATE, CertKind.NOT_YET_VALID, 10.0, "clock"),
    # The leaf itself: the clock is suspect unless the server's clock clears it.
    (EXPIRED_LEAF, CertKind.EXPIRED, None, "clock"),
    (EXPIRED_LEAF, CertKind.EXPIRED, 0.0, "platform"),
    (EXPIRED_LEAF, CertKind.EXPIRED, -20.0, "clock"),
])
def test_the_broken_link_and_the_servers_clock_decide(
        situation: tuple[tuple[int, int], tuple[int, int]], kind: CertKind,
        skew_days: float | None, first: str) -> None:
    assert ids(facts(chain(*situation), kind, skew_days))[0] == first


def test_the_platform_advice_names_the_intermediate_and_its_window() -> None:
    found = facts(chain(*EXPIRED_INTERMEDIATE), CertKind.EXPIRED, 0.0)
    platform = rank("tls_certificate_error", found)[0]
    assert platform.id == "platform"
    assert "intermediate certificate CN=Ranking Issuing CA" in platform.advice
    assert "2026-05-22 00:00 UTC" in platform.advice  # T - 10 days: its end
    clock = rank("tls_certificate_error", found)[1]
    assert clock.id == "clock" and "CN=Ranking Issuing CA" in clock.advice
    assert "does not explain it" in clock.advice


def test_the_clock_advice_names_the_intermediate_it_explains() -> None:
    found = facts(chain(*EXPIRED_INTERMEDIATE), CertKind.EXPIRED, -20.0)
    clock = rank("tls_certificate_error", found)[0]
    assert clock.id == "clock"
    assert "CN=Ranking Issuing CA" in clock.advice and "20.0 days off" in clock.advice


def test_a_root_outside_its_window_is_the_platforms_and_named() -> None:
    young = pki.make_ca("Young Ranking Root", None, T + 5 * D, T + 3000 * D)
    issuing = pki.make_ca("Under Young Root", young, T - D, T + 400 * D)
    leaf = pki.make_leaf([HOST], issuing, T - D, T + 60 * D)
    found = certchain.links([leaf.cert, issuing.cert], certchain.Anchors.of([young.cert]),
                            HOST, T)
    assert found is not None
    reported = facts(found, CertKind.NOT_YET_VALID, None)
    causes = rank("tls_certificate_error", reported)
    assert [str(c.id) for c in causes] == ["platform", "clock", "config"]
    assert "root certificate CN=Young Ranking Root" in causes[0].advice


def test_a_missing_intermediate_is_the_platforms_and_says_why_browsers_work() -> None:
    causes = rank("tls_certificate_error", Facts(
        kind=CertKind.MISSING_INTERMEDIATE, missing_intermediate="CN=Issuing CA 9",
        aia_url="http://crt.example/ca9.crt", issuer="CN=Issuing CA 9", host=HOST))
    assert [str(c.id) for c in causes] == ["platform", "tls_interception"]
    assert "CN=Issuing CA 9" in causes[0].advice
    assert "http://crt.example/ca9.crt" in causes[0].advice
    assert "Browsers" in causes[0].advice and "curl, Python, Java" in causes[0].advice
    # Without the fetched facts the wording that states them is not used.
    bare = rank("tls_certificate_error", Facts(kind=CertKind.MISSING_INTERMEDIATE))[0]
    assert "Browsers" not in bare.advice


def test_through_the_cli_the_clock_explains_an_intermediate_valid_at_the_servers_time(
        sandbox_factory: Callable[[Scenario], Sandbox]) -> None:
    scenario = Scenario("expired-intermediate-clock", "our clock is 20 days ahead",
                        cert="expired_intermediate", clock_offset=-20 * DAY,
                        expect=Expect("tls", "tls_certificate_error", "clock"))
    sandbox = sandbox_factory(scenario)
    run = run_cli("check", *sandbox.check_args(), *FAST, "--json")
    document = run.json()
    assert scenario.expect.met_by(document), document["diagnosis"]
    tls = run.stage("tls")
    assert "Issuing CA 0" in tls["causes"][0]["advice"]
    assert run.stage("clock")["status"] == "warn"
    assert sandbox.traffic.keyed == 0
