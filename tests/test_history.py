"""The path history: what changed since the last good check, kept across runs, weighed by the
ranking, and never holding a secret."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assure_doctor import apikey, trust
from assure_doctor.engine import run_check
from assure_doctor.history.changes import Change, What, between, facts
from assure_doctor.history.fingerprint import CertSummary, Fingerprint
from assure_doctor.history.record import MAX_CHANGES, Record, advance
from assure_doctor.history.store import History
from assure_doctor.kinds import CauseId, CertKind, Condition
from assure_doctor.options import CheckOptions
from assure_doctor.proxyconfig import ProxyRules
from assure_doctor.ranking import rank
from assure_doctor.sandbox.stack import Sandbox
from assure_doctor.target import from_url, parse_resolver
from tests.conftest import FAST, clean_env, run_cli

HOST = "api.uk2.sheassure.net"
SINCE = "2026-12-01T09:00:00.000+00:00"
DIGICERT = "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,O=DigiCert Inc,C=US"
ZSCALER = "CN=Zscaler Intermediate Root CA (zscaler.net),O=Zscaler Inc.,C=US"
GOOD = Fingerprint(
    addresses=("18.133.1.10", "18.133.1.11"), address_source="DNS",
    cname_chain=(HOST, "gw-uk2.execute-api.eu-west-2.amazonaws.com"),
    proxy="direct", proxy_source="none", tls_version="TLSv1.3",
    cipher="TLS_AES_128_GCM_SHA256",
    chain=(CertSummary("aa" * 32, f"CN={HOST}", DIGICERT, "2027-03-01T00:00:00+00:00"),),
    trust=("certifi", "system"), ping_status=200, clock_offset=0.2)


def changed(**now: object) -> tuple[Change, ...]:
    from dataclasses import replace

    return between(GOOD, replace(GOOD, **now), SINCE, HOST)  # type: ignore[arg-type]


# --- what changed, in words ------------------------------------------------------------------
def test_the_same_path_has_no_changes() -> None:
    assert between(GOOD, GOOD, SINCE, HOST) == ()


def test_an_unknown_value_is_never_a_change() -> None:
    """A check that failed at dns says nothing about the certificate or the ping."""
    assert between(GOOD, Fingerprint(addresses=GOOD.addresses, address_source="DNS"),
                   SINCE, HOST) == ()


def test_an_inspecting_issuer_is_named_as_inspection_introduced() -> None:
    from dataclasses import replace

    leaf = replace(GOOD.chain[0], issuer=ZSCALER, sha256="bb" * 32)  # type: ignore[index]
    (change,) = changed(chain=(leaf,))
    assert change.what is What.ISSUER and change.since == SINCE
    assert change.was == DIGICERT and change.now == ZSCALER
    assert change.text == (f"the certificate is now issued by {ZSCALER} (was {DIGICERT}): "
                           "TLS inspection (Zscaler) was introduced")


def test_a_renewed_certificate_is_a_change_of_certificate_not_of_issuer() -> None:
    from dataclasses import replace

    leaf = replace(GOOD.chain[0], sha256="cc" * 32,  # type: ignore[index]
                   not_after="2028-03-01T00:00:00+00:00")
    (change,) = changed(chain=(leaf,))
    assert change.what is What.CERTIFICATE
    assert "2028-03-01" in change.now and "2027-03-01" in change.was


def test_an_address_from_the_hosts_file_names_its_source() -> None:
    (change,) = changed(addresses=("203.0.113.9",),
                        address_source="the hosts file (/etc/hosts line 7)")
    assert change.what is What.ADDRESS
    assert change.text == (f"{HOST} now resolves to 203.0.113.9 from the hosts file "
                           "(/etc/hosts line 7) (was 18.133.1.10, 18.133.1.11 from DNS)")


def test_a_proxy_that_appeared_names_its_variable() -> None:
    (change,) = changed(proxy="http://proxy:8080", proxy_source="HTTPS_PROXY")
    assert change.what is What.PROXY
    assert change.text.startswith("HTTPS_PROXY is now set (http://proxy:8080)")


@pytest.mark.parametrize(("now", "what"), [
    ({"tls_version": "TLSv1.2"}, What.TLS_VERSION),
    ({"cipher": "ECDHE-RSA-AES128-GCM-SHA256"}, What.CIPHER),
    ({"trust": ("system",)}, What.TRUST),
    ({"ping_status": 401}, What.PING_STATUS),
    ({"clock_offset": 300.2}, What.CLOCK),
    ({"cname_chain": (HOST, "gw-uk2-new.example.net")}, What.CNAME),
])
def test_each_part_of_the_path_is_compared(now: dict[str, object], what: What) -> None:
    found = changed(**now)
    assert [c.what for c in found] == [what]


def test_clock_jitter_is_not_a_change() -> None:
    assert changed(clock_offset=GOOD.clock_offset + 1.5) == ()  # type: ignore[operator]


# --- the ranking weighs the changes ------------------------------------------------------------
def test_inspection_introduced_puts_tls_interception_first_even_for_a_name_mismatch() -> None:
    from dataclasses import replace

    leaf = replace(GOOD.chain[0], issuer=ZSCALER)  # type: ignore[index]
    weighed = facts(GOOD, replace(GOOD, chain=(leaf,)))
    assert weighed == {"inspection_introduced": True}
    plain = rank(Condition.TLS_CERTIFICATE_ERROR, {"kind": CertKind.HOSTNAME_MISMATCH})
    assert plain[0].id is CauseId.CONFIG
    ranked = rank(Condition.TLS_CERTIFICATE_ERROR, {"kind": CertKind.HOSTNAME_MISMATCH,
                                                   "issuer": ZSCALER, "host": HOST,
                                                   **weighed})
    assert ranked[0].id is CauseId.TLS_INTERCEPTION
    assert ZSCALER in ranked[0].advice and "Since the last good check" in ranked[0].advice


@pytest.mark.parametrize(("source", "first"), [
    ("the hosts file (/etc/hosts line 7)", CauseId.CONFIG), ("DNS", CauseId.DNS_SERVICE)])
def test_an_address_that_moved_and_fails_blames_where_it_came_from(
        source: str, first: CauseId) -> None:
    from dataclasses import replace

    weighed = facts(GOOD, replace(GOOD, addresses=("203.0.113.9",), address_source=source))
    ranked = rank(Condition.CONNECT_TIMEOUT, {"host": HOST, "address": "203.0.113.9",
                                              **weighed})
    assert ranked[0].id is first
    assert "203.0.113.9" in ranked[0].advice and "18.133.1.10" in ranked[0].advice


# --- the record: last good, and each change logged once ---------------------------------------
def test_a_failing_check_logs_its_changes_once_and_keeps_the_last_good() -> None:
    from dataclasses import replace

    record = Record(SINCE, 1.0, GOOD)
    failing = replace(GOOD, ping_status=401)
    found = between(GOOD, failing, SINCE, HOST)
    at = datetime(2026, 12, 2, tzinfo=UTC)
    record, new = advance(record, False, failing, found, at)
    assert record.last_good is GOOD and len(new) == 1 and new[0].seen
    record, again = advance(record, False, failing, found, at)
    assert again == () and len(record.changes) == 1  # the same change, not logged twice
    record, _ = advance(record, True, GOOD, (), at)
    assert record.last_good_at == at.isoformat(timespec="milliseconds")
    assert record.last_good_unix == at.timestamp()


def test_the_log_is_bounded() -> None:
    record = Record(SINCE, 1.0, GOOD)
    for number in range(MAX_CHANGES + 5):
        change = Change(What.PING_STATUS, "HTTP 200", f"HTTP {500 + number}", SINCE, "x")
        record, _ = advance(record, False, GOOD, (change,), datetime.now(UTC))
    assert len(record.changes) == MAX_CHANGES
    assert record.changes[-1].now == f"HTTP {500 + MAX_CHANGES + 4}"


# --- the store --------------------------------------------------------------------------------
def test_the_store_round_trips_privately(tmp_path: Path) -> None:
    store = History(tmp_path)
    change = Change(What.ISSUER, DIGICERT, ZSCALER, SINCE, "the issuer changed",
                    "2026-12-02T00:00:00.000+00:00")
    record = Record(SINCE, 1.7e9, GOOD, (change,))
    store.save("https://x/v1/ping", record)
    assert store.load("https://x/v1/ping") == record
    assert store.load("https://other/v1/ping") == Record()
    (path,) = store.directory.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048) | st.text(max_size=2048).map(str.encode))
def test_a_corrupt_store_is_ignored_never_raised(tmp_path_factory: pytest.TempPathFactory,
                                                 data: bytes) -> None:
    store = History(tmp_path_factory.mktemp("history"))
    store.save("t", Record(SINCE, 1.0, GOOD))
    next(store.directory.iterdir()).write_bytes(data)
    loaded = store.load("t")
    assert isinstance(loaded, Record)


@pytest.mark.parametrize("document", [
    {"schema": 1, "label": "t", "changes": [], "last_good": {"ping_status": 10 ** 6}},
    {"schema": 1, "label": "t", "changes": [], "last_good": {"clock_offset": "NaN"}},
    {"schema": 1, "label": "t", "changes": [{"what": "nope", "was": "", "now": "",
                                             "since": "", "text": ""}]},
    {"schema": 1, "label": "t", "changes": [], "last_good": {"addresses": ["x"] * 1000}},
    {"schema": 1, "label": "t", "changes": [], "last_good_at": "x" * 5000},
    {"schema": 2, "label": "t", "changes": []},
    {"schema": 1, "label": "u", "changes": []},
])
def test_a_record_that_is_not_ours_is_ignored_with_one_warning(
        tmp_path: Path, document: dict[str, object], caplog: pytest.LogCaptureFixture) -> None:
    store = History(tmp_path)
    store.save("t", Record(SINCE, 1.0, GOOD))
    next(store.directory.iterdir()).write_text(json.dumps(document))
    with caplog.at_level(logging.WARNING, "assure_doctor.history"):
        assert store.load("t") == Record()
    assert len(caplog.records) == 1


def test_a_symlink_in_the_store_is_never_followed(tmp_path: Path) -> None:
    store = History(tmp_path)
    store.save("t", Record(SINCE, 1.0, GOOD))
    (path,) = store.directory.iterdir()
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(elsewhere)
    assert store.load("t") == Record()


# --- through the engine and the command line ---------------------------------------------------
def options_for(sandbox: Sandbox, **extra: object) -> CheckOptions:
    from dataclasses import replace

    options = CheckOptions(timeout=1.5, retry_pause=0.1,
                           resolvers=(parse_resolver(sandbox.resolver),),
                           trust=trust.load(str(sandbox.ca_bundle)),
                           proxy=ProxyRules(forced_direct=True))
    return replace(options, **extra)  # type: ignore[arg-type]


def test_a_moved_address_that_now_refuses_ranks_the_dns_answer_first() -> None:
    """The last good check resolved another address from DNS; today's is refused."""
    from dataclasses import replace

    before = replace(GOOD, addresses=("127.0.0.9",))
    with Sandbox("tcp-refused") as sandbox:
        report = asyncio.run(run_check(from_url(sandbox.url), options_for(sandbox), None,
                                       history=Record(SINCE, 1.0, before)))
    assert report.changes is not None and report.last_good_at == SINCE
    assert [c.what for c in report.changes][:1] == [What.ADDRESS]
    tcp = report.stage("tcp")
    assert tcp is not None and tcp.condition is Condition.CONNECT_FAILED
    assert tcp.causes[0].id is CauseId.DNS_SERVICE
    assert "127.0.0.9" in tcp.causes[0].advice


