"""The closed sets a diagnosis is made of: conditions, causes, the kinds of failure each stage
tells apart (with the order of how telling they are), and the typed facts the ranking reads.

Ids are the contract's; a member's name is its id uppercased. Being `StrEnum`s, members equal
their ids, so JSON and older callers that pass plain strings keep working.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypedDict


class Condition(StrEnum):
    """The guide's conditions (the contract's condition ids)."""

    DNS_LOOKUP_FAILED = "dns_lookup_failed"
    CONNECT_FAILED = "connect_failed"
    CONNECT_TIMEOUT = "connect_timeout"
    TLS_CERTIFICATE_ERROR = "tls_certificate_error"
    TLS_HANDSHAKE_FAILED = "tls_handshake_failed"
    CLOCK_SKEW = "clock_skew"
    HTTP_REDIRECT = "http_redirect"
    HTTP_BAD_REQUEST = "http_bad_request"
    HTTP_UNAUTHORIZED = "http_unauthorized"
    HTTP_NOT_FOUND = "http_not_found"
    HTTP_THROTTLED = "http_throttled"
    HTTP_SERVER_ERROR = "http_server_error"
    HTTP_TIMEOUT = "http_timeout"
    HTTP_UNEXPECTED = "http_unexpected"
    PROXY_CONNECT_FAILED = "proxy_connect_failed"
    PROXY_AUTH_REQUIRED = "proxy_auth_required"
    PROXY_REFUSED = "proxy_refused"
    PROXY_UPSTREAM_FAILED = "proxy_upstream_failed"
    INTERNAL_ERROR = "internal_error"


# Failures after which the server still answered: later stages may still reach it.
SERVER_ANSWERED: frozenset[Condition] = frozenset({Condition.TLS_CERTIFICATE_ERROR})


class CauseId(StrEnum):
    """The guide's causes (the contract's cause ids)."""

    CONFIG = "config"
    DNS_SERVICE = "dns_service"
    FIREWALL = "firewall"
    ROUTING = "routing"
    CLOCK = "clock"
    PLATFORM = "platform"
    TLS_INTERCEPTION = "tls_interception"
    MISSING_KEY = "missing_key"
    INVALID_KEY = "invalid_key"
    WRONG_STACK = "wrong_stack"
    WRONG_URL = "wrong_url"
    RATE_LIMITED = "rate_limited"
    PROXY = "proxy"
    TOOL = "tool"  # internal_error's only cause: this program, not the network


class DnsKind(StrEnum):
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    ERROR = "error"
    NODATA = "nodata"
    SINKHOLE = "sinkhole"
    NO_RESOLVER = "no_resolver"
    SYSTEM_FAILED = "system_failed"  # getaddrinfo (hosts file, .localhost) found nothing


# When A and AAAA fail differently, the most telling failure is reported: most telling first.
DNS_SEVERITY: tuple[DnsKind, ...] = (DnsKind.NXDOMAIN, DnsKind.SERVFAIL, DnsKind.REFUSED,
                                     DnsKind.TIMEOUT, DnsKind.ERROR, DnsKind.NODATA)


class OsFailure(StrEnum):
    """How the operating system's resolver (getaddrinfo) failed, whatever the platform's codes."""

    NO_NAME = "no_name"  # EAI_NONAME, WSAHOST_NOT_FOUND: the name does not exist
    NO_DATA = "no_data"  # EAI_NODATA, WSANO_DATA: it exists, with no address of the family
    TEMPORARY = "temporary"  # EAI_AGAIN, WSATRY_AGAIN: no answer (in time), or SERVFAIL
    FAILED = "failed"  # EAI_FAIL, WSANO_RECOVERY: a non-recoverable answer (REFUSED, FORMERR)
    OTHER = "other"


class PinSource(StrEnum):
    """What pinned the API name to an address outside DNS."""

    HOSTS_FILE = "hosts_file"


class ConnectKind(StrEnum):
    REFUSED = "refused"
    BLOCKED_LOCALLY = "blocked_locally"
    UNREACHABLE = "unreachable"
    RESET = "reset"
    ERROR = "error"
    TIMEOUT = "timeout"


# Of several failed connects, the one reported: most telling first.
CONNECT_SEVERITY: tuple[ConnectKind, ...] = tuple(ConnectKind)


class CertKind(StrEnum):
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    HOSTNAME_MISMATCH = "hostname_mismatch"
    UNKNOWN_ISSUER = "unknown_issuer"
    SELF_SIGNED = "self_signed"
    REVOKED = "revoked"
    OTHER = "other"
    EXPIRING = "expiring"  # verified, but renewal is due: a warning
    SYSTEM_ONLY = "system_only"  # only the OS store verified it: an inspection root (a warning)
    # The server does not send its intermediate; fetched from the leaf's AIA URL, it completes
    # a chain that verifies: browsers work, API clients fail.
    MISSING_INTERMEDIATE = "missing_intermediate"


class ChainLink(StrEnum):
    """Which certificate of a chain a finding is about."""

    LEAF = "leaf"
    INTERMEDIATE = "intermediate"
    ROOT = "root"


class HandshakeKind(StrEnum):
    TIMEOUT = "timeout"
    RESET = "reset"
    NOT_TLS = "not_tls"
    ALERT = "alert"
    ERROR = "error"
    MTU = "mtu"  # stalled at full size, completed with small segments: a path MTU black hole


class HttpKind(StrEnum):
    """What an HTTP answer (or its absence) says beyond its status."""

    KEY_MISSING_REPORTED = "key_missing_reported"  # the body says the key is missing
    WRONG_STACK_REPORTED = "wrong_stack_reported"  # the body names the stack
    METHOD = "method"  # 405: the verb is wrong
    DISCONNECT = "disconnect"  # the server closed the connection without an answer
    GATEWAY = "gateway"  # 502/503/504: a gateway (or a proxy) answered


class ProxyKind(StrEnum):
    """How a proxy answered CONNECT, when it opened no tunnel."""

    ANSWERABLE = "answerable"  # 407 offering Basic, which our credentials can answer
    UNANSWERABLE = "unanswerable"  # 407 offering only NTLM / Negotiate / ...
    UPSTREAM = "upstream"  # 502/503/504: the proxy cannot reach the API
    REFUSED = "refused"  # 403 or another refusal: the proxy's policy
    TIMEOUT = "timeout"  # no answer to CONNECT in time
    CLOSED = "closed"  # the proxy closed the connection without an answer
    NOT_HTTP = "not_http"  # something answered, but not like an HTTP proxy
    ERROR = "error"


class ProxyStep(StrEnum):
    """Where reaching the proxy itself failed (proxy_connect_failed)."""

    DNS = "dns"
    TCP = "tcp"
    PAC = "pac"  # the proxy auto-configuration script that names the proxy


class PacKind(StrEnum):
    """How a proxy auto-configuration script (PAC) failed to give a route."""

    FETCH = "pac_fetch"  # it could not be fetched (HTTP status, TLS, DNS, refused) or read
    FETCH_TIMEOUT = "pac_fetch_timeout"  # ... not within the time allowed
    EVAL = "pac_eval"  # FindProxyForURL failed, or returned no route
    EVAL_TIMEOUT = "pac_eval_timeout"  # FindProxyForURL did not return in time
    NO_ROUTE = "pac_no_route"  # only routes assure-doctor cannot take (SOCKS, HTTPS proxies)


class Family(StrEnum):
    """An IP address family, named as people say it (warnings name the family)."""

    IPV4 = "IPv4"
    IPV6 = "IPv6"

    @classmethod
    def of(cls, address: str) -> Family:
        return cls.IPV6 if ":" in address else cls.IPV4

    @property
    def other(self) -> Family:
        return Family.IPV4 if self is Family.IPV6 else Family.IPV6


Kind = DnsKind | ConnectKind | CertKind | HandshakeKind | HttpKind | ProxyKind | PacKind


class Facts(TypedDict, total=False):
    """What the ranking and the advice may read. Absent or None means "not known"."""

    kind: Kind
    # where
    host: str
    port: int
    url: str
    address: str
    resolver: str
    timeout: float
    # dns
    rcode: str
    addresses: str
    os_failure: OsFailure  # how the system's resolver failed
    os_error: str  # its error, e.g. "EAI_NONAME: Name or service not known"
    dns_addresses: str  # what DNS itself answered, where the system's resolver differs
    alias_broken: bool  # the failing link of the CNAME chain is past the name typed
    broken_link: str  # the name in the chain that failed
    chain_text: str  # the CNAME chain, "a → b → c"
    # dns and tcp: the hosts file pinned the name (tcp: to the address that failed)
    pinned_by: PinSource
    hosts_file: str
    hosts_line: int
    pinned_address: str
    # tcp
    default_port: bool
    host_answers: bool | None
    failed_family: Family | None  # the one family that failed while the other worked
    working_family: Family | None
    error: str | None
    # tls
    clock_explains: bool | None  # the failing certificate is valid at the server's time
    skew_text: str | None
    verify_error: str
    link: ChainLink  # the certificate of the chain whose window failed
    cert_subject: str  # its subject (not_before, not_after: its window)
    missing_intermediate: str  # the subject of the intermediate the server did not send
    aia_url: str  # where it was fetched from
    issuer: str
    cert_names: str
    not_before: str
    not_after: str
    same_domain: bool
    kind_text: str
    product: str  # the TLS-inspection product named from the issuer
    mss: int  # the segment size that got a stalled handshake through
    # http
    location_host: str
    status_code: int | None
    location: str | None
    retry_after: str
    response_body: str
    # proxy
    proxy: str  # the proxy URL, credentials masked ("none" when direct)
    proxy_source: str
    proxy_authenticate: str
    step: ProxyStep  # proxy_connect_failed: the dns or tcp stage
    schemes: str
    has_credentials: bool
    title: str  # the proxy's error page title
    # proxy: the PAC that chose (or failed to choose) the route
    pac_source: str  # which setting named it, in words ("the --pac option")
    pac_url: str  # where it is (credentials masked), or the file
    pac_rule: str  # what FindProxyForURL returned
    pac_waiting: str  # the name its DNS lookup was waiting on when it was cut
    pac_dns_wait: bool  # it was cut while waiting for DNS
    # internal_error
    exception: str
    # what changed since the last good check (history)
    inspection_introduced: bool  # the issuer is now an inspection product, and was not
    address_moved_by: str  # "hosts" or "dns": where the changed address came from
    address_was: str
    # where on the path it dies (a TCP traceroute after a timeout, reset or unreachable)
    path_finding: str  # the trace in one sentence, naming who to call
    path_ending: str  # hops.Ending: silent, rejected, refused, unreachable, reached
