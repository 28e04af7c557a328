"""The pure parts of the dns stage: the hosts-file parser (total over any bytes), getaddrinfo's
failures as each operating system raises them, and the CNAME chain read from an answer."""

from __future__ import annotations

import itertools
import socket
import sys

import dns.message
import dns.rcode
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assure_doctor.kinds import Family, OsFailure
from assure_doctor.probes import cname, gai, hostsfile, oslookup
from assure_doctor.probes.results import CnameLink, HostsPin, OsSource

HOST = "api.uk2.sheassure.net"

# --- the hosts file -------------------------------------------------------------------------

SAMPLE = (b"\xef\xbb\xbf# Copyright (c) Microsoft Corp.\r\n"
          b"127.0.0.1       localhost\r\n"
          b"::1             localhost\r\n"
          b"\r\n"
          b"#198.18.0.1 api.uk2.sheassure.net   (commented out)\r\n"
          b"10.0.0.5\tintranet API.UK2.SHEASSURE.NET. # pinned by the old installer\r\n"
          b"fe80::1%eth0 api.uk2.sheassure.net\n"
          b"not-an-address api.uk2.sheassure.net\n"
          b"2001:0db8:0000::0005 api.uk2.sheassure.net other\n"
          b"api.uk2.sheassure.net\n")


def test_the_lines_naming_the_host_in_order_with_their_numbers() -> None:
    found = hostsfile.find(SAMPLE, HOST)
    assert [(e.line, e.address) for e in found] == [
        (6, "10.0.0.5"), (7, "fe80::1%eth0"), (9, "2001:db8::5")]


def test_a_family_keeps_only_its_addresses() -> None:
    assert [e.line for e in hostsfile.find(SAMPLE, HOST, Family.IPV4)] == [6]
    assert [e.line for e in hostsfile.find(SAMPLE, HOST, Family.IPV6)] == [7, 9]


def test_a_name_is_matched_whole_not_as_a_part() -> None:
    data = b"10.0.0.1 xapi.uk2.sheassure.net api.uk2.sheassure.net.evil\n"
    assert hostsfile.find(data, HOST) == ()
    assert hostsfile.find(b"10.0.0.1 localhost\n", "localhost")[0].line == 1


def test_the_first_line_may_start_with_a_byte_order_mark() -> None:
    assert hostsfile.find(b"\xef\xbb\xbf10.0.0.7 " + HOST.encode(), HOST)[0].line == 1


@settings(max_examples=300)
@given(st.binary(max_size=2000), st.sampled_from([HOST, "localhost", "a", "é.example"]))
def test_any_bytes_parse_without_error(data: bytes, host: str) -> None:
    lines = data.split(b"\n")
    for entry in hostsfile.find(data, host):
        assert 1 <= entry.line <= len(lines)
        assert host.encode() in lines[entry.line - 1].lower()
        assert entry.address == oslookup.normal(entry.address)


_NAMES = st.lists(st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8),
                  min_size=1, max_size=4).map(".".join)
_ADDRESSES = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)


@settings(max_examples=150)
@given(st.lists(st.tuples(_ADDRESSES, st.lists(_NAMES, min_size=1, max_size=4),
                          st.sampled_from(["", "# a comment", "\t# pinned"]),
                          st.booleans()), max_size=30))
def test_what_is_written_is_found_on_its_line(rows: list[tuple[str, list[str], str, bool]]
                                             ) -> None:
    """A file built from known rows (every third names the host, some are commented out)
    gives back exactly the lines that name it."""
    rows_with_host = [(a, [*n, HOST] if i % 3 == 0 else n, c, k)
                      for i, (a, n, c, k) in enumerate(rows)]
    text, expected = [], []
    for number, (address, names, comment, commented) in enumerate(rows_with_host, 1):
        text.append(f"{'#' if commented else ''}{address}\t{' '.join(names)} {comment}")
        if not commented and HOST in names:
            expected.append((number, oslookup.normal(address)))
    data = "\r\n".join(text).encode()
    assert [(e.line, e.address) for e in hostsfile.find(data, HOST)] == expected


