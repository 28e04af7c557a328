"""Choosing the proxy (curl's rules), reading a CONNECT answer, naming inspection products."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from assure_doctor import redact
from assure_doctor.errors import InputError
from assure_doctor.pac.location import PacLocation, PacSource, from_flag
from assure_doctor.probes import inspection
from assure_doctor.probes.proxy import auth_schemes, page_title
from assure_doctor.proxyconfig import Source, bypassed, load, parse
from assure_doctor.proxyconfig import system_pac as system_pac_of_this_machine

HOST, PORT = "api.uk2.sheassure.net", 443


def route_of(environ: dict[str, str], flag: str | None = None, no_proxy: bool = False,
             system: dict[str, str] | None = None) -> tuple[str | None, str]:
    route = load(flag, no_proxy, environ, system).route(HOST, PORT)
    return (route.proxy.masked_url if route.proxy else None), route.source


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, (None, "none")),
    ({"HTTPS_PROXY": "http://upper:3128"}, ("http://upper:3128", "HTTPS_PROXY")),
    ({"https_proxy": "http://lower:3128", "HTTPS_PROXY": "http://upper:3128"},
     ("http://lower:3128", "https_proxy")),  # curl: lower case wins
    ({"ALL_PROXY": "http://all:8080"}, ("http://all:8080", "ALL_PROXY")),
    ({"all_proxy": "http://a:1", "HTTPS_PROXY": "http://h:2"}, ("http://h:2", "HTTPS_PROXY")),
    ({"http_proxy": "http://plain:80"}, (None, "none")),  # not for an https URL
    ({"HTTPS_PROXY": "proxy.corp:8080"}, ("http://proxy.corp:8080", "HTTPS_PROXY")),
    ({"HTTPS_PROXY": "http://proxy.corp"}, ("http://proxy.corp:1080", "HTTPS_PROXY")),
    ({"HTTPS_PROXY": "  "}, (None, "none")),
])
def test_environment_follows_curls_precedence(environ: dict[str, str],
                                               expected: tuple[str | None, str]) -> None:
    assert route_of(environ) == expected


def test_flag_overrides_environment_and_no_proxy() -> None:
    environ = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "sheassure.net"}
    assert route_of(environ, flag="http://flag:2") == ("http://flag:2", "--proxy")
    assert route_of(environ, no_proxy=True) == (None, "--no-proxy")
    assert route_of(environ) == (None, "NO_PROXY")
    with pytest.raises(InputError, match="one of them"):
        load("http://flag:2", True, {})


def test_system_settings_come_after_the_environment() -> None:
    system = {"https": "http://sys:8080", "no": ""}
    assert route_of({}, system=system) == ("http://sys:8080", "system")
    assert route_of({"HTTPS_PROXY": "http://env:1"}, system=system) == ("http://env:1",
                                                                        "HTTPS_PROXY")
    assert route_of({}, system={"https": "http://sys:8080", "no": "*.sheassure.net"}) == (
        None, Source.SYSTEM)


# --- a proxy auto-configuration script (PAC) in the precedence -------------------------------
FLAG_PAC = from_flag("http://pac.corp.example/proxy.pac")
WINDOWS_PAC = PacLocation(PacSource.WINDOWS, "http://wpad.corp.example/auto.pac")


class SystemPac:
    """The system's PAC settings, counting the reads (they are I/O on Windows and macOS)."""

    def __init__(self, *locations: PacLocation) -> None:
        self.locations = locations
        self.reads = 0

    def __call__(self) -> tuple[PacLocation, ...]:
        self.reads += 1
        return self.locations


def test_an_explicit_proxy_wins_then_pac_then_the_environment_then_the_systems_pac() -> None:
    environ = {"HTTPS_PROXY": "http://env:1"}
    system = SystemPac(WINDOWS_PAC)
    assert load("http://flag:2", False, environ, None, None, system).pac == ()
    rules = load(None, False, environ, None, FLAG_PAC, system)
    assert rules.pac == (FLAG_PAC,) and rules.proxy is None and rules.pac_flag == FLAG_PAC
    rules = load(None, False, environ, None, None, system)
    assert rules.pac == () and rules.proxy is not None and rules.proxy.source == "HTTPS_PROXY"
    assert system.reads == 0  # decided before the system's settings were read
    rules = load(None, False, {}, None, None, system)
    assert rules.pac == (WINDOWS_PAC,) and rules.pac_flag is None
    assert rules.route(HOST, PORT).proxy is None  # no PAC there after all: direct


