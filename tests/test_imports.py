"""Lazy imports: a path imports only what it uses (measured in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from assure_doctor.sandbox.stack import Sandbox
from tests.conftest import clean_env

# Runs cli.main in a fresh interpreter and writes the top-level modules it newly imported
# (the interpreter's own start-up imports are not the CLI's doing).
WRAPPER = """
import sys
out, argv = sys.argv[1], sys.argv[2:]
before = {name.split(".")[0] for name in sys.modules}
from assure_doctor import cli
try:
    cli.main(argv)
except SystemExit:
    pass
after = {name.split(".")[0] for name in sys.modules}
open(out, "w").write("\\n".join(sorted(after - before)))
"""
CHECK_NEVER = {"textual", "apscheduler", "prometheus_client"}
LIGHT_NEVER = CHECK_NEVER | {"httpx", "dns", "cryptography"}


def imported(tmp_path: Path, *argv: str) -> set[str]:
    out = tmp_path / "modules"
    subprocess.run([sys.executable, "-c", WRAPPER, str(out), *argv], env=clean_env(),
                   capture_output=True, timeout=60, check=False)
    modules = set(out.read_text().split())
    assert "assure_doctor" in modules  # the wrapper ran and saw the CLI's own imports
    return modules


def test_help_imports_no_heavy_library(tmp_path: Path) -> None:
    assert not imported(tmp_path, "--help") & LIGHT_NEVER
    assert not imported(tmp_path, "check", "--help") & LIGHT_NEVER


def test_an_argument_error_imports_no_heavy_library(tmp_path: Path) -> None:
    assert not imported(tmp_path, "check", "--stak", "x") & LIGHT_NEVER
    assert not imported(tmp_path, "check", "--url", "http://plain.example/") & LIGHT_NEVER


def test_check_imports_no_face(tmp_path: Path, healthy: Sandbox) -> None:
    modules = imported(tmp_path, "check", *healthy.check_args(), "--json")
    assert not modules & CHECK_NEVER
    assert {"httpcore", "dns", "cryptography"} <= modules  # it did run the check
    assert "httpx" not in modules  # the ping uses httpcore's pool directly
    assert healthy.traffic.keyed == 1


def test_the_engine_does_not_load_textual() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, assure_doctor.engine; "
         "print(sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'apscheduler'}))"],
        env=clean_env(), capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