@pytest.mark.parametrize(("platform", "environ", "path"), [
    ("linux", {}, "/etc/hosts"),
    ("darwin", {"SystemRoot": "C:\\Windows"}, "/etc/hosts"),
    ("win32", {"SystemRoot": "D:\\WINNT"}, "D:\\WINNT\\System32\\drivers\\etc\\hosts"),
    ("win32", {"SYSTEMROOT": "C:\\Windows"}, "C:\\Windows\\System32\\drivers\\etc\\hosts"),
    ("win32", {}, "C:\\Windows\\System32\\drivers\\etc\\hosts"),
    # Hostile or odd values fall back to the default installation's.
    ("win32", {"SystemRoot": "\\\\evil\\share"}, "C:\\Windows\\System32\\drivers\\etc\\hosts"),
    ("win32", {"SystemRoot": "C:\\Win\x1b[2Jdows"}, "C:\\Windows\\System32\\drivers\\etc\\hosts"),
])
def test_the_hosts_file_of_each_platform(platform: str, environ: dict[str, str],
                                         path: str) -> None:
    assert hostsfile.path_for(platform, environ) == path


def test_where_the_system_answer_came_from() -> None:
    view = oslookup.HostsView("/etc/hosts", hostsfile.find(SAMPLE, HOST))
    assert oslookup.source(("10.0.0.5",), view, ("192.0.2.1",)) == (
        OsSource.HOSTS, (HostsPin("10.0.0.5", 6),))
    # An address the hosts file does not give came from elsewhere: DNS when DNS gives it.
    assert oslookup.source(("10.0.0.5", "192.0.2.1"), view, ("192.0.2.1",))[0] is OsSource.DNS
    assert oslookup.source(("192.0.2.9",), view, ("192.0.2.1",))[0] is OsSource.UNKNOWN
    assert oslookup.source(("192.0.2.9",), view, None)[0] is OsSource.UNKNOWN
    unread = oslookup.HostsView("/etc/hosts", error="the hosts file: cannot read")
    assert oslookup.source(("10.0.0.5",), unread, ("10.0.0.5",))[0] is OsSource.DNS


# --- getaddrinfo's failures, as each platform raises them ----------------------------------

def gaierror(code: int, text: str) -> socket.gaierror:
    """As CPython raises it everywhere: `gaierror(code, text)`, the code in `errno`."""
    return socket.gaierror(code, text)


@pytest.mark.parametrize(("platform", "exc", "failure", "named"), [
    # glibc / musl
    ("linux", gaierror(-2, "Name or service not known"), OsFailure.NO_NAME, "EAI_NONAME"),
    ("linux", gaierror(-3, "Temporary failure in name resolution"), OsFailure.TEMPORARY,
     "EAI_AGAIN"),
    ("linux", gaierror(-4, "Non-recoverable failure in name resolution"), OsFailure.FAILED,
     "EAI_FAIL"),
    ("linux", gaierror(-5, "No address associated with hostname"), OsFailure.NO_DATA,
     "EAI_NODATA"),
    ("linux", gaierror(-9, "Address family for hostname not supported"), OsFailure.NO_DATA,
     "EAI_ADDRFAMILY"),
    # macOS and the BSDs
    ("darwin", gaierror(8, "nodename nor servname provided, or not known"),
     OsFailure.NO_NAME, "EAI_NONAME"),
    ("darwin", gaierror(2, "temporary failure in name resolution"), OsFailure.TEMPORARY,
     "EAI_AGAIN"),
    ("darwin", gaierror(4, "non-recoverable failure in name resolution"), OsFailure.FAILED,
     "EAI_FAIL"),
    ("darwin", gaierror(7, "no address associated with nodename"), OsFailure.NO_DATA,
     "EAI_NODATA"),
    ("freebsd14", gaierror(8, "Name does not resolve"), OsFailure.NO_NAME, "EAI_NONAME"),
    # Windows: the WSA codes, and CPython's fixed text
    ("win32", gaierror(11001, "getaddrinfo failed"), OsFailure.NO_NAME, "WSAHOST_NOT_FOUND"),
    ("win32", gaierror(11002, "getaddrinfo failed"), OsFailure.TEMPORARY, "WSATRY_AGAIN"),
    ("win32", gaierror(11003, "getaddrinfo failed"), OsFailure.FAILED, "WSANO_RECOVERY"),
    ("win32", gaierror(11004, "getaddrinfo failed"), OsFailure.NO_DATA, "WSANO_DATA"),
])
def test_each_platforms_codes_mean_the_same(platform: str, exc: OSError, failure: OsFailure,
                                            named: str) -> None:
    got, described = gai.classify(exc, platform)
    assert got is failure
    assert described.startswith(f"{named}: ") and exc.strerror in described