def test_the_systems_static_proxy_is_the_route_when_its_pac_is_not_there() -> None:
    rules = load(None, False, {}, {"https": "http://sys:8080"}, None, SystemPac(WINDOWS_PAC))
    assert rules.pac == (WINDOWS_PAC,)
    route = rules.route(HOST, PORT)
    assert route.proxy is not None and route.proxy.masked_url == "http://sys:8080"


def test_pac_with_proxy_or_no_proxy_is_refused() -> None:
    with pytest.raises(InputError, match="--proxy and --pac: give one of them"):
        load("http://flag:2", False, {}, pac=FLAG_PAC)
    with pytest.raises(InputError, match="--pac and --no-proxy: give one of them"):
        load(None, True, {}, pac=FLAG_PAC)
    assert load(None, True, {}, None, None, SystemPac(WINDOWS_PAC)).forced_direct


def test_no_system_pac_is_read_where_there_is_none() -> None:
    if sys.platform in ("win32", "darwin"):
        pytest.skip("this system has PAC settings of its own")
    assert system_pac_of_this_machine() == ()


@pytest.mark.parametrize(("no_proxy", "host", "port", "expected"), [
    ("*", HOST, 443, True),
    ("sheassure.net", HOST, 443, True),
    (".sheassure.net", HOST, 443, True),
    ("*.sheassure.net", HOST, 443, True),
    ("assure.net", HOST, 443, False),  # a suffix must end on a label boundary
    ("example.com, api.uk2.sheassure.net", HOST, 443, True),
    ("example.com api.uk2.sheassure.net", HOST, 443, True),
    ("API.UK2.SHEASSURE.NET.", HOST, 443, True),
    ("sheassure.net:8443", HOST, 443, False),
    ("sheassure.net:443", HOST, 443, True),
    ("10.0.0.0/8", "10.1.2.3", 443, True),
    ("10.0.0.1", "10.0.0.2", 443, False),
    ("::1", "::1", 443, True),
    ("[::1]:443", "::1", 443, True),
    ("fd00::/8", "fd12::5", 443, True),
    ("10.0.0.0/8", HOST, 443, False),
    ("", HOST, 443, False),
])
def test_no_proxy_matching(no_proxy: str, host: str, port: int, expected: bool) -> None:
    assert bypassed(host, port, no_proxy) is expected


