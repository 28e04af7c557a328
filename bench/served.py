"""A sandbox in its own process, for benchmarks: it must not compete with us for the GIL."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from assure_doctor import trust
from assure_doctor.options import CheckOptions
from assure_doctor.target import parse_resolver


@dataclass(frozen=True)
class Served:
    """A sandbox in its own process, so that it does not compete with us for the GIL."""

    url: str
    port: int
    resolver: str
    ca_bundle: str
    key_file: str

    @property
    def check_args(self) -> list[str]:
        return ["--url", self.url, "--resolver", self.resolver, "--ca-bundle", self.ca_bundle,
                "--api-key-file", self.key_file]

    def options(self, **extra: float) -> CheckOptions:
        return CheckOptions(resolvers=(parse_resolver(self.resolver),),
                            trust=trust.load(self.ca_bundle), **extra)  # type: ignore[arg-type]


@contextlib.contextmanager
def served(scenario: str) -> Iterator[Served]:
    process = subprocess.Popen([sys.executable, "-m", "assure_doctor", "sandbox",
                                "--scenario", scenario], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = next(line for line in process.stdout if "assure-doctor check" in line)
        args = [arg for arg in line.split()[2:] if arg != "--no-proxy"]  # the one bare flag
        value = dict(zip(args[::2], args[1::2], strict=True))
        url = value["--url"]
        yield Served(url, int(url.split(":")[2].split("/")[0]), value["--resolver"],
                     value["--ca-bundle"], value["--api-key-file"])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
