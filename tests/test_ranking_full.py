"""The diagnosis as a person meets it: for each situation the probes can report, the causes
`rank` gives, most likely first, and advice that states what the probes found.

A situation is named for what happened ("the typed name does not exist") and carries the
facts a probe reports then, beside the ones the engine gives every stage (host, port, url,
resolver, ...), not a copy of a ranking rule. Advice is checked for the facts each wording
must state (the host, the resolver, the certificate's dates, the proxy, ...), for no blank,
placeholder or "None", and, where a fact is not known, for a wording that does not need it;
never word for word, so a change of wording is one edit, in `causes.py`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from assure_doctor.causes import ADVICE, GENERIC, RANKING
from assure_doctor.kinds import CauseId, Condition
from assure_doctor.ranking import advice_for, rank

F = Mapping[str, object]

# What the engine gives every stage's ranking (`Context.base_facts`), with values distinctive
# enough to find in a sentence.
BASE: dict[str, object] = {
    "host": "api.zz9.sheassure.net", "port": 8443,
    "url": "https://api.zz9.sheassure.net:8443/v2/pong", "timeout": 7.5,
    "resolver": "198.51.100.53:53", "address": "192.0.2.77",
    "proxy": "http://proxy.zz9:3128", "proxy_source": "HTTPS_PROXY",
}
# Facts of one stage or another, as the probes word them.
REFUSED = "Connection refused (ECONNREFUSED)"
SILENT = "timed out"
# A certificate that failed verification, as the tls probe describes it; the clock stage's
# reading beside it: the certificate valid at the API's own time, the clocks agreeing.
CERTIFICATE: dict[str, object] = {
    "issuer": "CN=Inspecting Proxy CA 77", "cert_names": "portal.example.net",
    "not_before": "2026-01-02 00:00 UTC", "not_after": "2026-03-04 00:00 UTC",
    "verify_error": "certificate verify failed (77)", "same_domain": False,
    "clock_explains": True, "skew_text": "0.2 s ahead of the API's",
    "cert_subject": "CN=Leaf 77",
}


def dns(kind: str, rcode: str | None = None, addresses: str = "nothing") -> dict[str, object]:
    """A failed lookup as the dns probe reports it: the kind, the answer's code, what came."""
    return {"kind": kind, "rcode": rcode or kind.upper(), "addresses": addresses}


# The typed name is an alias (CNAME) of a platform name that is gone.
ALIAS: dict[str, object] = {
    "alias_broken": True, "broken_link": "gw-77.platform.example",
    "chain_text": "api.zz9.sheassure.net → gw-77.platform.example",
}
# The address came from this machine's hosts file.
HOSTS_PIN: dict[str, object] = {
    "pinned_by": "hosts_file", "hosts_file": "/etc/hosts-77", "hosts_line": 77,
}


# A PAC named the route (no proxy is known yet): which setting named it, and where it is.
PAC: dict[str, object] = {
    "pac_source": "the --pac option", "pac_url": "http://pac-77.zz9.example:8077/proxy.pac",
    "proxy": "none", "proxy_source": "none",
}


def certificate(kind: str, **facts: object) -> dict[str, object]:
    return {**CERTIFICATE, "kind": kind, **facts}


@dataclass(frozen=True)
class Situation:
    """What happened, the facts the probes report then, and what `rank` must make of it."""

    what: str
    condition: str
    facts: F
    ranked: tuple[str, ...]  # cause ids, most likely first
    states: Mapping[str, tuple[str, ...]]  # cause id -> the facts its advice names

    def __str__(self) -> str:
        return self.what


def seen(what: str, condition: str, ranked: str, states: Mapping[str, str] | None = None,
         **facts: object) -> Situation:
    """`ranked`: space-separated cause ids; `states`: per cause, the facts (by name) whose
    values its advice must contain."""
    return Situation(what, condition, {**BASE, **facts}, tuple(ranked.split()),
                     {cause: tuple(names.split()) for cause, names in (states or {}).items()})


