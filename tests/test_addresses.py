"""Address literals: told from names, and written where a port may follow so that the URL
parser reads the same host and port back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from assure_doctor import urls
from assure_doctor.addresses import bracketed, host_port, is_address, is_ipv6

ADDRESSES = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
PORTS = st.integers(1, 65535)


@given(ADDRESSES, PORTS)
def test_an_address_written_with_its_port_reads_back(address: str, port: int) -> None:
    assert is_address(address) and is_ipv6(address) == (":" in address)
    parsed = urls.split(f"https://{host_port(address, port)}/v1/ping", "--url")
    assert (parsed.host, parsed.port) == (address, port)
    assert urls.split(f"https://{bracketed(address)}/v1/ping", "--url").host == address


@given(st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True),
       PORTS)
def test_a_name_is_no_address_and_is_written_as_it_is(name: str, port: int) -> None:
    assert not is_address(name) and not is_ipv6(name)
    assert bracketed(name) == name and host_port(name, port) == f"{name}:{port}"


def test_only_a_bare_literal_is_an_address() -> None:
    assert is_address("::1") and is_address("198.18.0.1") and is_ipv6("fd00::1")
    assert not is_address("[::1]") and not is_ipv6("198.18.0.1")
    assert not is_address("1.2.3") and not is_address("") and not is_address("::1:99999")
    assert is_address("fe80::1%eth0") and not is_address("fe80::1%é")  # a zone id, in ASCII
    assert not is_ipv6("fe80::1%é")
