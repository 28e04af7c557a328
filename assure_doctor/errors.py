"""The public exception hierarchy.

    DoctorError
    └── InputError        bad user input: one line on stderr, exit code 2
        ├── TargetError   --stack / --url / --resolver
        └── ApiKeyError   the API key (missing file, whitespace, control characters)

Messages name the input and never carry the key itself.
"""


class DoctorError(Exception):
    """Base class of every error assure-doctor raises on purpose."""


class InputError(DoctorError):
    """The user gave input we cannot use; the message names that input."""


class TargetError(InputError):
    """The target (stack, URL, resolver) is malformed."""


class ApiKeyError(InputError):
    """The API key cannot be read or is malformed (the message never contains it)."""


def shown(value: object, limit: int = 120) -> str:
    """An input value quoted for an error message: control characters escaped, secrets
    masked, and bounded (a megabyte-long --url gets a one-line error, not a megabyte)."""
    from assure_doctor import sanitize

    return f"'{sanitize.text(value, limit)}'"