def test_without_a_history_the_report_has_no_changes(healthy: Sandbox) -> None:
    report = asyncio.run(run_check(from_url(healthy.url), options_for(healthy), None))
    assert report.changes is None and report.to_dict()["changes"] is None
    first = asyncio.run(run_check(from_url(healthy.url), options_for(healthy), None,
                                  history=Record()))
    assert first.changes is None and first.fingerprint is not None


def test_check_keeps_a_history_and_reports_what_changed(healthy: Sandbox,
                                                        tmp_path: Path) -> None:
    env = clean_env(XDG_STATE_HOME=str(tmp_path / "state"))
    first = run_cli("check", *healthy.check_args(), *FAST, "--json", env=env)
    assert first.returncode == 0 and first.json()["changes"] is None
    second = run_cli("check", *healthy.check_args(), *FAST, "--json", env=env)
    document = second.json()
    assert document["changes"] == [] and document["last_good_at"]
    human = run_cli("check", *healthy.check_args(), *FAST, env=env)
    assert "Changed since the last good check (" in human.stdout
    assert "nothing on the path to the API changed" in human.stdout
    (path,) = (tmp_path / "state" / "assure-doctor" / "history").iterdir()
    text = path.read_text()
    assert healthy.key not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(text)["last_good"]["ping_status"] == 200