SITUATIONS: list[Situation] = [
    # --- dns: whose name, whose resolver ----------------------------------------------------
    seen("the typed name does not exist (NXDOMAIN)", "dns_lookup_failed",
         "config dns_service platform",
         {"config": "host resolver", "dns_service": "resolver", "platform": "host"},
         **dns("nxdomain")),
    seen("the resolver fails the lookup (SERVFAIL)", "dns_lookup_failed",
         "dns_service platform config",
         {"dns_service": "resolver rcode", "platform": "host", "config": "host"},
         **dns("servfail")),
    seen("the resolver never answers", "dns_lookup_failed", "dns_service firewall config",
         {"dns_service": "resolver timeout", "firewall": "resolver", "config": "host"},
         **dns("timeout"), error="The DNS operation timed out"),
    seen("the resolver refuses to answer (REFUSED)", "dns_lookup_failed",
         "dns_service config platform", {"dns_service": "resolver rcode", "config": "host"},
         **dns("refused")),
    seen("the name exists but has no address (NODATA)", "dns_lookup_failed",
         "platform dns_service config",
         {"platform": "host", "dns_service": "resolver", "config": "host"},
         **dns("nodata", "NOERROR")),
    seen("a DNS filter answers with a blocking address", "dns_lookup_failed",
         "dns_service config platform", {"dns_service": "resolver addresses host"},
         **dns("sinkhole", "NOERROR", "0.0.0.0")),
    seen("the system resolver found nothing (hosts file, getaddrinfo)", "dns_lookup_failed",
         "config dns_service platform", {"config": "host", "dns_service": "resolver"},
         **dns("system_failed")),
    seen("the typed name exists, an alias of a platform name that does not",
         "dns_lookup_failed", "platform dns_service config",
         {"platform": "host broken_link resolver chain_text", "config": "host broken_link"},
         **dns("nxdomain"), **ALIAS),
    seen("the typed name is an alias of a platform name with no address",
         "dns_lookup_failed", "platform dns_service config",
         {"platform": "host broken_link resolver chain_text"},
         **dns("nodata", "NOERROR"), **ALIAS),
    seen("this machine's hosts file maps the name to a blocking address", "dns_lookup_failed",
         "config", {"config": "hosts_file hosts_line host addresses"},
         **dns("sinkhole", "NOERROR", "0.0.0.0"), **HOSTS_PIN),
    seen("the system resolver got no answer (EAI_AGAIN) while DNS asked directly answers",
         "dns_lookup_failed", "dns_service firewall config",
         {"dns_service": "host os_error resolver dns_addresses"},
         **dns("system_failed"), os_failure="temporary", os_error="EAI-77: odd failure",
         dns_addresses="192.0.2.78, 2001:db8::78"),
    seen("the system resolver's server failed the query (EAI_FAIL)", "dns_lookup_failed",
         "dns_service config platform", {"dns_service": "host os_error resolver"},
         **dns("system_failed"), os_failure="failed", os_error="EAI-77: odd failure"),
    # --- tcp: refused, unreachable, blocked, silent; one family only -----------------------
    seen("a firewall rejects the connection to port 443", "connect_failed",
         "firewall config platform", {"firewall": "error host port", "config": "host port"},
         kind="refused", default_port=True, port=443, error=REFUSED),
    seen("nothing listens on the port the URL names", "connect_failed",
         "config firewall platform", {"config": "address port", "firewall": "error host port"},
         kind="refused", default_port=False, error=REFUSED),
    seen("this machine has no route to the host", "connect_failed",
         "routing firewall platform", {"routing": "address error", "firewall": "host port"},
         kind="unreachable", default_port=False, error="No route to host (EHOSTUNREACH)"),
    seen("a local security policy blocks the connection", "connect_failed",
         "firewall config routing",
         {"firewall": "error host port", "config": "host port", "routing": "address"},
         kind="blocked_locally", default_port=False,
         error="Operation not permitted (EPERM)"),
    seen("the connection is reset while opening", "connect_failed",
         "firewall config platform", {"firewall": "host port", "config": "host port"},
         kind="reset", default_port=False, error="Connection reset by peer (ECONNRESET)"),
    seen("IPv6 is refused while IPv4 works", "connect_failed", "routing firewall platform",
         {"routing": "failed_family working_family host error",
          "firewall": "failed_family working_family host port",
          "platform": "failed_family host"},
         kind="refused", default_port=False, failed_family="IPv6", working_family="IPv4",
         error=REFUSED),
    seen("IPv4 is unreachable while IPv6 works", "connect_failed",
         "routing firewall platform",
         {"routing": "failed_family working_family host error",
          "firewall": "failed_family working_family host port",
          "platform": "failed_family host"},
         kind="unreachable", failed_family="IPv4", working_family="IPv6",
         error="Network is unreachable (ENETUNREACH)"),
    seen("silence on the API's port while the host answers on another (stealth firewall)",
         "connect_timeout", "firewall platform routing", {"firewall": "host port"},
         kind="timeout", host_answers=True, error=SILENT),
    seen("silence on every port of the host", "connect_timeout",
         "routing firewall platform", {"routing": "address", "firewall": "host port"},
         kind="timeout", host_answers=False, error=SILENT),
    seen("silence, and no other port could be tried", "connect_timeout",
         "routing firewall platform", {"routing": "address", "firewall": "host port"},
         kind="timeout", host_answers=None, error=SILENT),
    seen("IPv6 is silent while IPv4 works", "connect_timeout", "routing firewall platform",
         {"routing": "failed_family working_family host error",
          "firewall": "failed_family working_family host port",
          "platform": "failed_family host"},
         kind="timeout", failed_family="IPv6", working_family="IPv4", host_answers=True,
         error=SILENT),
    seen("IPv4 is silent while IPv6 works", "connect_timeout", "routing firewall platform",
         {"routing": "failed_family working_family host error",
          "firewall": "failed_family working_family host port",
          "platform": "failed_family host"},
         kind="timeout", failed_family="IPv4", working_family="IPv6", host_answers=False,
         error=SILENT),
    seen("a hosts-file pin refuses while DNS answers elsewhere", "connect_failed",
         "config firewall routing",
         {"config": "hosts_file hosts_line host pinned_address dns_addresses"},
         kind="refused", default_port=True, port=443, error=REFUSED, **HOSTS_PIN,
         pinned_address="198.18.7.77", dns_addresses="192.0.2.78"),
    seen("a hosts-file pin is silent while DNS answers elsewhere (and IPv6 failed too)",
         "connect_timeout", "config firewall routing",
         {"config": "hosts_file hosts_line host pinned_address dns_addresses"},
         kind="timeout", host_answers=True, failed_family="IPv6", error=SILENT, **HOSTS_PIN,
         pinned_address="198.18.7.77", dns_addresses="192.0.2.78"),
    seen("refused at an address the hosts file gives since the last good check",
         "connect_failed", "config firewall platform", {"config": "host address"},
         kind="refused", error=REFUSED, address_moved_by="hosts",
         address_was="192.0.2.70 (from DNS)"),
    seen("silent at an address the hosts file gives since the last good check",
         "connect_timeout", "config firewall platform", {"config": "host address"},
         kind="timeout", error=SILENT, address_moved_by="hosts",
         address_was="192.0.2.70 (from DNS)"),
    seen("refused at the address DNS moved to since the last good check", "connect_failed",
         "dns_service config platform", {"dns_service": "host address"},
         kind="refused", error=REFUSED, address_moved_by="dns",
         address_was="192.0.2.70 (from DNS)"),
    seen("silent at the address DNS moved to since the last good check", "connect_timeout",
         "dns_service config platform", {"dns_service": "host address"},
         kind="timeout", error=SILENT, address_moved_by="dns",
         address_was="192.0.2.70 (from DNS)"),
    seen("refused, and the traceroute meets a REJECT on the way", "connect_failed",
         "firewall routing platform", {"firewall": "host port"},
         kind="refused", error=REFUSED, path_ending="rejected",
         path_finding="the SYN is rejected at hop 77."),
    seen("silent, and the traceroute meets a REJECT on the way", "connect_timeout",
         "firewall routing platform", {"firewall": "host port"},
         kind="timeout", error=SILENT, path_ending="rejected",
         path_finding="the SYN is rejected at hop 77."),
    seen("silent, and the traceroute's SYNs die at a hop", "connect_timeout",
         "routing firewall platform", {"routing": "address", "firewall": "host port"},
         kind="timeout", error=SILENT, host_answers=False, path_ending="silent",
         path_finding="the SYN dies at hop 77."),
    seen("unreachable, and a router says it cannot deliver onward", "connect_failed",
         "routing firewall platform", {"routing": "port"},
         kind="unreachable", error="No route to host (EHOSTUNREACH)",
         path_ending="unreachable", path_finding="hop 77 answers unreachable."),
    # --- the certificate: dates against both clocks, names, issuers -------------------------
    seen("an expired certificate, valid at the API's time: this machine's clock is ahead",
         "tls_certificate_error", "clock platform config",
         {"clock": "not_before not_after skew_text", "platform": "verify_error",
          "config": "host cert_names"},
         **certificate("expired", skew_text="3 days 0 h ahead of the API's")),
    seen("an expired certificate, expired at the API's own time too", "tls_certificate_error",
         "platform clock config",
         {"platform": "verify_error", "clock": "not_before not_after",
          "config": "host cert_names"},
         **certificate("expired", clock_explains=False)),
    seen("an expired certificate, the API's clock unread", "tls_certificate_error",
         "clock platform config",
         {"clock": "not_before not_after", "platform": "verify_error"},
         **certificate("expired", clock_explains=None, skew_text=None)),
    seen("a certificate not yet valid, valid at the API's time: this machine's clock is behind",
         "tls_certificate_error", "clock platform config",
         {"clock": "not_before not_after skew_text", "platform": "verify_error"},
         **certificate("not_yet_valid", skew_text="3 days 0 h behind the API's")),
    seen("a certificate not valid yet at the API's own time either", "tls_certificate_error",
         "platform clock config",
         {"platform": "verify_error", "clock": "not_before not_after"},
         **certificate("not_yet_valid", clock_explains=False)),
    seen("a certificate not yet valid, the API's clock unread", "tls_certificate_error",
         "clock platform config", {"clock": "not_before not_after"},
         **certificate("not_yet_valid", clock_explains=None, skew_text=None)),
    seen("an expired intermediate under a valid leaf, the API's clock unread",
         "tls_certificate_error", "platform clock config",
         {"platform": "verify_error cert_subject"},
         **certificate("expired", clock_explains=None, skew_text=None, link="intermediate",
                       cert_subject="CN=Issuing CA 77")),
    seen("an expired root under a valid leaf, the API's clock unread",
         "tls_certificate_error", "platform clock config", {"platform": "verify_error"},
         **certificate("expired", clock_explains=None, skew_text=None, link="root",
                       cert_subject="CN=Root CA 77")),
    seen("an intermediate valid at the API's time only: this machine's clock is ahead",
         "tls_certificate_error", "clock platform config", {"clock": "skew_text"},
         **certificate("expired", link="intermediate", cert_subject="CN=Issuing CA 77",
                       skew_text="20 days 0 h ahead of the API's")),
    seen("an intermediate not yet valid, the API's clock unread", "tls_certificate_error",
         "platform clock config", {"platform": "verify_error"},
         **certificate("not_yet_valid", clock_explains=None, skew_text=None,
                       link="intermediate", cert_subject="CN=Issuing CA 77")),
    seen("a root not yet valid, the API's clock unread", "tls_certificate_error",
         "platform clock config", {"platform": "verify_error"},
         **certificate("not_yet_valid", clock_explains=None, skew_text=None, link="root",
                       cert_subject="CN=Root CA 77")),
    seen("the server does not send its intermediate (found at the leaf's AIA URL)",
         "tls_certificate_error", "platform tls_interception",
         {"platform": "missing_intermediate aia_url"},
         **certificate("missing_intermediate", issuer="CN=Missing Intermediate 77",
                       missing_intermediate="CN=Missing Intermediate 77",
                       aia_url="http://aia.example/ca77.crt")),
    seen("the issuer became an inspection product since the last good check",
         "tls_certificate_error", "tls_interception config platform",
         {"tls_interception": "issuer host"},
         **certificate("unknown_issuer", inspection_introduced=True)),
    seen("a certificate for another host of the same domain", "tls_certificate_error",
         "config platform tls_interception",
         {"config": "host cert_names", "platform": "verify_error",
          "tls_interception": "issuer host"},
         **certificate("hostname_mismatch", same_domain=True,
                       cert_names="portal.zz9.sheassure.net")),
    seen("a certificate for a name of another domain", "tls_certificate_error",
         "config tls_interception platform",
         {"config": "host cert_names", "tls_interception": "issuer host"},
         **certificate("hostname_mismatch")),
    # OpenSSL checks the name before the dates: a wrong name is reported, not the expiry.
    seen("a certificate for another name, expired at the API's time as well",
         "tls_certificate_error", "config tls_interception platform",
         {"config": "host cert_names", "tls_interception": "issuer host"},
         **certificate("hostname_mismatch", clock_explains=False)),
    seen("a certificate for the API's name from an issuer this machine does not trust",
         "tls_certificate_error", "tls_interception platform config",
         {"tls_interception": "issuer host", "platform": "verify_error",
          "config": "host cert_names"},
         **certificate("unknown_issuer", same_domain=True, cert_names="api.zz9.sheassure.net")),
    seen("an untrusted certificate, expired at the API's time as well", "tls_certificate_error",
         "tls_interception platform config",
         {"tls_interception": "issuer host", "platform": "verify_error"},
         **certificate("unknown_issuer", clock_explains=False)),
    seen("an untrusted certificate that could not be read back", "tls_certificate_error",
         "tls_interception platform config",
         {"tls_interception": "host", "platform": "verify_error"},
         kind="unknown_issuer", verify_error="unable to get local issuer certificate (77)"),
    seen("a self-signed certificate", "tls_certificate_error",
         "tls_interception config platform",
         {"tls_interception": "issuer host", "config": "host cert_names"},
         **certificate("self_signed", same_domain=True)),
    seen("a verified certificate that expires in a few days", "tls_certificate_error",
         "platform tls_interception",
         {"platform": "verify_error", "tls_interception": "issuer host"},
         kind="expiring", verify_error="expires in 5.0 days", issuer="CN=Public CA 77",
         clock_explains=True, skew_text="0.2 s ahead of the API's"),
    seen("verified only by this machine's trust store (an inspecting proxy's root)",
         "tls_certificate_error", "tls_interception config",
         {"tls_interception": "product issuer host", "config": "host cert_names"},
         kind="system_only", product="Inspector-77", issuer="CN=Inspector-77 Root",
         verify_error="not trusted by certifi", cert_names="api.zz9.sheassure.net",
         clock_explains=True, skew_text="0.2 s ahead of the API's"),
    seen("a revoked certificate", "tls_certificate_error", "config clock platform",
         {"config": "host cert_names", "clock": "not_before not_after",
          "platform": "verify_error"},
         **certificate("revoked", same_domain=True)),
    # --- the handshake --------------------------------------------------------------------------
    seen("full-size packets vanish while small segments complete the handshake (MTU)",
         "tls_handshake_failed", "routing firewall platform",
         {"routing": "mss", "firewall": "mss host"}, kind="mtu", mss=577,
         kind_text="got no answer", error=SILENT),
    seen("the handshake gets no answer", "tls_handshake_failed",
         "firewall routing platform", {"firewall": "kind_text host port"},
         kind="timeout", kind_text="got no answer", error=SILENT),
    seen("the handshake gets no answer though the traceroute reaches the server",
         "tls_handshake_failed", "firewall routing platform",
         {"firewall": "kind_text host port path_finding"},
         kind="timeout", kind_text="got no answer", error=SILENT, path_ending="reached",
         path_finding="the SYN reaches the server at hop 77"),
    seen("the handshake is cut off", "tls_handshake_failed",
         "firewall tls_interception platform",
         {"firewall": "kind_text host port", "tls_interception": "host"},
         kind="reset", kind_text="was cut off by the other side", error="reset"),
    seen("plain HTTP answers on the TLS port", "tls_handshake_failed",
         "config tls_interception platform",
         {"config": "address port error", "tls_interception": "host"},
         kind="not_tls", kind_text="was answered by something that is not TLS",
         error="WRONG_VERSION_NUMBER (SSL)"),
    seen("the server refuses the handshake with an alert", "tls_handshake_failed",
         "platform tls_interception config", {"tls_interception": "host"},
         kind="alert", kind_text="was refused by the server (TLS alert)",
         error="TLSV1_ALERT_PROTOCOL_VERSION (SSL)"),
    seen("the handshake fails some other way", "tls_handshake_failed",
         "firewall platform config", {"firewall": "kind_text host port"},
         kind="error", kind_text="failed", error="NO_SHARED_CIPHER (SSL)"),
    # --- the clock ------------------------------------------------------------------------------
    seen("this machine's clock is days behind the API's", "clock_skew", "clock platform",
         {"clock": "skew_text"}, kind="behind", skew_text="3 days 0 h behind the API's"),
    # --- http -----------------------------------------------------------------------------------
    seen("a redirect to a captive portal", "http_redirect",
         "tls_interception config platform",
         {"tls_interception": "location host", "config": "status_code location"},
         status_code=302, location="https://portal.example/login", location_host="other"),
    seen("a redirect to a newer path on the API's own host", "http_redirect",
         "config tls_interception platform",
         {"config": "status_code location", "tls_interception": "host"},
         status_code=301, location="/v2/ping", location_host="same"),
    seen("a 400 for a malformed request", "http_bad_request",
         "config tls_interception platform", {"config": "response_body"},
         status_code=400, response_body='{"message": "odd body 4711"}'),
    seen("a 401 saying the key is missing", "http_unauthorized",
         "missing_key invalid_key wrong_stack", {"wrong_stack": "host"},
         kind="key_missing_reported", status_code=401),
    seen("a 401 saying the key belongs to another stack", "http_unauthorized",
         "wrong_stack invalid_key missing_key", {"wrong_stack": "host"},
         kind="wrong_stack_reported", status_code=401),
    seen("a 401 refusing the key", "http_unauthorized",
         "invalid_key wrong_stack missing_key", {"wrong_stack": "host"},
         kind="rejected", status_code=401),
    seen("a 404: no method at the URL", "http_not_found", "wrong_url config platform",
         {"wrong_url": "url"}, kind="unknown_route", status_code=404),
    seen("a 429 with Retry-After", "http_throttled", "rate_limited config",
         {"rate_limited": "retry_after"}, status_code=429, retry_after="42"),
    seen("a 502 from a gateway", "http_server_error", "platform tls_interception",
         {"platform": "status_code response_body"}, kind="gateway", status_code=502,
         response_body="Bad Gateway 4711"),
    seen("the API's own 500", "http_server_error", "platform tls_interception",
         {"platform": "status_code response_body"}, kind="api", status_code=500,
         response_body='{"message": "Internal 4711"}'),
    seen("connected, but no response in time", "http_timeout", "platform firewall routing",
         {"platform": "timeout", "routing": "address"}, kind="read"),
    seen("a 405: the wrong method", "http_unexpected", "wrong_url config platform",
         {"wrong_url": "url", "config": "status_code response_body"}, kind="method",
         status_code=405, response_body="Method Not Allowed 4711"),
    seen("the connection dropped before the response", "http_unexpected",
         "platform firewall config", {"firewall": "host port"}, kind="disconnect"),
    seen("an unexpected status", "http_unexpected", "config platform",
         {"config": "status_code response_body"}, status_code=418,
         response_body="teapot 4711"),
    # --- proxies --------------------------------------------------------------------------------
    seen("the proxy's name does not exist", "proxy_connect_failed", "proxy dns_service",
         {"proxy": "proxy proxy_source resolver", "dns_service": "resolver"},
         step="dns", **dns("nxdomain")),
    seen("the proxy's name goes unanswered", "proxy_connect_failed",
         "dns_service proxy firewall",
         {"dns_service": "resolver", "proxy": "proxy proxy_source error",
          "firewall": "host port"},
         step="dns", **dns("timeout"), error="The DNS operation timed out"),
    seen("no route to the proxy", "proxy_connect_failed", "routing proxy firewall",
         {"routing": "address", "proxy": "proxy proxy_source error",
          "firewall": "proxy error"},
         step="tcp", kind="unreachable", error="No route to host (EHOSTUNREACH)"),
    seen("the proxy is silent", "proxy_connect_failed", "proxy firewall routing",
         {"proxy": "proxy proxy_source error", "firewall": "proxy error"},
         step="tcp", kind="timeout", error=SILENT),
    seen("the proxy is silent, and the traceroute's SYNs die at a hop",
         "proxy_connect_failed", "proxy firewall routing", {"firewall": "path_finding"},
         step="tcp", kind="timeout", error=SILENT, path_ending="silent",
         path_finding="the SYN dies at hop 77."),
    seen("the proxy refuses connections", "proxy_connect_failed", "proxy firewall routing",
         {"proxy": "proxy proxy_source error", "firewall": "proxy error",
          "routing": "address"},
         step="tcp", kind="refused", error=REFUSED),
    # --- a proxy auto-configuration script (PAC) that gives no route ---------------------------
    seen("the PAC's server answers 404", "proxy_connect_failed", "proxy config firewall",
         {"proxy": "pac_source pac_url error", "config": "pac_url pac_source",
          "firewall": "pac_url"}, **PAC, step="pac", kind="pac_fetch",
         error="HTTP 404 Not Found 77"),
    seen("the PAC's server does not answer in time", "proxy_connect_failed",
         "proxy firewall config",
         {"proxy": "pac_source pac_url error", "firewall": "pac_url",
          "config": "pac_url pac_source"}, **PAC, step="pac", kind="pac_fetch_timeout",
         error="no answer within 7.5 s"),
    seen("the PAC's script throws", "proxy_connect_failed", "proxy config",
         {"proxy": "pac_url pac_source url error", "config": "pac_url pac_source"}, **PAC,
         step="pac", kind="pac_eval", error="FindProxyForURL failed (Error: boom-77)"),
    seen("the PAC's script loops", "proxy_connect_failed", "proxy config",
         {"proxy": "pac_url pac_source error"}, **PAC, step="pac", kind="pac_eval_timeout",
         error="FindProxyForURL did not return within 7.5 s (a loop?)"),
    seen("the PAC is cut while it waits for DNS", "proxy_connect_failed",
         "proxy dns_service", {"proxy": "pac_url pac_source pac_waiting",
                               "dns_service": "pac_waiting"}, **PAC, step="pac",
         kind="pac_eval_timeout", pac_dns_wait=True, pac_waiting="slow-77.corp.example",
         error="FindProxyForURL did not return within 7.5 s (waiting for DNS)"),
    seen("the PAC names only SOCKS proxies", "proxy_connect_failed", "proxy config",
         {"proxy": "pac_url pac_source pac_rule url host"}, **PAC, step="pac",
         kind="pac_no_route", pac_rule="SOCKS5 socks-77.corp.example:1080"),
    seen("the proxy asks for credentials it could take (Basic)", "proxy_auth_required",
         "proxy config", {"proxy": "proxy schemes"}, kind="answerable", schemes="Basic-77",
         proxy_authenticate="Basic-77", has_credentials=False, status_code=407,
         title="no title"),
    seen("the proxy refuses the credentials given", "proxy_auth_required", "proxy config",
         {"proxy": "proxy schemes"}, kind="answerable", schemes="Basic-77",
         proxy_authenticate="Basic-77", has_credentials=True, status_code=407,
         title="no title"),
    seen("the proxy wants Windows-integrated sign-in only", "proxy_auth_required",
         "proxy config", {"proxy": "proxy schemes host"}, kind="unanswerable",
         schemes="NTLM-77, Negotiate", proxy_authenticate="NTLM-77, Negotiate",
         has_credentials=False, status_code=407, title="no title"),
    seen("the proxy wants Windows-integrated sign-in, and Basic credentials were given",
         "proxy_auth_required", "proxy config", {"proxy": "proxy schemes host"},
         kind="unanswerable", schemes="NTLM-77", proxy_authenticate="NTLM-77",
         has_credentials=True, status_code=407, title="no title"),
    seen("the proxy wants credentials of an unread kind", "proxy_auth_required",
         "proxy config", {"proxy": "proxy proxy_authenticate"},
         proxy_authenticate="Digest-77", status_code=407, title="no title"),
    seen("the proxy's policy blocks the API (403)", "proxy_refused", "proxy config",
         {"proxy": "proxy host port status_code title", "config": "proxy proxy_source"},
         kind="refused", status_code=403, title="Access Denied 77"),
    seen("the 'proxy' does not speak HTTP", "proxy_refused", "config proxy",
         {"config": "proxy proxy_source", "proxy": "proxy host"}, kind="not_http",
         status_code=None, title="no title"),
    seen("the proxy closes the connection without an answer", "proxy_refused",
         "config proxy", {"config": "proxy proxy_source", "proxy": "proxy host"},
         kind="closed", status_code=None, title="no title"),
    seen("the proxy cannot reach the API (502)", "proxy_upstream_failed",
         "platform proxy firewall",
         {"platform": "host status_code title", "proxy": "proxy host",
          "firewall": "host port"},
         kind="upstream", status_code=502, title="Bad Gateway 77"),
    seen("the proxy gives no answer to CONNECT", "proxy_upstream_failed",
         "proxy platform firewall", {"proxy": "proxy timeout host", "firewall": "host port"},
         kind="timeout", status_code=None, title="no title"),
    # --- the tool itself -----------------------------------------------------------------------
    seen("a bug in assure-doctor", "internal_error", "tool", {"tool": "exception"},
         exception="RuntimeError: boom-77"),
]


