"""Stage 2: connect to every address DNS returned; tell refused, unreachable and silence apart."""

from __future__ import annotations

import asyncio
from typing import Any

from assure_doctor import logs
from assure_doctor.model import Outcome, Status
from assure_doctor.probes import Context, netclass
from assure_doctor.probes.connect import Attempt, attempt

NAME = "tcp"
log = logs.get(NAME)

# A connect that times out is ambiguous: the host may be unreachable (routing) or one port
# filtered (stealth firewall). A second port answering either way, even with a refusal, tells
# them apart. It starts only once the main attempt is slow, so healthy checks never send it.
_SIDE_PROBE_DELAY = 1.0
_KIND_ORDER = ("refused", "blocked_locally", "unreachable", "reset", "error", "timeout")


async def run(ctx: Context) -> Outcome:
    port = ctx.dial_port  # the proxy's port when a proxy applies
    addresses = list(ctx.evidence("dns").get("addresses") or [ctx.dial_host])
    timeout = ctx.options.timeout
    for address in addresses:
        log.info("Connecting to %s port %d", address, port)
    main = asyncio.gather(*(attempt(address, port, timeout, keep=True) for address in addresses))
    side = asyncio.create_task(_host_answers(addresses[0], port, timeout))
    attempts: list[Attempt] = await main
    side_result: bool | None = None
    if any(a.kind == "timeout" for a in attempts):
        side_result = await side
    else:
        side.cancel()

    evidence: dict[str, Any] = {
        "address": next((a.address for a in attempts if a.ok), addresses[0]),
        "port": port,
        "attempts": [a.to_dict() for a in attempts],
    }
    for a in attempts:
        log.info("%s port %d: %s in %.1f ms", a.address, port, a.error or "connected", a.ms)

    good = [a for a in attempts if a.ok]
    bad = [a for a in attempts if not a.ok]
    for spare in good[1:]:
        if spare.stream:
            spare.stream[1].transport.abort()
    if good and good[0].stream:
        ctx.hand_over(NAME, good[0].stream)  # the tls stage upgrades this very connection
    if good and not bad:
        return Outcome(Status.PASS, f"connected to {_where(good[0])} in {good[0].ms:.0f} ms",
                       evidence)
    worst = min(bad, key=lambda a: _KIND_ORDER.index(a.kind or "error"))
    kind = worst.kind or "error"
    facts = {
        "kind": kind,
        "default_port": port == 443,
        "host_answers": side_result,
        "address": worst.address,
        "error": worst.error,
    }
    if side_result is not None:
        evidence["other_port_answered"] = side_result
    condition = netclass.connect_condition(kind)
    if ctx.route.proxy is not None:
        condition = "proxy_connect_failed"
        facts.update(step="tcp", proxy=ctx.route.proxy.masked_url)
    failures = "; ".join(f"{_where(a)} {a.error}" for a in bad)
    if good:
        summary = f"connected to {_where(good[0])}, but {failures}"
        return Outcome(Status.WARN, summary, evidence, condition, facts)
    log.warning("TCP connect to %s port %d failed: %s", ctx.dial_host, port, failures)
    what = "the proxy" if ctx.route.proxy is not None else ""
    return Outcome(Status.FAIL, f"cannot connect{' to ' + what if what else ''}: {failures}",
                   evidence, condition, facts)


async def _host_answers(address: str, port: int, timeout: float) -> bool | None:
    """Whether the host answers on another port at all (refused counts: a reply came back)."""
    delay = min(_SIDE_PROBE_DELAY, timeout / 2)
    await asyncio.sleep(delay)
    other = 80 if port != 80 else 443
    result = await attempt(address, other, timeout - delay)
    log.info("Side probe %s port %d: %s", address, other, result.error or "connected")
    if result.ok or result.kind in ("refused", "reset"):
        return True
    return False if result.kind in ("timeout", "unreachable") else None


def _where(a: Attempt) -> str:
    host = f"[{a.address}]" if ":" in a.address else a.address
    return f"{host}:{a.port}"
