"""The API key: where it comes from, whether it is well formed, and how it is shown.

The key is wrapped so that an accidental `print`, f-string, log call or traceback shows a mask,
never the secret; `reveal()` is the one door out and only the ping stage uses it.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping

from assure_doctor.errors import ApiKeyError, InputError

ENV_VAR = "ASSURE_API_KEY"
MAX_LENGTH = 512
MAX_FILE_SIZE = 4 * 1024


class ApiKey:
    """A validated API key and the name of its source (never the key). Read-only, equal by
    value. (A plain class: `--help` reads ENV_VAR here and must not import dataclasses.)"""

    __slots__ = ("_path", "_secret", "_source")

    def __init__(self, secret: str, source: str, path: str | None = None) -> None:
        from assure_doctor import redact  # on first use: --help reads ENV_VAR alone

        redact.register(secret)
        self._secret = secret
        self._source = source
        self._path = path

    @property
    def source(self) -> str:
        return self._source

    @property
    def path(self) -> str | None:
        """The key file it was read from (a path, not a secret)."""
        return self._path

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and (self._secret, self._source, self._path) == (
            other._secret, other._source, other._path)

    def __hash__(self) -> int:
        return hash((self._secret, self._source, self._path))

    def reveal(self) -> str:
        """The secret itself, for the `x-api-key` header and nothing else."""
        return self._secret

    @property
    def fingerprint(self) -> str:
        """A short, stable, non-reversible id (for state files and reports)."""
        import hashlib  # OpenSSL: not for --help

        return hashlib.sha256(self._secret.encode()).hexdigest()[:12]

    @property
    def masked(self) -> str:
        """Source and length only: no character of the key is ever shown or logged."""
        return f"from {self.source} ({len(self._secret)} chars)"

    def __repr__(self) -> str:
        return f"ApiKey({self.masked})"

    __str__ = __repr__


def validate(raw: str, source: str) -> str:
    """Return the key, or raise ApiKeyError naming the source and the first problem found."""
    if not raw:
        raise ApiKeyError(f"{source}: the API key is empty")
    if len(raw) > MAX_LENGTH:
        raise ApiKeyError(f"{source}: the API key is {len(raw)} characters, longer than any key")
    pasted = _pasted_line(raw)
    if pasted:
        raise ApiKeyError(f"{source}: {pasted}; give the key alone")
    for index, char in enumerate(raw):
        if char.isspace():
            raise ApiKeyError(f"{source}: the API key contains whitespace at character {index + 1}")
        if unicodedata.category(char).startswith("C"):
            raise ApiKeyError(
                f"{source}: the API key contains a control character at character {index + 1}"
            )
        if not char.isascii():
            raise ApiKeyError(
                f"{source}: the API key contains a non-ASCII character at character {index + 1}"
            )
    return raw


# A whole line copied from a shell profile, a .env file or an HTTP request, not the key alone.
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+|set\s+|\$env:)?(?:ASSURE_API_KEY|API_KEY)\s*=",
                         re.IGNORECASE)
_HEADER = re.compile(r"^\s*x-api-key\s*:", re.IGNORECASE)
_QUOTES = ("\"", "'")


def _pasted_line(raw: str) -> str | None:
    """What the text looks like when it is more than a key (never quoting the text)."""
    if _ASSIGNMENT.match(raw) or raw.lstrip().lower().startswith("export "):
        return "this looks like a shell or .env assignment (NAME=...), not a key"
    if _HEADER.match(raw):
        return "this looks like an HTTP header line (x-api-key: ...), not a key"
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in _QUOTES:
        return "the API key is wrapped in quotes"
    return None


def normalise(text: str) -> str:
    """The same for the file and the environment: drop a byte-order mark and exactly one
    trailing line ending (`\\n` or `\\r\\n`), which editors and `echo` add; anything else
    (a second newline, spaces) is kept and refused by `validate`."""
    text = text.removeprefix("\ufeff")
    for ending in ("\r\n", "\n"):
        if text.endswith(ending):
            return text[: -len(ending)]
    return text


def from_file(path: str | os.PathLike[str], what: str = "--api-key-file") -> ApiKey:
    """Read a key file: a regular file of at most 4 KiB.

    Errors name `what` (the option or TOML key), never the path: a user may have pasted the
    key itself where the path belongs.
    """
    from assure_doctor import localfile, sanitize  # on first use, as redact above

    try:
        data = localfile.read_regular(path, MAX_FILE_SIZE, what)
    except InputError as exc:
        raise ApiKeyError(str(exc)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiKeyError(f"{what}: the key file is not UTF-8 text") from None
    return ApiKey(validate(normalise(text), what), source=f"file {sanitize.text(path, 200)}",
                  path=os.fspath(path))


def from_env(environ: Mapping[str, str] | None = None, variable: str = ENV_VAR
             ) -> ApiKey | None:
    """The key in the environment variable (ASSURE_API_KEY), or None when it is unset."""
    env = os.environ if environ is None else environ
    raw = env.get(variable)
    if raw is None:
        return None
    return ApiKey(validate(normalise(raw), variable), source=variable)


def load(key_file: str | None, environ: Mapping[str, str] | None = None) -> ApiKey | None:
    """The key from --api-key-file if given, else from the environment, else None."""
    if key_file is not None:
        return from_file(key_file)
    return from_env(environ)
