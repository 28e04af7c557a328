"""The guide's tables as data: conditions, causes, advice, and how evidence orders the causes.

Nothing here runs a probe. `ranking.rank` reads these tables; the probes only report the
condition and a few facts (`kind`, `clock`, ...) that select a row of `RANKING`.
"""

from __future__ import annotations

from collections.abc import Mapping

# Condition id → the guide's name for it.
CONDITIONS: Mapping[str, str] = {
    "dns_lookup_failed": "Failure to look up the API hostname",
    "connect_failed": "Failure to connect to the API hostname",
    "connect_timeout": "Connection timeout",
    "tls_certificate_error": "SSL certificate error",
    "tls_handshake_failed": "TLS handshake stalled or was cut after connecting",
    "clock_skew": "The local clock disagrees with the API's",
    "http_redirect": "HTTP 300-399: redirection",
    "http_bad_request": "HTTP 400: bad request",
    "http_unauthorized": "HTTP 401: authentication failed",
    "http_not_found": "HTTP 404: not found",
    "http_throttled": "HTTP 429: too many requests",
    "http_server_error": "HTTP 500-599: API platform problem",
    "http_timeout": "Connected, but no HTTP response in time",
    "http_unexpected": "Unexpected HTTP status",
    "proxy_connect_failed": "The proxy itself cannot be reached",
    "proxy_auth_required": "The proxy asks for authentication (407)",
    "proxy_refused": "The proxy refuses to open a tunnel to the API",
    "proxy_upstream_failed": "The proxy cannot reach the API",
}

# Cause id → (title, advice used wherever a condition has no advice of its own).
CAUSES: Mapping[str, tuple[str, str]] = {
    "config": (
        "Incorrect setup/config",
        "Check the URL character by character against https://api.<stack>.sheassure.net/v1/ping "
        "(the stack is the one in your Assure web address). Log the exact URL just before the "
        "request is made and compare.",
    ),
    "dns_service": (
        "DNS service issue",
        "The DNS servers this machine uses ({resolver}) are not answering properly. Try the "
        "lookup with another resolver (--resolver) and, if that works, ask your IT support to "
        "fix the local DNS service.",
    ),
    "firewall": (
        "Firewall blocking the connection, or a stealth firewall",
        "Ask your network team to allow outbound HTTPS from this machine to {host} port {port}.",
    ),
    "routing": (
        "IP routing issue",
        "There seems to be no route from this machine to {address}. Ask your IT team to check "
        "the default gateway, VPN and outbound internet routing for this machine.",
    ),
    "clock": (
        "Incorrect date/time on the servers/platform",
        "Set this machine's clock right and keep it synchronised (NTP / w32time): a clock "
        "that is wrong makes valid certificates look expired or not yet valid.",
    ),
    "platform": (
        "Customer API platform issue",
        "Unlikely, but possible: rule out the causes above, then contact Evotix support with "
        "this report (`check --json`).",
    ),
    "tls_interception": (
        "TLS-inspecting proxy or missing trust anchor",
        "Something between you and the API presents its own certificate (issuer: {issuer}). "
        "Ask your network team to exempt {host} from TLS inspection, or pass the proxy's root "
        "certificate with --ca-bundle and configure your integration to trust it too.",
    ),
    "missing_key": (
        "No API key sent",
        "Provide the key in the x-api-key header: for assure-doctor set ASSURE_API_KEY or use "
        "--api-key-file. A proxy that strips unknown headers has the same effect.",
    ),
    "invalid_key": (
        "Invalid API key",
        "The key was refused. Check it was copied whole, has not been deleted or replaced in "
        "Assure (System Settings -> API Access), and create a new one if in doubt.",
    ),
    "wrong_stack": (
        "API key of another stack",
        "Keys only work on the stack they were created on. Make sure the stack in the URL "
        "({host}) is the one in your Assure web address.",
    ),
    "wrong_url": (
        "Wrong URL path or HTTP method",
        "The API has no method at {url}. The ping is GET /v1/ping; check the path, its case, and "
        "the HTTP verb.",
    ),
    "rate_limited": (
        "Request limit reached",
        "The customer's limit is 10 requests a second (bursts of 20) and 10,000 a day, shared "
        "by every integration using your keys. Wait {retry_after} s before retrying, and find "
        "what else is spending requests.",
    ),
    "proxy": (
        "Proxy configuration, credentials or policy",
        "Check the proxy this machine uses ({proxy}, from {proxy_source}) with your IT team: "
        "its address, the credentials it needs, and whether its policy allows {host}.",
    ),
}

