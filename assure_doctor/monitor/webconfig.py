"""`--web.config.file`: the Prometheus exporter-toolkit's web configuration, read strictly.

The format is exporter-toolkit's (docs/web-configuration.md): `tls_server_config` with
`cert_file`/`key_file` (and optionally `client_ca_file` + `client_auth_type`, `min_version`,
`max_version`), and `basic_auth_users` mapping names to bcrypt hashes. Paths are relative to
the file's directory, as there. Keys it knows that this server cannot honour (inline PEM,
cipher suites, curves, HTTP/2) are refused by name rather than silently ignored. The file is
re-read when its mtime changes; a broken edit keeps the last good configuration.
"""

from __future__ import annotations

import hashlib
import os
import re
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import yaml

from assure_doctor import logs, sanitize
from assure_doctor.errors import InputError

MAX_FILE = 64 * 1024
RECHECK = 1.0  # seconds between two stat() calls of the file
_TOP = {"tls_server_config", "basic_auth_users", "http_server_config"}
_TLS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
        "max_version"}
_TLS_UNSUPPORTED = {"cert", "key", "client_ca", "client_allowed_sans", "cipher_suites",
                    "prefer_server_cipher_suites", "curve_preferences"}
_HTTP = {"headers"}
_HEADERS = {"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options",
            "X-XSS-Protection", "Strict-Transport-Security"}
_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
             "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# exporter-toolkit's client_auth_type values this server can enforce (Python's ssl cannot
# ask for a client certificate without verifying it, so the two "any cert" modes are refused).
_CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
                "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
_BCRYPT = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
log = logs.get("web")


@dataclass(frozen=True)
class WebConfig:
    """What one version of the file asks for; the empty config is plain, open HTTP."""

    tls: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()


