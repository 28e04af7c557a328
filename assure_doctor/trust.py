"""The trust anchors a check verifies against, loaded once at the edge, and the SSL contexts.

Three sets of anchors: certifi's bundle (what Python requests and many Java and Node apps
trust), the machine's own store through `truststore` (what PowerShell, .NET and browsers
trust), and the user's --ca-bundle. `Trust` holds them for one configuration: the bundle file is
read once, and each context is built on first use and then kept.
"""

from __future__ import annotations

import functools
import os
import ssl
import sys
from dataclasses import dataclass, field

import certifi

from assure_doctor import localfile
from assure_doctor.errors import InputError

MAX_BUNDLE_BYTES = 4 * localfile.MIB  # a bundle of every public root is ~250 KB
# Where distributions keep the system bundle when OpenSSL's compiled-in paths are empty (the
# same candidates truststore tries).
_CA_FILES = ("/etc/ssl/cert.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
             "/etc/pki/tls/cert.pem", "/etc/ssl/certs/ca-certificates.crt",
             "/etc/ssl/ca-bundle.pem")
_ALPN = ["http/1.1"]


@dataclass(frozen=True)
class Trust:
    """One trust configuration: certifi, the system store and an optional --ca-bundle."""

    ca_bundle: str | None = None
    ca_pem: str | None = field(default=None, repr=False)

    @functools.cached_property
    def strict(self) -> ssl.SSLContext:
        """certifi plus --ca-bundle: the context the stages verify with first (without a
        bundle, certifi's own: its ~150 anchors are parsed once, not twice)."""
        if self.ca_pem is None:
            return self.certifi
        context = _certifi()
        context.load_verify_locations(cadata=self.ca_pem)
        return context

    @functools.cached_property
    def certifi(self) -> ssl.SSLContext:
        return _certifi()

    @functools.cached_property
    def bundle(self) -> ssl.SSLContext | None:
        """--ca-bundle alone, or None when none was given."""
        if self.ca_pem is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=self.ca_pem)
        context.set_alpn_protocols(_ALPN)
        return context

    @functools.cached_property
    def system(self) -> ssl.SSLContext:
        """The machine's trust store: Windows CryptoAPI and macOS Security through truststore;
        elsewhere OpenSSL's default paths (SSL_CERT_FILE / SSL_CERT_DIR), which is what
        truststore uses there too, but read once instead of at every handshake (~100 ms)."""
        return _system()

    @functools.cached_property
    def local(self) -> ssl.SSLContext:
        """The machine's store plus --ca-bundle: what the system's own HTTP stack trusts. A
        PAC is fetched by that stack (WinHTTP, CFNetwork), from a server an internal CA signed
        as often as not."""
        if self.ca_pem is None:
            return self.system
        context = _system()
        context.load_verify_locations(cadata=self.ca_pem)
        return context

    @functools.cached_property
    def certifi_pem(self) -> bytes | None:
        """certifi's anchors as PEM, for verifying a chain offline (no SSL context built)."""
        return _read_anchors(certifi.where())

    @functools.cached_property
    def system_pem(self) -> bytes | None:
        """The machine's anchors as PEM where OpenSSL reads them whole from one file, for
        verifying a chain offline; None for an OS store (Windows, macOS) or a hashed
        directory alone, whose anchors only a handshake can ask."""
        if sys.platform in ("win32", "darwin"):
            return None
        cafile = ssl.get_default_verify_paths().cafile  # None unless the file exists
        if cafile is None and _default_paths_exist():
            return None
        found = cafile or next((path for path in _CA_FILES if os.path.isfile(path)), None)
        return None if found is None else _read_anchors(found)


def _read_anchors(path: str) -> bytes | None:
    try:
        return localfile.read_regular(path, MAX_BUNDLE_BYTES, "the trust store")
    except InputError:
        return None


def _default_paths_exist() -> bool:
    paths = ssl.get_default_verify_paths()
    return bool(paths.cafile) or bool(paths.capath and os.path.isdir(paths.capath)
                                      and os.listdir(paths.capath))


def _system() -> ssl.SSLContext:
    if sys.platform in ("win32", "darwin"):
        import truststore  # only where the OS store is not a list of files

        context: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        context = ssl.create_default_context()
        if not _default_paths_exist():
            found = next((path for path in _CA_FILES if os.path.isfile(path)), None)
            if found is not None:
                context.load_verify_locations(cafile=found)
    context.set_alpn_protocols(_ALPN)
    return context


def _certifi() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    context.set_alpn_protocols(_ALPN)
    return context


def load(ca_bundle: str | None, name: str = "--ca-bundle") -> Trust:
    """The trust for a CA bundle path (None: certifi and the system only); InputError naming
    `name` (the flag, or a TOML key) when the file is not a bounded, regular PEM file.

    The same unchanged file gives the same `Trust`, so the TUI and the monitor reuse contexts.
    """
    if ca_bundle is None:
        return NO_BUNDLE
    try:
        info = os.stat(ca_bundle)
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({exc.strerror or 'error'})") from None
    return _load(ca_bundle, name, (info.st_mtime_ns, info.st_size, info.st_ino))


NO_BUNDLE = Trust()


@functools.lru_cache(maxsize=16)
def _load(ca_bundle: str, name: str, _stamp: tuple[int, int, int]) -> Trust:
    # Regular files only, bounded: OpenSSL would read /dev/zero or a FIFO for ever.
    data = localfile.read_regular(ca_bundle, MAX_BUNDLE_BYTES, name)
    try:
        pem = data.decode("ascii")
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        probe.load_verify_locations(cadata=pem)
    except (UnicodeDecodeError, ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise InputError(f"{name}: not a PEM certificate file ({reason})") from None
    return Trust(ca_bundle, pem)


@functools.cache
def looking() -> ssl.SSLContext:
    """A context that accepts any certificate: only to read it, never to send the key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(_ALPN)
    return context
