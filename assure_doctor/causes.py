"""The guide's tables as data: conditions, causes, advice, and how evidence orders the causes.

Nothing here runs a probe. `ranking.rank` reads these tables; the probes only report the
condition and a few facts (`kind`, `host_answers`, ...) that select a row of `RANKING`.

Advice is chosen by the facts too: each (condition, cause) has variants, first match wins, and
a variant is used only when every fact it names (in `when` or as a `{placeholder}`) is known.
So a sentence that states a fact appears only when that fact holds; the cause's generic
variants come last, and the very last one of each cause names no fact at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Unpack

from assure_doctor.kinds import (
    CauseId,
    CertKind,
    ChainLink,
    Condition,
    ConnectKind,
    DnsKind,
    Facts,
    Family,
    HandshakeKind,
    HttpKind,
    OsFailure,
    PacKind,
    PinSource,
    ProxyKind,
    ProxyStep,
)
from assure_doctor.model import Status

C, K = Condition, CauseId

# Condition → the guide's name for it, as a failure.
CONDITIONS: Mapping[str, str] = {
    C.DNS_LOOKUP_FAILED: "Failure to look up the API hostname",
    C.CONNECT_FAILED: "Failure to connect to the API hostname",
    C.CONNECT_TIMEOUT: "Connection timeout",
    C.TLS_CERTIFICATE_ERROR: "SSL certificate error",
    C.TLS_HANDSHAKE_FAILED: "TLS handshake stalled or was cut after connecting",
    C.CLOCK_SKEW: "The local clock disagrees with the API's",
    C.HTTP_REDIRECT: "HTTP 300-399: redirection",
    C.HTTP_BAD_REQUEST: "HTTP 400: bad request",
    C.HTTP_UNAUTHORIZED: "HTTP 401: authentication failed",
    C.HTTP_NOT_FOUND: "HTTP 404: not found",
    C.HTTP_THROTTLED: "HTTP 429: too many requests",
    C.HTTP_SERVER_ERROR: "HTTP 500-599: API platform problem",
    C.HTTP_TIMEOUT: "Connected, but no HTTP response in time",
    C.HTTP_UNEXPECTED: "Unexpected HTTP status",
    C.PROXY_CONNECT_FAILED: "The proxy cannot be reached",
    C.PROXY_AUTH_REQUIRED: "The proxy requires authentication (407)",
    C.PROXY_REFUSED: "The proxy refused the connection to the API",
    C.PROXY_UPSTREAM_FAILED: "The proxy cannot reach the API (502/503/504)",
    C.INTERNAL_ERROR: "assure-doctor itself failed (a bug)",
}

# Condition → its name when the stage only warns (it worked, with a caveat): never an "error".
WARNING_TITLES: Mapping[str, str] = {
    C.DNS_LOOKUP_FAILED: "Some address lookups went unanswered",
    C.CONNECT_FAILED: "Some addresses of the API host refuse connections",
    C.CONNECT_TIMEOUT: "Some addresses of the API host do not answer",
    C.TLS_CERTIFICATE_ERROR: "SSL certificate expiring soon, or trusted only by this machine",
    C.TLS_HANDSHAKE_FAILED: "A TLS handshake stalled before one succeeded",
    C.CLOCK_SKEW: "The local clock disagrees with the API's",
    C.HTTP_REDIRECT: "A redirect before the ping succeeded",
    C.HTTP_BAD_REQUEST: "HTTP 400 before the ping succeeded",
    C.HTTP_UNAUTHORIZED: "HTTP 401 before the ping succeeded",
    C.HTTP_NOT_FOUND: "HTTP 404 before the ping succeeded",
    C.HTTP_THROTTLED: "HTTP 429 before the ping succeeded",
    C.HTTP_SERVER_ERROR: "HTTP 500-599 before the ping succeeded",
    C.HTTP_TIMEOUT: "A slow HTTP response before the ping succeeded",
    C.HTTP_UNEXPECTED: "An unexpected HTTP status before the ping succeeded",
    C.PROXY_CONNECT_FAILED: "A proxy address did not answer",
    C.PROXY_AUTH_REQUIRED: "The proxy asked for authentication",
    C.PROXY_REFUSED: "The proxy refused a connection",
    C.PROXY_UPSTREAM_FAILED: "The proxy could not reach the API at first",
    C.INTERNAL_ERROR: "assure-doctor hit a bug",
}


def title(condition: Condition | str, status: Status) -> str:
    """What a report calls a condition: a failure's name, or a warning's."""
    condition = Condition(condition)
    return (WARNING_TITLES if status is Status.WARN else CONDITIONS)[condition]


@dataclass(frozen=True)
class Advice:
    """One wording of a cause's advice, used only when the facts in `when` hold."""

    text: str
    when: Facts


def _a(text: str, **when: Unpack[Facts]) -> Advice:
    return Advice(text, when)


CAUSE_TITLES: Mapping[CauseId, str] = {
    K.CONFIG: "Incorrect setup/config",
    K.DNS_SERVICE: "DNS service issue",
    K.FIREWALL: "Firewall blocking the connection, or a stealth firewall",
    K.ROUTING: "IP routing issue",
    K.CLOCK: "Incorrect date/time on the servers/platform",
    K.PLATFORM: "Customer API platform issue",
    K.TLS_INTERCEPTION: "TLS-inspecting proxy or missing trust anchor",
    K.MISSING_KEY: "No API key sent",
    K.INVALID_KEY: "Invalid API key",
    K.WRONG_STACK: "API key of another stack",
    K.WRONG_URL: "Wrong URL path or HTTP method",
    K.RATE_LIMITED: "Request limit reached",
    K.PROXY: "Proxy configuration, credentials or policy",
    K.TOOL: "A bug in assure-doctor",
}

