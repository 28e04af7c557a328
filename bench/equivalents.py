"""The mutants bench.mutation leaves out of its survival rate, each named with why.

EQUIVALENT: mutants that cannot change behaviour: the same result reached another way, a branch
no input takes (dead code: worth deleting), a bound one unit looser that no reader could tell.
UNREACHED: mutants that do change behaviour, but only where the fast in-process tests cannot go
(a route loopback lacks, a race no test can hold still, another OpenSSL's codes); the report
counts them as survivors in its strict rate.

Each is keyed by module, then (description, its source line as written, stripped): a line moved
by an edit elsewhere keeps its entries; a line edited loses them, and the report says so.
"""

from __future__ import annotations

# A cap on outside text or evidence one larger (a reason cut at 81 characters, not 80): still
# a cap, and no reader could tell. The tests pin that each cap holds, not its last unit.
_CAP = "a cap on outside text or evidence, one larger: as bounded, and no reader could tell"
_SPLIT = "a split's maxsplit one larger: the first part, the only one read, is the same"
_MS = ("a duration in ms 0.1% longer (x 1001 / 1000): no test can tell it from the timer's "
       "own jitter")
_MEMBERS = "the order of a tuple only asked whether it holds a value (`in`, `except`)"
_NEVER_COMPARED = "Lookups are never compared with each other: only their fields are read"
_KINDED = ("unreachable: every lookup without addresses carries its kind, so `or "
           "DnsKind.ERROR` is never taken")
_GRACE_CUT = ("a lookup cut by the grace exists only beside one with addresses, whose chain "
              "decides: the cut one's error and chain are never read")
_NO_CRL = ("unreachable: the strict context (certifi + bundle, OpenSSL) checks no CRL, so no "
           "handshake fails with code 23 (revoked)")
_VERIFIED = ("a handshake that completed has its ssl_object, a certificate (which certinfo "
             "reads) and a cipher: the other branch is never taken")
_NO_ANCHOR = ("only the machine's store verified: certifi (+ --ca-bundle), which the links are "
              "judged against, holds no anchor for this chain, so its anchor is None either way")
_READABLE = "certificates that were read once are read again: the None branch is never taken"
_UNDATED = ("only a dated answer's times are read, and every dated answer is made with both "
            "set")
_LAYOUT = ("the file's layout: JSON reads back the same however it is indented or ordered, and "
           "the check for a change renders both sides with the same to_json")