def ids(condition: str, facts: F) -> tuple[str, ...]:
    return tuple(str(cause.id) for cause in rank(condition, facts))


def advice(condition: str, cause: str, facts: F) -> str:
    """The advice `rank` gives for `cause` with these facts (the cause must be ranked)."""
    found = {str(c.id): c.advice for c in rank(condition, facts)}
    assert cause in found, f"{cause} is not a cause of {condition} with {facts}"
    return found[cause]


def blanks(text: str) -> list[str]:
    """What a wording filled from missing facts would show."""
    return re.findall(r"\{\w*\}|\bNone\b|^\s*$", text)


@pytest.mark.parametrize("situation", SITUATIONS, ids=str)
def test_the_causes_come_in_the_order_the_situation_makes_likely(situation: Situation
                                                                  ) -> None:
    assert ids(situation.condition, situation.facts) == situation.ranked


@pytest.mark.parametrize("situation", SITUATIONS, ids=str)
def test_the_advice_states_what_the_probes_found(situation: Situation) -> None:
    causes = rank(situation.condition, situation.facts)
    for cause in causes:
        assert not blanks(cause.advice), (cause.id, cause.advice)
        assert cause.title and cause.title != cause.advice
        for name in situation.states.get(str(cause.id), ()):
            value = str(situation.facts[name])
            assert value in cause.advice, f"{cause.id} advice does not name {name}: " \
                                          f"{cause.advice}"


