"""Key validation, target parsing, and bad input through the real command line (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assure_doctor import apikey
from assure_doctor.errors import ApiKeyError, TargetError
from assure_doctor.target import from_stack, from_url, parse_resolver, resolve_target
from tests.conftest import clean_env, run_cli

KEY = "AB_0123456789abcdefghijklmn"
# Input errors must stop before any traffic; should one not, this target stays on loopback.
LOOPBACK = ["--url", "https://127.0.0.1:9/v1/ping"]


# --- the key --------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "problem"), [
    ("", "empty"), ("abc def", "whitespace"), (" abc", "whitespace"), ("abc\t", "whitespace"),
    ("ab\x00c", "control"), ("ab\x7fc", "control"), ("abcé", "non-ASCII"),
])
def test_bad_keys_are_refused_without_echoing_them(raw: str, problem: str) -> None:
    with pytest.raises(ApiKeyError) as caught:
        apikey.validate(raw, "ASSURE_API_KEY")
    assert problem in str(caught.value)
    assert "ASSURE_API_KEY" in str(caught.value)
    if raw.strip():
        assert raw not in str(caught.value)


def test_key_file_may_end_with_one_line_ending(tmp_path: Path) -> None:
    for ending in ("\n", "\r\n", ""):
        path = tmp_path / "key"
        path.write_text(KEY + ending, newline="")
        assert apikey.from_file(path).reveal() == KEY
    (tmp_path / "key2").write_text(KEY + "\n\n")
    with pytest.raises(ApiKeyError):
        apikey.from_file(tmp_path / "key2")


def test_key_is_masked_everywhere_it_could_be_formatted() -> None:
    key = apikey.ApiKey(KEY, "ASSURE_API_KEY")
    for text in (repr(key), str(key), f"{key}", key.masked, key.fingerprint):
        assert KEY not in text
    # Source and length only: not even the key's last characters (they narrow a guess).
    assert key.masked == f"from ASSURE_API_KEY ({len(KEY)} chars)"
    assert KEY[-4:] not in key.masked


def test_env_key_unset_is_none_and_set_is_validated() -> None:
    assert apikey.from_env({}) is None
    assert apikey.from_env({"ASSURE_API_KEY": KEY}).reveal() == KEY
    with pytest.raises(ApiKeyError):
        apikey.from_env({"ASSURE_API_KEY": "two words"})


# --- the target -------------------------------------------------------------------------
def test_stack_becomes_the_ping_url() -> None:
    target = from_stack("UK2")
    assert target.url == "https://api.uk2.sheassure.net/v1/ping"
    assert (target.host, target.port, target.stack) == ("api.uk2.sheassure.net", 443, "uk2")


@pytest.mark.parametrize(("url", "host", "port", "canonical"), [
    ("https://api.uk2.sheassure.net/v1/ping", "api.uk2.sheassure.net", 443,
     "https://api.uk2.sheassure.net/v1/ping"),
    ("https://Example.COM:8443/v1/ping", "example.com", 8443, "https://example.com:8443/v1/ping"),
    ("https://[::1]:9443/v1/ping", "::1", 9443, "https://[::1]:9443/v1/ping"),
    ("https://127.0.0.1/v1/ping?x=1", "127.0.0.1", 443, "https://127.0.0.1/v1/ping?x=1"),
])
def test_url_parts(url: str, host: str, port: int, canonical: str) -> None:
    target = from_url(url)
    assert (target.host, target.port, target.url) == (host, port, canonical)
    assert target.stack is None


@pytest.mark.parametrize("url", ["http://api.uk2.sheassure.net/v1/ping", "https:///v1/ping",
                                 "api.uk2.sheassure.net", "https://host:99999/",
                                 "https://user:pw@host/", "https://bad_host!/"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(TargetError):
        from_url(url)


def test_exactly_one_target() -> None:
    with pytest.raises(TargetError):
        resolve_target(None, None)
    with pytest.raises(TargetError):
        resolve_target("uk2", "https://x/")


@pytest.mark.parametrize(("text", "host", "port"), [
    ("1.1.1.1", "1.1.1.1", 53), ("127.0.0.1:5353", "127.0.0.1", 5353), ("::1", "::1", 53),
    ("[::1]:5353", "::1", 5353), ("[2001:db8::1]", "2001:db8::1", 53),
])
def test_resolver_forms(text: str, host: str, port: int) -> None:
    resolver = parse_resolver(text)
    assert (resolver.host, resolver.port) == (host, port)


@pytest.mark.parametrize("text", ["dns.example", "1.1.1.1:0", "1.1.1.1:x", "[::1", "[::1]x",
                                  "1.2.3.4:70000", ""])
def test_bad_resolvers(text: str) -> None:
    with pytest.raises(TargetError):
        parse_resolver(text)


# --- bad input through the command line -------------------------------------------------
@pytest.mark.parametrize(("args", "names"), [
    (["--url", "http://api.uk2.sheassure.net/v1/ping"], "--url"),
    (["--url", "https://"], "--url"),
    (["--stack", "uk 2"], "--stack"),
    ([], "--stack"),
    ([*LOOPBACK, "--resolver", "not-an-ip"], "--resolver"),
    ([*LOOPBACK, "--timeout", "-1"], "--timeout"),
    ([*LOOPBACK, "--timeout", "soon"], "--timeout"),
    ([*LOOPBACK, "--retries", "-1"], "--retries"),
    ([*LOOPBACK, "--retries", "1000"], "--retries"),
    ([*LOOPBACK, "--timeout", "inf"], "--timeout"),
    ([*LOOPBACK, "--retry-pause", "nan"], "--retry-pause"),
    (["--url", "https://127.0.0.1:0/v1/ping"], "--url"),
    ([*LOOPBACK, "--api-key-file", "/nonexistent/key"], "--api-key-file"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], names: str) -> None:
    run = run_cli("check", *args, env=clean_env(ASSURE_API_KEY=KEY))
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], run.stderr
    assert "Traceback" not in run.stderr


def test_bad_key_in_environment_is_exit_2_without_the_key() -> None:
    secret = "Secret-Key-With Space"
    run = run_cli("check", *LOOPBACK, env=clean_env(ASSURE_API_KEY=secret))
    assert run.returncode == 2
    assert "ASSURE_API_KEY" in run.stderr and "whitespace" in run.stderr
    assert secret not in run.stderr and "Secret-Key" not in run.stderr


def test_bad_ca_bundle_is_exit_2(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("this is not a certificate\n")
    run = run_cli("check", *LOOPBACK, "--no-ping", "--ca-bundle", str(bundle))
    assert run.returncode == 2
    assert "--ca-bundle" in run.stderr and len(run.stderr.strip().splitlines()) == 1
