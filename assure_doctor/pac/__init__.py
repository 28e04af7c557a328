"""Proxy auto-configuration (PAC): which proxy the integration's HTTP stack would take.

    location  where a PAC is: `from_flag("--pac" value)`, `PacLocation`, `PacSource`
    system    the system's PAC settings: `read()` → `SystemPac` (Windows, macOS; none on Linux)
    settings  the pure readers behind `system` (registry values, scutil output, WPAD URLs)
    fetch     `fetch(location, timeout=, ssl_context=)` → `PacScript`, bounded in time and size
    evaluate  `evaluate(script, url, timeout=)` → `PacDecision`, in a process killed at the
              deadline
    rules     `PacDecision`, `PacRoute`, `RouteKind`, `parse_rule`: the returned string, read
    errors    `PacError` → `PacFetchError`, `PacEvalError` (and their `...Timeout`s)

    decide    `decide(locations, url, ...)`: the first location that can be fetched, evaluated

The package imports nothing itself: each module is imported by name, so loading one never
loads the others (httpx and the evaluator only when used).
"""