# Cause → its generic advice, used where a condition has none that fits. The last variant of
# each names no fact, so advice is never left with a blank in it.
GENERIC: Mapping[CauseId, tuple[Advice, ...]] = {
    K.CONFIG: (
        _a("Check the URL character by character against https://api.<stack>.sheassure.net/"
           "v1/ping (the stack is the one in your Assure web address). Log the exact URL just "
           "before the request is made and compare."),
    ),
    K.DNS_SERVICE: (
        _a("If the DNS servers this machine uses ({resolver}) are not answering properly, "
           "try the lookup with another resolver (--resolver) and, if that works, ask your IT "
           "support to fix the local DNS service."),
        _a("If this machine's DNS service is not answering properly, try the lookup with "
           "another resolver (--resolver) and, if that works, ask your IT support to fix it."),
    ),
    K.FIREWALL: (
        _a("Ask your network team to allow outbound HTTPS from this machine to {host} port "
           "{port}."),
        _a("Ask your network team to allow outbound HTTPS from this machine to the API."),
    ),
    K.ROUTING: (
        _a("If packets from this machine do not reach {address}, ask your IT team to check "
           "the default gateway, VPN and outbound internet routing for this machine."),
        _a("If packets from this machine do not reach the API, ask your IT team to check the "
           "default gateway, VPN and outbound internet routing for this machine."),
    ),
    K.CLOCK: (
        _a("Set this machine's clock right and keep it synchronised (NTP / w32time): a clock "
           "that is wrong makes valid certificates look expired or not yet valid."),
    ),
    K.PLATFORM: (
        _a("Unlikely, but possible: rule out the causes above, then contact Evotix support "
           "with this report (`check --json`)."),
    ),
    K.TLS_INTERCEPTION: (
        _a("If something between you and the API (a proxy or TLS-inspecting middlebox) "
           "answers in its place, ask your network team to let this machine reach {host} "
           "directly."),
        _a("If something between you and the API (a proxy or TLS-inspecting middlebox) "
           "answers in its place, ask your network team to let this machine reach the API "
           "directly."),
    ),
    K.MISSING_KEY: (
        _a("Provide the key in the x-api-key header: for assure-doctor set ASSURE_API_KEY or "
           "use --api-key-file. A proxy that strips unknown headers has the same effect."),
    ),
    K.INVALID_KEY: (
        _a("The key was refused. Check it was copied whole, has not been deleted or replaced "
           "in Assure (System Settings -> API Access), and create a new one if in doubt."),
    ),
    K.WRONG_STACK: (
        _a("Keys only work on the stack they were created on. Make sure the stack in the URL "
           "({host}) is the one in your Assure web address."),
        _a("Keys only work on the stack they were created on. Make sure the stack in the URL "
           "is the one in your Assure web address."),
    ),
    K.WRONG_URL: (
        _a("The API has no method at {url}. The ping is GET /v1/ping; check the path, its "
           "case, and the HTTP verb."),
        _a("The ping is GET /v1/ping; check the path, its case, and the HTTP verb."),
    ),
    K.RATE_LIMITED: (
        _a("The customer's limit is 10 requests a second (bursts of 20) and 10,000 a day, "
           "shared by every integration using your keys. Wait {retry_after} s before "
           "retrying, and find what else is spending requests."),
        _a("The customer's limit is 10 requests a second (bursts of 20) and 10,000 a day, "
           "shared by every integration using your keys. Wait before retrying, and find what "
           "else is spending requests."),
    ),
    K.PROXY: (
        _a("Check the proxy this machine uses ({proxy}): its address, the credentials it "
           "expects, and whether its policy allows {host}. Your integration must use the same "
           "proxy settings."),
        _a("Check the proxy settings this machine uses: the proxy's address, the credentials "
           "it expects, and whether its policy allows the API host. Your integration must use "
           "the same proxy settings."),
    ),
    K.TOOL: (
        _a("assure-doctor itself failed here ({exception}): this is a bug in the tool, not a "
           "finding about your network. Please report it to the assure-doctor maintainers "
           "with the JSON report (--json) and the log (--log-file); the key is never in them."),
        _a("assure-doctor itself failed here: this is a bug in the tool, not a finding about "
           "your network. Please report it to the assure-doctor maintainers with the JSON "
           "report (--json) and the log (--log-file); the key is never in them."),
    ),
}

# A ranking rule: (facts that must all equal, causes most likely first).
Rule = tuple[Facts, tuple[CauseId, ...]]
_FAMILY_RULES: tuple[Rule, ...] = tuple(
    ({"failed_family": family}, (K.ROUTING, K.FIREWALL, K.PLATFORM)) for family in Family)
_ONE_FAMILY = (
    # failed_family: this family failed on every address while the other family works.
    _a("{failed_family} to {host} fails ({error}) while {working_family} works, so the host "
       "answers and its firewall is not the cause: this machine's {failed_family} path is "
       "broken (a router, VPN or tunnel that advertises {failed_family} without carrying it). "
       "A client that tries {failed_family} first waits for its timeout, or fails, before it "
       "falls back to {working_family}: expect slow or failing calls from the integration "
       "until your IT team fixes {failed_family} routing or disables {failed_family} on this "
       "machine.", failed_family=Family.IPV6),
    _a("{failed_family} to {host} fails ({error}) while {working_family} works, so the host "
       "answers and its firewall is not the cause: this machine's {failed_family} path is "
       "broken. A client that tries {failed_family} first waits for its timeout, or fails, "
       "before it falls back to {working_family}: ask your IT team to check {failed_family} "
       "routing for this machine.", failed_family=Family.IPV4),
)
# These name {failed_family}: they apply only where one family failed, whichever it is.
_FAMILY_FIREWALL = (
    _a("A firewall that filters only {failed_family} (host or network) would explain "
       "{failed_family} failing while {working_family} works: ask your network team to allow "
       "outbound {failed_family} HTTPS to {host} port {port}."),
)
_FAMILY_PLATFORM = (
    _a("If {failed_family} to {host} fails from other networks too, the API's "
       "{failed_family} side may be down: tell Evotix support."),
)

# A traceroute that met a REJECT (ICMP administratively prohibited, or port unreachable):
# whatever the socket said, a firewall answered.
_REJECTED_RULES: tuple[Rule, ...] = (
    ({"path_ending": "rejected"}, (K.FIREWALL, K.ROUTING, K.PLATFORM)),
)

# What changed since the last good check: an address that moved, where it came from.
_MOVED_RULES: tuple[Rule, ...] = (
    ({"address_moved_by": "hosts"}, (K.CONFIG, K.FIREWALL, K.PLATFORM)),
    ({"address_moved_by": "dns"}, (K.DNS_SERVICE, K.CONFIG, K.PLATFORM)),
)
_MOVED_CONFIG = (
    _a("{host} now comes from the hosts file as {address}, which does not answer; when it "
       "last worked it was {address_was}. A hosts-file entry pins the name for every client "
       "on this machine: correct or remove it.", address_moved_by="hosts"),
)
_MOVED_DNS = (
    _a("{host} now resolves to {address}, which does not answer; when it last worked it was "
       "{address_was}. A stale or wrong DNS answer (an outdated record, a split-horizon or "
       "filtering resolver) would explain it: compare with another resolver (--resolver) "
       "and ask your IT support.", address_moved_by="dns"),
)

