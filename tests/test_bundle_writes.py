"""`report --out DIR` against a hostile folder: nothing followed, overwritten, hung or crashed.

Real files in temporary folders: symbolic links planted at the bundle's names (pointing at a
victim file, or nowhere), FIFOs, folders, hard links, folders others can write to, another
user's folder (as root, with chown), kernel trees. Each ends in one line and exit code 2, or
in a bundle written beside what was there, never through it.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assure_doctor import localfile
from assure_doctor.render import bundle
from tests.conftest import Run, run_cli

CHECK = ["--url", "https://127.0.0.1:9/v1/ping", "--no-ping", "--timeout", "1"]
VICTIM_TEXT = "the victim's own content\n"
NOBODY = 65534


def report_into(out: str | Path) -> Run:
    return run_cli("report", *CHECK, "--out", str(out), timeout=60)


def one_line_exit_2(run: Run, *words: str) -> str:
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file some link points at: it must keep its content and its mode."""
    path = tmp_path / "victim.conf"
    path.write_text(VICTIM_TEXT)
    path.chmod(0o644)
    return path


def untouched(path: Path) -> bool:
    return path.read_text() == VICTIM_TEXT and mode(path) == 0o644


# --- the folder -------------------------------------------------------------------------------
def _writable_by_others(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    return folder


def _writable_by_the_group(tmp_path: Path) -> Path:
    folder = tmp_path / "team"
    folder.mkdir()
    folder.chmod(0o770)
    return folder


def _a_link_to_a_folder(tmp_path: Path) -> Path:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    return link


def _a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("x")
    return path


FOLDERS: list[tuple[Callable[[Path], Path | str], str]] = [
    (_writable_by_others, "others can write"),
    (_writable_by_the_group, "others can write"),
    (_a_link_to_a_folder, "symbolic link"),
    (_a_file, "not a folder"),
    (lambda _: "", "give a folder"),
    (lambda _: "/proc/self", "not a place for files"),
    (lambda _: "/proc/self/new-folder", "not a place for files"),
    (lambda _: "/sys/kernel", "not a place for files"),
]


@pytest.mark.parametrize(("make", "words"), FOLDERS)
def test_a_folder_we_cannot_trust_is_refused_in_one_line(
        make: Callable[[Path], Path | str], words: str, tmp_path: Path) -> None:
    out = make(tmp_path)
    with pytest.raises(bundle.InputError, match=words) as caught:
        bundle.prepare(out)
    assert str(out) not in str(caught.value) or not str(out)  # the flag is named, not the path
    if isinstance(out, Path) and out.is_dir():
        assert not any(out.iterdir())  # nothing was written


@pytest.mark.slow
def test_the_folder_refusals_through_the_command(tmp_path: Path) -> None:
    one_line_exit_2(report_into(_writable_by_others(tmp_path)), "--out", "others can write")
    one_line_exit_2(report_into(""), "--out", "give a folder")
    one_line_exit_2(report_into("/proc/self"), "--out", "not a place")


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_another_users_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, NOBODY, NOBODY)
    one_line_exit_2(report_into(folder), "--out", "belongs to another user")
    assert not any(folder.iterdir())


