"""The dns stage against a real UDP DNS server on loopback, in-process: with --resolver, what
each answer of that server means (addresses, NXDOMAIN, SERVFAIL, REFUSED, silence, NODATA, a
sinkhole, an alias that dangles, AAAA dropped), the record types asked for each family, an
address given for a name, and a check through a proxy, where only the proxy's name must
resolve. The resolver's answer read from dnspython's errors.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.resolver
import pytest

from assure_doctor.kinds import Condition, DnsKind, Family, OsFailure, PinSource, ProxyStep
from assure_doctor.model import Outcome, Status
from assure_doctor.options import CheckOptions
from assure_doctor.probes import dns as dns_stage
from assure_doctor.probes import hostsfile, oslookup
from assure_doctor.probes.oslookup import OsAnswer
from assure_doctor.probes.results import CnameLink, DnsFound, HostsPin, OsSource
from assure_doctor.probes.stage import Context
from assure_doctor.proxyconfig import load as load_proxy
from assure_doctor.sandbox import dnsserver
from assure_doctor.target import from_url, parse_resolver

HOST = "api.uk2.sheassure.net"
GATEWAY = "gw-uk2.example.net"
PROXY = "proxy.corp.test"


@dataclass
class Looked:
    """A dns stage's outcome, what the server was asked, and how long the stage took."""

    outcome: Outcome
    queries: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def found(self) -> DnsFound:
        assert isinstance(self.outcome.found, DnsFound)
        return self.outcome.found


class Server(dnsserver.DnsServer):
    """The sandbox's DNS server; names in `silent_for` get no answer at all, and with `rcode`
    every query is answered with that rcode alone."""

    def __init__(self, zone: dnsserver.Zone, silent_for: Sequence[str] = (),
                 rcode: dns.rcode.Rcode | None = None) -> None:
        super().__init__(zone)
        self.silent_for = set(silent_for)
        self.rcode = rcode

    def _answer(self, query: dns.message.Message, name: str, rdtype: int
                ) -> dns.message.Message | None:
        if name in self.silent_for:
            return None
        if self.rcode is not None:
            response = dns.message.make_response(query)
            response.set_rcode(self.rcode)
            return response
        return super()._answer(query, name, rdtype)


def look(behaviour: str = "answer", url: str = f"https://{HOST}/v1/ping",
         ipv4: tuple[str, ...] = ("192.0.2.10",), ipv6: tuple[str, ...] = ("2001:db8::10",),
         aliases: tuple[str, ...] = (), zone_host: str = HOST, silent_for: Sequence[str] = (),
         proxy: str | None = None, rcode: dns.rcode.Rcode | None = None,
         **options: object) -> Looked:
    """The dns stage of a check of `url`, asking only our server (--resolver)."""
    async def go() -> Looked:
        loop = asyncio.get_running_loop()
        zone = dnsserver.Zone(zone_host, behaviour, ipv4, ipv6, aliases)
        transport, server = await loop.create_datagram_endpoint(
            lambda: Server(zone, silent_for, rcode), local_addr=("127.0.0.1", 0))
        try:
            resolver = f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
            made = CheckOptions(timeout=1.0, resolvers=(parse_resolver(resolver),),
                                proxy=load_proxy(proxy, False, {}) if proxy else
                                load_proxy(None, True, {}))
            for name, value in options.items():
                made = dataclasses.replace(made, **{name: value})  # type: ignore[arg-type]
            ctx = Context(from_url(url), made, None)
            start = time.monotonic()
            outcome = await dns_stage.run(ctx)
            return Looked(outcome, list(server.queries), time.monotonic() - start)
        finally:
            transport.close()
    return asyncio.run(go())


def resolver_of(looked: Looked) -> str:
    resolver = looked.found.resolver
    assert resolver is not None and resolver.startswith("127.0.0.1:")
    return resolver