def test_one_platforms_number_is_not_read_as_anothers() -> None:
    """-2 is glibc's EAI_NONAME but means nothing on Windows; 2 is macOS's EAI_AGAIN."""
    assert gai.classify(gaierror(-2, "x"), "win32")[0] is OsFailure.OTHER
    assert gai.classify(gaierror(2, "x"), "linux")[0] is OsFailure.OTHER
    assert gai.classify(gaierror(11001, "x"), "darwin")[0] is OsFailure.OTHER


def test_eai_system_arrives_as_an_errno_error_and_is_not_a_gai_code() -> None:
    assert gai.classify(OSError(2, "No such file or directory"), "darwin") == (
        OsFailure.OTHER, "No such file or directory")
    assert gai.classify(gaierror(-8, "Servname not supported"), "linux") == (
        OsFailure.OTHER, "Servname not supported (-8)")


@pytest.mark.skipif(sys.platform != "linux", reason="this platform's own constants")
def test_the_linux_numbers_are_this_machines() -> None:
    """Against the running C library's own constants (not a copy of our table)."""
    for name in ("EAI_NONAME", "EAI_AGAIN", "EAI_FAIL", "EAI_NODATA", "EAI_ADDRFAMILY"):
        value = getattr(socket, name, None)
        if value is not None:
            assert gai.classify(gaierror(value, "x"), "linux")[1].startswith(name)


# --- the CNAME chain ------------------------------------------------------------------------

def response(qname: str, rcode: str, *records: str) -> dns.message.Message:
    """A resolver's answer, from zone-file lines ("a. 30 IN CNAME b.")."""
    query = dns.message.make_query(qname, "A")
    message = dns.message.make_response(query)
    message.set_rcode(dns.rcode.from_text(rcode))
    for line in records:
        message.answer.append(dns.rrset.from_text(*line.split(maxsplit=4)))
    return message


def as_tuples(chain: tuple[CnameLink, ...]) -> list[tuple[str, str | None, str]]:
    return [(link.name, link.target, link.status) for link in chain]


def test_a_dangling_alias_is_marked_at_its_target() -> None:
    answer = response(HOST, "NXDOMAIN", f"{HOST}. 30 IN CNAME GW-UK2.Example.NET.")
    chain = cname.links(HOST + ".", answer, "nxdomain")
    assert as_tuples(chain) == [(HOST, "gw-uk2.example.net", "ok"),
                                ("gw-uk2.example.net", None, "nxdomain")]
    broken = cname.broken_alias(chain)
    assert broken is not None and broken.name == "gw-uk2.example.net"
    assert cname.text(chain) == f"{HOST} → gw-uk2.example.net"


def test_the_name_typed_failing_is_no_broken_alias() -> None:
    chain = cname.links(HOST, response(HOST, "NXDOMAIN"), "nxdomain")
    assert as_tuples(chain) == [(HOST, None, "nxdomain")]
    assert cname.broken_alias(chain) is None


def test_a_working_chain_is_followed_in_order_whatever_the_section_order() -> None:
    answer = response(HOST, "NOERROR", "b.example. 30 IN CNAME c.example.",
                      "c.example. 30 IN A 192.0.2.1", f"{HOST}. 30 IN CNAME b.example.",
                      "unrelated.example. 30 IN CNAME x.example.")
    chain = cname.links(HOST, answer, "ok")
    assert as_tuples(chain) == [(HOST, "b.example", "ok"), ("b.example", "c.example", "ok"),
                                ("c.example", None, "ok")]
    assert cname.broken_alias(chain) is None


def test_a_loop_is_cut_and_marked() -> None:
    answer = response(HOST, "SERVFAIL", f"{HOST}. 30 IN CNAME b.example.",
                      f"b.example. 30 IN CNAME {HOST}.")
    assert as_tuples(cname.links(HOST, answer, "servfail")) == [
        (HOST, "b.example", "ok"), ("b.example", HOST, "loop")]


def test_a_long_chain_is_bounded() -> None:
    names = [HOST, *(f"hop{n}.example" for n in range(40))]
    answer = response(HOST, "NOERROR", *(f"{a}. 30 IN CNAME {b}." for a, b in
                                          itertools.pairwise(names)))
    chain = cname.links(HOST, answer, "ok")
    assert len(chain) == cname.MAX_LINKS + 1
    assert chain[-1].status == cname.TOO_LONG and chain[-2].status == "ok"


def test_no_answer_at_all_is_one_link() -> None:
    assert as_tuples(cname.links(HOST, None, "timeout")) == [(HOST, None, "timeout")]
