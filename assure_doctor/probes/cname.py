"""The CNAME chain of a lookup, link by link, from the resolver's answer.

A recursive resolver answers `api.x` with the whole chain (`api.x CNAME gw.y`, `gw.y A ...`),
and an NXDOMAIN or NODATA answer is about the chain's last name (RFC 6604). So the chain is
read from the answer section alone, bounded (at most `MAX_LINKS` aliases) and with loops cut.
"""

from __future__ import annotations

import dns.message
import dns.name
import dns.rdatatype

from assure_doctor.probes.results import CnameLink

MAX_LINKS = 10
OK = "ok"
LOOP = "loop"  # the alias points back into the chain
TOO_LONG = "too_long"  # more than MAX_LINKS aliases


def links(qname: str, response: dns.message.Message | None, end: str) -> tuple[CnameLink, ...]:
    """`qname`'s chain through the CNAME records of `response`; the last link (target None)
    is the name the chain ends at, with `end` as its status (`ok`, `nxdomain`, ...)."""
    aliases: dict[str, str] = {}
    for rrset in response.answer if response is not None else ():
        if rrset.rdtype == dns.rdatatype.CNAME and len(rrset):
            aliases.setdefault(_text(rrset.name), _text(rrset[0].target))
    chain: list[CnameLink] = []
    name = normal(qname)
    seen = {name}
    while name in aliases:
        target = aliases[name]
        if target in seen:
            return (*chain, CnameLink(name, target, LOOP))
        if len(chain) == MAX_LINKS:
            return (*chain, CnameLink(name, target, TOO_LONG))
        chain.append(CnameLink(name, target, OK))
        seen.add(target)
        name = target
    return (*chain, CnameLink(name, None, end))


def recorded(chain: tuple[CnameLink, ...]) -> tuple[CnameLink, ...]:
    """The chain as evidence: empty for a name that is no alias and resolved (one `ok` link
    says nothing), else every link."""
    return () if len(chain) == 1 and chain[0].status == OK else chain


def broken_alias(chain: tuple[CnameLink, ...]) -> CnameLink | None:
    """The failing link when it is past the name typed: the alias's target is what broke."""
    if len(chain) < 2 or chain[-1].status == OK:
        return None
    return chain[-1]


def text(chain: tuple[CnameLink, ...]) -> str:
    """`api.x → gw.y → edge.z`: the names, in order."""
    names = [link.name for link in chain]
    last = chain[-1] if chain else None
    if last is not None and last.target is not None:  # cut at a loop or the length bound
        names.append(last.target)
    return " → ".join(names)


def normal(name: str) -> str:
    return name.lower().rstrip(".")


def _text(name: dns.name.Name) -> str:
    return normal(name.to_text(omit_final_dot=True))
