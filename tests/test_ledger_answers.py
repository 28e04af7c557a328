"""The ledger's answers bounded in depth and size: a hostile Prometheus sets
`assure_ledger_up 0` and the monitor falls back to its own --ping-budget, as documented.

Before, deeply nested JSON raised RecursionError in every ping job and `assure_ledger_up`
never said so.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assure_doctor.monitor import ledger
from assure_doctor.sandbox.stack import Sandbox
from tests.monitoring import MonitorProcess
from tests.test_fleet import KEY_ID, TODAY, fake_prometheus, site_args
from tests.waiting import wait_until

DEEP = b"[" * 100_000 + b"]" * 100_000  # 200 KB: within the size cap, far past the depth
HOSTILE = [
    DEEP,
    b'{"status": "success", "data": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}",
    b'{"status": "success", "data": {"resultType": "vector", "result": [{"metric": '
    b'{"spender": "x"}, "value": [1, "\xd9\xa3"]}]}}',  # an Arabic-Indic 3: no number
    b'{"status": "success", "data": {"resultType": "vector", "result": [{"metric": '
    b'{"spender": "x"}, "value": [1, "1_000"]}]}}',
]


@pytest.mark.parametrize("body", HOSTILE)
def test_a_hostile_answer_is_a_ledger_error(body: bytes) -> None:
    with pytest.raises(ledger.LedgerError):
        ledger.parse_answer(body)


def test_brackets_inside_strings_are_no_nesting() -> None:
    row = {"metric": {"spender": "[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{"}, "value": [1, "2"]}
    body = json.dumps({"status": "success", "data": {"resultType": "vector",
                                                     "result": [row]}}).encode()
    assert ledger.parse_answer(body) == {"[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{": 2}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000) | st.text(alphabet="[]{}\"\\,:1 ", max_size=3000).map(str.encode))
def test_any_bytes_are_rows_or_a_ledger_error(body: bytes) -> None:
    try:
        rows = ledger.parse_answer(body)
    except ledger.LedgerError:
        return
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in rows.items())


@pytest.mark.parametrize("body", HOSTILE[:2])
def test_the_cap_falls_back_to_the_local_budget(body: bytes) -> None:
    with fake_prometheus(body, []) as url:
        cap = asyncio.run(ledger.Ledger(url.rstrip("/"), 20, "me").cap(KEY_ID, TODAY, 7, 0))
    assert (cap.daily, cap.customer, cap.view.up) == (7, False, False)


@pytest.mark.slow
def test_a_monitor_fed_deep_json_says_ledger_down_and_keeps_pinging_on_its_own_budget(
        tmp_path: Path) -> None:
    with Sandbox("healthy") as sandbox, fake_prometheus(DEEP, []) as url:
        monitor = MonitorProcess(site_args(sandbox, "deep", url.rstrip("/"), 2),
                                 tmp_path / "state")
        try:
            wait_until(lambda: sandbox.traffic.keyed >= 2, 20, "two pings on the own budget")
            wait_until(lambda: 'assure_ledger_up{site="deep",target="api.sandbox.sheassure.net"}'
                     ' 0.0' in monitor.metrics(), 10, "assure_ledger_up 0")
            log = monitor.log.read_text()
            assert "nested deeper than" in log and "RecursionError" not in log
            assert re.search(r"Job \S+ failed", log) is None  # no ping job crashed
        finally:
            monitor.stop()