# --- the resolver's answers --------------------------------------------------------------------
def test_addresses_of_both_families_in_the_resolvers_order() -> None:
    looked = look()
    found = looked.found
    assert looked.outcome.status is Status.PASS and looked.outcome.condition is None
    assert found.addresses == ("192.0.2.10", "2001:db8::10")
    assert looked.outcome.summary == (f"{HOST} → 192.0.2.10, 2001:db8::10 (via "
                                      f"{resolver_of(looked)} only)")
    assert found.answers == (("A", "NOERROR"), ("AAAA", "NOERROR"))
    assert found.chain == () and found.os_consulted is False
    assert sorted(looked.queries) == [(HOST, "A"), (HOST, "AAAA")]


@pytest.mark.parametrize(("family", "rdtype", "address"), [
    (Family.IPV4, "A", "192.0.2.10"), (Family.IPV6, "AAAA", "2001:db8::10")])
def test_one_family_asks_for_its_record_type_only(family: Family, rdtype: str, address: str
                                                  ) -> None:
    looked = look(family=family)
    assert looked.queries == [(HOST, rdtype)]
    assert looked.found.addresses == (address,)


def test_many_addresses_make_one_short_line() -> None:
    ipv4 = tuple(f"192.0.2.{n}" for n in range(1, 7))
    looked = look(ipv4=ipv4, family=Family.IPV4)
    assert sorted(looked.found.addresses) == list(ipv4)  # the evidence has them all
    named = ", ".join(looked.found.addresses[:4])
    assert looked.outcome.summary.startswith(f"{HOST} → {named} and 2 more (via ")


def test_exactly_four_addresses_are_all_named() -> None:
    assert dns_stage.listed(("a", "b", "c", "d")) == "a, b, c, d"
    assert dns_stage.listed(("a", "b", "c", "d", "e")) == "a, b, c, d and 1 more"


@pytest.mark.parametrize(("behaviour", "kind", "rcode", "summary"), [
    ("nxdomain", DnsKind.NXDOMAIN, "NXDOMAIN",
     "{host} does not exist (NXDOMAIN) according to {resolver}"),
    ("servfail", DnsKind.SERVFAIL, "SERVFAIL", "{resolver} failed to resolve {host} (SERVFAIL)"),
    ("refused", DnsKind.REFUSED, "REFUSED", "{resolver} refused to resolve {host} (REFUSED)"),
    ("silent", DnsKind.TIMEOUT, "TIMEOUT", "no answer from {resolver} within 1 s"),
    ("nodata", DnsKind.NODATA, "NOERROR",
     "{host} exists but has no IPv4 or IPv6 address (NODATA)"),
])
def test_each_failure_of_the_resolver_is_named(behaviour: str, kind: DnsKind, rcode: str,
                                               summary: str) -> None:
    looked = look(behaviour)
    resolver = resolver_of(looked)
    outcome, facts = looked.outcome, looked.outcome.facts
    assert outcome.status is Status.FAIL and outcome.condition is Condition.DNS_LOOKUP_FAILED
    assert outcome.summary == summary.format(host=HOST, resolver=resolver)
    assert facts["kind"] is kind and facts["rcode"] == rcode
    assert facts["resolver"] == resolver and facts["host"] == HOST
    assert facts["addresses"] == "nothing" and facts["timeout"] == 1.0
    assert "alias_broken" not in facts and "pinned_by" not in facts
    assert looked.found.addresses == () and looked.found.os_consulted is False
    if kind in (DnsKind.SERVFAIL, DnsKind.REFUSED, DnsKind.TIMEOUT):
        assert looked.found.error and facts["error"] == looked.found.error
    else:
        assert looked.found.error is None and looked.found.rcode == rcode
    assert looked.found.chain == (CnameLink(HOST, None, str(kind)),)  # where it failed


@pytest.mark.parametrize(("rcode", "error"), [
    (dns.rcode.NOTIMP, "All nameservers failed to answer the query"),
    (dns.rcode.YXDOMAIN, "The DNS query name is too long after DNAME substitution"),
])
def test_any_other_failure_of_the_resolver_is_an_error_naming_it(
        rcode: dns.rcode.Rcode, error: str) -> None:
    looked = look(rcode=rcode)
    facts = looked.outcome.facts
    assert facts["kind"] is DnsKind.ERROR
    assert error in (facts["error"] or "")
    assert looked.outcome.summary == f"lookup of {HOST} failed: {facts['error']}"
    assert looked.found.chain == (CnameLink(HOST, None, "error"),)
    if rcode == dns.rcode.NOTIMP:
        assert facts["rcode"] == looked.found.rcode == "NOTIMP"


