"""The support bundle `assure-doctor report` and the TUI's export write: four private files."""

from __future__ import annotations

import os
import re
from pathlib import Path

from assure_doctor import sanitize
from assure_doctor.errors import InputError
from assure_doctor.model import Report
from assure_doctor.options import CheckOptions
from assure_doctor.render import json as json_report
from assure_doctor.render import markdown, reproduce, words

LOG = "assure-doctor.log"
FILES = ("report.md", "report.json", LOG, "reproduce.txt")
# The key's last characters, as some log lines describe it: a bundle gives only source and length.
_KEY_TAIL = re.compile(r", ends …\S{1,8}\)")


def prepare(out: Path) -> Path:
    """Create the folder (0700) if needed; a path that is not a folder is bad input."""
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    if not out.is_dir():
        raise InputError(f"--out {out}: not a folder")
    return out


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read (0600, even if it existed before)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        # The log holds what servers sent as it came: escape sequences are shown, not kept.
        stream.write(_KEY_TAIL.sub(")", sanitize.text(text, None, keep_newlines=True)))


def write(out: Path, report: Report, options: CheckOptions, log_text: str | None = None
          ) -> list[Path]:
    """report.md, report.json, reproduce.txt, and the log when given as text (the TUI)."""
    written = {
        "report.md": markdown.render(report, options),
        "report.json": json_report.render(report) + "\n",
        "reproduce.txt": reproduce.render(report, options),
    }
    log = out / LOG
    if log_text is None and log.is_file():  # written by the logger: take the key's tail out
        log_text = log.read_text(encoding="utf-8", errors="replace")
    if log_text is not None:
        written[LOG] = log_text
    paths = []
    for name, text in written.items():
        write_private(out / name, text)
        paths.append(out / name)
    return paths


def summary(report: Report) -> list[str]:
    """Two lines: the verdict and the finding, and its most likely cause."""
    finding = report.diagnosis or next((s for s in report.warnings if s.condition), None)
    verdict = "Result: OK" if report.ok else "Result: FAILED"
    if finding is None:
        return [verdict, "Every stage passed."]
    first = f"; most likely: {finding.causes[0].title} ({finding.causes[0].id})" \
        if finding.causes else ""
    return [f"{verdict} · {words.title(finding.condition, finding.status)} at the "
            f"{finding.name} stage",
            f"{words.outside(finding.summary, 160)}{first}"]
