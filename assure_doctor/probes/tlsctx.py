"""The SSL contexts the stages use: certifi plus --ca-bundle, and an unverified one for looking."""

from __future__ import annotations

import contextlib
import functools
import os
import ssl

import certifi

from assure_doctor.errors import InputError


def verifying(ca_bundle: str | None) -> ssl.SSLContext:
    """A context that verifies against certifi and the extra PEM anchors, hostname included.

    Loading the anchors costs tens of milliseconds, so a context is reused until its bundle
    file changes (the TUI and the monitor check again and again).
    """
    stamp = None
    if ca_bundle is not None:
        with contextlib.suppress(OSError):
            info = os.stat(ca_bundle)
            stamp = (info.st_mtime_ns, info.st_size)
    return _verifying(ca_bundle, stamp)


@functools.lru_cache(maxsize=16)
def _verifying(ca_bundle: str | None, _stamp: tuple[int, int] | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=ca_bundle)
        except FileNotFoundError:
            raise InputError(f"--ca-bundle {ca_bundle}: no such file") from None
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            raise InputError(f"--ca-bundle {ca_bundle}: not a PEM certificate file ({reason})"
                             ) from None
    context.set_alpn_protocols(["http/1.1"])
    return context


@functools.cache
def looking() -> ssl.SSLContext:
    """A context that accepts any certificate: only to read it, never to send the key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context
