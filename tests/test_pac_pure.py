"""The PAC machinery's pure parts: the returned rule read as routes (hypothesis over any text),
where a PAC is (--pac, masking), and the system's settings read from sample registry values
and `scutil` output, with the WPAD URLs they lead to."""

from __future__ import annotations

import contextlib
import itertools
import struct
import unicodedata
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assure_doctor import numbers, redact
from assure_doctor.errors import InputError
from assure_doctor.pac import settings as pac_settings
from assure_doctor.pac.errors import PacEvalError
from assure_doctor.pac.evaluate import pac_url, waiting_on
from assure_doctor.pac.location import (
    File,
    LocationError,
    PacLocation,
    PacSource,
    Url,
    from_flag,
    parse_target,
)
from assure_doctor.pac.rules import (
    MAX_ROUTES,
    RouteKind,
    decision,
    parse_rule,
)

FAST = settings(max_examples=300, deadline=None)


@contextlib.contextmanager
def secrets_kept() -> Iterator[None]:
    """Parsing URLs registers their passwords; random ones must not mask other tests' text."""
    saved = set(redact._secrets)
    try:
        yield
    finally:
        with redact._lock:
            redact._secrets.clear()
            redact._secrets.update(saved)


@pytest.fixture
def secrets_restored() -> Iterator[None]:
    with secrets_kept():
        yield


def safe(text: str) -> bool:
    """No character that could drive or fool a terminal: controls, format, unassigned."""
    return not any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
                   for char in text)


# --- the rule FindProxyForURL returned ----------------------------------------------------

def routes(rule: str) -> list[tuple[str, str | None, int | None, bool]]:
    return [(r.kind.value, r.host, r.port, r.usable) for r in parse_rule(rule).routes]


def test_a_proxy_then_direct_is_two_routes_in_order() -> None:
    assert routes("PROXY a.corp:3128; DIRECT") == [("PROXY", "a.corp", 3128, True),
                                                    ("DIRECT", None, None, True)]


def test_keywords_are_case_insensitive_and_whitespace_is_free() -> None:
    assert routes(" proxy\tA.Corp:8080 ;;  direct ;") == [("PROXY", "a.corp", 8080, True),
                                                         ("DIRECT", None, None, True)]


def test_ports_default_per_kind_as_browsers_do() -> None:
    found = {kind: port for kind, _, port, _ in routes("PROXY p; HTTPS s; SOCKS5 k")}
    assert found == {"PROXY": 80, "HTTPS": 443, "SOCKS5": 1080}


def test_https_and_socks_are_kept_but_not_usable_with_a_reason() -> None:
    parsed = parse_rule("HTTPS s:443; SOCKS5 k:1080; SOCKS4 k:1081; PROXY p:3128").routes
    assert [r.usable for r in parsed] == [False, False, False, True]
    assert "HTTPS proxy" in (parsed[0].problem or "")
    assert "SOCKS5" in (parsed[1].problem or "") and "SOCKS4" in (parsed[2].problem or "")


def test_ipv6_proxies_need_brackets() -> None:
    assert routes("PROXY [::1]:3128") == [("PROXY", "::1", 3128, True)]
    assert routes("PROXY ::1:3128")[0][0] == "INVALID"
    assert parse_rule("PROXY [::1]:3128").routes[0].authority == "[::1]:3128"


@pytest.mark.parametrize("entry", [
    "PROXY a:0", "PROXY a:65536", "PROXY a:٣١٢٨", "PROXY a:²", "PROXY a:+80", "PROXY a:",
    "PROXY a:80x", "PROXY a b", "PROXY", "DIRECT now", "FTP a:21", "PROXY a..b:1",
    "PROXY bücher.de:80", "PROXY [zz]:1", "PROXY [::1]x", "PROXY a:80:81",
])
def test_malformed_entries_are_invalid_routes(entry: str) -> None:
    (route,) = parse_rule(entry).routes
    assert route.kind is RouteKind.INVALID and not route.usable
    assert route.problem and route.problem.startswith("not a route")


def test_the_number_of_entries_is_bounded_and_says_so() -> None:
    parsed = parse_rule("; ".join(f"PROXY p{n}:1" for n in range(MAX_ROUTES + 5)))
    assert len(parsed.routes) == MAX_ROUTES and parsed.truncated
    assert not parse_rule("PROXY a:1; DIRECT").truncated