def test_a_failed_lookup_is_logged_once_and_a_good_one_not(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "assure_doctor.dns"):
        look("nxdomain")
        look()
    [failed] = [r for r in caplog.records if r.getMessage().startswith("DNS lookup failed: ")]
    assert failed.name == "assure_doctor.dns" and "NXDOMAIN" in failed.getMessage()


def test_a_sinkhole_address_beside_a_real_one_is_no_sinkhole() -> None:
    looked = look(ipv4=("0.0.0.0", "192.0.2.10"), family=Family.IPV4)
    assert looked.outcome.status is Status.PASS


def test_nodata_for_one_family_names_that_family() -> None:
    looked = look("nodata", family=Family.IPV6)
    assert looked.outcome.summary == f"{HOST} exists but has no IPv6 address (NODATA)"


def test_a_sinkhole_is_a_failure_naming_its_address() -> None:
    looked = look("sinkhole")
    resolver = resolver_of(looked)
    assert looked.outcome.condition is Condition.DNS_LOOKUP_FAILED
    assert looked.outcome.facts["kind"] is DnsKind.SINKHOLE
    assert looked.outcome.summary == f"{resolver} answered 0.0.0.0: a blocked-domain sinkhole"
    assert looked.outcome.facts["addresses"] == "0.0.0.0"
    assert looked.outcome.facts["rcode"] == "SINKHOLE"


def test_the_most_telling_failure_of_the_record_types_is_reported() -> None:
    """A resolver that answers A with NODATA and is silent for AAAA: the silence tells more."""
    looked = look("nodata", silent_for=())
    assert looked.outcome.facts["kind"] is DnsKind.NODATA
    detail = dns_stage.Detail((dns_stage.Lookup("A", kind=DnsKind.NODATA, rcode="NOERROR"),
                               dns_stage.Lookup("AAAA", kind=DnsKind.TIMEOUT)))
    assert detail.failed.rdtype == "AAAA"
    assert detail.answers == (("A", "NOERROR"), ("AAAA", "timeout"))
    unknown = dns_stage.Detail((dns_stage.Lookup("A", kind=DnsKind.NODATA),
                                dns_stage.Lookup("AAAA")))  # no kind: an error
    assert unknown.failed.rdtype == "AAAA"


def test_a_dropped_aaaa_query_does_not_hold_up_the_a_answer() -> None:
    looked = look("drop_aaaa", timeout=5.0)
    assert looked.outcome.status is Status.PASS
    assert looked.found.addresses == ("192.0.2.10",)
    assert looked.found.answers == (("A", "NOERROR"), ("AAAA", "timeout"))
    assert looked.seconds < 1.75  # a second's grace, not the 5 s timeout


@pytest.mark.parametrize(("behaviour", "summary"), [
    ("nxdomain", "{host} is an alias of {gw}, which does not exist (NXDOMAIN) according to "
                 "{resolver}"),
    ("nodata", "{host} is an alias of {gw}, which has no IPv4 or IPv6 address (NODATA) "
               "according to {resolver}"),
])
def test_a_dangling_alias_names_the_link_that_broke(behaviour: str, summary: str) -> None:
    looked = look(behaviour, aliases=(GATEWAY,))
    resolver = resolver_of(looked)
    facts = looked.outcome.facts
    assert looked.outcome.summary == summary.format(host=HOST, gw=GATEWAY, resolver=resolver)
    assert facts["alias_broken"] is True and facts["broken_link"] == GATEWAY
    assert facts["chain_text"].startswith(f"{HOST} → {GATEWAY}")
    assert looked.found.chain == (CnameLink(HOST, GATEWAY, "ok"),
                                  CnameLink(GATEWAY, None, behaviour))