# (condition, cause) → advice specific to that pairing, overriding the cause's generic advice.
ADVICE: Mapping[tuple[str, str], str] = {
    ("dns_lookup_failed", "config"): (
        "Check {host} for typos and that the stack name is right: it is the one in your Assure "
        "web address (uk, uk2, anz, na, ...). With --resolver, check that server resolves "
        "public names."
    ),
    ("dns_lookup_failed", "firewall"): (
        "DNS queries (UDP and TCP port 53) to {resolver} may be blocked: ask your network team, "
        "or use the resolver your network provides."
    ),
    ("dns_lookup_failed", "platform"): (
        "If {host} is definitely right but still does not resolve from other networks or "
        "resolvers, contact Evotix support."
    ),
    ("connect_failed", "config"): (
        "Nothing accepts connections at {address} port {port}. Check the host and port in the "
        "URL: the API listens on 443 and the URL needs no port."
    ),
    ("connect_failed", "firewall"): (
        "The connection was actively refused ({error}). Corporate firewalls commonly do this: "
        "ask your network team to allow outbound HTTPS to {host} port {port}."
    ),
    ("connect_timeout", "firewall"): (
        "Connection attempts got no answer at all: a firewall in 'stealth' mode drops them "
        "without an error. Ask your network team to allow outbound HTTPS to {host} port {port}."
    ),
    ("connect_timeout", "routing"): (
        "Nothing on {address} answered: packets may not be getting out. Ask your IT team to "
        "check routing, VPN and the internet connection of this machine."
    ),
    ("tls_certificate_error", "config"): (
        "Check that {host} is the right host name for your stack: the certificate presented "
        "names {cert_names}. If the name is right, something else is answering for it."
    ),
    ("tls_certificate_error", "clock"): (
        "The certificate is valid from {not_before} to {not_after}; this machine's clock is "
        "{skew_text}. Set the clock right and keep it synchronised (NTP / w32time): a wrong "
        "clock makes a valid certificate look expired or not yet valid."
    ),
    ("tls_certificate_error", "platform"): (
        "The API's certificate has a problem: {verify_error}. If nothing on your side explains "
        "it (your clock agrees with the API's), contact Evotix support with this report."
    ),
    ("tls_handshake_failed", "firewall"): (
        "The TCP connection opened but the TLS handshake {kind_text}: typical of a firewall or "
        "deep packet inspection. Ask your network team to allow TLS to {host} port {port}."
    ),
    ("tls_handshake_failed", "routing"): (
        "A handshake that stalls after connecting can also be a path MTU black hole (large "
        "packets dropped, e.g. on a VPN). Ask your IT team to check MTU / MSS clamping."
    ),
    ("tls_handshake_failed", "tls_interception"): (
        "A proxy or TLS-inspecting middlebox in the path may be cutting or answering the "
        "handshake. Ask your network team whether this machine must use a proxy for {host}."
    ),
    ("tls_handshake_failed", "config"): (
        "The server at {address} port {port} does not speak TLS there ({error}). Check the "
        "URL's port."
    ),
    ("clock_skew", "clock"): (
        "This machine's clock is {skew_text}. Synchronise it with NTP (Linux: timedatectl; "
        "Windows: w32tm /resync): a wrong clock breaks certificate checks."
    ),
    ("clock_skew", "platform"): (
        "If this machine's clock is verifiably right, the API's own clock is wrong: tell "
        "Evotix support."
    ),
    ("http_redirect", "config"): (
        "The API answered {status_code} with Location: {location}. Use the final URL directly "
        "(an HTTP client that silently follows redirects can lose the key header)."
    ),
    ("http_redirect", "tls_interception"): (
        "The redirect points away from the API ({location}): a proxy or captive portal is "
        "answering. Ask your network team to let this machine reach {host} directly."
    ),
    ("http_bad_request", "config"): (
        "The ping takes no data, so a 400 means the request itself is malformed. Check for "
        "stray headers, a body, or characters in the URL. Response: {response_body}"
    ),
    ("http_bad_request", "tls_interception"): (
        "A proxy rewriting requests can cause this: try from a network without the proxy."
    ),
    ("http_not_found", "config"): (
        "Check that the URL is https://api.<stack>.sheassure.net/v1/ping for your stack."
    ),
    ("http_throttled", "config"): (
        "Every integration using a key of this customer spends from the same 10,000 requests a "
        "day: find which one is spending them, and never use the ping in regular processes."
    ),
    ("http_server_error", "platform"): (
        "The API platform answered {status_code}. Retry later; if it persists, send Evotix "
        "support the response body: {response_body}"
    ),
    ("http_server_error", "tls_interception"): (
        "A proxy in the path can answer 502/503/504 itself: check the response body and whether "
        "this machine must use a proxy."
    ),
    ("http_timeout", "platform"): (
        "The API accepted the connection but sent no response within {timeout} s. If it "
        "persists, contact Evotix support."
    ),
    ("http_timeout", "firewall"): (
        "A firewall or proxy that holds requests can cause this: try from another network."
    ),
    ("http_unexpected", "config"): (
        "The API answered an unexpected {status_code}. Check the URL and method; the ping is "
        "GET /v1/ping. Response: {response_body}"
    ),
    ("proxy_connect_failed", "proxy"): (
        "The proxy {proxy} (from {proxy_source}) cannot be reached ({error}). Check its host "
        "and port there, or ask your IT team which proxy this machine must use."
    ),
    ("proxy_connect_failed", "firewall"): (
        "Connections to the proxy {proxy} are blocked or dropped ({error}): ask your network "
        "team to allow this machine to reach it."
    ),
    ("proxy_connect_failed", "routing"): (
        "There seems to be no route to the proxy at {address}: ask your IT team to check this "
        "machine's gateway and VPN."
    ),
    ("proxy_connect_failed", "dns_service"): (
        "The proxy's name does not resolve reliably via {resolver}: ask your IT team to fix "
        "the local DNS service, or give the proxy by address."
    ),
    ("proxy_auth_required", "config"): (
        "Configure the integration's HTTP client with the same proxy and credentials: a client "
        "that ignores the proxy settings, or has none, fails here the same way."
    ),
    ("proxy_refused", "proxy"): (
        "The proxy {proxy} refuses to tunnel to {host}:{port} (HTTP {status_code}, page: "
        "{title}): its policy blocks the API host. Ask your proxy team to allow CONNECT to {host} "
        "port {port}."
    ),
    ("proxy_refused", "config"): (
        "Check that {proxy} (from {proxy_source}) is the proxy this machine should use, and "
        "that it is an HTTP proxy: something answered CONNECT there in an unexpected way."
    ),
    ("proxy_upstream_failed", "platform"): (
        "The proxy is reachable but cannot reach {host} (HTTP {status_code}, page: {title}): "
        "the problem is beyond the proxy. If other sites work through the proxy, the API may be "
        "down: check from another network and contact Evotix support with this report."
    ),
    ("proxy_upstream_failed", "proxy"): (
        "The proxy's own DNS or outbound connection may be failing for {host}: ask your proxy "
        "team to look for {host} in its logs."
    ),
    ("proxy_upstream_failed", "firewall"): (
        "A firewall between the proxy and the internet may block {host} port {port}: ask your "
        "network team."
    ),
}

