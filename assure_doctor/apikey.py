"""The API key: where it comes from, whether it is well formed, and how it is shown.

The key is wrapped so that an accidental `print`, f-string, log call or traceback shows a mask,
never the secret; `reveal()` is the one door out and only the ping stage uses it.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from assure_doctor import redact
from assure_doctor.errors import ApiKeyError

ENV_VAR = "ASSURE_API_KEY"
MAX_LENGTH = 512


@dataclass(frozen=True)
class ApiKey:
    """A validated API key and the name of its source (never the key)."""

    _secret: str = field(repr=False)
    source: str

    def __post_init__(self) -> None:
        redact.register(self._secret)

    def reveal(self) -> str:
        """The secret itself, for the `x-api-key` header and nothing else."""
        return self._secret

    @property
    def fingerprint(self) -> str:
        """A short, stable, non-reversible id (for state files and reports)."""
        return hashlib.sha256(self._secret.encode()).hexdigest()[:12]

    @property
    def masked(self) -> str:
        """Source and length; the last 4 characters only for a key long enough to spare them."""
        tail = f", ends …{self._secret[-4:]}" if len(self._secret) >= 20 else ""
        return f"from {self.source} ({len(self._secret)} chars{tail})"

    def __repr__(self) -> str:
        return f"ApiKey({self.masked})"

    __str__ = __repr__


def validate(raw: str, source: str) -> str:
    """Return the key, or raise ApiKeyError naming the source and the first problem found."""
    if not raw:
        raise ApiKeyError(f"{source}: the API key is empty")
    if len(raw) > MAX_LENGTH:
        raise ApiKeyError(f"{source}: the API key is {len(raw)} characters, longer than any key")
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


def from_file(path: str | os.PathLike[str]) -> ApiKey:
    """Read a key file; one trailing line ending is the file's, not the key's."""
    source = f"--api-key-file {path}"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ApiKeyError(f"{source}: cannot read the key file ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiKeyError(f"{source}: the key file is not UTF-8 text") from None
    text = text.removeprefix("\ufeff")
    for ending in ("\r\n", "\n"):
        if text.endswith(ending):
            text = text[: -len(ending)]
            break
    return ApiKey(validate(text, source), source=f"file {path}")


def from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> ApiKey | None:
    """The key in ASSURE_API_KEY, or None when the variable is unset."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_VAR)
    if raw is None:
        return None
    return ApiKey(validate(raw, ENV_VAR), source=ENV_VAR)


def load(key_file: str | None, environ: dict[str, str] | None = None) -> ApiKey | None:
    """The key from --api-key-file if given, else from the environment, else None."""
    if key_file is not None:
        return from_file(key_file)
    return from_env(environ)
