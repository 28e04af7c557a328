"""Every parser of outside input is total: any bytes in, a value or None out, never a raise.

Property tests (hypothesis) over `httpmsg` (the HTTP codec's own are in tests/test_http1.py),
the ping's classification, the clock's sample, the sanitiser and certificate parsing, plus the
examples that crashed `check` before.
"""

from __future__ import annotations

import warnings
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import formatdate

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from assure_doctor import httpmsg, sanitize
from assure_doctor.probes import certinfo, clock
from assure_doctor.probes.ping import classify, retry_after_seconds

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# Text as a server can send it: latin-1 of any bytes, plus any code point at all.
outside_text = st.one_of(st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
                         st.text(max_size=300))
fast = settings(max_examples=300, deadline=None)


def _is_clean(text: str) -> bool:
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


@fast
@given(st.binary(max_size=2000))
def test_any_head_splits_or_is_refused(raw: bytes) -> None:
    start, headers = httpmsg.split_head(raw)
    assert isinstance(start, list) and isinstance(headers, dict)
    assert len(start) in (0, 3)


def test_a_request_head_splits_through_the_one_parser() -> None:
    assert httpmsg.split_head(b"CONNECT api.x:443 HTTP/1.1\r\nHost: api.x:443\r\n"
                              b"X-A: 1\r\nx-a: 2\r\n\r\n") == (
        ["CONNECT", "api.x:443", "HTTP/1.1"], {"host": "api.x:443", "x-a": "1, 2"})
    assert httpmsg.split_head(b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n") == ([], {})


@fast
@given(outside_text)
def test_any_date_value_is_a_utc_date_or_none(value: str) -> None:
    parsed = httpmsg.parse_date(value)
    assert parsed is None or parsed.tzinfo is UTC


@fast
@given(st.integers(min_value=0, max_value=253402300799))
def test_dates_round_trip_in_all_three_formats(stamp: int) -> None:
    when = datetime.fromtimestamp(stamp, UTC)
    assert httpmsg.parse_date(formatdate(stamp, usegmt=True)) == when
    assert httpmsg.parse_date(when.strftime("%a %b %e %H:%M:%S %Y")) == when
    if 1970 <= when.year < 2070:
        assert httpmsg.parse_date(when.strftime("%A, %d-%b-%y %H:%M:%S GMT")) == when


@fast
@given(outside_text)
def test_any_retry_after_is_bounded_seconds_or_none(value: str) -> None:
    seconds = httpmsg.retry_after(value, NOW)
    assert seconds is None or 0 <= seconds <= httpmsg.MAX_RETRY_AFTER


@pytest.mark.parametrize(("value", "seconds"), [
    ("²", None), ("\xb2", None), ("١٢", None), ("1.5", None), ("-1", None), ("120", 120.0),
    (" 7 ", 7.0), ("99999999999", httpmsg.MAX_RETRY_AFTER),
    ("Fri, 02 Jan 2026 03:05:05 GMT", 60.0), ("Thu, 01 Jan 2026 00:00:00 GMT", 0.0),
    ("Fri, 31 Feb 2026 03:05:05 GMT", None), ("Fri, 02 Jan 99999 03:05:05 GMT", None),
])
def test_retry_after_examples(value: str, seconds: float | None) -> None:
    assert httpmsg.retry_after(value, NOW) == seconds


def test_retry_after_of_the_ping_survives_hostile_values() -> None:
    assert retry_after_seconds("\xb2") is None
    assert retry_after_seconds("1" * 10000) == httpmsg.MAX_RETRY_AFTER  # no int() overflow
    assert retry_after_seconds("1" * 10000 + "x") is None


@fast
@given(outside_text)
def test_any_location_gives_a_host_or_none(value: str) -> None:
    host = httpmsg.location_host(value)
    assert host is None or isinstance(host, str)


@pytest.mark.parametrize("location", ["http://[", "https://[::1", "http://h:port/",
                                      "http://a\uff03b/", "\x1b]0;pwned\x07"])
def test_malformed_locations_still_classify(location: str) -> None:
    condition, facts = classify(302, "", location, "api.uk2.sheassure.net")
    assert condition == "http_redirect" and facts["location_host"] in ("same", "other")


@fast
@given(st.integers(min_value=0, max_value=999), outside_text, st.none() | outside_text)
def test_any_response_classifies(status: int, body: str, location: str | None) -> None:
    condition, facts = classify(status, body, location, "api.uk2.sheassure.net")
    assert condition is None or isinstance(condition, str)
    assert isinstance(facts, dict)


@fast
@given(st.none() | outside_text, st.floats(0, 2e9), st.floats(0, 10))
def test_any_date_gives_a_clock_sample_or_none(date: str | None, before: float, rtt: float
                                               ) -> None:
    sample = clock.sample(date, before, before + rtt)
    assert sample is None or sample["uncertainty_seconds"] >= 0.5


@fast
@given(st.lists(st.binary(max_size=5000), max_size=10),
       st.sampled_from([None, "identity", "gzip", "deflate", "br", "x-gzip", "\xb2"]))
def test_a_body_sample_is_bounded_whatever_arrives(chunks: list[bytes], coding: str | None
                                                   ) -> None:
    sample = httpmsg.BodySample(2048, coding)
    for chunk in chunks:
        if sample.feed(chunk):
            break
    assert len(sample.data) <= 2048 and isinstance(sample.text(), str)


def test_a_gzip_bomb_inflates_only_to_the_limit() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(compressor.compress(bytes(1 << 20)) for _ in range(64)) + compressor.flush()
    sample = httpmsg.BodySample(2048, "gzip")
    assert sample.feed(bomb) is True
    assert sample.data == bytes(2048)


@fast
@given(outside_text, st.integers(min_value=1, max_value=400))
def test_sanitized_text_is_clean_and_bounded(value: str, limit: int) -> None:
    safe = sanitize.text(value, limit)
    assert len(safe) <= limit and _is_clean(safe)
    assert "\x1b" not in sanitize.markup(value, limit)


# --- certificates -------------------------------------------------------------------------

_KEY = ec.generate_private_key(ec.SECP256R1())


def _certificate(common_name: str, dns_names: list[str]) -> bytes:
    now = datetime.now(UTC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lengths beyond X.520's limits are the point
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name, _validate=False)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(_KEY.public_key()).serial_number(1)
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1)))
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
    return builder.sign(_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


_VALID_DER = _certificate("api.uk2.sheassure.net", ["api.uk2.sheassure.net"])


@fast
@given(st.binary(max_size=3000))
def test_any_bytes_describe_as_none_or_a_certificate(der: bytes) -> None:
    info = certinfo.describe(der)
    assert info is None or isinstance(info, certinfo.CertInfo)


@fast
@given(st.lists(st.tuples(st.integers(0, len(_VALID_DER) - 1), st.integers(0, 255)),
                min_size=1, max_size=8))
def test_a_damaged_certificate_describes_as_none_or_a_certificate(
        edits: list[tuple[int, int]]) -> None:
    der = bytearray(_VALID_DER)
    for position, value in edits:
        der[position] = value
    info = certinfo.describe(bytes(der))
    assert info is None or isinstance(info, certinfo.CertInfo)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=1, max_size=200),
       st.lists(st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=1, max_size=80),
                max_size=5))
def test_hostile_certificate_names_come_out_sanitised(common_name: str, dns: list[str]) -> None:
    try:
        der = _certificate(common_name, dns)
    except ValueError:
        assume(False)  # a name the library refuses to write cannot reach us either
        return
    info = certinfo.describe(der)
    assert info is not None
    for text in (info.subject, info.issuer, *info.names):
        assert _is_clean(text) and len(text) <= 300


def test_an_escape_in_a_certificate_name_is_shown_escaped() -> None:
    info = certinfo.describe(_certificate("\x1b]0;pwned\x07", ["\x1b[2Jx.example"]))
    assert info is not None
    assert info.names == ("\\x1b[2Jx.example",)
    assert "\\x1b]0" in info.subject and "pwned\\x07" in info.subject
    assert "\x1b" not in info.subject