EQUIVALENT: dict[str, dict[tuple[str, str], str]] = {
    "assure_doctor/probes/dns.py": {
        ("drop compare=False from field()",
         "chain: tuple[CnameLink, ...] = field(default=(), compare=False)"): _NEVER_COMPARED,
        ("compare=False -> True",
         "chain: tuple[CnameLink, ...] = field(default=(), compare=False)"): _NEVER_COMPARED,
        ("outcome.found if isinstance(outcome.found, DnsF...: always the if branch",
         "return outcome.found if isinstance(outcome.found, DnsFound) else DnsFound()"):
            "every outcome _resolve returns carries a DnsFound",
        ("DnsKind.ERROR -> DnsKind.NODATA",
         "return _failure(ctx, host, failed.kind or DnsKind.ERROR, found)"): _KINDED,
        ("DnsKind.ERROR -> DnsKind.NODATA",
         'said = _DNS_SAID.get(detail.failed.kind or DnsKind.ERROR, "an error")'): _KINDED,
        ("DnsKind.ERROR -> DnsKind.NODATA", "kind = failed.kind or DnsKind.ERROR"): _KINDED,
        **dict.fromkeys(((f"swap DnsKind.{a} and DnsKind.{b}", "definitive = (DnsKind.NXDOMAIN, "
                          "DnsKind.NODATA, DnsKind.SERVFAIL, DnsKind.REFUSED,")
                         for a, b in (("NXDOMAIN", "NODATA"), ("NODATA", "SERVFAIL"),
                                      ("SERVFAIL", "REFUSED"), ("REFUSED", "TIMEOUT"))),
                        _MEMBERS),
        ("drop error='no answer within the grace period' from Lookup()",
         "return [found.get(rdtype) or Lookup(rdtype, kind=DnsKind.TIMEOUT,"): _GRACE_CUT,
        ("drop chain=cname.links(host, None, DnsKind.TIMEOUT) from Lookup()",
         "return [found.get(rdtype) or Lookup(rdtype, kind=DnsKind.TIMEOUT,"): _GRACE_CUT,
        ("DnsKind.TIMEOUT -> DnsKind.ERROR", "chain=cname.links(host, None, DnsKind.TIMEOUT))"):
            _GRACE_CUT,
        ("'system' -> 'systemX'", 'described = found.resolver or "system"'):
            "every DnsFound the stage makes names its resolver",
        ("pin is not None and found.hosts_file is not None: And -> Or",
         "if pin is not None and found.hosts_file is not None:"): "a pin exists exactly when "
        "the hosts file decided, and then hosts_file is set: both are true or both false",
        ("cname.broken_alias(found.chain) if kind in _BRO...: always the if branch",
         "broken = cname.broken_alias(found.chain) if kind in _BROKEN_ALIAS else None"):
            "only NXDOMAIN and NODATA answers carry a chain that can break past the name "
            "typed; other failures have no answer to read one from",
        ("None if ctx.options.resolvers else _system_stamp(): always the else branch",
         "None if ctx.options.resolvers else _system_stamp())"): "a --resolver resolver "
        "built again when resolv.conf changes is built the same",
        ("swap info.st_mtime_ns and info.st_size", "return info.st_mtime_ns, info.st_size"):
            "the order of a cache key's parts",
        ("'none' -> 'noneX'",
         'servers = ", ".join(str(ns) for ns in resolver.nameservers) or "none"'): "dnspython "
        "raises NoResolverConfiguration rather than build a resolver with no server",
        ("error[-1] if isinstance(error, tuple) else None: always the if branch",
         "response = error[-1] if isinstance(error, tuple) else None"): "dnspython lists "
        "each server's error as a tuple",
        ("200 -> 201", 'return str(exc).split(". ")[0][:200]'): _CAP,
    },
    "assure_doctor/probes/tls.py": {
        ("delete entry CertKind.REVOKED: 'the certificate has been revoked'", "_VERIFY_TEXT = {"):
            _NO_CRL,
        ("CertKind.REVOKED -> CertKind.OTHER",
         'CertKind.REVOKED: "the certificate has been revoked",'): _NO_CRL,
        ("64 -> 65", "_TRUST_SEEN_MAX = 64"): _CAP,
        ("drop presented=chain from _verified()", "outcome = _verified(ctx, stream, "
         "anchors.strict, only_system=False, presented=chain)"): "the same chain is read again "
        "from the same handshake",
        ("None if chain is None else _offline_verdicts(ct...: always the else branch",
         "offline = None if chain is None else _offline_verdicts(ctx, chain)"): _VERIFIED,
        ("outcome.found.certificate if isinstance(outcome...: always the if branch",
         "certificate = outcome.found.certificate if isinstance(outcome.found, TlsFound) "
         "else None"): _VERIFIED,
        ("swap target.host and target.port", "key = (anchors, target.host, target.port, "
         "certificate.sha256 if certificate else None)"): "the order of a cache key's parts",
        ("certificate.sha256 if certificate else None: always the if branch", "key = (anchors, "
         "target.host, target.port, certificate.sha256 if certificate else None)"): _VERIFIED,
        ("time.monotonic() - known[0] < _TRUST_TTL: Lt -> LtE",
         "if known is not None and time.monotonic() - known[0] < _TRUST_TTL:"): "two clock "
        "readings exactly 60.0 s apart: a float equality no run meets",
        ("outcome.found if isinstance(outcome.found, TlsF...: always the if branch",
         "found = outcome.found if isinstance(outcome.found, TlsFound) else TlsFound()"):
            "every outcome the stage makes carries a TlsFound",
        ("ssl_object.getpeercert(binary_form=True) if ssl...: always the if branch",
         "der = ssl_object.getpeercert(binary_form=True) if ssl_object else None"): _VERIFIED,
        ("ssl_object.version() if ssl_object else None: always the if branch",
         "version = ssl_object.version() if ssl_object else None"): _VERIFIED,
        ("ssl_object.cipher()[0] if ssl_object and ssl_ob...: always the if branch",
         "cipher = ssl_object.cipher()[0] if ssl_object and ssl_object.cipher() else None"):
            _VERIFIED,
        ("ssl_object and ssl_object.cipher(): And -> Or",
         "cipher = ssl_object.cipher()[0] if ssl_object and ssl_object.cipher() else None"):
            _VERIFIED,
        ("drop anchor=judged.anchor if judged else None from TlsFound()",
         "found = TlsFound(verified=True, certificate=info, address=ctx.address,"): _NO_ANCHOR,
        ("judged.anchor if judged else None: always the else branch",
         "anchor=judged.anchor if judged else None,"): _NO_ANCHOR,
        ("delete the branch `if info is None:`", "if info is None:"): _VERIFIED,
        ("Status.PASS -> Status.WARN", 'return Outcome(Status.PASS, f"verified {version}", '
         "found)"): _VERIFIED,
        ("days < CERT_WARN_DAYS: Lt -> LtE", "if days < CERT_WARN_DAYS:"): "days left measured "
        "to the microsecond equal to exactly 14: a float equality no run meets",
        ("delete the branch `if not presented:`", "if not presented:"): "certchain.links "
        "returns None for no certificate too",
        ("delete the branch `if not urls:`", "if not urls:"): "aia.issuers finds no URL "
        "either and returns None",
        ("fetched is not None and fetched.certificates: And -> Or",
         "if fetched is not None and fetched.certificates:"): "an AIA answer without "
        "certificates carries its error; the chain then completed is the presented one, which "
        "does not verify, and that error stays",
        ("missing.subject if missing else '?': always the if branch",
         'subject = missing.subject if missing else "?"'): _READABLE,
        ("relinked.anchor if relinked else None: always the if branch",
         "anchor=relinked.anchor if relinked else None,"): _READABLE,
        # (#2): the loop of _verifies_anywhere; _offline_verdicts's, written the same, comes first
    },
    "assure_doctor/probes/ping.py": {
        ("500 -> 501", "LOCATION_LIMIT = 500"): _CAP,
        ("300 -> 301", "ERROR_LIMIT = 300"): _CAP,
        ("20 -> 21", "HEADERS_KEPT = 20"): _CAP,
        ("200 -> 201", "HEADER_LIMIT = 200"): _CAP,
        ("0.0 -> 1.0", "sent_at: float = 0.0"): _UNDATED,
        ("0.0 -> 1.0", "date_at: float = 0.0"): _UNDATED,
        ("0.0 -> 1.0", "headers_at = 0.0"): "set when the head arrives, read only after it did",
        ("1 -> 2 (#2)", "for number in range(1, ctx.options.attempts + 1):"): "the loop "
        "breaks at the last attempt, before the range's end",
        ("swap ctx.found(ClockFound).connection and ctx.found(TlsFound).connection",
         "for connection in (ctx.found(ClockFound).connection, "
         "ctx.found(TlsFound).connection):"): "at most one of them is still live (the clock "
        "takes the tls stage's): the order they are tried in does not matter",
        ("1000 -> 1001", "return (time.perf_counter() - start) * 1000"): _MS,
        ("swap 401 and 403", "if status in (401, 403):"): _MEMBERS,
        ("swap 502 and 503", "gateway = status in (502, 503, 504)"): _MEMBERS,
        ("swap 503 and 504", "gateway = status in (502, 503, 504)"): _MEMBERS,
        ("seen.__cause__ or seen.__context__: Or -> And",
         "seen = seen.__cause__ or seen.__context__"): "below httpcore's error the exceptions "
        "are chained with `from` inside the handler that caught them, so both names hold the "
        "same exception",
    },
    "assure_doctor/probes/tcp.py": {
        ("drop default=0 from max()", "longest = max((len(found) for found in lists), "
         "default=0)"): "never called with no address (an empty list is refused before)",
        ("default=0 -> 1", "longest = max((len(found) for found in lists), default=0)"):
            "with no list, one empty group flattens to no address, as none does",
        ("1000 -> 1001", "ms = (time.perf_counter() - start) * 1000"): _MS,
        ("1000 -> 1001", "self.done[index] = Attempt(address, self.port, "
         "(time.perf_counter() - start) * 1000,"): _MS,
        ("2 -> 3", "delay = min(SIDE_PROBE_DELAY, self.timeout / 2)"): "the side probe starting "
        "a sixth of the timeout sooner finds the same, within the same stage time",
        **dict.fromkeys([*((description, "(a.address for a in self.done if a is not None and "
                            "a.kind is ConnectKind.TIMEOUT),")
                           for description in (
                               "a is not None and a.kind is ConnectKind.TIMEOUT: And -> Or",
                               "a.kind is ConnectKind.TIMEOUT: Is -> IsNot",
                               "a is not None: IsNot -> Is",
                               "ConnectKind.TIMEOUT -> ConnectKind.REFUSED")),
                         ("delete the branch `if slow is None:`", "if slow is None:")],
                        "unreachable: when the side probe wakes (after half the timeout, 1 s "
                        "at most) an attempt that will time out is still pending (each lasts "
                        "its timeout, or a winner's time plus 1 s), and with none pending the "
                        "race has ended and cancelled the probe in the same loop turn"),
        ("swap ConnectKind.REFUSED and ConnectKind.RESET", "if result.ok or result.kind in "
         "(ConnectKind.REFUSED, ConnectKind.RESET):"): _MEMBERS,
        ("swap ConnectKind.TIMEOUT and ConnectKind.UNREACHABLE", "return False if result.kind "
         "in (ConnectKind.TIMEOUT, ConnectKind.UNREACHABLE) else None"): _MEMBERS,
        **dict.fromkeys(((description, 'return float("inf") if when is None else when')
                         for description in (
                             "float('inf') if when is None else when: always the if branch",
                             "float('inf') if when is None else when: always the else branch",
                             "when is None: Is -> IsNot", "'inf' -> 'infX'")),
                        "every scope is an asyncio.timeout with a deadline: when() is never "
                        "None"),
        ("ConnectKind.ERROR -> ConnectKind.TIMEOUT",
         "return ConnectKind(a.kind or ConnectKind.ERROR)"): "unreachable: every failed "
        "attempt carries its kind",
    },
    "assure_doctor/probes/clock.py": {
        ("65536 -> 65537", "HEAD_LIMIT = 65536  # the answer's head"): _CAP,
        ("100 -> 101", 'sanitize.text(date or "none", 100))'): _CAP,
        ("300 -> 301", "error = sanitize.text(error, 300)"): _CAP,
    },
    "assure_doctor/probes/proxy.py": {
        ("16384 -> 16385", "BODY_LIMIT = 16384  # enough of an error page to find its <title>"):
            _CAP,
        ("20 -> 21", "MAX_SCHEMES = 20  # Proxy-Authenticate schemes kept in the evidence"):
            _CAP,
        ("1000 -> 1001", "ms = (time.perf_counter() - start) * 1000"): _MS,
        ("ProxyKind.ERROR -> ProxyKind.ANSWERABLE",
         'facts["kind"] = answer.kind or ProxyKind.ERROR'): "unreachable: every answer "
        "without a status that tunnel() returns names its kind",
        ("1 -> 2", 'first = client.sample.split(b"\\r\\n", 1)[0].decode("latin-1")'): _SPLIT,
        ("80 -> 81", "answer = Answer(head.status, sanitize.text(head.reason, 80),"): _CAP,
        ("len(body) < BODY_LIMIT: Lt -> LtE",
         "while len(body) < BODY_LIMIT and _TITLE.search(body) is None:"): "at exactly "
        "BODY_LIMIT bytes one more piece is read, then cut off: the title is looked for in "
        "the same BODY_LIMIT bytes",
        ("1 -> 2", 'first = part.strip().split(" ", 1)[0]'): _SPLIT,
        ("40 -> 41", "schemes.append(sanitize.text(first, 40))"): _CAP,
        ("120 -> 121", "return sanitize.text(title, 120) or None"): _CAP,
    },
    "assure_doctor/monitor/ledger.py": {
        ("256 -> 257", "MAX_BODY = 256 * 1024  # one row per spender of this key: a few hundred "
         "bytes each"): _CAP,
        ("1024 -> 1025", "MAX_BODY = 256 * 1024  # one row per spender of this key: a few "
         "hundred bytes each"): _CAP,
        ("64 -> 65", 'text = handle.read(64).decode("ascii", "replace").strip()'): _CAP,
        ("drop encoding='ascii' from ()", 'with os.fdopen(fd, "w", encoding="ascii") as handle:'):
            "16 hex digits and a newline are the same bytes in any encoding Python's text "
            "files default to (UTF-8, or the locale's, ASCII-compatible)",
        ("500 -> 501", "500))"): _CAP,
        ("drop timeout=self.timeout from ()", "httpx.AsyncClient(trust_env=False, "
         "timeout=self.timeout, verify=self._tls,"): "asyncio.timeout(self.timeout) around the "
        "whole query ends it first: httpx's own (5 s by default) is never reached",
        ("drop follow_redirects=False from ()", "httpx.AsyncClient(trust_env=False, "
         "timeout=self.timeout, verify=self._tls,"): "httpx follows no redirect unless told "
        "to: False is its default",
        ("swap httpx.HTTPError and httpx.InvalidURL",
         "except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:"): _MEMBERS,
        ("200 -> 201",
         'raise LedgerError(sanitize.text(f"{type(exc).__name__}: {exc}", 200)) from None'): _CAP,
        ("1000 -> 1001", "(time.monotonic() - started) * 1000, len(body))"): _MS,
        ("500 -> 501", 'sanitize.text(body.decode("utf-8", "replace"), 500))'): _CAP,
        ("swap b'[' and b'{'", 'depth += 1 if bracket.group() in (b"[", b"{") else -1'):
            _MEMBERS,
    },
    "assure_doctor/monitor/budget.py": {
        ("10 -> 11", "_ALL_SPENT = 10**9"): "any count at or above every daily budget reads "
        "as all spent (--ping-budget is at most 10,000): 11**9 does too",
        ("9 -> 10", "_ALL_SPENT = 10**9"): "any count at or above every daily budget reads as "
        "all spent (--ping-budget is at most 10,000): 10**10 does too",
        ("drop indent=1 from ()", "return json.dumps(document, indent=1, sort_keys=True).encode()"):
            _LAYOUT,
        ("indent=1 -> 2", "return json.dumps(document, indent=1, sort_keys=True).encode()"):
            _LAYOUT,
        ("drop sort_keys=True from ()",
         "return json.dumps(document, indent=1, sort_keys=True).encode()"): _LAYOUT,
        ("sort_keys=True -> False",
         "return json.dumps(document, indent=1, sort_keys=True).encode()"): _LAYOUT,
        ("unused <= 0: LtE -> Lt", "if unused <= 0:"): "a refund of 0 then goes on to subtract "
        "nothing: every count stays as it was",
        ("0 -> 1", "spent = state.spent.get(key_id, 0)"): "unused is at least 1 there, so "
        "max(0, 1 - unused) is 0, as max(0, 0 - unused) is",
    },
}

