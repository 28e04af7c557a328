"""What we write is private (0600) and scrubbed: logs from any logger, state, reports."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from assure_doctor import localfile, logs, redact
from assure_doctor.errors import InputError

SECRET = "QQ_LogSecret0123456789abcdefg"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger(logs.LOGGER_NAME)
    saved = (list(root.handlers), root.level, list(ours.handlers), ours.level, ours.propagate,
             logging.lastResort, logging.raiseExceptions)
    yield
    for logger in (root, ours):
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            if handler not in saved[0] + saved[2]:
                handler.close()
    logs._installed.clear()
    root.handlers[:], root.level = saved[0], saved[1]
    ours.handlers[:], ours.level, ours.propagate = saved[2], saved[3], saved[4]
    logging.lastResort, logging.raiseExceptions = saved[5], saved[6]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_foreign_loggers_record_is_scrubbed_in_message_args_and_traceback(
        tmp_path: Path, restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    redact.register(SECRET)
    log_file = tmp_path / "doctor.log"
    logs.configure(logging.WARNING, str(log_file))
    for name in ("apscheduler.executors.default", "asyncio", "textual", ""):
        foreign = logging.getLogger(name)
        try:
            raise RuntimeError(f"headers {{'x-api-key': '{SECRET}'}}")
        except RuntimeError:
            foreign.error(f"job failed with {SECRET}; args: %s", {"x-api-key": SECRET},
                          exc_info=True, stack_info=True)
        foreign.warning("bad format %d", SECRET)  # arguments that do not fit the format
    text = log_file.read_text()
    err = capsys.readouterr().err
    assert text.count("Traceback") == 4 and err.count("Traceback") == 4
    assert "apscheduler.executors.default" in text and "asyncio" in text
    assert SECRET not in text and SECRET not in err
    assert text.count(redact.MASK) >= 12


def test_foreign_debug_is_not_logged_but_ours_is(tmp_path: Path, restore_logging: None) -> None:
    log_file = tmp_path / "doctor.log"
    logs.configure(logging.CRITICAL, str(log_file))
    logging.getLogger("apscheduler.scheduler").debug("foreign chatter")
    logs.get("ping").debug("our own detail")
    text = log_file.read_text()
    assert "our own detail" in text and "foreign chatter" not in text


def test_log_files_are_created_0600_and_tightened(tmp_path: Path, restore_logging: None) -> None:
    fresh = tmp_path / "logs" / "new.log"
    logs.configure(logging.CRITICAL, str(fresh))
    logs.get("test").info("hello")
    assert mode(fresh) == 0o600 and "hello" in fresh.read_text()
    old = tmp_path / "old.log"
    old.write_text("before\n")
    old.chmod(0o644)
    logs.configure(logging.CRITICAL, str(old))
    logs.get("test").info("after")
    assert mode(old) == 0o600
    assert old.read_text().startswith("before\n") and "after" in old.read_text()  # appended


def test_write_private_is_0600_and_atomic(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o644)
    localfile.write_private(target, b'{"new": true}')
    assert target.read_bytes() == b'{"new": true}' and mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left


def test_read_regular_caps_and_refuses(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.write_bytes(b"x" * 10)
    assert localfile.read_regular(small, 10, "--thing") == b"x" * 10
    with pytest.raises(InputError, match="--thing: larger than"):
        localfile.read_regular(small, 9, "--thing")
    for path, words in (("/dev/zero", "character device"), (str(tmp_path), "directory"),
                        (str(tmp_path / "missing"), "cannot read")):
        with pytest.raises(InputError, match=words) as caught:
            localfile.read_regular(path, 100, "--thing")
        assert path not in str(caught.value)
