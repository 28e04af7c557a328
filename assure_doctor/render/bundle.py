"""The support bundle `assure-doctor report` and the TUI's export write: four private files.

The folder is created 0700 when missing. An existing one must be a real folder (not a
symbolic link) owned by the user and writable by no one else, so no other user can plant a
link or a pipe among our files. Each file is written by `localfile.write_private`: a new
temporary file renamed over the name, never through a link, and anything at the name that
is not a regular file is refused. Every problem is one line naming --out, exit code 2.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from assure_doctor import localfile, sanitize
from assure_doctor.errors import InputError
from assure_doctor.model import Report
from assure_doctor.options import CheckOptions
from assure_doctor.render import json as json_report
from assure_doctor.render import markdown, reproduce, words

LOG = "assure-doctor.log"
FILES = ("report.md", "report.json", LOG, "reproduce.txt")
LOG_LIMIT = 64 * localfile.MIB  # a debug log of one check is a few hundred KiB
_NOT_HERE = ("/proc", "/sys", "/dev")  # kernel views and devices: no place for a bundle


def prepare(given: str | os.PathLike[str]) -> Path:
    """The folder, created 0700 if missing, else checked (see the module); InputError."""
    if not os.fspath(given).strip():  # not "": Path("") would be the current folder
        raise InputError("--out: give a folder, e.g. --out ./assure-ticket")
    out = Path(given)
    real = os.path.realpath(out)
    kernel = next((top for top in _NOT_HERE if real == top or real.startswith(top + "/")), None)
    if kernel is not None:
        raise InputError(f"--out: not a place for files (it is under {kernel})")
    try:
        info = os.lstat(out)
    except FileNotFoundError:
        try:
            out.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(out)
        except OSError as exc:
            raise InputError(f"--out: cannot create the folder ({_reason(exc)})") from None
    except OSError as exc:
        raise InputError(f"--out: cannot use the folder ({_reason(exc)})") from None
    _check_folder(info)
    return out


def _check_folder(info: os.stat_result) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise InputError("--out: is a symbolic link; give the folder it points to")
    if not stat.S_ISDIR(info.st_mode):
        raise InputError("--out: exists and is not a folder")
    if sys.platform != "win32":  # Windows has ACLs, not owners and modes to check here
        if info.st_uid != os.geteuid():
            raise InputError("--out: the folder belongs to another user; give one of yours")
        if info.st_mode & 0o022:
            raise InputError("--out: others can write to the folder; give one only you can "
                             "write to (or chmod go-w it)")


def start_log(out: Path) -> Path:
    """An empty 0600 log file in the bundle, for the logger to append to."""
    path = out / LOG
    _write(path, "")
    return path


def write(out: Path, report: Report, options: CheckOptions, log_text: str | None = None
          ) -> list[Path]:
    """report.md, report.json, reproduce.txt, and the log (given as text by the TUI; else
    the one the logger wrote, rewritten with what servers sent escaped)."""
    written = {
        "report.md": markdown.render(report, options),
        "report.json": json_report.render(report) + "\n",
        "reproduce.txt": reproduce.render(report, options),
    }
    if log_text is None:
        log_text = _logged(out / LOG)
    if log_text is not None:
        written[LOG] = log_text
    paths = []
    for name, text in written.items():
        _write(out / name, text)
        paths.append(out / name)
    return paths


def _logged(path: Path) -> str | None:
    """The logger's file, when it is one (a regular file we made: read, never followed)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
    except OSError:
        return None
    return localfile.read_regular(path, LOG_LIMIT, "--out").decode("utf-8", "replace")


def _write(path: Path, text: str) -> None:
    # The log holds what servers sent as it came: escape sequences are shown, not kept.
    data = sanitize.text(text, None, keep_newlines=True).encode("utf-8")
    try:
        localfile.write_private(path, data)
    except OSError as exc:
        raise InputError(f"--out: cannot write {path.name} ({_reason(exc)})") from None


def _reason(exc: OSError) -> str:
    return exc.strerror or "error"


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