_NEEDS_ROUTE = ("an address that is unreachable, or a connect this machine's own firewall "
                "blocks: loopback has neither (tests/test_netns.py makes them, as root, in "
                "namespaces, for whole checks)")
UNREACHED: dict[str, dict[tuple[str, str], str]] = {
    "assure_doctor/probes/tls.py": {
        **dict.fromkeys(((description, "_ISSUER_NOT_FOUND = frozenset({2, 20, 21})")
                         for description in ("delete 2", "delete 21", "2 -> 3", "21 -> 22")),
                        "OpenSSL 3 reports 20 for every issuer not found in our handshakes "
                        "(leaf only, leaf and intermediate); 2 and 21 are the same fault as "
                        "other chains and versions report it, which no handshake here makes"),
    },
    "assure_doctor/probes/tcp.py": {
        **dict.fromkeys(((description, "if result.ok or result.kind in (ConnectKind.REFUSED, "
                          "ConnectKind.RESET):")
                         for description in ("delete ConnectKind.RESET",
                                             "ConnectKind.RESET -> ConnectKind.ERROR")),
                        "a side connection reset while it is being made: on loopback the "
                        "connect completes before any reset, and no test can hold the race"),
        ("False if result.kind in (ConnectKind.TIMEOUT, C...: always the if branch",
         "return False if result.kind in (ConnectKind.TIMEOUT, ConnectKind.UNREACHABLE) else "
         "None"): _NEEDS_ROUTE,
        ("ConnectKind.UNREACHABLE -> ConnectKind.RESET", "return False if result.kind in "
         "(ConnectKind.TIMEOUT, ConnectKind.UNREACHABLE) else None"): _NEEDS_ROUTE,
        ("delete ConnectKind.UNREACHABLE", "return False if result.kind in "
         "(ConnectKind.TIMEOUT, ConnectKind.UNREACHABLE) else None"): _NEEDS_ROUTE,
        ("delete entry ConnectKind.RESET: 'was reset'", '_VERBS = {ConnectKind.TIMEOUT: '
         '"timed out", ConnectKind.REFUSED: "was refused",'): "a family whose every connect is "
        "reset while being made: a race tests/test_reset_after_accept.py drives for one "
        "address only, by blocking the loop",
        ("ConnectKind.BLOCKED_LOCALLY -> ConnectKind.UNREACHABLE",
         'ConnectKind.BLOCKED_LOCALLY: "is blocked on this machine"}'): _NEEDS_ROUTE,
        ("delete entry ConnectKind.UNREACHABLE: 'is unreachable'", '_VERBS = {'
         'ConnectKind.TIMEOUT: "timed out", ConnectKind.REFUSED: "was refused",'): _NEEDS_ROUTE,
        ("delete entry ConnectKind.BLOCKED_LOCALLY: 'is blocked on this machine'", '_VERBS = {'
         'ConnectKind.TIMEOUT: "timed out", ConnectKind.REFUSED: "was refused",'): _NEEDS_ROUTE,
        ("ConnectKind.UNREACHABLE -> ConnectKind.RESET", 'ConnectKind.UNREACHABLE: "is '
         'unreachable", ConnectKind.RESET: "was reset",'): _NEEDS_ROUTE,
    },
    "assure_doctor/probes/ping.py": {
        **dict.fromkeys(((description, "connect = netclass.connect_kind(root) if root else "
                          "ConnectKind.ERROR")
                         for description in (
                             "netclass.connect_kind(root) if root else Connec...: always the "
                             "if branch", "ConnectKind.ERROR -> ConnectKind.TIMEOUT")),
                        "a connect error without a cause comes only from a fresh connection "
                        "the server closes between its handshake and its first use: a race "
                        "no test can hold still"),
    },
}