# (condition, cause, kind fact) → advice for one kind of a condition, overriding ADVICE.
KIND_ADVICE: Mapping[tuple[str, str, str], str] = {
    ("proxy_auth_required", "proxy", "answerable"): (
        "The proxy {proxy} asks for credentials ({schemes}) and can take Basic: give them in "
        "the proxy URL (--proxy http://user:password@host:port, or HTTPS_PROXY) and configure "
        "the integration's HTTP client with them too. If you gave credentials, they were "
        "refused: check the user name and password with your proxy team."
    ),
    ("proxy_auth_required", "proxy", "unanswerable"): (
        "The proxy {proxy} offers only {schemes}: Windows-integrated sign-in, which "
        "assure-doctor cannot answer (it can answer Basic). PowerShell and .NET clients using "
        "the system proxy answer it as the logged-on user; a service account or a Python, Java "
        "or Node integration usually cannot. Ask your proxy team to allow {host} without "
        "authentication, or for Basic credentials for the integration."
    ),
    ("tls_certificate_error", "tls_interception", "system_only"): (
        "A TLS-inspecting proxy ({product}, issuer {issuer}) re-signs the API's certificate, "
        "and this machine's trust store trusts its root. PowerShell, .NET and browsers will "
        "work; clients with their own CA list will fail: Python requests (certifi), many Java "
        "(cacerts) and Node apps. Ask your network team to exempt {host} from inspection, or "
        "give the integration the inspection root (REQUESTS_CA_BUNDLE, keytool, "
        "NODE_EXTRA_CA_CERTS)."
    ),
    ("tls_handshake_failed", "routing", "mtu"): (
        "Full-size packets are lost on the way while {mss}-byte segments get through: a path "
        "MTU black hole, typical of VPNs and tunnels. Ask your network team to clamp the TCP "
        "MSS on the VPN or firewall (or lower the tunnel's MTU), and to let ICMP "
        "'fragmentation needed' (IPv4) and 'packet too big' (IPv6) through."
    ),
    ("tls_handshake_failed", "firewall", "mtu"): (
        "Less likely here: small segments completed the handshake, so nothing blocks TLS to "
        "{host} as such; only the packet size matters."
    ),
}