def test_facts_no_rule_reads_never_change_the_order() -> None:
    """Extra facts (another address, a body, a status) never reorder the causes."""
    extra = {"response_body": "anything", "rcode": "X", "title": "T", "mss": 1,
             "address": "203.0.113.9", "schemes": "Basic", "exception": "E: x"}
    for situation in SITUATIONS:
        assert ids(situation.condition, {**extra, **situation.facts}) == situation.ranked
        assert ids(situation.condition, {**situation.facts, **extra}) == situation.ranked


def test_every_rule_is_some_situation() -> None:
    """A rule no situation reaches is a ranking nobody has checked (a new rule needs a
    situation above)."""
    for condition, rules in RANKING.items():
        for index, (when, _) in enumerate(rules):
            first = [s for s in SITUATIONS if s.condition == condition
                     and next(i for i, (w, _) in enumerate(rules)
                              if all(s.facts.get(k) == v for k, v in w.items())) == index]
            assert first, (condition, dict(when))


def test_every_wording_is_some_situations_advice() -> None:
    """Each wording of the tables is given in some situation (or where facts are unknown,
    below), so none goes unchecked."""
    shown = [c.advice for s in SITUATIONS for c in rank(s.condition, s.facts)]
    shown += [advice(condition, cause, facts) for condition, cause, facts, _ in UNSTATED]
    for variant in [a for variants in (*ADVICE.values(), *GENERIC.values()) for a in variants]:
        opening = variant.text.split("{")[0]
        assert any(opening in text for text in shown), variant