def test_a_chain_of_aliases_that_resolves_is_evidence() -> None:
    looked = look(aliases=(GATEWAY,), family=Family.IPV4)
    assert looked.outcome.status is Status.PASS
    assert looked.found.chain == (CnameLink(HOST, GATEWAY, "ok"), CnameLink(GATEWAY, None, "ok"))


@pytest.mark.parametrize(("url", "address"), [
    ("https://192.0.2.7/v1/ping", "192.0.2.7"), ("https://[2001:db8::7]/v1/ping", "2001:db8::7")])
def test_an_address_needs_no_lookup(url: str, address: str) -> None:
    looked = look(url=url)
    assert looked.outcome.status is Status.PASS and looked.queries == []
    assert looked.outcome.summary.endswith("is an address: nothing to look up")
    assert looked.found.addresses == (address,)
    assert looked.found.resolver == "none (address given)"


# --- through a proxy -----------------------------------------------------------------------------
def test_through_a_proxy_named_by_address_the_api_host_is_only_recorded() -> None:
    looked = look(proxy="http://192.0.2.99:3128")
    found = looked.found
    assert looked.outcome.status is Status.PASS
    assert looked.outcome.summary == "proxy 192.0.2.99 is an address: nothing to look up"
    assert found.addresses == ("192.0.2.99",) and found.proxy_host == "192.0.2.99"
    assert found.api_host is not None and found.api_host.host == HOST
    assert found.api_host.status == "pass"
    assert found.api_host.addresses == ("192.0.2.10", "2001:db8::10")
    assert found.resolver == resolver_of(looked)  # the server the API's name was asked of


def test_through_a_proxy_only_the_proxys_name_must_resolve() -> None:
    looked = look(zone_host=PROXY, proxy=f"http://{PROXY}:3128", ipv4=("192.0.2.99",),
                  ipv6=())
    found = looked.found
    assert looked.outcome.status is Status.PASS
    assert looked.outcome.summary.startswith(f"proxy {PROXY} → 192.0.2.99")
    assert found.addresses == ("192.0.2.99",) and found.proxy_host == PROXY
    assert found.api_host is not None and found.api_host.status == "fail"
    assert found.api_host.summary.startswith(f"{HOST} does not exist (NXDOMAIN)")


def test_through_a_proxy_a_silent_api_lookup_is_given_up_after_a_grace() -> None:
    looked = look(zone_host=PROXY, proxy=f"http://{PROXY}:3128", ipv4=("192.0.2.99",),
                  ipv6=(), silent_for=(HOST,), timeout=5.0)
    found = looked.found
    assert looked.outcome.status is Status.PASS and looked.seconds < 1.75
    assert found.api_host is not None and found.api_host.status == "unknown"
    assert found.api_host.summary == ("no answer within the grace period (not needed: the "
                                      "proxy resolves it)")


def test_through_a_proxy_whose_name_fails_the_proxy_cannot_be_reached() -> None:
    looked = look(proxy=f"http://{PROXY}:3128")  # the server knows the API's name only
    outcome, facts = looked.outcome, looked.outcome.facts
    assert outcome.status is Status.FAIL
    assert outcome.condition is Condition.PROXY_CONNECT_FAILED
    assert outcome.summary.startswith(f"proxy {PROXY} does not exist (NXDOMAIN)")
    assert facts["step"] is ProxyStep.DNS and facts["proxy"] == f"http://{PROXY}:3128"
    assert facts["kind"] is DnsKind.NXDOMAIN and facts["host"] == PROXY


# --- dnspython's errors ---------------------------------------------------------------------------
def test_the_rcode_is_read_from_the_servers_answer_among_the_errors() -> None:
    answer = dns.message.make_response(dns.message.make_query(HOST, "A"))
    answer.set_rcode(dns.rcode.REFUSED)
    errors = [("127.0.0.1", False, 53, "an error without an answer"),
              ("127.0.0.2", False, 53, answer)]
    request = dns.message.make_query(HOST, "A")
    failed = dns.resolver.NoNameservers(request=request, errors=errors)  # type: ignore[no-untyped-call]
    assert dns_stage._rcode_of(failed) == "REFUSED"
    unanswered = dns.resolver.NoNameservers(request=request, errors=errors[:1])  # type: ignore[no-untyped-call]
    assert dns_stage._rcode_of(unanswered) is None