@FAST
@given(st.text(max_size=400))
def test_any_returned_text_parses_to_bounded_sane_routes(text: str) -> None:
    parsed = parse_rule(text)
    assert len(parsed.routes) <= MAX_ROUTES
    for route in parsed.routes:
        assert safe(route.text) and len(route.text) <= 80
        if route.usable:
            assert route.kind in (RouteKind.DIRECT, RouteKind.PROXY, RouteKind.HTTP)
        if route.kind is not RouteKind.DIRECT and route.usable:
            assert route.host and route.host.isascii() and route.port is not None
            assert 0 < route.port < 65536


@FAST
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8))
def test_ports_in_any_script_but_ascii_are_refused(digits: str) -> None:
    port = numbers.port(digits)
    if port is not None:
        assert digits.isascii() and digits.isdigit() and int(digits) == port


LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
HOST = (st.lists(LABEL, min_size=1, max_size=4).map(".".join)
        | st.ip_addresses(v=4).map(str)
        | st.ip_addresses(v=6).map(lambda a: f"[{a}]"))
ENTRY = st.one_of(
    st.just(("DIRECT", None, None)),
    st.tuples(st.sampled_from(["PROXY", "HTTP", "HTTPS", "SOCKS", "SOCKS5"]), HOST,
              st.integers(1, 65535)),
)


@FAST
@given(st.lists(ENTRY, min_size=1, max_size=MAX_ROUTES), st.sampled_from([";", "; ", " ;\t"]),
       st.booleans())
def test_well_formed_rules_read_back_entry_by_entry(
        entries: list[tuple[str, str | None, int | None]], separator: str, lower: bool) -> None:
    written = [kind if host is None else f"{kind} {host}:{port}"
               for kind, host, port in entries]
    rule = separator.join(entry.lower() if lower else entry for entry in written)
    parsed = parse_rule(rule).routes
    assert [(r.kind.value, r.host, r.port) for r in parsed] == [
        (kind, None if host is None else host.strip("[]").lower(), port)
        for kind, host, port in entries]


@FAST
@given(st.text(max_size=300))
def test_a_decision_has_a_route_or_is_an_evaluation_error(text: str) -> None:
    try:
        found = decision(text, PacSource.FLAG, "/etc/proxy.pac")
    except PacEvalError as exc:
        assert "\n" not in str(exc) and "returned no route" in str(exc)
        return
    assert any(route.kind is not RouteKind.INVALID for route in found.routes)
    assert safe(found.rule) and len(found.rule) <= 300


def test_the_evidence_is_the_contracts_three_fields() -> None:
    found = decision("PROXY a:3128; DIRECT", PacSource.WPAD, "http://wpad.corp/wpad.dat")
    assert found.evidence() == {"source": "wpad", "url": "http://wpad.corp/wpad.dat",
                                "rule": "PROXY a:3128; DIRECT"}
    assert [route.authority for route in found.usable] == ["a:3128", None]


def test_an_empty_or_garbled_answer_is_an_evaluation_error() -> None:
    for text in ("", "  ", "nonsense", "PROXY"):
        with pytest.raises(PacEvalError, match="returned no route"):
            decision(text, PacSource.FLAG, "x")


def test_a_route_becomes_the_proxy_stages_proxy() -> None:
    proxy, direct = decision("PROXY [::1]:3128; DIRECT", PacSource.FLAG, "x").routes
    assert proxy.to_proxy("pac").masked_url == "http://[::1]:3128"
    with pytest.raises(ValueError, match="not an HTTP proxy"):
        direct.to_proxy()


# --- where the PAC is --------------------------------------------------------------------

@pytest.mark.parametrize(("text", "kind"), [
    ("http://pac.corp/proxy.pac", Url), ("HTTPS://pac.corp:8443/p.pac", Url),
    ("/etc/proxy.pac", File), ("proxy.pac", File), (r"C:\proxy\proxy.pac", File),
    ("file:///etc/proxy.pac", File), ("file://localhost/etc/proxy.pac", File),
])
def test_a_location_is_a_url_or_a_file(text: str, kind: type) -> None:
    assert isinstance(parse_target(text), kind)


def test_a_file_url_is_its_path() -> None:
    assert parse_target("file:///etc/my%20proxy.pac") == File(
        parse_target("/etc/my proxy.pac").path)  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty"), ("ftp://pac.corp/p.pac", "only http"), ("http:///p.pac", "no host"),
    ("http://pac.corp:0/p.pac", "port is 0"), ("http://pac.corp:99999/", "port"),
    ("http://pac.corp:8O/", "port"), ("file://server/share/p.pac", "another host"),
    ("http://pac.corp/\x1b[2J", "control"), ("http://" + "a" * 3000, "longer"),
])
def test_unusable_locations_say_why(text: str, why: str) -> None:
    with pytest.raises(LocationError, match=why):
        parse_target(text)