# Where a fact a wording states is not known, a wording without it is chosen: never a blank,
# a "None" or a placeholder, never a value of another situation; the facts that are known and
# that some wording of the cause states are named.
UNSTATED: list[tuple[str, str, F, str]] = [
    ("connect_timeout", "firewall", {"host_answers": True}, ""),
    ("connect_timeout", "firewall", {"host_answers": True, "host": None, "port": None}, ""),
    ("connect_failed", "routing", {"failed_family": "IPv6", "host": "h.example"}, ""),
    ("dns_lookup_failed", "dns_service", {"kind": "timeout"}, ""),
    ("http_throttled", "rate_limited", {"retry_after": None}, ""),
    ("proxy_refused", "proxy", {"kind": "refused", "host": "h.example", "port": 443}, ""),
    ("tls_certificate_error", "clock", {"kind": "expired"}, ""),
    ("tls_certificate_error", "config", {"kind": "expired"}, ""),
    ("http_redirect", "tls_interception", {}, ""),
    ("http_unauthorized", "wrong_stack", {}, ""),
    ("http_not_found", "wrong_url", {}, ""),
    ("proxy_connect_failed", "proxy", {"host": "h.example"}, ""),
    ("proxy_connect_failed", "proxy", {"proxy": "http://p.example:3128"}, "proxy"),
    ("proxy_connect_failed", "proxy", {"step": "pac", "kind": "pac_fetch"}, ""),
    ("proxy_connect_failed", "config", {"step": "pac", "kind": "pac_fetch"}, ""),
    ("proxy_connect_failed", "firewall", {"step": "pac", "kind": "pac_fetch"}, ""),
    ("proxy_auth_required", "proxy", {"kind": "answerable"}, ""),
    ("proxy_auth_required", "proxy", {"proxy_authenticate": "Basic"}, ""),
    ("proxy_upstream_failed", "proxy", {"kind": "upstream", "host": "h.example"}, ""),
    ("proxy_upstream_failed", "proxy", {"kind": "timeout", "host": "h.example"}, ""),
    ("proxy_upstream_failed", "proxy", {}, ""),
    ("tls_handshake_failed", "routing", {"kind": "mtu"}, ""),
    ("internal_error", "tool", {}, ""),
]


