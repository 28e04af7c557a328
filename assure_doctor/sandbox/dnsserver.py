"""A real UDP DNS server for one zone, with the failure modes resolvers show in the field.

It answers as a recursive resolver does: a name that is an alias gets the whole CNAME chain,
then what the chain's last name has (addresses, nothing, or NXDOMAIN: RFC 6604).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL = 30


@dataclass(frozen=True)
class Zone:
    """The one name this server knows, and how it answers for it.

    With `aliases`, `host` is a CNAME to the first, that one to the next, and so on; the
    behaviour is then the last name's (a dangling alias: "nxdomain")."""

    host: str
    behaviour: str  # one of scenarios.DNS_BEHAVIOURS
    ipv4: tuple[str, ...] = ("127.0.0.1",)
    ipv6: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def chain(self) -> tuple[str, ...]:
        return (self.host, *self.aliases)


class DnsServer(asyncio.DatagramProtocol):
    """Answers A/AAAA for `zone.host` as `zone.behaviour` says; other names are NXDOMAIN."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transport: asyncio.BaseTransport | None = None
        self.queries: list[tuple[str, str]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:  # any malformed packet: drop it, as a server would
            return
        if not query.question:
            return
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        response = self._answer(query, name, question.rdtype)
        if response is not None and self.transport is not None:
            self.transport.sendto(response.to_wire(), addr)  # type: ignore[attr-defined]

    def _answer(self, query: dns.message.Message, name: str, rdtype: int
                ) -> dns.message.Message | None:
        chain = self.zone.chain
        behaviour = self.zone.behaviour if name in chain else "nxdomain"
        if behaviour == "drop_aaaa":  # some middleboxes drop AAAA queries
            behaviour = "silent" if rdtype == dns.rdatatype.AAAA else "answer"
        if behaviour == "silent":
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if behaviour in ("servfail", "refused"):  # the resolver fails the whole query
            response.set_rcode({"servfail": dns.rcode.SERVFAIL,
                                "refused": dns.rcode.REFUSED}[behaviour])
            return response
        owner = query.question[0].name
        for alias in chain[chain.index(name) + 1:] if name in chain else ():
            target = dns.name.from_text(alias)
            response.answer.append(dns.rrset.from_text_list(
                owner, TTL, dns.rdataclass.IN, dns.rdatatype.CNAME, [target.to_text()]))
            owner = target
        if behaviour == "nxdomain":  # about the chain's last name
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        response.flags |= dns.flags.AA
        addresses: tuple[str, ...] = ()
        if behaviour == "sinkhole":
            addresses = ("0.0.0.0",) if rdtype == dns.rdatatype.A else ()
        elif behaviour == "answer":
            addresses = self.zone.ipv4 if rdtype == dns.rdatatype.A else (
                self.zone.ipv6 if rdtype == dns.rdatatype.AAAA else ())
        if addresses:
            response.answer.append(dns.rrset.from_text_list(
                owner, TTL, dns.rdataclass.IN, dns.rdatatype.RdataType(rdtype),
                list(addresses)))
        return response


async def start(zone: Zone, host: str = "127.0.0.1", port: int = 0
                ) -> tuple[asyncio.BaseTransport, DnsServer]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: DnsServer(zone), local_addr=(host, port))
    return transport, protocol