# condition → rules, first match wins: (facts that must all equal, causes most likely first).
# A fact that is absent or None matches no rule that names it.
Rule = tuple[Mapping[str, object], tuple[str, ...]]
RANKING: Mapping[str, tuple[Rule, ...]] = {
    "dns_lookup_failed": (
        ({"kind": "nxdomain"}, ("config", "dns_service", "platform")),
        ({"kind": "servfail"}, ("dns_service", "platform", "config")),
        ({"kind": "timeout"}, ("dns_service", "firewall", "config")),
        ({"kind": "refused"}, ("dns_service", "config", "platform")),
        ({"kind": "nodata"}, ("platform", "dns_service", "config")),
        ({"kind": "sinkhole"}, ("dns_service", "config", "platform")),
        ({}, ("config", "dns_service", "platform")),
    ),
    "connect_failed": (
        ({"kind": "refused", "default_port": False}, ("config", "firewall", "platform")),
        ({"kind": "refused"}, ("firewall", "config", "platform")),
        ({"kind": "unreachable"}, ("routing", "firewall", "platform")),
        ({"kind": "blocked_locally"}, ("firewall", "config", "routing")),
        ({}, ("firewall", "config", "platform")),
    ),
    "connect_timeout": (
        ({"host_answers": True}, ("firewall", "platform", "routing")),
        ({"host_answers": False}, ("routing", "firewall", "platform")),
        ({}, ("routing", "firewall", "platform")),
    ),
    "tls_certificate_error": (
        ({"kind": "system_only"}, ("tls_interception", "config")),
        # clock_explains: the certificate is valid at the server's time though not at ours.
        ({"kind": "expired", "clock_explains": False}, ("platform", "clock", "config")),
        ({"kind": "expired"}, ("clock", "platform", "config")),
        ({"kind": "not_yet_valid", "clock_explains": False}, ("platform", "clock", "config")),
        ({"kind": "not_yet_valid"}, ("clock", "platform", "config")),
        ({"kind": "hostname_mismatch", "same_domain": True}, ("config", "platform",
                                                              "tls_interception")),
        ({"kind": "hostname_mismatch"}, ("config", "tls_interception", "platform")),
        ({"kind": "unknown_issuer"}, ("tls_interception", "platform", "config")),
        ({"kind": "self_signed"}, ("tls_interception", "config", "platform")),
        ({"kind": "expiring"}, ("platform", "tls_interception")),
        ({}, ("config", "clock", "platform")),
    ),
    "tls_handshake_failed": (
        ({"kind": "mtu"}, ("routing", "firewall", "platform")),
        ({"kind": "timeout"}, ("firewall", "routing", "platform")),
        ({"kind": "reset"}, ("firewall", "tls_interception", "platform")),
        ({"kind": "not_tls"}, ("config", "tls_interception", "platform")),
        ({"kind": "alert"}, ("platform", "tls_interception", "config")),
        ({}, ("firewall", "platform", "config")),
    ),
    "clock_skew": (
        ({}, ("clock", "platform")),
    ),
    "http_redirect": (
        ({"location_host": "other"}, ("tls_interception", "config", "platform")),
        ({}, ("config", "tls_interception", "platform")),
    ),
    "http_bad_request": (
        ({}, ("config", "tls_interception", "platform")),
    ),
    "http_unauthorized": (
        ({"kind": "no_key"}, ("missing_key", "config")),
        ({"kind": "key_missing_reported"}, ("missing_key", "invalid_key", "wrong_stack")),
        ({"kind": "wrong_stack_reported"}, ("wrong_stack", "invalid_key", "missing_key")),
        ({}, ("invalid_key", "wrong_stack", "missing_key")),
    ),
    "http_not_found": (
        ({}, ("wrong_url", "config", "platform")),
    ),
    "http_throttled": (
        ({}, ("rate_limited", "config")),
    ),
    "http_server_error": (
        ({"kind": "gateway"}, ("platform", "tls_interception")),
        ({}, ("platform", "tls_interception")),
    ),
    "http_timeout": (
        ({}, ("platform", "firewall", "routing")),
    ),
    "http_unexpected": (
        ({"kind": "method"}, ("wrong_url", "config", "platform")),
        ({"kind": "disconnect"}, ("platform", "firewall", "config")),
        ({}, ("config", "platform")),
    ),
    "proxy_connect_failed": (
        ({"step": "dns", "kind": "nxdomain"}, ("proxy", "dns_service")),
        ({"step": "dns"}, ("dns_service", "proxy", "firewall")),
        ({"kind": "unreachable"}, ("routing", "proxy", "firewall")),
        ({"kind": "timeout"}, ("proxy", "firewall", "routing")),
        ({}, ("proxy", "firewall", "routing")),
    ),
    "proxy_auth_required": (
        ({}, ("proxy", "config")),
    ),
    "proxy_refused": (
        ({"kind": "refused"}, ("proxy", "config")),
        ({}, ("config", "proxy")),
    ),
    "proxy_upstream_failed": (
        ({"kind": "timeout"}, ("proxy", "platform", "firewall")),
        ({}, ("platform", "proxy", "firewall")),
    ),
}