# --- without --resolver: the system decides, DNS explains -----------------------------------------
# The system's answer (getaddrinfo) and the machine's hosts file are stand-ins here: the test
# says what the operating system answers and which hosts file it reads, and which server is
# "the system's DNS" (our own, on loopback). Nothing asks the machine's real resolver.
@dataclass
class System:
    """What the operating system answers for every name, and where its hosts file is."""

    answer: OsAnswer
    hosts: Path
    asked: list[str] = field(default_factory=list)


@pytest.fixture
def system(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> System:
    fake = System(OsAnswer(), tmp_path / "hosts")
    fake.hosts.write_text("127.0.0.1 localhost\n")

    async def getaddrinfo(host: str, port: int, family: Family | None, timeout: float
                          ) -> OsAnswer:
        fake.asked.append(host)
        return fake.answer

    monkeypatch.setattr(oslookup, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(hostsfile, "path_for", lambda platform, environ: str(fake.hosts))
    return fake


def as_the_system(monkeypatch: pytest.MonkeyPatch, behaviour: str = "answer",
                  host: str = HOST, no_dns: bool = False, timeout: float = 5.0,
                  rcode: dns.rcode.Rcode | None = None, search: str | None = None,
                  zone_host: str = HOST, **zone: object) -> Looked:
    """The dns stage without --resolver; "the system's DNS" is our server (or none), with
    `search` as its resolv.conf's search domain."""
    async def go() -> Looked:
        loop = asyncio.get_running_loop()
        made = dnsserver.Zone(zone_host, behaviour, **zone)  # type: ignore[arg-type]
        transport, server = await loop.create_datagram_endpoint(
            lambda: Server(made, rcode=rcode), local_addr=("127.0.0.1", 0))
        address = f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"

        def resolver(ctx: Context) -> tuple[object, str]:
            if no_dns:
                raise dns.resolver.NoResolverConfiguration("none")  # type: ignore[no-untyped-call]
            built, _ = dns_stage._built((parse_resolver(address),), ctx.options.timeout, None)
            if search is not None:
                built = copy.copy(built)  # the cached one stays as it was
                built.search = [dns.name.from_text(search)]
            return built, f"system ({address})"

        monkeypatch.setattr(dns_stage, "_resolver", resolver)
        try:
            ctx = Context(from_url(f"https://{host}/v1/ping"),
                          CheckOptions(timeout=timeout, proxy=load_proxy(None, True, {})), None)
            start = time.monotonic()
            outcome = await dns_stage.run(ctx)
            return Looked(outcome, list(server.queries), time.monotonic() - start)
        finally:
            transport.close()
    return asyncio.run(go())


def test_the_systems_answer_decides_and_dns_agreeing_is_said(
        system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    system.answer = OsAnswer(("192.0.2.10",))
    looked = as_the_system(monkeypatch, ipv4=("192.0.2.10",), ipv6=())
    found = looked.found
    resolver = found.resolver
    assert resolver is not None and resolver.startswith("system (127.0.0.1:")
    assert looked.outcome.status is Status.PASS
    assert looked.outcome.summary == f"{HOST} → 192.0.2.10 (via {resolver})"
    assert (found.os_consulted, found.os_addresses, found.os_source) == (
        True, ("192.0.2.10",), OsSource.DNS)
    assert found.dns_addresses == ("192.0.2.10",) and found.dns_agrees is True
    assert found.answers == (("A", "NOERROR"), ("AAAA", "NOERROR"))
    assert found.hosts_pins == () and found.hosts_file is None and found.note is None
    assert system.asked == [HOST]


def test_a_hosts_file_pin_is_named_with_its_line_and_dns_disagreeing(
        system: System, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    system.hosts.write_text(f"127.0.0.1 localhost\n# old\n198.18.0.66 {HOST}\n")
    system.answer = OsAnswer(("198.18.0.66",))
    with caplog.at_level(logging.WARNING):
        looked = as_the_system(monkeypatch, ipv4=("192.0.2.10",), ipv6=())
    found = looked.found
    assert looked.outcome.status is Status.PASS
    assert looked.outcome.summary == (f"{HOST} → 198.18.0.66 (from {system.hosts} line 3; "
                                      "DNS answers 192.0.2.10 instead)")
    assert (found.os_source, found.hosts_file, found.hosts_line) == (
        OsSource.HOSTS, str(system.hosts), 3)
    assert found.hosts_pins == (HostsPin("198.18.0.66", 3),) and found.dns_agrees is False
    [warned] = [r for r in caplog.records if "disagree" in r.getMessage()]
    assert warned.name == "assure_doctor.dns"


def test_an_answer_from_neither_hosts_nor_dns_is_the_systems(
        system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    system.answer = OsAnswer(("198.18.0.77",))
    looked = as_the_system(monkeypatch, ipv4=("192.0.2.10",), ipv6=())
    assert looked.found.os_source is OsSource.UNKNOWN
    assert looked.outcome.summary == (f"{HOST} → 198.18.0.77 (from the system's resolver; DNS "
                                      "answers 192.0.2.10 instead)")


@pytest.mark.parametrize(("behaviour", "said"), [
    ("nxdomain", "that it does not exist (NXDOMAIN)"), ("nodata", "no address (NODATA)"),
    ("servfail", "SERVFAIL"), ("refused", "REFUSED")])
def test_dns_failing_where_the_system_answers_is_said(
        system: System, monkeypatch: pytest.MonkeyPatch, behaviour: str, said: str) -> None:
    system.hosts.write_text(f"198.18.0.66 {HOST}\n")
    system.answer = OsAnswer(("198.18.0.66",))
    looked = as_the_system(monkeypatch, behaviour)
    assert looked.outcome.status is Status.PASS and looked.found.dns_agrees is False
    assert looked.outcome.summary.endswith(f" line 1; DNS answers {said})")


@pytest.mark.parametrize(("behaviour", "rcode", "said"), [
    ("silent", None, "nothing in time"), ("answer", dns.rcode.NOTIMP, "an error")])
def test_dns_failing_otherwise_is_said_too(system: System, monkeypatch: pytest.MonkeyPatch,
                                           behaviour: str, rcode: dns.rcode.Rcode | None,
                                           said: str) -> None:
    system.hosts.write_text(f"198.18.0.66 {HOST}\n")
    system.answer = OsAnswer(("198.18.0.66",))
    looked = as_the_system(monkeypatch, behaviour, timeout=0.5, rcode=rcode)
    assert looked.outcome.summary.endswith(f" line 1; DNS answers {said})")


def test_an_alias_the_system_followed_is_evidence(system: System,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    system.answer = OsAnswer(("192.0.2.10",))
    looked = as_the_system(monkeypatch, aliases=(GATEWAY,), ipv4=("192.0.2.10",), ipv6=())
    assert looked.found.chain == (CnameLink(HOST, GATEWAY, "ok"),
                                  CnameLink(GATEWAY, None, "ok"))


def test_a_search_domain_never_stands_in_for_the_name(system: System,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS has api...net.corp.test, not the name asked: that is no answer for it."""
    system.answer = OsAnswer(failure=OsFailure.NO_NAME, error="EAI_NONAME: not known")
    looked = as_the_system(monkeypatch, search="corp.test", zone_host=f"{HOST}.corp.test")
    assert looked.outcome.facts["kind"] is DnsKind.NXDOMAIN
    assert looked.found.dns_addresses == ()


@pytest.mark.parametrize(("behaviour", "kind"), [
    ("nxdomain", DnsKind.NXDOMAIN), ("servfail", DnsKind.SERVFAIL), ("silent", DnsKind.TIMEOUT)])
def test_the_system_failing_takes_dns_s_own_telling_answer(
        system: System, monkeypatch: pytest.MonkeyPatch, behaviour: str, kind: DnsKind) -> None:
    system.answer = OsAnswer(failure=OsFailure.TEMPORARY, error="EAI_AGAIN: try again")
    looked = as_the_system(monkeypatch, behaviour, timeout=0.5)
    found = looked.found
    assert looked.outcome.facts["kind"] is kind
    if kind is DnsKind.NXDOMAIN:
        assert found.rcode == "NXDOMAIN" and found.error is None
    else:
        assert found.error and found.error != "EAI_AGAIN: try again"
    assert found.os_error == "EAI_AGAIN: try again"


def test_a_system_failure_of_no_known_kind_is_other(system: System,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    system.answer = OsAnswer()  # no address, and no failure named
    looked = as_the_system(monkeypatch, ipv4=("192.0.2.10",), ipv6=())
    assert looked.outcome.facts["os_failure"] is OsFailure.OTHER


def test_an_unreadable_hosts_file_is_a_note(system: System, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    system.hosts.unlink()
    system.hosts.mkdir()  # not a regular file
    system.answer = OsAnswer(("192.0.2.10",))
    looked = as_the_system(monkeypatch, ipv4=("192.0.2.10",), ipv6=())
    assert looked.outcome.status is Status.PASS
    assert looked.found.note and "hosts file" in looked.found.note


def test_a_sinkhole_in_the_hosts_file_names_its_line(
        system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    system.hosts.write_text(f"0.0.0.0 {HOST}\n")
    system.answer = OsAnswer(("0.0.0.0",))
    looked = as_the_system(monkeypatch, ipv4=("192.0.2.10",), ipv6=())
    facts = looked.outcome.facts
    assert looked.outcome.condition is Condition.DNS_LOOKUP_FAILED
    assert facts["kind"] is DnsKind.SINKHOLE
    assert looked.outcome.summary == f"{system.hosts} line 1 maps {HOST} to 0.0.0.0: blocked"
    assert (facts["pinned_by"], facts["hosts_file"], facts["hosts_line"],
            facts["pinned_address"]) == (PinSource.HOSTS_FILE, str(system.hosts), 1, "0.0.0.0")
    assert facts["dns_addresses"] == "192.0.2.10"


def test_a_sinkhole_from_dns_names_the_resolver(system: System,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    system.answer = OsAnswer(("0.0.0.0",))
    looked = as_the_system(monkeypatch, "sinkhole")
    assert looked.outcome.summary == (f"{looked.found.resolver} answered 0.0.0.0: a "
                                      "blocked-domain sinkhole")
    assert "pinned_by" not in looked.outcome.facts


def test_the_system_failing_where_dns_answers_names_both(
        system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    system.answer = OsAnswer(failure=OsFailure.NO_NAME, error="EAI_NONAME: not known")
    looked = as_the_system(monkeypatch, ipv4=("192.0.2.10",), ipv6=())
    facts = looked.outcome.facts
    assert looked.outcome.condition is Condition.DNS_LOOKUP_FAILED
    assert facts["kind"] is DnsKind.SYSTEM_FAILED
    assert looked.outcome.summary == (f"the system's resolver could not resolve {HOST}: "
                                      "EAI_NONAME: not known; DNS answers 192.0.2.10")
    assert (facts["os_failure"], facts["os_error"]) == (OsFailure.NO_NAME,
                                                        "EAI_NONAME: not known")
    assert facts["dns_addresses"] == "192.0.2.10"
    assert looked.found.os_error == "EAI_NONAME: not known"


def test_a_machine_with_no_dns_server_is_named(system: System,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    system.answer = OsAnswer(failure=OsFailure.TEMPORARY, error=None)
    looked = as_the_system(monkeypatch, no_dns=True)
    facts = looked.outcome.facts
    assert facts["kind"] is DnsKind.NO_RESOLVER
    assert looked.outcome.summary == "no DNS server is configured on this machine"
    assert facts["os_error"] == "unknown" and looked.queries == []
    assert looked.found.resolver == "system (no DNS server configured)"


@pytest.mark.parametrize("host", ["localhost", "api.localhost"])
def test_localhost_names_never_go_to_dns(system: System, monkeypatch: pytest.MonkeyPatch,
                                         host: str) -> None:
    system.answer = OsAnswer(("127.0.0.1",))
    looked = as_the_system(monkeypatch, host=host)
    found = looked.found
    assert looked.outcome.status is Status.PASS and looked.queries == []
    assert found.note == "localhost names never go to DNS (RFC 6761)"
    assert found.resolver == "system (getaddrinfo)"
    assert found.answers is None and found.dns_addresses is None and found.dns_agrees is None


def test_a_name_like_localhost_is_no_localhost_name(system: System,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    system.answer = OsAnswer(("192.0.2.10",))
    looked = as_the_system(monkeypatch, host="mylocalhost")
    assert looked.found.note is None and looked.queries  # DNS was asked


def test_dns_slower_than_the_system_gets_a_grace_only(system: System,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    system.answer = OsAnswer(("192.0.2.10",))
    looked = as_the_system(monkeypatch, "silent")
    assert looked.outcome.status is Status.PASS and looked.seconds < 1.75
    assert looked.found.note == "DNS gave no detail within the grace period"
    assert looked.found.answers is None and looked.found.dns_agrees is None


# --- the resolvers, built once ---------------------------------------------------------------
def test_a_resolver_waits_its_lifetime_with_one_retransmission() -> None:
    resolver, described = dns_stage._built((parse_resolver("127.0.0.1:5353"),), 3.0, None)
    assert (resolver.lifetime, resolver.timeout) == (3.0, 1.5)
    assert described == "127.0.0.1:5353"
    short, _ = dns_stage._built((parse_resolver("127.0.0.1:5353"),), 0.6, None)
    assert short.timeout == 0.5  # never less than half a second a try


def test_a_resolver_given_needs_no_resolv_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without resolv.conf (a container, say): --resolver still works."""
    def missing(self: object, filename: object) -> None:
        raise dns.resolver.NoResolverConfiguration("no resolv.conf")  # type: ignore[no-untyped-call]

    monkeypatch.setattr(dns.resolver.BaseResolver, "read_resolv_conf", missing)
    assert look().outcome.status is Status.PASS


def test_the_systems_resolver_is_described_by_its_servers() -> None:
    conf = Path("/etc/resolv.conf")
    if not conf.is_file():
        pytest.skip("no /etc/resolv.conf here to build the system's resolver from")
    servers = [line.split()[1] for line in conf.read_text().splitlines()
               if line.startswith("nameserver ") and len(line.split()) > 1]
    if not servers:
        pytest.skip("resolv.conf names no server here")
    _, described = dns_stage._built((), 2.0, (0, 0))
    assert described.startswith("system (") and all(s in described for s in servers)


def test_the_systems_resolver_is_built_again_when_its_file_changes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if not Path("/etc/resolv.conf").is_file():
        pytest.skip("no /etc/resolv.conf here to build the system's resolver from")
    conf = tmp_path / "resolv.conf"  # stands in for the file dnspython reads: its stamp
    conf.write_text("nameserver 192.0.2.53\n")
    monkeypatch.setattr(dns_stage, "_RESOLV_CONF", str(conf))
    ctx = Context(from_url(f"https://{HOST}/v1/ping"), CheckOptions(timeout=2.0), None)
    first, described = dns_stage._resolver(ctx)
    assert described.startswith("system (") and dns_stage._resolver(ctx)[0] is first
    stamp = conf.stat()
    conf.write_text("nameserver 192.0.2.54\n")  # the same size, another time
    os.utime(conf, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    second = dns_stage._resolver(ctx)[0]
    assert second is not first
    conf.write_text("nameserver 192.0.2.155\n")  # another size, the same time
    os.utime(conf, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    assert dns_stage._resolver(ctx)[0] is not second
    conf.unlink()  # gone: no stamp, still a resolver
    assert dns_stage._resolver(ctx)[0] is not None