def test_the_flag_error_names_the_flag_never_the_value() -> None:
    with pytest.raises(InputError) as caught:
        from_flag("gopher://sbx_notapath_Secret42/")
    assert str(caught.value).startswith("--pac: ") and "Secret42" not in str(caught.value)


def test_a_pac_urls_password_is_masked_and_registered(secrets_restored: None) -> None:
    location = from_flag("http://alice:pac-Pass%2F9@pac.corp/proxy.pac")
    assert location.shown == "http://alice:****@pac.corp/proxy.pac"
    assert "pac-Pass" not in repr(location)
    assert redact.scrub("x pac-Pass%2F9 y pac-Pass/9") == f"x {redact.MASK} y {redact.MASK}"


def test_a_user_name_alone_is_a_token_and_masked(secrets_restored: None) -> None:
    location = PacLocation(PacSource.WINDOWS, "https://tok3n-abc@pac.corp/p.pac")
    assert location.shown == "https://****@pac.corp/p.pac"
    location.target()
    assert "tok3n-abc" not in redact.scrub("tok3n-abc")


def test_messages_name_a_system_pac_by_its_masked_url_and_the_flag_by_the_flag() -> None:
    system = PacLocation(PacSource.WINDOWS, "http://u:pw-123@pac.corp/p.pac")
    assert system.named == ("the PAC at http://u:****@pac.corp/p.pac (the Windows "
                            "AutoConfigURL setting)")
    assert PacLocation(PacSource.FLAG, "/x.pac").named == "the PAC given with --pac"


@FAST
@given(st.text(max_size=120))
def test_any_location_text_is_a_target_or_a_location_error(text: str) -> None:
    try:
        with secrets_kept():
            target = parse_target(text)
    except LocationError as exc:
        assert "\n" not in str(exc) and (len(text.strip()) < 6 or text.strip() not in str(exc))
        return
    assert isinstance(target, Url | File)
    shown = PacLocation(PacSource.WINDOWS, text).shown
    assert safe(shown)


# --- the system's settings ----------------------------------------------------------------

def blob(flags: int) -> bytes:
    """A DefaultConnectionSettings value: version, counter, flags, then empty strings."""
    return struct.pack("<III", 0x46, 7, flags) + b"\x00" * 32


def urls(locations: tuple[PacLocation, ...]) -> list[tuple[str, str]]:
    return [(location.source.value, location.text) for location in locations]


def test_windows_auto_config_url_alone() -> None:
    found = pac_settings.windows_locations({"AutoConfigURL": " http://pac.corp/p.pac "},
                                           None, ["corp.example.com"])
    assert urls(found) == [("windows_autoconfig_url", "http://pac.corp/p.pac")]


def test_windows_tries_wpad_first_then_the_auto_config_url() -> None:
    found = pac_settings.windows_locations({"AutoDetect": 1, "AutoConfigURL": "http://p/p"},
                                           None, ["corp.example.com"])
    assert urls(found) == [("wpad", "http://wpad.corp.example.com/wpad.dat"),
                           ("wpad", "http://wpad.example.com/wpad.dat"),
                           ("windows_autoconfig_url", "http://p/p")]


def test_windows_auto_detect_from_the_connection_flags_when_no_dword() -> None:
    suffixes = ["example.com"]
    assert urls(pac_settings.windows_locations({}, blob(0x09), suffixes)) == [
        ("wpad", "http://wpad.example.com/wpad.dat")]
    assert pac_settings.windows_locations({}, blob(0x01), suffixes) == ()
    # The AutoDetect value (what a policy sets) decides over the connection's flag.
    assert pac_settings.windows_locations({"AutoDetect": 0}, blob(0x09), suffixes) == ()


def test_windows_settings_of_the_wrong_type_are_ignored() -> None:
    found = pac_settings.windows_locations(
        {"AutoDetect": "1", "AutoConfigURL": b"http://p/p"}, "not bytes", ["example.com"])
    assert found == ()


@FAST
@given(st.binary(max_size=40))
def test_any_connection_settings_bytes_read_or_are_none(data: bytes) -> None:
    flag = pac_settings.auto_detect_flag(data)
    assert flag is None if len(data) < 12 else flag == bool(data[8] & 0x08)


def test_windows_dns_suffixes_primary_first_then_interfaces() -> None:
    found = pac_settings.windows_dns_suffixes(
        {"NV Domain": "Corp.Example.com.", "Domain": "old.example.com"},
        [{"Domain": "", "DhcpDomain": "branch.example.net"}, {"DhcpDomain": "corp.example.com"},
         {"Domain": "bad domain!"}, {}])
    assert found == ("corp.example.com", "branch.example.net")