# A TCP traceroute after a timeout, reset or unreachable: where the path ends, and whose.
_PATH_FIREWALL = (
    _a("A TCP traceroute to port {port} shows where the connection attempts stop: "
       "{path_finding} A firewall there in 'stealth' mode drops them without an error: ask "
       "its owner to allow outbound HTTPS to {host} port {port}.", path_ending="silent"),
    _a("A TCP traceroute to port {port} shows who refuses it: {path_finding} Ask that owner "
       "to allow outbound HTTPS to {host} port {port}.", path_ending="rejected"),
)
_PATH_ROUTING = (
    _a("If the packets are lost rather than filtered, routing breaks where the traceroute "
       "stops (see the firewall advice and the path in the evidence): ask the owner it names "
       "to check the route to {address}.", path_ending="silent"),
    _a("A TCP traceroute to port {port} shows the hop that cannot deliver it onward: "
       "{path_finding}",
       path_ending="unreachable"),
)

# pinned_by: the hosts file gave the address that failed (and DNS does not give it).
_PINNED = (
    _a("{hosts_file} line {hosts_line} pins {host} to {pinned_address}, which this machine "
       "cannot connect to, while DNS answers {dns_addresses}. The hosts file decides for every "
       "program on this machine, so the integration fails the same way: remove that line (or "
       "correct it); editing the hosts file needs administrator rights.",
       pinned_by=PinSource.HOSTS_FILE),
    _a("{hosts_file} line {hosts_line} pins {host} to {pinned_address}, which this machine "
       "cannot connect to. The hosts file decides for every program on this machine, so the "
       "integration fails the same way: if that address is stale, remove the line (or correct "
       "it); editing the hosts file needs administrator rights.",
       pinned_by=PinSource.HOSTS_FILE),
)

