"""Where per-user state lives (the monitor's budget and last results, every face's path
history), per platform."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path, PureWindowsPath

from assure_doctor.errors import InputError, shown

APP = "assure-doctor"
# Paths where a state directory cannot sensibly live (kernel views and devices).
_NOT_STATE = ("/proc", "/sys", "/dev")


def default_state_dir() -> Path:
    """This machine's per-user state directory (`state_dir_for` this platform)."""
    return state_dir_for(sys.platform, os.environ)


def state_dir_for(platform: str, env: Mapping[str, str]) -> Path:
    """Where `platform` keeps per-user state: %LOCALAPPDATA% on Windows, ~/Library/
    Application Support on macOS, $XDG_STATE_HOME (~/.local/state) elsewhere. Pure."""
    if platform == "win32":
        base = env.get("LOCALAPPDATA") or str(PureWindowsPath(Path.home(), "AppData", "Local"))
        return Path(str(PureWindowsPath(base, APP)))
    if platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP
    return Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / APP


def state_directory(text: str | os.PathLike[str], name: str) -> Path:
    """A directory we may keep state in (created 0700 if missing); InputError naming `name`."""
    if not str(text).strip():
        raise InputError(f"{name} '': give a directory")
    path = Path(text).expanduser()
    real = os.path.realpath(path)
    kernel = next((top for top in _NOT_STATE if real == top or real.startswith(top + "/")), None)
    if kernel is not None:
        raise InputError(f"{name} {shown(text)}: not a place for state (it is under {kernel})")
    if path.exists() and not path.is_dir():
        raise InputError(f"{name} {shown(text)}: exists and is not a directory")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{name} {shown(text)}: cannot create it ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{name} {shown(text)}: not writable")
    return path