@pytest.mark.parametrize(("url", "message"), [
    ("https://proxy:443", "only http://"),
    ("socks5://proxy:1080", "only http://"),
    ("http://", "no host"),
    ("http://proxy:99999", "port is not a number"),
    ("http://proxy:٣١٢٨", "port is not a number"),
    ("http://proxy:8080/path", "nothing more"),
    ("", "empty"),
])
def test_bad_proxy_urls_are_input_errors(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse(url, "--proxy")


def test_credentials_are_masked_and_registered_as_secrets() -> None:
    proxy = parse("http://svc%40corp:p%3Ass-W0rd-xyz@proxy.corp:8080", "--proxy")
    assert proxy.username == "svc@corp" and proxy.password == "p:ss-W0rd-xyz"
    assert proxy.masked_url == "http://svc@corp:****@proxy.corp:8080"
    assert proxy.authorization == "Basic c3ZjQGNvcnA6cDpzcy1XMHJkLXh5eg=="
    assert "p:ss-W0rd-xyz" not in repr(proxy)
    leaked = f"error p:ss-W0rd-xyz {proxy.authorization} p%3Ass-W0rd-xyz"
    assert "W0rd" not in redact.scrub(leaked)
    bad = "http://user:s3cret-Word@proxy:notaport"
    with pytest.raises(InputError) as caught:
        parse(bad, "HTTPS_PROXY")
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(("value", "schemes"), [
    ('Basic realm="corp"', ["Basic"]),
    ('Digest realm="x", nonce="a,b", qop="auth", Basic realm="y"', ["Digest", "Basic"]),
    ("Negotiate", ["Negotiate"]),
    ("", []),
])
def test_auth_schemes(value: str, schemes: list[str]) -> None:
    assert auth_schemes(value) == schemes


def test_page_title_is_unescaped_and_sanitised() -> None:
    body = b"<HTML><TITLE lang=en>\n Access &amp; denied\x1b[31m </title>"
    assert page_title(body) == "Access & denied\\x1b[31m"
    assert page_title(b"<html>no title</html>") is None


@pytest.mark.parametrize(("issuer", "product"), [
    ("CN=Zscaler Intermediate Root CA (zscaler.net),O=Zscaler Inc.", "Zscaler"),
    ("CN=ca.goskope.com,O=Netskope", "Netskope"),
    ("CN=Palo Alto Decryption Trusted CA", "Palo Alto Networks"),
    ("CN=FortiGate CA,O=Fortinet", "Fortinet FortiGate"),
    ("CN=Cisco Umbrella Secondary SubCA", "Cisco Umbrella"),
    ("CN=Blue Coat ProxySG", "Blue Coat / Symantec"),
    ("CN=Sophos SSL CA_C1234", "Sophos"),
    ("CN=Check Point Outbound Inspection CA", "Check Point"),
    ("CN=Forcepoint Cloud CA", "Forcepoint"),
    ("CN=McAfee Web Gateway", "Skyhigh / McAfee Web Gateway"),
    ("CN=Kaspersky Anti-Virus Personal Root Certificate", "Kaspersky"),
    ("CN=ESET SSL Filter CA", "ESET"),
    ("CN=Avast Web/Mail Shield Root", "Avast / AVG"),
    ("CN=mitmproxy,O=mitmproxy", "mitmproxy"),
    ("CN=R11,O=Let's Encrypt", None),
    ("CN=Reset Corp CA", None),  # "eset" inside a word is not ESET
    (None, None),
])
def test_inspection_products_are_named_from_the_issuer(issuer: str | None,
                                                       product: str | None) -> None:
    assert inspection.product(issuer) == product


def test_other_hosts_follow_the_route_a_pac_chose_for_the_api() -> None:
    """An AIA URL's host is reached the way the PAC's route goes, not the settings' own way."""
    from assure_doctor.options import CheckOptions
    from assure_doctor.probes.results import PacChoice
    from assure_doctor.probes.stage import Context
    from assure_doctor.proxyconfig import Proxy, ProxyRules, Route
    from assure_doctor.target import from_url

    rules = ProxyRules(parse("http://static:8080", Source.SYSTEM), pac=(WINDOWS_PAC,))
    ctx = Context(from_url(f"https://{HOST}/v1/ping"), CheckOptions(proxy=rules), None)
    assert ctx.route_for("aia.example", 80).proxy == rules.proxy  # no PAC has chosen
    chosen = Route(Proxy("pac-proxy", 3128, Source.PAC), Source.PAC, "the PAC chose it")
    ctx.route, ctx.pac = chosen, PacChoice("windows_autoconfig_url", "http://x/p.pac",
                                           "PROXY pac-proxy:3128", "PROXY pac-proxy:3128")
    assert ctx.route_for("aia.example", 80) is chosen
    assert ctx.proxy_source == "the PAC named by the Windows AutoConfigURL setting"
    assert ctx.base_facts["proxy_source"] == ctx.proxy_source


def test_a_monitor_targets_own_pac_wins_over_the_command_lines_proxy(tmp_path: Path) -> None:
    from assure_doctor.monitor.config import load_file
    from assure_doctor.options import CheckOptions

    base = CheckOptions(proxy=load("http://cli:3128", False, {}))
    path = tmp_path / "targets.toml"
    path.write_text('[[targets]]\nurl = "https://127.0.0.1:9/v1/ping"\nno_ping = true\n'
                    'pac = "http://wpad.corp.example/proxy.pac"\n\n'
                    '[[targets]]\nurl = "https://127.0.0.2:9/v1/ping"\nno_ping = true\n')
    targets, _ = load_file(str(path), base)
    own, inherited = (watched.options.proxy for watched in targets)
    assert own.proxy is None and [p.shown for p in own.pac] == [
        "http://wpad.corp.example/proxy.pac"]
    assert inherited == base.proxy