def test_no_history_keeps_nothing(healthy: Sandbox, tmp_path: Path) -> None:
    env = clean_env(XDG_STATE_HOME=str(tmp_path / "state"))
    run = run_cli("check", *healthy.check_args(), *FAST, "--json", "--no-history", env=env)
    assert run.returncode == 0 and run.json()["changes"] is None
    assert not (tmp_path / "state").exists()


@pytest.mark.slow
def test_proxy_credentials_never_enter_the_history(tmp_path: Path) -> None:
    with Sandbox("proxy-auth-basic") as sandbox:
        from assure_doctor.sandbox import proxyserver

        url = (f"http://{proxyserver.USER}:{proxyserver.PASSWORD}@127.0.0.1:"
               f"{sandbox.proxy_port}")
        env = clean_env(XDG_STATE_HOME=str(tmp_path / "state"))
        args = [a for a in sandbox.check_args() if a != sandbox.proxy_url and a != "--proxy"]
        for _ in range(2):
            run = run_cli("check", *args, "--proxy", url, *FAST, "--json", env=env)
            assert run.returncode == 0, run.stdout
    (path,) = (tmp_path / "state" / "assure-doctor" / "history").iterdir()
    text = path.read_text()
    assert proxyserver.PASSWORD not in text and sandbox.key not in text
    assert "****" in text
    assert apikey.ENV_VAR not in os.environ or os.environ[apikey.ENV_VAR] not in text


