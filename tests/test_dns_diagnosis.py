"""Situations the system's resolver and DNS create, and the causes they rank: what the dns stage
makes of getaddrinfo's failure beside DNS's own answer, and how the tcp stage reads a hosts-file
pin. Behaviour only: each asserts the ranked ids and what the first advice states."""

from __future__ import annotations

import pytest

from assure_doctor.kinds import Condition, ConnectKind, DnsKind, Facts, OsFailure
from assure_doctor.model import Outcome, Status
from assure_doctor.options import CheckOptions
from assure_doctor.probes import cname, dns, registry
from assure_doctor.probes.oslookup import OsAnswer
from assure_doctor.probes.results import (
    Attempt,
    CnameLink,
    DnsFound,
    HostsPin,
    OsSource,
    TcpFound,
)
from assure_doctor.probes.stage import Context
from assure_doctor.ranking import rank
from assure_doctor.target import from_url

HOST = "api.uk2.sheassure.net"
SYSTEM = "system (192.0.2.53)"
GATEWAY = "gw-uk2.example.net"


def context() -> Context:
    return Context(from_url(f"https://{HOST}/v1/ping"), CheckOptions(timeout=2.0), None)


def ranked(ctx: Context, stage: str, outcome: Outcome) -> list[tuple[str, str]]:
    """The causes as the engine ranks them: the stage's facts over the check's, and the facts
    it takes from other stages."""
    assert outcome.condition is not None
    facts = ctx.base_facts
    facts.update(outcome.facts)
    cross = registry.probe(stage).cross_facts
    if cross is not None:
        facts.update(cross(ctx))
    return [(str(c.id), c.advice) for c in rank(outcome.condition, facts)]


def lookup(kind: DnsKind | None, *addresses: str, alias: str | None = None,
           rdtype: str = "A") -> dns.Lookup:
    status = cname.OK if addresses else str(kind)
    chain = ((cname.links(HOST, None, status)) if alias is None else
             (CnameLink(HOST, alias, cname.OK), CnameLink(alias, None, status)))
    return dns.Lookup(rdtype, addresses, kind, "NOERROR" if kind in (None, DnsKind.NODATA)
                      else str(kind).upper(), chain=chain)


def system_fails(failure: OsFailure, error: str, *lookups: dns.Lookup
                 ) -> tuple[Outcome, list[tuple[str, str]]]:
    ctx = context()
    detail = dns.Detail(lookups) if lookups else None
    found = DnsFound(resolver=SYSTEM, os_consulted=True,
                     chain=() if detail is None else detail.chain,
                     dns_addresses=None if detail is None else detail.addresses)
    outcome = dns.system_failed(ctx, HOST, OsAnswer(failure=failure, error=error), found,
                                detail)
    ctx.outcomes["dns"] = outcome
    return outcome, ranked(ctx, "dns", outcome)


NONAME = (OsFailure.NO_NAME, "EAI_NONAME: Name or service not known")
AGAIN = (OsFailure.TEMPORARY, "EAI_AGAIN: Temporary failure in name resolution")


@pytest.mark.parametrize(("os_failure", "lookups", "first", "order"), [
    # The name does not exist: the name typed is wrong.
    (NONAME, (lookup(DnsKind.NXDOMAIN), lookup(DnsKind.NXDOMAIN, rdtype="AAAA")), "config",
     "config dns_service platform"),
    # It exists as an alias of a name that does not: the platform's DNS.
    (NONAME, (lookup(DnsKind.NXDOMAIN, alias=GATEWAY),), "platform",
     "platform dns_service config"),
    (NONAME, (lookup(DnsKind.NODATA, alias=GATEWAY),), "platform",
     "platform dns_service config"),
    # The resolver fails or is silent: the DNS service.
    (AGAIN, (lookup(DnsKind.SERVFAIL),), "dns_service", "dns_service platform config"),
    (AGAIN, (lookup(DnsKind.TIMEOUT),), "dns_service", "dns_service firewall config"),
    (AGAIN, (lookup(DnsKind.REFUSED),), "dns_service", "dns_service config platform"),
    # DNS told nothing more (no server configured to ask, or an error of its own).
    (AGAIN, (lookup(DnsKind.ERROR),), "dns_service", "dns_service firewall config"),
    ((OsFailure.FAILED, "EAI_FAIL: Non-recoverable failure in name resolution"),
     (lookup(DnsKind.ERROR),), "dns_service", "dns_service config platform"),
    (NONAME, (lookup(DnsKind.ERROR),), "config", "config dns_service platform"),
    # DNS has the name, the system does not: this machine's resolver configuration.
    (NONAME, (lookup(None, "192.0.2.10"),), "config", "config dns_service platform"),
    (AGAIN, (lookup(None, "192.0.2.10"),), "dns_service", "dns_service firewall config"),
])
def test_the_system_failing_is_ranked_by_what_dns_says(
        os_failure: tuple[OsFailure, str], lookups: tuple[dns.Lookup, ...], first: str,
        order: str) -> None:
    outcome, causes = system_fails(*os_failure, *lookups)
    assert outcome.status is Status.FAIL and outcome.condition is Condition.DNS_LOOKUP_FAILED
    assert [c for c, _ in causes] == order.split()


