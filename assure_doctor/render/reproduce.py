"""`reproduce.txt`: commands that repeat the check anywhere, pinned to what the check used.

The ping as curl, PowerShell and Python (httpx), sent to the address and with the SNI the check
used; then keyless commands for each network stage. The key is never written: the commands
read `$ASSURE_API_KEY`, `$env:ASSURE_API_KEY` or `os.environ`. Every value is quoted for its
shell, so a hostile value cannot run as a command.
"""

from __future__ import annotations

import shlex
from urllib.parse import urlsplit, urlunsplit

from assure_doctor import apikey, sanitize
from assure_doctor.addresses import bracketed, is_address
from assure_doctor.model import Report
from assure_doctor.options import CheckOptions
from assure_doctor.target import Target

CURL_STATUS = "HTTP %{http_code}\\n"


def render(report: Report, options: CheckOptions) -> str:
    target = report.target
    address = _address(report)
    proxy = _proxy_url(report)
    lines = [
        f"# Reproduce the assure-doctor check of {target.url}",
        f"# Run at {report.started_at}; the key is read from {apikey.ENV_VAR}, never written "
        "here.",
        f"# Pinned to the address the check used ({address or 'the system resolver'}) and the "
        f"TLS server name {target.host}.",
        "",
        "## The ping: curl (Linux, macOS; curl.exe on Windows 10 and later)",
        curl(target, options, address, proxy),
        "",
        "## The ping: Windows PowerShell (as in the guide; uses the system's DNS and trust)",
        powershell(target, proxy),
        "",
        "## The ping: Python with httpx (pip install httpx)",
        "python3 - <<'EOF'",
        python(target, options, address, proxy),
        "EOF",
        "",
        "## The network stages, without the key",
        *network(report, options, address),
        "",
    ]
    return sanitize.text("\n".join(lines), None, keep_newlines=True)


def _address(report: Report) -> str | None:
    tcp = report.stage("tcp")
    address = tcp.evidence.get("address") if tcp else None
    return str(address) if address and is_address(str(address)) else None


def _proxy_url(report: Report) -> str | None:
    """The proxy the check went through, without credentials (the user has them)."""
    stage = report.stage("proxy")
    shown = stage.evidence.get("proxy") if stage else None
    if not shown:
        return None
    parts = urlsplit(str(shown))
    host = parts.hostname or ""
    netloc = bracketed(host)
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme or "http", netloc, "", "", ""))


def curl(target: Target, options: CheckOptions, address: str | None, proxy: str | None) -> str:
    args = ["curl", "--silent", "--show-error", "--max-time", f"{options.timeout:g}",
            "--write-out", CURL_STATUS]
    if address and not target.host_is_address and proxy is None:
        args += ["--resolve", f"{target.host}:{target.port}:{bracketed(address)}"]
    if options.ca_bundle:
        args += ["--cacert", options.ca_bundle]
    if proxy:
        args += ["--proxy", proxy]
    quoted = shlex.join(args)
    # The one unquoted part: the shell must expand the variable (a fixed, known string).
    return f'{quoted} -H "x-api-key: ${apikey.ENV_VAR}" {shlex.quote(target.url)}'


def _ps(value: str) -> str:
    """A PowerShell single-quoted string: nothing inside is expanded; ' is doubled."""
    return "'" + value.replace("'", "''") + "'"


def powershell(target: Target, proxy: str | None) -> str:
    command = (f"Invoke-WebRequest -UseBasicParsing -Uri {_ps(target.url)} "
               f"-Headers @{{'x-api-key' = $env:{apikey.ENV_VAR}}}")
    if proxy:
        command += f" -Proxy {_ps(proxy)} -ProxyUseDefaultCredentials"
    return command


def python(target: Target, options: CheckOptions, address: str | None, proxy: str | None
           ) -> str:
    """A script that sends the ping to the same address with the same SNI and trust."""
    pinned = address if address and not target.host_is_address and proxy is None else None
    port = "" if target.port == 443 else f":{target.port}"
    url = f"https://{bracketed(pinned or target.host)}{port}{target.path}"
    lines = [
        "import os, ssl",
        "import certifi, httpx",
        "",
        "trust = ssl.create_default_context(cafile=certifi.where())",
    ]
    if options.ca_bundle:
        lines.append(f"trust.load_verify_locations({options.ca_bundle!r})")
    lines += [
        f"headers = {{'Host': {target.host_header!r}, "
        f"'x-api-key': os.environ[{apikey.ENV_VAR!r}]}}",
        f"with httpx.Client(verify=trust, timeout={options.timeout:g}, "
        f"proxy={proxy!r}, trust_env=False) as client:",
        f"    r = client.get({url!r}, headers=headers,",
        f"                   extensions={{'sni_hostname': {target.host!r}}})",
        "print(f'StatusCode={r.status_code}')",
        "print(f'Body={r.text[:300]!r}')",
    ]
    return "\n".join(lines)


def network(report: Report, options: CheckOptions, address: str | None) -> list[str]:
    """dig / Resolve-DnsName, Test-NetConnection, openssl s_client: no key needed."""
    target = report.target
    host, port = target.host, str(target.port)
    lines: list[str] = []
    if not target.host_is_address:
        resolver = options.resolvers[0] if options.resolvers else None
        server = ["@" + resolver.host, "-p", str(resolver.port)] if resolver else []
        lines += ["# DNS"]
        lines += [shlex.join(["dig", *server, host, kind]) for kind in ("A", "AAAA")]
        ps_server = f" -Server {_ps(resolver.host)}" if resolver else ""
        lines += [f"Resolve-DnsName -Name {_ps(host)} -Type {kind}{ps_server}"
                  for kind in ("A", "AAAA")]
        if resolver and resolver.port != 53:
            lines.append("# (Resolve-DnsName always asks port 53)")
    pinned = address or host
    lines += ["# TCP", f"Test-NetConnection {_ps(pinned)} -Port {port}",
              shlex.join(["nc", "-vz", "-w", f"{options.timeout:g}", pinned, port])]
    openssl = ["openssl", "s_client", "-connect", f"{bracketed(pinned)}:{port}", "-brief"]
    if not target.host_is_address:
        openssl += ["-servername", host]
    if options.ca_bundle:
        openssl += ["-CAfile", options.ca_bundle]
    lines += ["# TLS", shlex.join(openssl) + " </dev/null"]
    return lines