@pytest.mark.skipif(os.geteuid() != 0, reason="a link owned by another user needs root")
def test_a_link_planted_by_another_user_in_a_shared_folder_overwrites_nothing(
        tmp_path: Path, victim: Path) -> None:
    """The issue's case: /tmp-like (sticky, world-writable), a link by someone else."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    os.chown(victim, 0, 0)
    planted = shared / "report.md"
    planted.symlink_to(victim)
    os.lchown(planted, NOBODY, NOBODY)
    one_line_exit_2(report_into(shared), "--out", "others can write")
    assert untouched(victim) and planted.is_symlink()


@pytest.mark.slow
def test_a_missing_folder_is_created_private(tmp_path: Path) -> None:
    out = tmp_path / "new" / "bundle"
    run = report_into(out)
    assert run.returncode == 1, run.stderr  # the check failed (nothing listens); the bundle did not
    assert mode(out) == 0o700
    assert sorted(p.name for p in out.iterdir()) == sorted(bundle.FILES)
    assert all(mode(p) == 0o600 for p in out.iterdir())


# --- what is already at a bundle's name -------------------------------------------------------
def _link_to_victim(folder: Path, name: str, victim: Path) -> None:
    (folder / name).symlink_to(victim)


def _dangling_link(folder: Path, name: str, victim: Path) -> None:
    (folder / name).symlink_to(victim.parent / "created-through-a-link")


def _fifo(folder: Path, name: str, victim: Path) -> None:
    os.mkfifo(folder / name)


def _folder(folder: Path, name: str, victim: Path) -> None:
    (folder / name).mkdir()


PLANTED = [(_link_to_victim, "a symbolic link"), (_dangling_link, "a symbolic link"),
           (_fifo, "a pipe"), (_folder, "a directory")]


@pytest.mark.parametrize("name", bundle.FILES)
@pytest.mark.parametrize(("plant", "kind"), PLANTED)
def test_write_private_refuses_what_is_not_a_regular_file(
        plant: Callable[[Path, str, Path], None], kind: str, name: str, tmp_path: Path,
        victim: Path) -> None:
    folder = tmp_path / "bundle"
    folder.mkdir(mode=0o700)
    plant(folder, name, victim)
    before = os.lstat(folder / name)
    start = time.monotonic()
    with pytest.raises(localfile.NotRegularFile, match=kind):
        localfile.write_private(folder / name, b"new")
    assert time.monotonic() - start < 5  # a pipe is never opened, so nothing waits on it
    after = os.lstat(folder / name)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert untouched(victim) and not (tmp_path / "created-through-a-link").exists()
    assert sorted(p.name for p in folder.iterdir()) == [name]  # no temporary left behind


@pytest.mark.slow
@pytest.mark.parametrize(("plant", "name", "words"), [
    (_link_to_victim, "report.md", "report.md"),
    (_dangling_link, "report.json", "report.json"),
    (_fifo, "report.md", "report.md"),
    (_fifo, bundle.LOG, bundle.LOG),  # refused before the check runs
    (_folder, bundle.LOG, bundle.LOG),
    (_link_to_victim, "reproduce.txt", "reproduce.txt"),
])
def test_report_refuses_a_planted_name_in_one_line(
        plant: Callable[[Path, str, Path], None], name: str, words: str, tmp_path: Path,
        victim: Path) -> None:
    folder = tmp_path / "bundle"
    folder.mkdir(mode=0o700)
    plant(folder, name, victim)
    run = report_into(folder)
    one_line_exit_2(run, "--out", words, "not a regular file")
    assert run.seconds < 30
    assert untouched(victim) and not (tmp_path / "created-through-a-link").exists()


@pytest.mark.slow
def test_an_existing_bundle_is_replaced_by_rename_never_written_through(
        tmp_path: Path, victim: Path) -> None:
    folder = tmp_path / "bundle"
    folder.mkdir(mode=0o700)
    old = folder / "report.md"
    os.link(victim, old)  # a hard link: writing into the file would change the victim
    old_inode = os.lstat(old).st_ino
    run = report_into(folder)
    assert run.returncode == 1, run.stderr
    assert untouched(victim)
    assert os.lstat(old).st_ino != old_inode and mode(old) == 0o600
    assert "# " in old.read_text()  # the new report
    assert sorted(p.name for p in folder.iterdir()) == sorted(bundle.FILES)


def test_the_log_is_never_opened_through_a_link(tmp_path: Path, victim: Path) -> None:
    with pytest.raises(OSError):
        localfile.open_private(_linked(tmp_path, victim))
    assert untouched(victim)


def _linked(tmp_path: Path, victim: Path) -> Path:
    link = tmp_path / "doctor.log"
    link.symlink_to(victim)
    return link
