"""A host's addresses as the dns stage would find them, for the connections made beside the
stages (an AIA URL's host, the proxies a PAC names): from --resolver when given (nothing falls
back to the system), else from the operating system's resolver."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from assure_doctor import sanitize
from assure_doctor.kinds import Family
from assure_doctor.options import CheckOptions


async def addresses(options: CheckOptions, host: str) -> list[str]:
    """The addresses of `host` (itself when it is one), of the family -4 / -6 allows;
    OSError (socket.gaierror from the system) when there are none."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    family = options.family
    if options.resolvers:
        import dns.asyncresolver  # only on this rare path
        import dns.exception
        import dns.nameserver

        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(r.host, r.port)
                                for r in options.resolvers]
        resolver.lifetime = options.timeout
        found: list[str] = []
        for rdtype, wanted in (("A", Family.IPV4), ("AAAA", Family.IPV6)):
            if family not in (None, wanted):
                continue
            try:
                answer = await resolver.resolve(host, rdtype, search=False,
                                                raise_on_no_answer=False)
            except dns.exception.DNSException:
                continue
            found += [rdata.to_text() for rdata in answer.rrset or ()]
        if not found:
            raise OSError(f"{sanitize.text(host, 100)} has no address at "
                          f"{', '.join(map(str, options.resolvers))}")
        return found
    socket_family = {None: socket.AF_UNSPEC, Family.IPV4: socket.AF_INET,
                     Family.IPV6: socket.AF_INET6}[family]
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, family=socket_family,
                                                         type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