@pytest.mark.slow
def test_the_bundle_says_what_changed(tmp_path: Path) -> None:
    """report --out: report.md has the section, report.json the changes."""
    with Sandbox("changed-address") as sandbox:
        env = clean_env(XDG_STATE_HOME=str(tmp_path / "state"))
        assert run_cli("check", *sandbox.check_args(), *FAST, env=env).returncode == 0
        run = run_cli("report", *sandbox.check_args(), *FAST, "--out",
                      str(tmp_path / "bundle"), env=env)
    assert run.returncode == 1, run.stdout + run.stderr
    text = (tmp_path / "bundle" / "report.md").read_text()
    assert "## Changed since the last good check (" in text
    assert "| address | 127.0.0.2 from DNS via" in text
    document = json.loads((tmp_path / "bundle" / "report.json").read_text())
    assert document["changes"][0]["what"] == "address"
    assert document["stages"][1]["causes"][0]["id"] == "dns_service"


def test_two_cadences_log_one_change_once_and_a_recurrence_again() -> None:
    """The network and ping cadences may see one change against two good checks; after a
    good check in between, the same change is news again."""
    from dataclasses import replace

    def at(minute: int) -> datetime:
        return datetime(2026, 12, 2, 9, minute, tzinfo=UTC)

    failing = replace(GOOD, ping_status=401)
    record, _ = advance(Record(), True, GOOD, (), at(0))
    first_since = record.last_good_at or ""
    record, _ = advance(record, True, GOOD, (), at(1))  # the other cadence, good too
    record, new = advance(record, False, failing, between(GOOD, failing, first_since, HOST),
                          at(2))
    assert len(new) == 1
    record, new = advance(record, False, failing,
                          between(GOOD, failing, record.last_good_at or "", HOST), at(3))
    assert new == ()  # the same change, against the newer good check
    record, _ = advance(record, True, GOOD, (), at(4))
    record, new = advance(record, False, failing,
                          between(GOOD, failing, record.last_good_at or "", HOST), at(5))
    assert len(new) == 1 and len(record.changes) == 2  # it came back: logged again
