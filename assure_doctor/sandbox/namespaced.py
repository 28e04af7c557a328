"""What runs inside an isolated scenario's namespaces: `serve` its sandbox until standard
input ends, or its `demo`. Started by `isolation` (`Remote`, `demo`) with
`python -m assure_doctor.sandbox.namespaced serve|demo SCENARIO`."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from assure_doctor.sandbox.demo import diagnose
from assure_doctor.sandbox.isolation import enter
from assure_doctor.sandbox.scenarios import SCENARIOS
from assure_doctor.sandbox.stack import Sandbox


def _serve(name: str) -> int:
    """Serve the scenario until standard input ends; the first line out says where."""
    with Sandbox(name) as sandbox:
        print(json.dumps({"url": sandbox.url, "port": sandbox.port, "ipv6": sandbox.ipv6,
                          "ca_bundle": str(sandbox.ca_bundle),
                          "key_file": str(sandbox.key_file)}), flush=True)
        sys.stdin.buffer.read()
    return 0


def main(argv: list[str]) -> int:
    mode, name, *options = argv
    scenario = SCENARIOS[name]
    with tempfile.TemporaryDirectory(prefix="assure-namespace-") as workdir:
        enter(scenario, Path(workdir))
        if mode == "serve":
            return _serve(name)
        return 0 if diagnose(name, "--colour" in options) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
