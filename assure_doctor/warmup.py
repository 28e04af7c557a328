"""Import up front what the first check would import lazily, so stage times measure the network.

Without it the first ping includes importing anyio, httpcore and h11 (~150 ms), and the first
DNS stage dnspython's asyncio backend: the TUI showed DNS 130 ms against 5 ms in `check`.
"""

from __future__ import annotations

import importlib

LAZY = ("anyio._backends._asyncio", "httpcore", "h11", "dns._asyncio_backend",
        "dns.rdtypes.IN.A", "dns.rdtypes.IN.AAAA")


def warm() -> None:
    for name in LAZY:
        importlib.import_module(name)