def load(path: Path) -> WebConfig:
    """Parse and check the whole file; raises InputError naming the flag and the problem."""
    where = f"--web.config.file {path}"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE + 1)
    except OSError as exc:
        raise InputError(f"{where}: cannot read ({exc.strerror})") from None
    if len(raw) > MAX_FILE:
        raise InputError(f"{where}: larger than {MAX_FILE // 1024} KiB")
    try:
        data = yaml.safe_load(raw.decode("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        reason = sanitize.text(str(exc).replace("\n", " "), 160)
        raise InputError(f"{where}: not valid YAML ({reason})") from None
    try:
        return _parse(data, path.parent)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _table(value: object, name: str, known: set[str]) -> dict[str, object]:
    if not isinstance(value, dict):
        raise InputError(f"{name or 'the file'} must be a mapping")
    for key in value:
        if key not in known:
            where = f"{name}.{key}" if name else str(key)
            raise InputError(f"unknown setting {sanitize.text(where, 80)!r}")
    return value


def _string(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{name} must be a non-empty string")
    return value


def _parse(data: object, base: Path) -> WebConfig:
    top = _table(data, "", _TOP)
    tls = None
    if top.get("tls_server_config") is not None:
        tls = _tls(top["tls_server_config"], base)
    users: dict[str, bytes] = {}
    if top.get("basic_auth_users") is not None:
        table = top["basic_auth_users"]
        if not isinstance(table, dict):
            raise InputError("basic_auth_users must be a mapping of names to bcrypt hashes")
        for user, hashed in table.items():
            text = _string(hashed, f"basic_auth_users.{sanitize.text(user, 40)}")
            if not _BCRYPT.fullmatch(text):
                raise InputError(f"basic_auth_users.{sanitize.text(user, 40)}: not a bcrypt "
                                 "hash (make one with: htpasswd -nBC 10 '' | tr -d ':\\n')")
            users[str(user)] = text.encode()
    headers: list[tuple[str, str]] = []
    if top.get("http_server_config") is not None:
        http = _table(top["http_server_config"], "http_server_config", _HTTP)
        if http.get("headers") is not None:
            for name, value in _table(http["headers"], "http_server_config.headers",
                                      _HEADERS).items():
                if value:
                    headers.append((name, _header_value(value, name)))
    return WebConfig(tls, users, tuple(headers))


def _header_value(value: object, name: str) -> str:
    text = _string(value, f"http_server_config.headers.{name}")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise InputError(f"http_server_config.headers.{name}: control characters")
    return text


def _tls(value: object, base: Path) -> ssl.SSLContext:
    for key in value if isinstance(value, dict) else ():
        if key in _TLS_UNSUPPORTED:
            raise InputError(f"tls_server_config.{key} is not supported by assure-doctor "
                             "(use cert_file / key_file / client_ca_file)")
    table = _table(value, "tls_server_config", _TLS)
    cert = base / _string(table.get("cert_file"), "tls_server_config.cert_file")
    key = base / _string(table.get("key_file"), "tls_server_config.key_file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _version(table.get("min_version", "TLS12"), "min_version")
    context.maximum_version = _version(table.get("max_version", "TLS13"), "max_version")
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"tls_server_config: cannot load cert_file/key_file "
                         f"({sanitize.text(getattr(exc, 'strerror', None) or exc, 120)})"
                         ) from None
    auth = str(table.get("client_auth_type") or "NoClientCert")
    if auth not in _CLIENT_AUTH:
        raise InputError(f"tls_server_config.client_auth_type {sanitize.text(auth, 40)!r}: "
                         f"use one of {', '.join(_CLIENT_AUTH)}")
    client_ca = table.get("client_ca_file")
    if client_ca is not None:
        if _CLIENT_AUTH[auth] == ssl.CERT_NONE:
            # As exporter-toolkit: a client CA without a policy is a mistake, not a default.
            raise InputError("tls_server_config.client_ca_file is set but client_auth_type "
                             "is NoClientCert (use RequireAndVerifyClientCert)")
        try:
            context.load_verify_locations(base / _string(client_ca, "client_ca_file"))
        except (OSError, ssl.SSLError) as exc:
            raise InputError(f"tls_server_config.client_ca_file: cannot load "
                             f"({sanitize.text(getattr(exc, 'strerror', None) or exc, 120)})"
                             ) from None
    elif _CLIENT_AUTH[auth] != ssl.CERT_NONE:
        raise InputError(f"tls_server_config.client_auth_type {auth} needs client_ca_file")
    context.verify_mode = _CLIENT_AUTH[auth]
    return context


def _version(value: object, name: str) -> ssl.TLSVersion:
    if value not in _VERSIONS:
        raise InputError(f"tls_server_config.{name} {sanitize.text(value, 20)!r}: use one of "
                         f"{', '.join(_VERSIONS)}")
    return _VERSIONS[str(value)]


class WebConfigFile:
    """The file's current configuration, re-read when it changes (a bad edit keeps the old)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._config = WebConfig() if path is None else load(path)
        self._stamp = self._mtime()
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self._verified: dict[tuple[str, bytes, bytes], bool] = {}

    def _mtime(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def current(self) -> WebConfig:
        if self.path is None:
            return self._config
        with self._lock:
            if time.monotonic() - self._checked >= RECHECK:
                self._checked = time.monotonic()
                stamp = self._mtime()
                if stamp != self._stamp and stamp is not None:
                    self._stamp = stamp
                    try:
                        self._config = load(self.path)
                        self._verified.clear()
                        log.info("Re-read the changed %s", self.path)
                    except InputError as exc:
                        log.error("%s; keeping the previous web configuration", exc)
            return self._config

    def authorised(self, config: WebConfig, user: str, password: str) -> bool:
        """bcrypt is slow on purpose: remember verdicts by (user, hash, password digest)."""
        hashed = config.users.get(user)
        if hashed is None:
            # Spend the same time as a real check, so that names cannot be probed by timing.
            bcrypt.checkpw(password.encode(), _DUMMY)
            return False
        digest = hashlib.sha256(password.encode()).digest()
        key = (user, hashed, digest)
        with self._lock:
            known = self._verified.get(key)
        if known is not None:
            return known
        verdict = bcrypt.checkpw(password.encode(), hashed)
        with self._lock:
            if len(self._verified) > 1024:
                self._verified.clear()
            self._verified[key] = verdict
        return verdict


_DUMMY = bcrypt.hashpw(b"not a password", bcrypt.gensalt(4))