@pytest.mark.parametrize(("condition", "cause", "facts", "names"), UNSTATED)
def test_unknown_facts_choose_a_wording_without_them(condition: str, cause: str, facts: F,
                                                     names: str) -> None:
    text = advice(condition, cause, facts)
    assert not blanks(text), text
    known = {str(value) for value in facts.values() if value is not None}
    others = {str(value) for value in (*BASE.values(), *CERTIFICATE.values())} - known
    assert not [value for value in others if value in text], text
    for name in names.split():
        assert str(facts[name]) in text, (name, text)


def test_the_firewall_advice_for_a_refusal_names_the_host_and_port() -> None:
    causes = rank("connect_failed", {"kind": "refused", "default_port": True,
                                     "host": "api.uk2.sheassure.net", "port": 443,
                                     "address": "192.0.2.7", "error": "refused"})
    assert str(causes[0].id) == "firewall"
    assert "api.uk2.sheassure.net port 443" in causes[0].advice


def test_every_rule_gives_filled_advice_when_every_fact_is_known() -> None:
    """With every fact known, no advice shows a placeholder, a blank or a "None"."""
    everything = {k: v for s in SITUATIONS for k, v in s.facts.items() if v is not None}
    for condition, rules in RANKING.items():
        for when, _ in rules:
            for cause in rank(condition, {**everything, **when}):
                assert not blanks(cause.advice), (condition, cause.id, cause.advice)
                assert cause.title and cause.advice


