"""The one strict number parser: ASCII digits only, bounded, range-checked, never a raise.

`str.isdigit()` is true for `²` and `٣`; `int()` reads `٣` as 3 and `1_0` as 10; `float()`
reads `١٢` as 12. These properties hold `numbers` to reading exactly what a person typed in
ASCII, and the flags that use it to refusing everything else with exit code 2.
"""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assure_doctor import numbers
from tests.conftest import run_cli

fast = settings(max_examples=400, deadline=None)
ASCII_WHOLE = re.compile(r"[+-]?[0-9]+")
ASCII_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Digits of other scripts that Python's own parsers accept, and look-alikes.
FOREIGN = ["²", "³", "¹", "٣", "۳", "३", "০", "๓", "３", "𝟑", "①", "Ⅲ", "_", "\u2212"]


@fast
@given(st.text(max_size=40), st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6))
def test_whole_reads_ascii_digits_in_range_or_nothing(text: str, low: int, high: int) -> None:
    value = numbers.whole(text, low, high, signed=True)
    if value is not None:
        assert ASCII_WHOLE.fullmatch(text) and low <= value <= high
        assert value == int(text)
    elif ASCII_WHOLE.fullmatch(text) and len(text.lstrip("+-")) <= numbers.MAX_DIGITS:
        assert not low <= int(text) <= high


@fast
@given(st.integers(0, 10**9), st.sampled_from(FOREIGN), st.integers(0, 9))
def test_a_foreign_digit_anywhere_makes_no_number(value: int, foreign: str, at: int) -> None:
    text = str(value)
    spoiled = text[:at] + foreign + text[at:]
    assert numbers.whole(spoiled, 0, 10**12) is None
    assert numbers.decimal(spoiled) is None
    assert numbers.port(spoiled) is None


@fast
@given(st.text(max_size=80))
def test_decimal_reads_ascii_numbers_or_nothing(text: str) -> None:
    value = numbers.decimal(text)
    if value is not None and math.isfinite(value):
        assert ASCII_DECIMAL.fullmatch(text)
        assert value == float(text)


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("65535", 65535), ("8080", 8080), ("080", 80), ("65536", None), ("0x50", None),
    ("", None), (" 80", None), ("80 ", None), ("+80", None), ("-1", None), ("1_0", None),
    ("²", None), ("٣٣٣٣", None), ("8" * 100000, None),
])
def test_port_examples(text: str, value: int | None) -> None:
    assert numbers.port(text, low=0) == value


def test_sign_only_when_asked() -> None:
    assert numbers.whole("-3", -5, 5) is None
    assert numbers.whole("-3", -5, 5, signed=True) == -3


@pytest.mark.parametrize("text", ["1e309", "inf", "-Infinity", "nan"])
def test_decimal_keeps_what_the_bound_calls_not_finite(text: str) -> None:
    value = numbers.decimal(text)
    assert value is not None and not math.isfinite(value)


@pytest.mark.parametrize(("flag", "value"), [
    ("--timeout", "٣"), ("--timeout", "1_0"), ("--timeout", "²"), ("--retries", "١"),
    ("--retry-pause", "३"), ("--max-skew", "１０"),
])
def test_flags_refuse_foreign_digits(flag: str, value: str) -> None:
    run = run_cli("check", "--url", "https://127.0.0.1:9/v1/ping", "--no-ping", flag, value,
                  timeout=30)
    assert run.returncode == 2, run.stderr
    assert flag in run.stderr and value not in run.stderr and "Traceback" not in run.stderr


def test_no_isdigit_is_left_in_the_product() -> None:
    """Every number from outside goes through `numbers`: nothing calls str.isdigit()."""
    root = Path(__file__).resolve().parent.parent / "assure_doctor"
    found = subprocess.run(["grep", "-rn", "--include=*.py", "isdigit()", str(root)],
                           capture_output=True, text=True, check=False).stdout
    assert found == ""
