"""Which anchors verify the API: certifi, the machine's store (truststore), --ca-bundle.

The machine's store is exercised on Linux by pointing OpenSSL's default paths (SSL_CERT_FILE,
SSL_CERT_DIR) at a private bundle in a subprocess: the real store is never touched.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from assure_doctor import trust
from assure_doctor.engine import run_check
from assure_doctor.options import CheckOptions
from assure_doctor.probes import chaincheck
from assure_doctor.proxyconfig import ProxyRules
from assure_doctor.sandbox.stack import HOST, Sandbox, inspection_ca, leaf_for, sandbox_ca
from assure_doctor.target import from_url, parse_resolver
from tests.conftest import FAST, clean_env, run_cli


def private_store(tmp_path: Path, pem: bytes) -> dict[str, str]:
    """An environment whose OpenSSL default store holds only `pem`."""
    store = tmp_path / "store"
    store.mkdir()
    (store / "roots.pem").write_bytes(pem)
    return clean_env(SSL_CERT_FILE=str(store / "roots.pem"), SSL_CERT_DIR=str(store))


def test_interception_root_in_the_os_store_passes_with_a_named_warning(
        sandbox_factory: Callable[[str], Sandbox], tmp_path: Path) -> None:
    sandbox = sandbox_factory("proxy-intercept")
    run = run_cli("check", *sandbox.check_args(), *FAST, "--json",
                  env=private_store(tmp_path, inspection_ca().cert_pem))
    document = run.json()
    assert run.returncode == 0 and document["ok"] is True, document
    tls = next(s for s in document["stages"] if s["name"] == "tls")
    assert tls["status"] == "warn" and tls["condition"] == "tls_certificate_error"
    assert tls["evidence"]["trust"] == {"certifi": False, "system": True, "ca_bundle": False}
    assert tls["evidence"]["inspection_product"] == "Zscaler"
    assert "Python requests" in tls["summary"] and "PowerShell" in tls["summary"]
    assert tls["causes"][0]["id"] == "tls_interception"
    assert "Zscaler" in tls["causes"][0]["advice"]
    assert sandbox.traffic.keyed == 1  # verified by the OS store: the ping may carry the key


def test_interception_root_nowhere_trusted_fails_and_sends_no_key(
        sandbox_factory: Callable[[str], Sandbox], tmp_path: Path) -> None:
    sandbox = sandbox_factory("proxy-intercept")
    run = run_cli("check", *sandbox.check_args(), *FAST, "--json",
                  env=private_store(tmp_path, sandbox_ca().cert_pem))
    tls = next(s for s in run.json()["stages"] if s["name"] == "tls")
    assert run.returncode == 1 and tls["condition"] == "tls_certificate_error"
    assert tls["evidence"]["trust"] == {"certifi": False, "system": False, "ca_bundle": False}
    assert "Zscaler" in tls["summary"]
    assert sandbox.traffic.keyed == 0


def test_trust_evidence_names_each_anchor_set(healthy: Sandbox, tmp_path: Path) -> None:
    run = run_cli("check", *healthy.check_args(), *FAST, "--json",
                  env=private_store(tmp_path, sandbox_ca().cert_pem))
    tls = next(s for s in run.json()["stages"] if s["name"] == "tls")
    assert tls["status"] == "pass"
    assert tls["evidence"]["trust"] == {"certifi": False, "system": True, "ca_bundle": True}


def test_a_bundle_deleted_after_loading_does_not_break_a_check(healthy: Sandbox,
                                                               tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(sandbox_ca().cert_pem)
    options = CheckOptions(timeout=1.5, retry_pause=0.1, trust=trust.load(str(bundle)),
                           resolvers=(parse_resolver(healthy.resolver),), no_ping=True,
                           proxy=ProxyRules(forced_direct=True))
    bundle.unlink()
    report = asyncio.run(run_check(from_url(healthy.url), options, None))
    assert report.ok, report.to_dict()
    assert trust.load(None) is trust.load(None)  # one Trust per configuration


def test_the_loaded_trust_is_reused_until_the_file_changes(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(sandbox_ca().cert_pem)
    first = trust.load(str(bundle))
    assert trust.load(str(bundle)) is first
    assert first.strict is first.strict  # built once, then kept
    bundle.write_bytes(sandbox_ca().cert_pem + inspection_ca().cert_pem)
    assert trust.load(str(bundle)) is not first


@pytest.mark.parametrize("kind", ["fifo", "huge", "garbage", "directory"])
def test_unusable_bundles_are_exit_2(kind: str, tmp_path: Path, healthy: Sandbox) -> None:
    path = tmp_path / "bundle"
    if kind == "fifo":
        os.mkfifo(path)  # reading it would block forever
    elif kind == "huge":
        path.write_bytes(b"-" * (trust.MAX_BUNDLE_BYTES + 1))
    elif kind == "garbage":
        path.write_bytes(b"\x00\xffnot pem")
    else:
        path.mkdir()
    run = run_cli("check", "--url", healthy.url, "--ca-bundle", str(path), "--no-ping",
                  timeout=20)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "--ca-bundle" in run.stderr
    assert "Traceback" not in run.stderr


def test_anchors_read_from_pem_verify_offline_and_an_odd_one_spoils_nothing() -> None:
    """The offline trust verdicts read each anchor set's PEM (no SSL context): the sandbox
    root verifies the sandbox's chain whether or not an unreadable anchor stands beside it."""
    leaf, sent = leaf_for("valid", datetime.now(UTC))
    chain = [leaf.cert, *(issued.cert for issued in sent)]
    garbled = inspection_ca().cert_pem.replace(b"MII", b"MIX", 1)
    for pem in (sandbox_ca().cert_pem, garbled + sandbox_ca().cert_pem,
                sandbox_ca().cert_pem.decode("ascii")):
        store = chaincheck.store_of_pem(pem)
        assert store is not None and chaincheck.verifies(store, chain, HOST) is True
    other = chaincheck.store_of_pem(inspection_ca().cert_pem)
    assert other is not None and chaincheck.verifies(other, chain, HOST) is False
    assert chaincheck.store_of_pem(garbled) is None and chaincheck.store_of_pem(None) is None
