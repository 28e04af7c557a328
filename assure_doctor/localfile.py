"""Local files, read and written defensively.

A path from the user may name `/dev/zero`, a FIFO, a directory or a huge file: `read_regular`
reads only regular files, never blocks on opening, and stops at a size cap. What we write
(logs, state, exports, reports) is private to the user: `write_private` creates it 0600,
atomically and never through a link, and `open_private` opens a file for appending, 0600.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from io import TextIOWrapper
from pathlib import Path

from assure_doctor.errors import InputError

KIB = 1024
MIB = 1024 * KIB
PRIVATE = 0o600
KERNEL_TREES = ("/proc", "/sys")
# A file of ours is new: never an existing name, never through a link (O_NOFOLLOW is POSIX).
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) \
    | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
# O_NONBLOCK: opening a FIFO for reading must not wait for a writer; O_NOCTTY: a terminal
# device must not become our controlling terminal. Neither exists on Windows.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) \
    | getattr(os, "O_BINARY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # not on Windows: the islink check stands alone


def _size(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit >= MIB and limit % MIB == 0 else f"{limit // KIB} KiB"


def read_regular(path: str | os.PathLike[str], limit: int, what: str, *,
                 follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; InputError naming `what` otherwise.

    `what` names the input (`--api-key-file`, `--config targets.toml`); the messages add
    nothing from the path, so a key pasted where a path belongs is never echoed. Without
    `follow_symlinks`, a symbolic link (the last part of the path) is refused, not followed.
    """
    if not follow_symlinks and os.path.islink(path):  # the clear message; O_NOFOLLOW: no race
        raise InputError(f"{what}: a symbolic link; give the file it points to")
    try:
        fd = os.open(path, _OPEN_FLAGS | (0 if follow_symlinks else _NOFOLLOW))
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise InputError(f"{what}: a symbolic link; give the file it points to") from None
        raise InputError(f"{what}: cannot read ({exc.strerror or 'error'})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{what}: not a regular file ({_kind(info.st_mode)})")
        if _kernel_file(path):  # /proc and /sys files look regular, but some block for ever
            raise InputError(f"{what}: not a regular file (a kernel file)")
        if info.st_size > limit:
            raise InputError(f"{what}: larger than {_size(limit)}; is it the right file?")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:  # the file may grow after fstat: read at most limit + 1
            chunk = os.read(fd, limit + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise InputError(f"{what}: larger than {_size(limit)}; is it the right file?")
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(f"{what}: cannot read ({exc.strerror or 'error'})") from None
    finally:
        os.close(fd)


def _kernel_file(path: str | os.PathLike[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == top or real.startswith(top + "/") for top in KERNEL_TREES)


def require_regular(path: str | os.PathLike[str], limit: int, what: str) -> None:
    """Refuse what `read_regular` would refuse, before another library reads the file (a CA
    bundle: OpenSSL would read `/dev/zero` for ever)."""
    read_regular(path, limit, what)


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
             (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a pipe"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a file")


class NotRegularFile(OSError):
    """Where a file of ours belongs there is something else: a link, a pipe, a folder."""


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path`, mode 0600, atomically, and never through a link.

    The data goes to a new temporary file beside `path`, created with O_CREAT | O_EXCL |
    O_NOFOLLOW (so nothing planted there is opened), flushed to disk, then renamed over
    `path`: a reader sees the old file or the new one. An existing `path` must be a regular
    file (a symbolic link, pipe, folder or device raises NotRegularFile, an OSError); a
    rename replaces a name, it never writes through it.
    """
    target = Path(path)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(errno.EEXIST, f"not a regular file ({_kind(info.st_mode)})")
    fd, temporary = _create_beside(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(target.parent)


def _create_beside(target: Path) -> tuple[int, Path]:
    """A new, empty, 0600 file in `target`'s folder, under a name no one could guess."""
    for _ in range(100):
        temporary = target.parent / f".{target.name}.{os.urandom(6).hex()}.tmp"
        try:
            return os.open(temporary, _CREATE_FLAGS, PRIVATE), temporary
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name")


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX; Windows cannot open a folder)."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def open_private(path: str | os.PathLike[str]) -> TextIOWrapper:
    """Open `path` for appending UTF-8 text, created 0600, never through a symbolic link; an
    existing file we own is tightened to 0600."""
    # O_NONBLOCK: a FIFO without a reader is refused at once (ENXIO) instead of hanging.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOCTTY", 0)
                 | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_BINARY", 0), PRIVATE)
    try:
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077:
            tighten(fd)
        return open(fd, "a", encoding="utf-8", errors="backslashreplace")
    except BaseException:
        os.close(fd)
        raise


def tighten(fd: int) -> None:
    """Make an open file 0600 where modes exist (POSIX); a file not ours to change, and
    Windows (no os.fchmod before Python 3.13, ACLs instead of modes), are left as they are."""
    if sys.platform != "win32":
        with contextlib.suppress(OSError):
            os.fchmod(fd, PRIVATE)