# (condition, cause) → advice variants for that pairing, before the cause's generic ones.
ADVICE: Mapping[tuple[Condition, CauseId], tuple[Advice, ...]] = {
    (C.DNS_LOOKUP_FAILED, K.CONFIG): (
        # alias_broken: the name typed exists, as an alias of a name that does not.
        _a("{host} exists: it is an alias of {broken_link}, so it is not a typo. Only a wrong "
           "stack name could lead somewhere unintended: check it is the one in your Assure web "
           "address.", alias_broken=True),
        _a("{hosts_file} line {hosts_line} maps {host} to {addresses}, which blocks it. The "
           "hosts file decides for every program on this machine: remove that line (editing "
           "it needs administrator rights), or ask whoever manages this machine's blocking "
           "list to allow {host}.", kind=DnsKind.SINKHOLE, pinned_by=PinSource.HOSTS_FILE),
        _a("DNS ({resolver}) answers {dns_addresses} for {host}, but this machine's own "
           "resolver does not ({os_error}): its configuration differs from DNS (the hosts "
           "file, nsswitch.conf, a VPN's split DNS, a Windows name resolution policy). The "
           "integration resolves as this machine does: fix that configuration.",
           kind=DnsKind.SYSTEM_FAILED),
        _a("This machine's resolver does not find {host}. Check it for typos and that the "
           "stack name is right (the one in your Assure web address), then this machine's "
           "resolver settings (hosts file, VPN).", kind=DnsKind.SYSTEM_FAILED),
        _a("{host} does not exist according to {resolver}: check it for typos and that the "
           "stack name is right (it is the one in your Assure web address: uk, uk2, anz, na, "
           "...). With --resolver, check that server resolves public names.",
           kind=DnsKind.NXDOMAIN),
        _a("Check {host} for typos and that the stack name is right: it is the one in your "
           "Assure web address (uk, uk2, anz, na, ...). With --resolver, check that server "
           "resolves public names."),
    ),
    (C.DNS_LOOKUP_FAILED, K.DNS_SERVICE): (
        _a("This machine's resolver got no answer for {host} ({os_error}), though DNS asked "
           "directly ({resolver}) answers {dns_addresses}: the system's own resolver path (a "
           "local caching service, a VPN client's DNS, a Windows name resolution policy) is "
           "failing. Ask your IT support to fix it.", kind=DnsKind.SYSTEM_FAILED,
           os_failure=OsFailure.TEMPORARY),
        _a("This machine's resolver got no answer for {host} ({os_error}): the DNS servers it "
           "uses ({resolver}) are not answering properly. Try another resolver (--resolver) "
           "and, if that works, ask your IT support to fix the local DNS service.",
           kind=DnsKind.SYSTEM_FAILED, os_failure=OsFailure.TEMPORARY),
        _a("This machine's resolver got an unusable answer for {host} ({os_error}): the DNS "
           "servers it uses ({resolver}) refused or failed the query. Try another resolver "
           "(--resolver) and, if that works, ask your IT support to fix the local DNS "
           "service.", kind=DnsKind.SYSTEM_FAILED, os_failure=OsFailure.FAILED),
        _a("{resolver} did not answer within {timeout} s. Try another resolver (--resolver) "
           "and, if that works, ask your IT support to fix the local DNS service.",
           kind=DnsKind.TIMEOUT),
        _a("{resolver} answered {rcode} instead of an address. Try another resolver "
           "(--resolver) and, if that works, ask your IT support to fix the local DNS "
           "service.", kind=DnsKind.SERVFAIL),
        _a("{resolver} answered {rcode} instead of an address. Try another resolver "
           "(--resolver) and, if that works, ask your IT support to fix the local DNS "
           "service.", kind=DnsKind.REFUSED),
        _a("{resolver} answered {addresses}, an address that blocks the name: a DNS filter "
           "(corporate or parental) is blocking {host}. Ask your IT support to allow it.",
           kind=DnsKind.SINKHOLE),
    ),
    (C.DNS_LOOKUP_FAILED, K.FIREWALL): (
        _a("DNS queries (UDP and TCP port 53) to {resolver} may be blocked: ask your network "
           "team, or use the resolver your network provides."),
    ),
    (C.DNS_LOOKUP_FAILED, K.PLATFORM): (
        _a("{host} is an alias of {broken_link}, which does not exist according to {resolver} "
           "(the chain: {chain_text}): the platform's DNS is broken, not your setup. Tell "
           "Evotix support, with this report.", kind=DnsKind.NXDOMAIN, alias_broken=True),
        _a("{host} is an alias of {broken_link}, which has no address according to {resolver} "
           "(the chain: {chain_text}): the platform's DNS is broken, not your setup. Tell "
           "Evotix support, with this report.", kind=DnsKind.NODATA, alias_broken=True),
        _a("If {host} is definitely right but still does not resolve from other networks or "
           "resolvers, contact Evotix support."),
    ),
    (C.CONNECT_FAILED, K.CONFIG): (
        *_PINNED,
        *_MOVED_CONFIG,
        _a("Nothing accepts connections at {address} port {port}. Check the host and port in "
           "the URL: the API listens on 443 and the URL needs no port.",
           kind=ConnectKind.REFUSED, default_port=False),
        _a("Check the host and port in the URL ({host}, port {port}): the API listens on 443 "
           "and the URL needs no port."),
    ),
    (C.CONNECT_FAILED, K.FIREWALL): (
        *_FAMILY_FIREWALL,
        *_PATH_FIREWALL,
        _a("The connection was actively refused ({error}). Corporate firewalls commonly do "
           "this: ask your network team to allow outbound HTTPS to {host} port {port}.",
           kind=ConnectKind.REFUSED),
        _a("The connection was blocked on this machine ({error}): a local firewall or "
           "security policy forbids it. Ask your IT team to allow outbound HTTPS to {host} "
           "port {port}.", kind=ConnectKind.BLOCKED_LOCALLY),
    ),
    (C.CONNECT_FAILED, K.ROUTING): (
        *_ONE_FAMILY,
        *_PATH_ROUTING,
        _a("This machine has no route to {address} ({error}). Ask your IT team to check the "
           "default gateway, VPN and outbound internet routing for this machine.",
           kind=ConnectKind.UNREACHABLE),
    ),
    (C.CONNECT_FAILED, K.PLATFORM): _FAMILY_PLATFORM,
    (C.CONNECT_FAILED, K.DNS_SERVICE): _MOVED_DNS,
    (C.CONNECT_TIMEOUT, K.CONFIG): (*_PINNED, *_MOVED_CONFIG),
    (C.CONNECT_TIMEOUT, K.DNS_SERVICE): _MOVED_DNS,
    (C.CONNECT_TIMEOUT, K.FIREWALL): (
        *_FAMILY_FIREWALL,
        *_PATH_FIREWALL,
        _a("Connection attempts got no answer, yet the host answers on another port: a "
           "firewall in 'stealth' mode drops them without an error. Ask your network team to "
           "allow outbound HTTPS to {host} port {port}.", host_answers=True),
        _a("Connection attempts got no answer at all: a firewall in 'stealth' mode drops them "
           "without an error. Ask your network team to allow outbound HTTPS to {host} port "
           "{port}."),
    ),
    (C.CONNECT_TIMEOUT, K.ROUTING): (
        *_ONE_FAMILY,
        *_PATH_ROUTING,
        _a("Nothing on {address} answered, not even on another port: packets may not be "
           "getting out. Ask your IT team to check routing, VPN and the internet connection "
           "of this machine.", host_answers=False),
        _a("The host answers on another port, so packets do reach it: routing is unlikely, "
           "unless this port alone takes another path (a policy route or VPN split)."
           , host_answers=True),
    ),
    (C.CONNECT_TIMEOUT, K.PLATFORM): _FAMILY_PLATFORM,
    (C.TLS_CERTIFICATE_ERROR, K.CONFIG): (
        _a("Check that {host} is the right host name for your stack: the certificate "
           "presented names {cert_names}. If the name is right, something else is answering "
           "for it.", kind=CertKind.HOSTNAME_MISMATCH),
        _a("Check that {host} is the right host name for your stack: the certificate "
           "presented names {cert_names}."),
    ),
    (C.TLS_CERTIFICATE_ERROR, K.CLOCK): (
        _a("The certificate {cert_subject} is valid from {not_before} to {not_after}; this "
           "machine's clock is {skew_text}. Set the clock right and keep it synchronised (NTP "
           "/ w32time): a wrong clock makes a valid certificate look expired or not yet "
           "valid.", clock_explains=True),
        _a("The certificate {cert_subject} is valid from {not_before} to {not_after}: it is "
           "not valid at the API's own time either, so this machine's clock does not explain "
           "it; keep it synchronised anyway (NTP / w32time).", clock_explains=False),
        _a("The certificate {cert_subject} is valid from {not_before} to {not_after}. If this "
           "machine's clock is wrong, a valid certificate looks expired or not yet valid: "
           "check it and keep it synchronised (NTP / w32time)."),
    ),
    (C.TLS_CERTIFICATE_ERROR, K.PLATFORM): (
        _a("The API's server sends its certificate without the intermediate certificate "
           "{missing_intermediate} that links it to a trusted root. Browsers hide this: they "
           "fetch the intermediate from the address the certificate names ({aia_url}). API "
           "clients do not (curl, Python, Java, and .NET on some platforms) and fail with "
           "'unable to get local issuer certificate'. The server must send its intermediate "
           "with its certificate: contact Evotix support with this report, and do not turn "
           "certificate verification off to work around it.",
           kind=CertKind.MISSING_INTERMEDIATE),
        *(_a("The chain the API sends is broken at its " + str(link) + " certificate "
             "{cert_subject}, valid from {not_before} to {not_after}: {verify_error}. Only the "
             "platform can install a current one: contact Evotix support with this report.",
             link=link) for link in (ChainLink.INTERMEDIATE, ChainLink.ROOT)),
        _a("The API's certificate verified but expires soon ({verify_error}); renewing it is "
           "the platform's job. If it is not renewed in time, tell Evotix support.",
           kind=CertKind.EXPIRING),
        _a("The API's certificate has a problem: {verify_error}. It is not valid at the API's "
           "own time either, so it is not a local clock error: contact Evotix support with "
           "this report.", clock_explains=False),
        _a("The API's certificate has a problem: {verify_error}. If nothing on your side "
           "explains it, contact Evotix support with this report."),
    ),
    (C.TLS_CERTIFICATE_ERROR, K.TLS_INTERCEPTION): (
        _a("Since the last good check the certificate's issuer changed to {issuer}, a "
           "TLS-inspection product: inspection was introduced on this path. Ask your network "
           "team to exempt {host} from inspection, or give the integration the inspection "
           "root (and --ca-bundle here).", inspection_introduced=True),
        _a("A TLS-inspecting proxy ({product}, issuer {issuer}) re-signs the API's "
           "certificate, and this machine's trust store trusts its root. PowerShell, .NET and "
           "browsers will work; clients with their own CA list will fail: Python requests "
           "(certifi), many Java (cacerts) and Node apps. Ask your network team to exempt "
           "{host} from inspection, or give the integration the inspection root "
           "(REQUESTS_CA_BUNDLE, keytool, NODE_EXTRA_CA_CERTS).", kind=CertKind.SYSTEM_ONLY),
        _a("The certificate verified and was issued by {issuer}. If that is your "
           "organisation's TLS-inspecting proxy rather than a public CA, it is the proxy's "
           "certificate for {host} that expires soon: tell your network team.",
           kind=CertKind.EXPIRING),
        _a("The certificate presented was issued by {issuer}, which this machine does not "
           "trust: something between you and the API may present its own certificate. Ask "
           "your network team to exempt {host} from TLS inspection, or pass the proxy's root "
           "certificate with --ca-bundle and configure your integration to trust it too.",
           kind=CertKind.UNKNOWN_ISSUER),
        _a("The certificate presented is self-signed ({issuer}): something between you and "
           "the API may present its own certificate. Ask your network team to exempt {host} "
           "from TLS inspection, or trust its root with --ca-bundle.",
           kind=CertKind.SELF_SIGNED),
        _a("The certificate presented was issued by {issuer}. If that is not a public CA, "
           "something between you and the API presents its own certificate: ask your network "
           "team to exempt {host} from TLS inspection."),
    ),
    (C.TLS_HANDSHAKE_FAILED, K.FIREWALL): (
        _a("Less likely here: {mss}-byte segments completed the handshake, so nothing blocks "
           "TLS to {host} as such; only the packet size matters.", kind=HandshakeKind.MTU),
        _a("The TCP path is open ({path_finding}), yet the TLS handshake {kind_text}: a "
           "firewall or deep packet inspection on that path, or at the server, cuts TLS. Ask "
           "your network team to allow TLS to {host} port {port}.", path_ending="reached"),
        _a("The TCP connection opened but the TLS handshake {kind_text}: typical of a "
           "firewall or deep packet inspection. Ask your network team to allow TLS to {host} "
           "port {port}."),
    ),
    (C.TLS_HANDSHAKE_FAILED, K.ROUTING): (
        _a("Full-size packets are lost on the way while {mss}-byte segments get through: a "
           "path MTU black hole, typical of VPNs and tunnels. Ask your network team to clamp "
           "the TCP MSS on the VPN or firewall (or lower the tunnel's MTU), and to let ICMP "
           "'fragmentation needed' (IPv4) and 'packet too big' (IPv6) through.",
           kind=HandshakeKind.MTU),
        _a("Full-size packets are lost on the way while small segments get through: a path "
           "MTU black hole, typical of VPNs and tunnels. Ask your network team to clamp the "
           "TCP MSS on the VPN or firewall, and to let ICMP 'fragmentation needed' (IPv4) and "
           "'packet too big' (IPv6) through.", kind=HandshakeKind.MTU),
        _a("A handshake that stalls after connecting can also be a path MTU black hole "
           "(large packets dropped, e.g. on a VPN). Ask your IT team to check MTU / MSS "
           "clamping.", kind=HandshakeKind.TIMEOUT),
    ),
    (C.TLS_HANDSHAKE_FAILED, K.TLS_INTERCEPTION): (
        _a("A proxy or TLS-inspecting middlebox in the path may be cutting or answering the "
           "handshake. Ask your network team whether this machine must use a proxy for "
           "{host}."),
    ),
    (C.TLS_HANDSHAKE_FAILED, K.CONFIG): (
        _a("The server at {address} port {port} does not speak TLS there ({error}). Check the "
           "URL's port.", kind=HandshakeKind.NOT_TLS),
    ),
    (C.CLOCK_SKEW, K.CLOCK): (
        _a("This machine's clock is {skew_text}. Synchronise it with NTP (Linux: timedatectl; "
           "Windows: w32tm /resync): a wrong clock breaks certificate checks."),
    ),
    (C.CLOCK_SKEW, K.PLATFORM): (
        _a("If this machine's clock is verifiably right, the API's own clock is wrong: tell "
           "Evotix support."),
    ),
    (C.HTTP_REDIRECT, K.CONFIG): (
        _a("The API answered {status_code} with Location: {location}. Use the final URL "
           "directly (an HTTP client that silently follows redirects can lose the key "
           "header)."),
    ),
    (C.HTTP_REDIRECT, K.TLS_INTERCEPTION): (
        _a("The redirect points away from the API ({location}): a proxy or captive portal is "
           "answering. Ask your network team to let this machine reach {host} directly.",
           location_host="other"),
        _a("The redirect stays on {host}; a proxy that rewrites requests could also answer "
           "with one, but the API itself is the likelier source.", location_host="same"),
    ),
    (C.HTTP_BAD_REQUEST, K.CONFIG): (
        _a("The ping takes no data, so a 400 means the request itself is malformed. Check for "
           "stray headers, a body, or characters in the URL. Response: {response_body}"),
    ),
    (C.HTTP_BAD_REQUEST, K.TLS_INTERCEPTION): (
        _a("A proxy rewriting requests can cause this: try from a network without the proxy."),
    ),
    (C.HTTP_NOT_FOUND, K.CONFIG): (
        _a("Check that the URL is https://api.<stack>.sheassure.net/v1/ping for your stack."),
    ),
    (C.HTTP_THROTTLED, K.CONFIG): (
        _a("Every integration using a key of this customer spends from the same 10,000 "
           "requests a day: find which one is spending them, and never use the ping in "
           "regular processes."),
    ),
    (C.HTTP_SERVER_ERROR, K.PLATFORM): (
        _a("The API platform answered {status_code}. Retry later; if it persists, send Evotix "
           "support the response body: {response_body}"),
    ),
    (C.HTTP_SERVER_ERROR, K.TLS_INTERCEPTION): (
        _a("A proxy in the path can answer 502/503/504 itself: check the response body and "
           "whether this machine must use a proxy.", kind=HttpKind.GATEWAY),
        _a("A proxy in the path could answer with an error page itself: check the response "
           "body and whether this machine must use a proxy."),
    ),
    (C.HTTP_TIMEOUT, K.PLATFORM): (
        _a("The API accepted the connection but sent no response within {timeout} s. If it "
           "persists, contact Evotix support."),
    ),
    (C.HTTP_TIMEOUT, K.FIREWALL): (
        _a("A firewall or proxy that holds requests can cause this: try from another "
           "network."),
    ),
    (C.HTTP_TIMEOUT, K.ROUTING): (
        _a("TCP and TLS to {address} worked, so there is a route; a path that drops large "
           "packets (an MTU problem on a VPN) can still stall a response. Ask your IT team to "
           "check MTU / MSS clamping if it persists."),
    ),
    (C.HTTP_UNEXPECTED, K.CONFIG): (
        _a("The API answered an unexpected {status_code}. Check the URL and method; the ping "
           "is GET /v1/ping. Response: {response_body}"),
    ),
    # A proxy auto-configuration script (PAC) that gave no route: the proxy is unknown.
    (C.PROXY_CONNECT_FAILED, K.PROXY): (
        _a("The proxy auto-configuration script (PAC) named by {pac_source} could not be "
           "fetched from {pac_url} ({error}): without it there is no proxy to choose, for "
           "this check or for an integration that follows the same setting. Check that the "
           "PAC's server answers there, or ask your network team where this machine's PAC "
           "is.", kind=PacKind.FETCH),
        _a("The PAC named by {pac_source} did not arrive from {pac_url} in time ({error}): "
           "its server is slow, or something between this machine and it drops the "
           "connection. Ask your network team to check the PAC's server.",
           kind=PacKind.FETCH_TIMEOUT),
        _a("The PAC from {pac_url} (named by {pac_source}) was cut while FindProxyForURL "
           "waited for DNS to answer for {pac_waiting}: a PAC that looks names up is only as "
           "fast as DNS. Ask whoever maintains it (usually the network or proxy team) to "
           "avoid the lookup, or to have DNS fixed for that name.",
           kind=PacKind.EVAL_TIMEOUT, pac_dns_wait=True),
        _a("The PAC from {pac_url} (named by {pac_source}) did not return from "
           "FindProxyForURL in time ({error}). Ask whoever maintains it (usually the network "
           "or proxy team) to fix the script.", kind=PacKind.EVAL_TIMEOUT),
        _a("The PAC from {pac_url} (named by {pac_source}) was fetched, but FindProxyForURL "
           "cannot be evaluated for {url} ({error}). Ask whoever maintains it (usually the "
           "network or proxy team) to fix the script.", kind=PacKind.EVAL),
        _a("The PAC from {pac_url} (named by {pac_source}) returned '{pac_rule}' for {url}: "
           "no HTTP proxy (PROXY host:port) and no DIRECT, the only routes assure-doctor can "
           "test. If the integration cannot take those routes either, ask the PAC's "
           "maintainers for a PROXY route for {host}.", kind=PacKind.NO_ROUTE),
        _a("The proxy auto-configuration script (PAC) this machine is set to use could "
           "not be used. Check the PAC setting (--pac, or the system's automatic proxy "
           "configuration), or ask your network team which PAC this machine must use.",
           step=ProxyStep.PAC),
        _a("The proxy host in {proxy} (from {proxy_source}) does not exist according to "
           "{resolver}: check the proxy setting, or ask your IT team which proxy this machine "
           "must use.", step=ProxyStep.DNS, kind=DnsKind.NXDOMAIN),
        _a("The proxy {proxy} (from {proxy_source}) cannot be reached ({error}). Check its "
           "host and port there, or ask your IT team which proxy this machine must use."),
        _a("The proxy {proxy} cannot be reached. Check its host and port, or ask your IT "
           "team which proxy this machine must use."),
    ),
    (C.PROXY_CONNECT_FAILED, K.CONFIG): (
        _a("Check that {pac_url} is the PAC this machine should use (it comes from "
           "{pac_source}): a PAC location that is out of date or mistyped fails here, and so "
           "does an integration that follows the same setting.", step=ProxyStep.PAC),
        _a("Check the PAC setting this machine uses: a PAC location that is out of date or "
           "mistyped fails here.", step=ProxyStep.PAC),
    ),
    (C.PROXY_CONNECT_FAILED, K.FIREWALL): (
        _a("If a firewall keeps this machine from the PAC's server ({pac_url}), ask your "
           "network team to allow it: the PAC is fetched directly, not through a proxy.",
           step=ProxyStep.PAC),
        _a("If a firewall keeps this machine from the PAC's server, ask your network team to "
           "allow it: the PAC is fetched directly, not through a proxy.", step=ProxyStep.PAC),
        _a("A TCP traceroute to the proxy shows where the attempts stop: {path_finding}",
           step=ProxyStep.TCP, path_ending="silent"),
        _a("Connections to the proxy {proxy} are blocked or dropped ({error}): ask your "
           "network team to allow this machine to reach it.", step=ProxyStep.TCP),
    ),
    (C.PROXY_CONNECT_FAILED, K.ROUTING): (
        _a("There seems to be no route to the proxy at {address}: ask your IT team to check "
           "this machine's gateway and VPN.", step=ProxyStep.TCP,
           kind=ConnectKind.UNREACHABLE),
    ),
    (C.PROXY_CONNECT_FAILED, K.DNS_SERVICE): (
        _a("The PAC's FindProxyForURL was still waiting for the operating system's resolver "
           "to answer for {pac_waiting} when its time ran out: ask your IT support to check "
           "the DNS service for that name.", kind=PacKind.EVAL_TIMEOUT, pac_dns_wait=True),
        _a("The proxy's name does not resolve reliably via {resolver}: ask your IT team to "
           "fix the local DNS service, or give the proxy by address.", step=ProxyStep.DNS),
    ),
    (C.PROXY_AUTH_REQUIRED, K.PROXY): (
        _a("The proxy {proxy} refused the credentials given (it offers {schemes}): check the "
           "user name and password with your proxy team, and give the integration's HTTP "
           "client the right ones.", kind=ProxyKind.ANSWERABLE, has_credentials=True),
        _a("The proxy {proxy} asks for credentials ({schemes}) and can take Basic: give them "
           "in the proxy URL (--proxy http://user:password@host:port, or HTTPS_PROXY) and "
           "configure the integration's HTTP client with them too.",
           kind=ProxyKind.ANSWERABLE),
        _a("The proxy {proxy} offers only {schemes}: Windows-integrated sign-in, which "
           "assure-doctor cannot answer (it can answer Basic). PowerShell and .NET clients "
           "using the system proxy answer it as the logged-on user; a service account or a "
           "Python, Java or Node integration usually cannot. Ask your proxy team to allow "
           "{host} without authentication, or for Basic credentials for the integration.",
           kind=ProxyKind.UNANSWERABLE),
        _a("The proxy ({proxy}) wants credentials; it offers {proxy_authenticate}. Give them "
           "in the proxy URL (--proxy http://user:pass@host:port) and configure your "
           "integration the same way."),
        _a("The proxy wants credentials: give them in the proxy URL (--proxy "
           "http://user:pass@host:port) and configure your integration the same way."),
    ),
    (C.PROXY_AUTH_REQUIRED, K.CONFIG): (
        _a("Configure the integration's HTTP client with the same proxy and credentials: a "
           "client that ignores the proxy settings, or has none, fails here the same way."),
    ),
    (C.PROXY_REFUSED, K.PROXY): (
        _a("The proxy {proxy} refuses to tunnel to {host}:{port} (HTTP {status_code}, page: "
           "{title}): its policy blocks the API host. Ask your proxy team to allow CONNECT to "
           "{host} port {port}.", kind=ProxyKind.REFUSED),
        _a("The proxy refused to connect to the API: its policy blocks it. Ask your network "
           "team to allow the API host through the proxy.", kind=ProxyKind.REFUSED),
    ),
    (C.PROXY_REFUSED, K.CONFIG): (
        *(_a("Check that {proxy} (from {proxy_source}) is the proxy this machine should use, "
             "and that it is an HTTP proxy: CONNECT got no proper HTTP answer there.", kind=k)
          for k in (ProxyKind.NOT_HTTP, ProxyKind.CLOSED, ProxyKind.ERROR)),
        _a("Check that {proxy} (from {proxy_source}) is the proxy this machine should use: "
           "your integration must use the same one."),
    ),
    (C.PROXY_UPSTREAM_FAILED, K.PLATFORM): (
        _a("The proxy is reachable but cannot reach {host} (HTTP {status_code}, page: "
           "{title}): the problem is beyond the proxy. If other sites work through the proxy, "
           "the API may be down: check from another network and contact Evotix support with "
           "this report.", kind=ProxyKind.UPSTREAM),
    ),
    (C.PROXY_UPSTREAM_FAILED, K.PROXY): (
        _a("The proxy {proxy} took the connection but gave no answer to CONNECT within "
           "{timeout} s: it may be stuck reaching {host}. Ask your proxy team to look for "
           "{host} in its logs.", kind=ProxyKind.TIMEOUT),
        _a("The proxy ({proxy}) answered, but could not reach {host} itself: its own DNS, "
           "routing or outbound firewall may be failing for it. Ask your proxy team to look "
           "for {host} in its logs.", kind=ProxyKind.UPSTREAM),
        _a("The proxy answered, but could not reach the API itself: the problem is beyond "
           "the proxy. Tell your network team.", kind=ProxyKind.UPSTREAM),
    ),
    (C.PROXY_UPSTREAM_FAILED, K.FIREWALL): (
        _a("A firewall between the proxy and the internet may block {host} port {port}: ask "
           "your network team."),
    ),
}

