"""Name the TLS-inspection product from the issuer of the certificate it presents. Pure.

Interception products sign with a root whose subject names the vendor or product; the table
matches whole words of the issuer's RFC 4514 text, most specific first.
"""

from __future__ import annotations

import functools
import re

# (pattern over the issuer, product name); first match wins.
PRODUCTS: tuple[tuple[str, str], ...] = (
    (r"zscaler", "Zscaler"),
    (r"netskope", "Netskope"),
    (r"palo ?alto|pan-?os", "Palo Alto Networks"),
    (r"fortinet|fortigate|fortiproxy", "Fortinet FortiGate"),
    (r"cisco umbrella|opendns", "Cisco Umbrella"),
    (r"cisco|ironport", "Cisco"),
    (r"blue ?coat|symantec web|proxysg|broadcom", "Blue Coat / Symantec"),
    (r"sophos", "Sophos"),
    (r"check ?point", "Check Point"),
    (r"forcepoint|websense", "Forcepoint"),
    (r"skyhigh|mcafee", "Skyhigh / McAfee Web Gateway"),
    (r"kaspersky", "Kaspersky"),
    (r"eset", "ESET"),
    (r"avast|avg", "Avast / AVG"),
    (r"bitdefender", "Bitdefender"),
    (r"trend ?micro", "Trend Micro"),
    (r"barracuda", "Barracuda"),
    (r"sonicwall", "SonicWall"),
    (r"watchguard", "WatchGuard"),
    (r"untangle", "Untangle"),
    (r"cloudflare (gateway|for teams)|cloudflare zero trust", "Cloudflare Gateway"),
    (r"iboss", "iboss"),
    (r"menlo security", "Menlo Security"),
    (r"lightspeed", "Lightspeed"),
    (r"securly", "Securly"),
    (r"contentkeeper", "ContentKeeper"),
    (r"mitmproxy", "mitmproxy"),
    (r"charles proxy", "Charles Proxy"),
    (r"fiddler|do_not_trust", "Fiddler"),
    (r"burp", "Burp Suite"),
)


@functools.cache
def _compiled() -> tuple[tuple[re.Pattern[str], str], ...]:
    """The table's patterns, compiled when an issuer is first named (not at every import)."""
    return tuple((re.compile(rf"(?<![a-z0-9]){pattern}(?![a-z0-9])", re.IGNORECASE), name)
                 for pattern, name in PRODUCTS)


def product(issuer: str | None) -> str | None:
    """The inspection product an issuer names, or None when it is not recognisable."""
    if not issuer:
        return None
    return next((name for pattern, name in _compiled() if pattern.search(issuer)), None)
