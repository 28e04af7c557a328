"""The path history of each target, kept in a state directory: the last good fingerprint and
the last changes, with their times. One small file per target, written atomically and 0600,
bounded, and parsed totally on load (a corrupt file is set aside with one warning).

Nothing secret enters it: fingerprints hold addresses, names, masked proxy URLs and
certificate facts; the key never reaches the stages' results.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from assure_doctor import logs, sanitize
from assure_doctor.errors import InputError
from assure_doctor.history.changes import Change, What
from assure_doctor.history.fingerprint import CertSummary, Fingerprint
from assure_doctor.history.record import MAX_CHANGES, Record, advance
from assure_doctor.model import Report
from assure_doctor.statefile import Corrupt, LabelFiles, need, number

DIRECTORY = "history"
SCHEMA = 1
MAX_FILE = 64 * 1024
_TEXT = 1000  # longest string kept
_LIST = 64  # longest list kept
log = logs.get("history")


class History:
    """Records per target label (the ping URL) in `state_dir/history/`."""

    def __init__(self, state_dir: Path) -> None:
        self.files = LabelFiles(state_dir / DIRECTORY, MAX_FILE, "the path history")
        self.directory = self.files.directory

    def load(self, label: str) -> Record:
        """The target's record; an empty one when there is none or it cannot be trusted (a
        symbolic link is never followed)."""
        try:
            document = self.files.read(label)
            return Record() if document is None else _record(document, label)
        except (InputError, ValueError, RecursionError) as exc:  # Corrupt is a ValueError
            log.warning("Ignoring the path history %s (%s)", self.files.path(label),
                        sanitize.text(exc, 120))
            return Record()

    def save(self, label: str, record: Record) -> None:
        """Write the record atomically, 0600; OSError when the directory cannot be written."""
        document = {"schema": SCHEMA, "label": label, "last_good_at": record.last_good_at,
                    "last_good_unix": record.last_good_unix,
                    "last_good": None if record.last_good is None else _dump(record.last_good),
                    "changes": [c.to_dict() for c in record.changes[-MAX_CHANGES:]]}
        data = json.dumps(document, separators=(",", ":")).encode()
        if len(data) > MAX_FILE:
            document["changes"] = []
            data = json.dumps(document, separators=(",", ":")).encode()
        self.files.write(label, data)

    def keep(self, label: str, record: Record, report: Report, at: datetime
             ) -> tuple[Record, tuple[Change, ...]]:
        """Move the target's history on with `report` (checked against `record`) and keep
        it: the new record, and the changes it logged for the first time. A history that
        cannot be written is said in the log, never fatal."""
        if report.fingerprint is None:
            return record, ()
        updated, new = advance(record, report.ok, report.fingerprint, report.changes or (), at)
        try:
            self.save(label, updated)
        except OSError as exc:
            log.warning("Cannot keep the path history in %s (%s)", self.directory,
                        exc.strerror or type(exc).__name__)
        return updated, new


def _dump(fingerprint: Fingerprint) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in fields(fingerprint):
        value = getattr(fingerprint, item.name)
        if item.name == "chain" and value is not None:
            value = [[c.sha256, c.subject, c.issuer, c.not_after] for c in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[item.name] = value
    return out


def _text(value: object, what: str) -> str:
    text = need(value, str, what)
    if len(text) > _TEXT:
        raise Corrupt(f"{what} is too long")
    return sanitize.text(text, _TEXT)


def _optional_text(value: object, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _texts(value: object, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = need(value, list, what)
    if len(items) > _LIST:
        raise Corrupt(f"{what} is too long")
    return tuple(_text(item, what) for item in items)


def _number(value: object, what: str) -> float | None:
    return None if value is None else number(value, what)


def _fingerprint(value: object) -> Fingerprint | None:
    if value is None:
        return None
    raw = need(value, dict, "last_good")
    chain = raw.get("chain")
    certificates = None
    if chain is not None:
        certificates = tuple(CertSummary(*(_text(part, "chain") for part in
                                           need(item, list, "chain")[:4]))
                             for item in need(chain, list, "chain")[:_LIST])
    status = raw.get("ping_status")
    if status is not None and not 0 <= need(status, int, "ping_status") <= 999:
        raise Corrupt("ping_status is not an HTTP status")
    return Fingerprint(
        addresses=_texts(raw.get("addresses"), "addresses"),
        address_source=_optional_text(raw.get("address_source"), "address_source"),
        cname_chain=_texts(raw.get("cname_chain"), "cname_chain"),
        proxy=_optional_text(raw.get("proxy"), "proxy"),
        proxy_source=_optional_text(raw.get("proxy_source"), "proxy_source"),
        tls_version=_optional_text(raw.get("tls_version"), "tls_version"),
        cipher=_optional_text(raw.get("cipher"), "cipher"),
        chain=certificates,
        trust=_texts(raw.get("trust"), "trust"),
        ping_status=status,
        clock_offset=_number(raw.get("clock_offset"), "clock_offset"))


def _change(value: object) -> Change:
    raw = need(value, dict, "change")
    try:
        what = What(raw.get("what"))
    except ValueError:
        raise Corrupt("unknown change") from None
    return Change(what, _text(raw.get("was"), "was"), _text(raw.get("now"), "now"),
                  _text(raw.get("since"), "since"), _text(raw.get("text"), "text"),
                  _optional_text(raw.get("seen"), "seen"))


def _record(document: object, label: str) -> Record:
    top = need(document, dict, "the document")
    if top.get("schema") != SCHEMA or top.get("label") != label:
        raise Corrupt("another schema or target")
    changes = need(top.get("changes"), list, "changes")
    if len(changes) > MAX_CHANGES:
        raise Corrupt("too many changes")
    return Record(_optional_text(top.get("last_good_at"), "last_good_at"),
                  _number(top.get("last_good_unix"), "last_good_unix"),
                  _fingerprint(top.get("last_good")),
                  tuple(_change(item) for item in changes))
