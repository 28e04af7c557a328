"""Small JSON files of ours in a state directory, one per target label (the path history, the
monitor's last results): named by a hash of the label, written atomically and 0600, read
bounded and never through a link, and parsed totally (`Corrupt` says what is wrong)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from assure_doctor import localfile


class Corrupt(ValueError):
    """A state file cannot be trusted; the message says what is wrong with it."""


class LabelFiles:
    """One file per label in `directory`, each at most `limit` bytes."""

    def __init__(self, directory: Path, limit: int, what: str) -> None:
        self.directory = directory
        self.limit = limit
        self.what = what  # names the files in errors: "the path history"

    def path(self, label: str) -> Path:
        return self.directory / (hashlib.sha256(label.encode()).hexdigest()[:24] + ".json")

    def read(self, label: str) -> object | None:
        """The label's JSON document; None when there is none. InputError when the file is a
        link, not a regular file or too large; ValueError (Corrupt among them) when it is not
        JSON; RecursionError when it nests too deep."""
        path = self.path(label)
        if not path.exists() and not path.is_symlink():
            return None
        data = localfile.read_regular(path, self.limit, self.what, follow_symlinks=False)
        document: object = json.loads(data)
        return document

    def write(self, label: str, data: bytes) -> None:
        """Replace the label's file with `data`, atomically, 0600, in a 0700 directory;
        OSError when it cannot be written."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        localfile.write_private(self.path(label), data)


def need(value: object, kind: type | tuple[type, ...], what: str) -> Any:
    """`value` when it is of `kind` (a bool is no number); Corrupt naming `what` otherwise."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise Corrupt(f"{what} has the wrong type")
    return value


def number(value: object, what: str) -> float:
    """A finite JSON number; Corrupt naming `what` otherwise."""
    found = float(need(value, (int, float), what))
    if not math.isfinite(found):
        raise Corrupt(f"{what} is not finite")
    return found
