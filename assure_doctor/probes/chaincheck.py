"""Which anchor sets verify a chain the server already presented, without another handshake.

The tls stage verifies once, with certifi plus --ca-bundle. Which of certifi, the machine's
store and the bundle would each verify it alone is evidence, not a verdict, so it is worked
out offline from the chain that handshake received (cryptography's RFC 5280 verifier over the
same anchors): a healthy check stays at one TLS connection. Where that cannot be done (no
chain, anchors not readable as certificates, e.g. the Windows or macOS stores), the caller
asks with handshakes instead.
"""

from __future__ import annotations

import _ssl
import functools
import ipaddress
import ssl
import warnings
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError


def presented_chain(ssl_object: ssl.SSLObject | None) -> list[x509.Certificate] | None:
    """The certificates the server sent, leaf first; None when they cannot be read."""
    if ssl_object is None:
        return None
    public = getattr(ssl_object, "get_unverified_chain", None)  # Python 3.13+
    inner = getattr(ssl_object, "_sslobj", None)  # before 3.13: the same call, unexported
    reader = public or getattr(inner, "get_unverified_chain", None)
    if reader is None:
        return None
    try:
        found = reader() or []
        ders = [c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER) for c in found]
        return [x509.load_der_x509_certificate(der) for der in ders] or None
    except (ValueError, ssl.SSLError):
        return None


@functools.lru_cache(maxsize=8)
def anchors_of(context: ssl.SSLContext) -> tuple[x509.Certificate, ...]:
    """The anchors an SSL context holds, as certificates (parsed once per context); empty
    when they are not loaded as a list (a hashed directory, an OS store)."""
    certificates = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an old root's odd serial number is not news
        for der in context.get_ca_certs(binary_form=True):
            try:
                certificates.append(x509.load_der_x509_certificate(der))
            except ValueError:
                continue  # one odd anchor does not spoil the others
    return tuple(certificates)


@functools.lru_cache(maxsize=8)
def store_of_pem(pem: bytes | str | None) -> Store | None:
    """The anchors in a PEM text as a verification store (parsed once per text; ~1 ms for a
    public bundle, where loading it into an SSL context takes ~20); None without anchors."""
    if pem is None:
        return None
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an old root's odd serial number is not news
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:  # one odd anchor does not spoil the others
            certificates = []
            for block in data.split(_PEM_END)[:-1]:
                try:
                    certificates.append(x509.load_pem_x509_certificate(block + _PEM_END))
                except ValueError:
                    continue
    return Store(certificates) if certificates else None


_PEM_END = b"-----END CERTIFICATE-----"


def verifies(anchors: Store, chain: list[x509.Certificate], host: str) -> bool | None:
    """Whether `chain` verifies for `host` against `anchors`, now; None if it cannot tell."""
    try:
        try:
            subject: DNSName | IPAddress = IPAddress(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            subject = DNSName(host)
        verifier = (PolicyBuilder().store(anchors).time(datetime.now(UTC))
                    .build_server_verifier(subject))
        verifier.verify(chain[0], chain[1:])
    except VerificationError:
        return False
    except ValueError:  # a name or certificate the verifier cannot take
        return None
    return True
