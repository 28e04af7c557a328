"""Every parser of our inputs is total: any text or bytes in, a value or our own error out,
never another exception (hypothesis)."""

from __future__ import annotations

import argparse
import contextlib
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from assure_doctor import apikey
from assure_doctor.bounds import CHECK_BOUNDS
from assure_doctor.errors import InputError
from assure_doctor.monitor.budget import Corrupt, State
from assure_doctor.monitor.config import BOUNDS, check_label
from assure_doctor.target import from_stack, from_url, parse_resolver

FAST = settings(max_examples=300, deadline=None)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["day", "spent", "last_ping", "previous", "k", "*"]),
                      inner, max_size=5),
    max_leaves=12)


@FAST
@given(st.binary(max_size=300))
def test_state_file_bytes_parse_or_are_corrupt(data: bytes) -> None:
    try:
        state = State.parse(data)
    except Corrupt:
        return
    assert all(isinstance(v, int) and v >= 0 for v in state.spent.values())


@FAST
@given(JSONISH)
def test_state_file_documents_parse_or_are_corrupt(document: object) -> None:
    import json

    try:
        state = State.parse(json.dumps(document).encode())
    except Corrupt:
        return
    assert all(math.isfinite(v) for v in state.last_ping.values())
    assert State.parse(state.to_json()) == state  # what we write, we read back


@FAST
@given(st.text(max_size=60))
def test_target_parsers_are_total(text: str) -> None:
    for parse in (parse_resolver, from_url, from_stack):
        try:
            parse(text)
        except InputError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 400


@FAST
@given(st.text(max_size=40))
def test_number_flags_are_total(text: str) -> None:
    for bound in (*BOUNDS.values(), *CHECK_BOUNDS.values()):
        try:
            value = bound.parse(text)
        except argparse.ArgumentTypeError:
            continue
        assert math.isfinite(value) and bound.problem(value) is None


@FAST
@given(st.text(max_size=80))
def test_keys_and_labels_are_total(text: str) -> None:
    try:
        key = apikey.validate(apikey.normalise(text), "ASSURE_API_KEY")
        assert key.isascii() and key.isprintable() and " " not in key
    except InputError as exc:
        assert len(text.strip()) < 8 or text.strip() not in str(exc)  # never echoed
    with contextlib.suppress(InputError):
        assert check_label(text, "name") == text


def test_a_state_file_round_trips() -> None:
    state = State(day="2026-11-28", spent={"k": 3}, previous_day="2026-11-27",
                  previous_spent={"k": 7}, last_ping={"uk2": 1.5})
    assert State.parse(state.to_json()) == state
