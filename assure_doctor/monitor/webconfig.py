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
from typing import TypeVar

import bcrypt
import yaml

from assure_doctor import localfile, logs, numbers, sanitize
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
_BCRYPT = re.compile(r"\$2[aby]\$([0-9]{2})\$[./A-Za-z0-9]{53}")
log = logs.get("web")
T = TypeVar("T")


@dataclass(frozen=True)
class WebConfig:
    """What one version of the file asks for; the empty config is plain, open HTTP."""

    tls: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()


def load(path: Path) -> WebConfig:
    """Parse and check the whole file, every value for its type; raises InputError naming the
    flag and the field (one line, never a value from the file)."""
    where = "--web.config.file"
    raw = localfile.read_regular(path, MAX_FILE, where)  # not a FIFO, /dev/zero, a folder
    try:
        data = yaml.safe_load(raw.decode("utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        reason = sanitize.text(" ".join(str(exc).split()), 160) \
            if isinstance(exc, yaml.YAMLError) else type(exc).__name__
        raise InputError(f"{where}: not valid YAML ({reason})") from None
    try:
        return _parse(data, path.parent)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _table(value: object, name: str, known: set[str]) -> dict[str, object]:
    """A mapping whose keys are all known settings."""
    if not isinstance(value, dict):
        raise InputError(f"{name or 'the file'} must be a mapping")
    for key in value:
        if not isinstance(key, str) or key not in known:
            where = f"{name}.{key}" if name else str(key)
            raise InputError(f"unknown setting {sanitize.text(where, 80)!r}")
    return value


def _string(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{name} must be a non-empty string")
    return value


def _given(table: Mapping[str, object], key: str, default: str) -> object:
    """The value, or `default` when the key is absent or empty (YAML `key:` is null)."""
    value = table.get(key)
    return default if value is None else value


def _choice(value: object, name: str, choices: Mapping[str, T]) -> T:
    """One of `choices` by name; the error lists them (and never repeats the value)."""
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}")
    return choices[value]


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
            if not isinstance(user, str) or not user:
                raise InputError("basic_auth_users: every name must be a non-empty string")
            name = f"basic_auth_users.{sanitize.text(user, 40)}"
            users[user] = _bcrypt_hash(hashed, name)
    headers: list[tuple[str, str]] = []
    if top.get("http_server_config") is not None:
        http = _table(top["http_server_config"], "http_server_config", _HTTP)
        if http.get("headers") is not None:
            for name, value in _table(http["headers"], "http_server_config.headers",
                                      _HEADERS).items():
                if value is not None and value != "":
                    headers.append((name, _header_value(value, name)))
    return WebConfig(tls, users, tuple(headers))


def _bcrypt_hash(value: object, name: str) -> bytes:
    """A bcrypt hash bcrypt can check: its shape, and a cost from 4 to 31."""
    text = _string(value, name)
    match = _BCRYPT.fullmatch(text)
    cost = numbers.whole(match.group(1), 4, 31) if match else None
    if cost is None:
        raise InputError(f"{name}: not a bcrypt hash (make one with: htpasswd -nBC 10 '' | "
                         "tr -d ':\\n')")
    return text.encode("ascii")


def _header_value(value: object, name: str) -> str:
    text = _string(value, f"http_server_config.headers.{name}")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text) or not text.isascii():
        raise InputError(f"http_server_config.headers.{name}: only printable ASCII")
    return text


def _tls(value: object, base: Path) -> ssl.SSLContext:
    for key in value if isinstance(value, dict) else ():
        if key in _TLS_UNSUPPORTED:
            raise InputError(f"tls_server_config.{key} is not supported by assure-doctor "
                             "(use cert_file / key_file / client_ca_file)")
    table = _table(value, "tls_server_config", _TLS)
    cert = base / _string(table.get("cert_file"), "tls_server_config.cert_file")
    key = base / _string(table.get("key_file"), "tls_server_config.key_file")
    lowest = _choice(_given(table, "min_version", "TLS12"), "tls_server_config.min_version",
                     _VERSIONS)
    highest = _choice(_given(table, "max_version", "TLS13"), "tls_server_config.max_version",
                      _VERSIONS)
    if lowest > highest:
        raise InputError("tls_server_config.min_version is above max_version")
    auth = _choice(_given(table, "client_auth_type", "NoClientCert"),
                   "tls_server_config.client_auth_type", _CLIENT_AUTH)
    client_ca = table.get("client_ca_file")
    client_ca_path = None if client_ca is None else base / _string(
        client_ca, "tls_server_config.client_ca_file")
    if client_ca_path is not None and auth == ssl.CERT_NONE:
        # As exporter-toolkit: a client CA without a policy is a mistake, not a default.
        raise InputError("tls_server_config.client_ca_file is set but client_auth_type "
                         "is NoClientCert (use RequireAndVerifyClientCert)")
    if client_ca_path is None and auth != ssl.CERT_NONE:
        raise InputError("tls_server_config.client_auth_type needs client_ca_file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version, context.maximum_version = lowest, highest
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError, ValueError) as exc:  # ValueError: a NUL in a path
        raise InputError(f"tls_server_config: cannot load cert_file/key_file "
                         f"({sanitize.text(getattr(exc, 'strerror', None) or exc, 120)})"
                         ) from None
    if client_ca_path is not None:
        try:
            context.load_verify_locations(client_ca_path)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise InputError(f"tls_server_config.client_ca_file: cannot load "
                             f"({sanitize.text(getattr(exc, 'strerror', None) or exc, 120)})"
                             ) from None
    context.verify_mode = auth
    return context


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
            _checks(password, _DUMMY)
            return False
        digest = hashlib.sha256(password.encode()).digest()
        key = (user, hashed, digest)
        with self._lock:
            known = self._verified.get(key)
        if known is not None:
            return known
        verdict = _checks(password, hashed)
        with self._lock:
            if len(self._verified) > 1024:
                self._verified.clear()
            self._verified[key] = verdict
        return verdict


def _checks(password: str, hashed: bytes) -> bool:
    """bcrypt's verdict; False for what bcrypt refuses to check (over 72 bytes, as Go's
    bcrypt, which exporter-toolkit uses, refuses it too)."""
    try:
        return bcrypt.checkpw(password.encode(), hashed)
    except ValueError:
        return False


_DUMMY = bcrypt.hashpw(b"not a password", bcrypt.gensalt(4))