def _date_rules(kind: CertKind) -> tuple[Rule, ...]:
    """A certificate outside its window: the clock's when it explains the window, the
    platform's when it does not, or when the failing link is an intermediate or the root."""
    return (
        ({"kind": kind, "clock_explains": False}, (K.PLATFORM, K.CLOCK, K.CONFIG)),
        ({"kind": kind, "clock_explains": True}, (K.CLOCK, K.PLATFORM, K.CONFIG)),
        ({"kind": kind, "link": ChainLink.INTERMEDIATE}, (K.PLATFORM, K.CLOCK, K.CONFIG)),
        ({"kind": kind, "link": ChainLink.ROOT}, (K.PLATFORM, K.CLOCK, K.CONFIG)),
        ({"kind": kind}, (K.CLOCK, K.PLATFORM, K.CONFIG)),
    )


# condition → rules, first match wins: (facts that must all equal, causes most likely first).
# A fact that is absent or None matches no rule that names it.
RANKING: Mapping[Condition, tuple[Rule, ...]] = {
    C.DNS_LOOKUP_FAILED: (
        # alias_broken: the chain breaks past the name typed, in the platform's own DNS.
        ({"kind": DnsKind.NXDOMAIN, "alias_broken": True}, (K.PLATFORM, K.DNS_SERVICE,
                                                            K.CONFIG)),
        ({"kind": DnsKind.NXDOMAIN}, (K.CONFIG, K.DNS_SERVICE, K.PLATFORM)),
        ({"kind": DnsKind.SERVFAIL}, (K.DNS_SERVICE, K.PLATFORM, K.CONFIG)),
        ({"kind": DnsKind.TIMEOUT}, (K.DNS_SERVICE, K.FIREWALL, K.CONFIG)),
        ({"kind": DnsKind.REFUSED}, (K.DNS_SERVICE, K.CONFIG, K.PLATFORM)),
        ({"kind": DnsKind.NODATA}, (K.PLATFORM, K.DNS_SERVICE, K.CONFIG)),
        ({"kind": DnsKind.SINKHOLE, "pinned_by": PinSource.HOSTS_FILE}, (K.CONFIG,)),
        ({"kind": DnsKind.SINKHOLE}, (K.DNS_SERVICE, K.CONFIG, K.PLATFORM)),
        # The system's resolver got no usable answer, and DNS told nothing more.
        ({"kind": DnsKind.SYSTEM_FAILED, "os_failure": OsFailure.TEMPORARY},
         (K.DNS_SERVICE, K.FIREWALL, K.CONFIG)),
        ({"kind": DnsKind.SYSTEM_FAILED, "os_failure": OsFailure.FAILED},
         (K.DNS_SERVICE, K.CONFIG, K.PLATFORM)),
        ({}, (K.CONFIG, K.DNS_SERVICE, K.PLATFORM)),
    ),
    C.CONNECT_FAILED: (
        # The hosts file pinned the address that failed: the pin is the first suspect.
        ({"pinned_by": PinSource.HOSTS_FILE}, (K.CONFIG, K.FIREWALL, K.ROUTING)),
        *_MOVED_RULES,
        *_FAMILY_RULES,
        *_REJECTED_RULES,
        ({"kind": ConnectKind.REFUSED, "default_port": False}, (K.CONFIG, K.FIREWALL,
                                                                 K.PLATFORM)),
        ({"kind": ConnectKind.REFUSED}, (K.FIREWALL, K.CONFIG, K.PLATFORM)),
        ({"kind": ConnectKind.UNREACHABLE}, (K.ROUTING, K.FIREWALL, K.PLATFORM)),
        ({"kind": ConnectKind.BLOCKED_LOCALLY}, (K.FIREWALL, K.CONFIG, K.ROUTING)),
        ({}, (K.FIREWALL, K.CONFIG, K.PLATFORM)),
    ),
    C.CONNECT_TIMEOUT: (
        ({"pinned_by": PinSource.HOSTS_FILE}, (K.CONFIG, K.FIREWALL, K.ROUTING)),
        *_MOVED_RULES,
        *_FAMILY_RULES,
        *_REJECTED_RULES,
        ({"host_answers": True}, (K.FIREWALL, K.PLATFORM, K.ROUTING)),
        ({"host_answers": False}, (K.ROUTING, K.FIREWALL, K.PLATFORM)),
        ({}, (K.ROUTING, K.FIREWALL, K.PLATFORM)),
    ),
    C.TLS_CERTIFICATE_ERROR: (
        ({"inspection_introduced": True}, (K.TLS_INTERCEPTION, K.CONFIG, K.PLATFORM)),
        # clock_explains: the certificate whose window failed is valid at the server's time
        # though not at ours. Unknown, a failing intermediate or root is the platform's: its
        # leaf, checked against the same clock, passed.
        *_date_rules(CertKind.EXPIRED),
        *_date_rules(CertKind.NOT_YET_VALID),
        # Completed from its AIA URL, the chain verifies: the server omits its intermediate.
        ({"kind": CertKind.MISSING_INTERMEDIATE}, (K.PLATFORM, K.TLS_INTERCEPTION)),
        ({"kind": CertKind.HOSTNAME_MISMATCH, "same_domain": True}, (K.CONFIG, K.PLATFORM,
                                                                     K.TLS_INTERCEPTION)),
        ({"kind": CertKind.HOSTNAME_MISMATCH}, (K.CONFIG, K.TLS_INTERCEPTION, K.PLATFORM)),
        ({"kind": CertKind.UNKNOWN_ISSUER}, (K.TLS_INTERCEPTION, K.PLATFORM, K.CONFIG)),
        ({"kind": CertKind.SELF_SIGNED}, (K.TLS_INTERCEPTION, K.CONFIG, K.PLATFORM)),
        ({"kind": CertKind.EXPIRING}, (K.PLATFORM, K.TLS_INTERCEPTION)),
        ({"kind": CertKind.SYSTEM_ONLY}, (K.TLS_INTERCEPTION, K.CONFIG)),
        ({}, (K.CONFIG, K.CLOCK, K.PLATFORM)),
    ),
    C.TLS_HANDSHAKE_FAILED: (
        ({"kind": HandshakeKind.MTU}, (K.ROUTING, K.FIREWALL, K.PLATFORM)),
        ({"kind": HandshakeKind.TIMEOUT}, (K.FIREWALL, K.ROUTING, K.PLATFORM)),
        ({"kind": HandshakeKind.RESET}, (K.FIREWALL, K.TLS_INTERCEPTION, K.PLATFORM)),
        ({"kind": HandshakeKind.NOT_TLS}, (K.CONFIG, K.TLS_INTERCEPTION, K.PLATFORM)),
        ({"kind": HandshakeKind.ALERT}, (K.PLATFORM, K.TLS_INTERCEPTION, K.CONFIG)),
        ({}, (K.FIREWALL, K.PLATFORM, K.CONFIG)),
    ),
    C.CLOCK_SKEW: (
        ({}, (K.CLOCK, K.PLATFORM)),
    ),
    C.HTTP_REDIRECT: (
        ({"location_host": "other"}, (K.TLS_INTERCEPTION, K.CONFIG, K.PLATFORM)),
        ({}, (K.CONFIG, K.TLS_INTERCEPTION, K.PLATFORM)),
    ),
    C.HTTP_BAD_REQUEST: (
        ({}, (K.CONFIG, K.TLS_INTERCEPTION, K.PLATFORM)),
    ),
    C.HTTP_UNAUTHORIZED: (
        ({"kind": HttpKind.KEY_MISSING_REPORTED}, (K.MISSING_KEY, K.INVALID_KEY,
                                                   K.WRONG_STACK)),
        ({"kind": HttpKind.WRONG_STACK_REPORTED}, (K.WRONG_STACK, K.INVALID_KEY,
                                                   K.MISSING_KEY)),
        ({}, (K.INVALID_KEY, K.WRONG_STACK, K.MISSING_KEY)),
    ),
    C.HTTP_NOT_FOUND: (
        ({}, (K.WRONG_URL, K.CONFIG, K.PLATFORM)),
    ),
    C.HTTP_THROTTLED: (
        ({}, (K.RATE_LIMITED, K.CONFIG)),
    ),
    C.HTTP_SERVER_ERROR: (
        ({"kind": HttpKind.GATEWAY}, (K.PLATFORM, K.TLS_INTERCEPTION)),
        ({}, (K.PLATFORM, K.TLS_INTERCEPTION)),
    ),
    C.HTTP_TIMEOUT: (
        ({}, (K.PLATFORM, K.FIREWALL, K.ROUTING)),
    ),
    C.HTTP_UNEXPECTED: (
        ({"kind": HttpKind.METHOD}, (K.WRONG_URL, K.CONFIG, K.PLATFORM)),
        ({"kind": HttpKind.DISCONNECT}, (K.PLATFORM, K.FIREWALL, K.CONFIG)),
        ({}, (K.CONFIG, K.PLATFORM)),
    ),
    C.PROXY_CONNECT_FAILED: (
        # The PAC that names the proxy gave no route: its maintainers' to fix first.
        ({"kind": PacKind.FETCH}, (K.PROXY, K.CONFIG, K.FIREWALL)),
        ({"kind": PacKind.FETCH_TIMEOUT}, (K.PROXY, K.FIREWALL, K.CONFIG)),
        ({"kind": PacKind.EVAL_TIMEOUT, "pac_dns_wait": True}, (K.PROXY, K.DNS_SERVICE)),
        ({"step": ProxyStep.PAC}, (K.PROXY, K.CONFIG)),
        ({"step": ProxyStep.DNS, "kind": DnsKind.NXDOMAIN}, (K.PROXY, K.DNS_SERVICE)),
        ({"step": ProxyStep.DNS}, (K.DNS_SERVICE, K.PROXY, K.FIREWALL)),
        ({"kind": ConnectKind.UNREACHABLE}, (K.ROUTING, K.PROXY, K.FIREWALL)),
        ({"kind": ConnectKind.TIMEOUT}, (K.PROXY, K.FIREWALL, K.ROUTING)),
        ({}, (K.PROXY, K.FIREWALL, K.ROUTING)),
    ),
    C.PROXY_AUTH_REQUIRED: (
        ({}, (K.PROXY, K.CONFIG)),
    ),
    C.PROXY_REFUSED: (
        ({"kind": ProxyKind.REFUSED}, (K.PROXY, K.CONFIG)),
        ({}, (K.CONFIG, K.PROXY)),
    ),
    C.PROXY_UPSTREAM_FAILED: (
        ({"kind": ProxyKind.TIMEOUT}, (K.PROXY, K.PLATFORM, K.FIREWALL)),
        ({}, (K.PLATFORM, K.PROXY, K.FIREWALL)),
    ),
    C.INTERNAL_ERROR: (
        ({}, (K.TOOL,)),
    ),
}