def test_specific_advice_differs_by_condition() -> None:
    """The same cause gets the advice of its condition, not one generic sentence."""
    firewall = {situation.condition: advice(situation.condition, "firewall", situation.facts)
                for situation in SITUATIONS
                if situation.what in ("the resolver never answers",
                                      "a firewall rejects the connection to port 443",
                                      "silence on every port of the host",
                                      "the handshake gets no answer",
                                      "connected, but no response in time")}
    assert len(firewall) == 5
    assert len(set(firewall.values())) == len(firewall)
    assert "DNS" in firewall["dns_lookup_failed"]
    assert "refused" in firewall["connect_failed"]
    assert "stealth" in firewall["connect_timeout"]
    assert "TLS" in firewall["tls_handshake_failed"]


def test_a_wording_keeps_to_its_facts_where_no_rule_ranks_it_yet() -> None:
    """The MTU wording claims a stall: a rule added later that ranks routing for a handshake
    that was cut must not get it."""
    stalled = advice_for(Condition.TLS_HANDSHAKE_FAILED, CauseId.ROUTING, {"kind": "timeout"})
    assert "stalls" in stalled.text
    cut = advice_for(Condition.TLS_HANDSHAKE_FAILED, CauseId.ROUTING, {"kind": "reset"})
    assert "stall" not in cut.text and "MTU" not in cut.text


def test_the_advice_tables_cannot_be_changed_at_run_time() -> None:
    """Advice variants are shared by every check (and every monitor thread)."""
    variant = ADVICE[Condition.CLOCK_SKEW, CauseId.CLOCK][0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        variant.text = "changed"  # type: ignore[misc]