SCUTIL_PROXY = """<dictionary> {
  ExceptionsList : <array> {
    0 : *.local
    1 : ProxyAutoConfigEnable : 0
  }
  FTPPassive : 1
  HTTPEnable : 0
  HTTPSEnable : 0
  ProxyAutoConfigEnable : 1
  ProxyAutoConfigURLString : http://pac.corp.example.com/proxy.pac
  ProxyAutoDiscoveryEnable : 1
}
"""
SCUTIL_DNS = """DNS configuration

resolver #1
  search domain[0] : corp.example.com
  search domain[1] : example.com
  nameserver[0] : 10.0.0.53
  if_index : 6 (en0)
  flags    : Request A records

resolver #2
  domain   : local
  options  : mdns

resolver #3
  domain   : 254.169.in-addr.arpa
  search domain[0] : 254.169.in-addr.arpa
"""


def test_macos_pac_url_then_discovery_from_the_search_domains() -> None:
    found = pac_settings.macos_locations(SCUTIL_PROXY, SCUTIL_DNS)
    assert urls(found) == [("macos_autoconfig_url", "http://pac.corp.example.com/proxy.pac"),
                           ("wpad", "http://wpad.corp.example.com/wpad.dat"),
                           ("wpad", "http://wpad.example.com/wpad.dat")]


def test_macos_disabled_settings_name_no_pac() -> None:
    off = SCUTIL_PROXY.replace("Enable : 1", "Enable : 0")
    assert pac_settings.macos_locations(off, SCUTIL_DNS) == ()
    assert pac_settings.macos_locations("", "") == ()


def test_scutil_values_skip_nested_arrays() -> None:
    values = pac_settings.scutil_values(SCUTIL_PROXY)
    assert values["ProxyAutoConfigEnable"] == "1" and "0" not in values


@FAST
@given(st.text(max_size=300), st.text(max_size=300))
def test_any_scutil_output_reads_without_error(proxy_text: str, dns_text: str) -> None:
    for location in pac_settings.macos_locations(proxy_text, dns_text):
        assert location.source in (PacSource.MACOS, PacSource.WPAD)


@pytest.mark.parametrize(("suffix", "expected"), [
    ("corp.example.co.uk", ["corp.example.co.uk", "example.co.uk"]),
    ("a.b.example.com", ["a.b.example.com", "b.example.com", "example.com"]),
    ("example.com", ["example.com"]),
    ("corp.local", ["corp.local"]),  # an unknown top-level domain is a public suffix
    ("co.uk", []), ("com", []), ("local", []), ("foo.github.io", ["foo.github.io"]),
    ("", []), ("a..b", []), ("bad_name.com", []), ("bücher.de", []),
])
def test_wpad_walks_up_to_the_registrable_domain_never_beyond(suffix: str,
                                                              expected: list[str]) -> None:
    assert list(pac_settings.wpad_urls(suffix)) == [f"http://wpad.{s}/wpad.dat"
                                                     for s in expected]


@FAST
@given(st.lists(LABEL, min_size=1, max_size=6).map(".".join))
def test_wpad_candidates_are_shrinking_suffixes_of_the_name(suffix: str) -> None:
    found = [url.removeprefix("http://wpad.").removesuffix("/wpad.dat")
             for url in pac_settings.wpad_urls(suffix)]
    if found:
        assert found[0] == suffix
    for longer, shorter in itertools.pairwise(found):
        assert longer.endswith("." + shorter)
    assert all("." in name for name in found)  # never wpad.<top-level domain>


def test_wpad_locations_are_optional_and_not_repeated() -> None:
    found = pac_settings.wpad_locations(["a.example.com", "example.com", 42])
    assert [location.text for location in found] == ["http://wpad.a.example.com/wpad.dat",
                                                     "http://wpad.example.com/wpad.dat"]
    assert all(location.optional for location in found)
    assert not PacLocation(PacSource.WINDOWS, "http://p/p").optional


# --- the evaluator's protocol -------------------------------------------------------------

def test_find_proxy_for_url_gets_the_url_without_userinfo_or_fragment() -> None:
    assert pac_url("https://u:p@Api.Example.com:8443/v1/ping?x=1#f") == (
        "https://Api.Example.com:8443/v1/ping?x=1", "api.example.com")


def test_the_lookup_a_stopped_evaluation_waited_on() -> None:
    assert waiting_on(b'dns-start "a.test"\ndns-end\ndns-start "slow.test"\n') == "slow.test"
    assert waiting_on(b'dns-start "a.test"\ndns-end\n') is None
    assert waiting_on(b'dns-start "\\u001b[2Jx"\n') == "\\x1b[2Jx"
    assert waiting_on(b"dns-start garbage\n") is None and waiting_on(b"") is None