def test_a_dangling_alias_names_the_broken_link_and_the_chain() -> None:
    outcome, causes = system_fails(*NONAME, lookup(DnsKind.NXDOMAIN, alias=GATEWAY))
    assert outcome.summary == (f"{HOST} is an alias of {GATEWAY}, which does not exist "
                               f"(NXDOMAIN) according to {SYSTEM}")
    platform = causes[0][1]
    assert f"{HOST} is an alias of {GATEWAY}, which does not exist" in platform
    assert "Evotix support" in platform and f"{HOST} → {GATEWAY}" in platform
    # ... and the name typed is not called a typo.
    config = dict(causes)["config"]
    assert "not a typo" in config and "does not exist according to" not in config


def test_dns_answering_what_the_system_does_not_is_said() -> None:
    outcome, causes = system_fails(*NONAME, lookup(None, "192.0.2.10"))
    assert outcome.summary.endswith("; DNS answers 192.0.2.10")
    assert "DNS (system (192.0.2.53)) answers 192.0.2.10" in causes[0][1]
    assert "EAI_NONAME" in causes[0][1]


def test_the_system_failing_alone_names_its_error() -> None:
    outcome, causes = system_fails(*AGAIN)
    assert outcome.facts.get("kind") is DnsKind.SYSTEM_FAILED
    assert causes[0][0] == "dns_service" and "EAI_AGAIN" in causes[0][1]


# --- the tcp stage and a hosts-file pin ---------------------------------------------------------

PINNED = "198.18.0.66"


def pinned_dns(dns_addresses: tuple[str, ...] | None = ("192.0.2.10",),
               source: OsSource = OsSource.HOSTS) -> DnsFound:
    return DnsFound((PINNED,), SYSTEM, os_consulted=True, os_addresses=(PINNED,),
                    os_source=source, hosts_file="/etc/hosts", hosts_line=7,
                    hosts_pins=(HostsPin(PINNED, 7),) if source is OsSource.HOSTS else (),
                    dns_addresses=dns_addresses)


def tcp_fails(found: DnsFound, kind: ConnectKind, condition: Condition,
              **facts: object) -> list[tuple[str, str]]:
    ctx = context()
    ctx.outcomes["dns"] = Outcome(Status.PASS, "resolved", found)
    error = {ConnectKind.TIMEOUT: "timed out", ConnectKind.REFUSED: "Connection refused"}[kind]
    tcp = TcpFound(PINNED, 443, (Attempt(PINNED, 443, 2000.0, kind, error),))
    outcome = Outcome(Status.FAIL, "cannot connect", tcp, condition,
                      Facts(kind=kind, default_port=True, address=PINNED, error=error,
                            **facts))  # type: ignore[typeddict-item]
    ctx.outcomes["tcp"] = outcome
    return ranked(ctx, "tcp", outcome)


@pytest.mark.parametrize(("kind", "condition", "facts"), [
    (ConnectKind.TIMEOUT, Condition.CONNECT_TIMEOUT, {"host_answers": False}),
    (ConnectKind.TIMEOUT, Condition.CONNECT_TIMEOUT, {"host_answers": True}),
    (ConnectKind.REFUSED, Condition.CONNECT_FAILED, {}),
])
def test_a_pinned_address_that_fails_is_the_hosts_files_fault(
        kind: ConnectKind, condition: Condition, facts: dict[str, object]) -> None:
    causes = tcp_fails(pinned_dns(), kind, condition, **facts)
    assert [c for c, _ in causes] == ["config", "firewall", "routing"]
    advice = causes[0][1]
    assert advice.startswith(f"/etc/hosts line 7 pins {HOST} to {PINNED}")
    assert "DNS answers 192.0.2.10" in advice


def test_without_dns_detail_the_pin_is_still_named() -> None:
    causes = tcp_fails(pinned_dns(None), ConnectKind.TIMEOUT, Condition.CONNECT_TIMEOUT)
    assert causes[0][0] == "config"
    assert "/etc/hosts line 7" in causes[0][1] and "DNS answers" not in causes[0][1]


def test_a_pin_that_agrees_with_dns_is_not_blamed() -> None:
    """The hosts file gives the very address DNS gives: the pin changes nothing, so the usual
    reading holds (a stealth firewall, here)."""
    causes = tcp_fails(pinned_dns((PINNED,)), ConnectKind.TIMEOUT, Condition.CONNECT_TIMEOUT,
                       host_answers=True)
    assert [c for c, _ in causes] == ["firewall", "platform", "routing"]
    assert all("/etc/hosts" not in advice for _, advice in causes)


def test_an_answer_from_dns_is_no_pin() -> None:
    causes = tcp_fails(pinned_dns(source=OsSource.DNS), ConnectKind.REFUSED,
                       Condition.CONNECT_FAILED)
    assert [c for c, _ in causes] == ["firewall", "config", "platform"]


def test_a_blocking_address_from_the_hosts_file_is_this_machines_setup() -> None:
    ctx = context()
    found = DnsFound(("0.0.0.0",), SYSTEM, os_consulted=True, os_addresses=("0.0.0.0",),
                     os_source=OsSource.HOSTS, hosts_file="/etc/hosts", hosts_line=12,
                     hosts_pins=(HostsPin("0.0.0.0", 12),), dns_addresses=("192.0.2.10",))
    outcome = dns._failure(ctx, HOST, DnsKind.SINKHOLE, found)
    assert outcome.summary == f"/etc/hosts line 12 maps {HOST} to 0.0.0.0: blocked"
    causes = ranked(ctx, "dns", outcome)
    assert [c for c, _ in causes] == ["config"]
    assert causes[0][1].startswith(f"/etc/hosts line 12 maps {HOST} to 0.0.0.0")
