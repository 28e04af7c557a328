"""`--web.config.file` validated by type: a wrongly typed field is one line naming it (exit 2
at start), and a reload that meets one keeps the running configuration and logs why.

Before, `min_version: [TLS12]` was a traceback at start and was ignored without a word on
reload.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import bcrypt
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assure_doctor.errors import InputError
from assure_doctor.monitor import webconfig
from assure_doctor.monitor.webconfig import WebConfigFile, load
from tests.conftest import run_cli

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()
TLS = "tls_server_config:\n  cert_file: a.pem\n  key_file: a.key\n"


@pytest.mark.parametrize(("text", "field"), [
    (TLS + "  min_version: [TLS12]\n", "tls_server_config.min_version"),
    (TLS + "  max_version: {a: 1}\n", "tls_server_config.max_version"),
    (TLS + "  min_version: 1.2\n", "tls_server_config.min_version"),
    (TLS + "  min_version: TLS13\n  max_version: TLS12\n", "min_version is above max_version"),
    (TLS + "  client_auth_type: 0\n", "tls_server_config.client_auth_type"),
    (TLS + "  client_auth_type: [RequireAndVerifyClientCert]\n",
     "tls_server_config.client_auth_type"),
    ("tls_server_config:\n  cert_file: [a.pem]\n  key_file: a.key\n",
     "tls_server_config.cert_file"),
    ("tls_server_config:\n  cert_file: a.pem\n  key_file: 5\n", "tls_server_config.key_file"),
    (TLS + "  client_ca_file: {x: 1}\n  client_auth_type: RequireAndVerifyClientCert\n",
     "tls_server_config.client_ca_file"),
    ("tls_server_config: 5\n", "tls_server_config"),
    ("basic_auth_users: [alice]\n", "basic_auth_users"),
    ("basic_auth_users:\n  alice: [x]\n", "basic_auth_users.alice"),
    ("basic_auth_users:\n  1: '" + HASH + "'\n", "basic_auth_users"),
    ("basic_auth_users:\n  alice: '" + HASH.replace(HASH[4:6], "٠٤") + "'\n",
     "not a bcrypt hash"),  # a cost in Arabic-Indic digits
    ("basic_auth_users:\n  alice: '" + HASH.replace(HASH[4:6], "99") + "'\n",
     "not a bcrypt hash"),
    ("http_server_config:\n  headers:\n    X-Frame-Options: [deny]\n",
     "http_server_config.headers.X-Frame-Options"),
    ("http_server_config: [headers]\n", "http_server_config"),
    ("[1, 2]\n", "the file must be a mapping"),
    ("a: " + "[" * 5000 + "\n", "not valid YAML"),
])
def test_a_wrongly_typed_field_is_one_line_naming_it(tmp_path: Path, text: str, field: str
                                                     ) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith("--web.config.file: ") and field in message, message
    assert "\n" not in message and str(tmp_path) not in message


@pytest.mark.slow
def test_a_wrongly_typed_field_stops_the_monitor_at_start(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(TLS + "  min_version: [TLS12]\n")
    for extra in (["--check-config"], []):
        run = run_cli("monitor", "--url", "https://127.0.0.1:9/v1/ping", "--no-ping",
                      "--listen", "127.0.0.1:0", "--web.config.file", str(path), *extra,
                      timeout=30)
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "tls_server_config.min_version" in lines[0], run.stderr
        assert "Traceback" not in run.stderr


def test_a_pipe_as_web_config_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "web.yml"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="pipe"):
        load(fifo)


YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["TLS12", "TLS13", "NoClientCert", "RequireAndVerifyClientCert", HASH]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["cert_file", "key_file", "min_version", "max_version",
                         "client_auth_type", "client_ca_file", "headers", "alice",
                         "X-Frame-Options", "colour"]) | st.text(max_size=5), inner,
        max_size=4),
    max_leaves=10)
DOCUMENTS = st.dictionaries(st.sampled_from(["tls_server_config", "basic_auth_users",
                                             "http_server_config"]), YAML_VALUES, max_size=3)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(DOCUMENTS | YAML_VALUES)
def test_any_document_is_a_config_or_an_input_error(tmp_path: Path, document: object) -> None:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(document))
    try:
        config = load(path)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert all(isinstance(user, str) for user in config.users)


def test_a_reload_that_meets_a_wrong_type_keeps_the_config_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    monkeypatch.setattr(webconfig, "RECHECK", 0.0)  # re-read at every look, not once a second
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  alice: '{HASH}'\n")
    watched = WebConfigFile(path)
    good = watched.current()
    assert set(good.users) == {"alice"}
    path.write_text("basic_auth_users:\n  alice: [not, a, hash]\n  bob: 5\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # surely a new mtime
    with caplog.at_level(logging.ERROR, logger="assure_doctor.web"):
        assert watched.current() is good
    said = [record.getMessage() for record in caplog.records]
    assert any("basic_auth_users.alice" in line and "keeping the previous" in line
               for line in said), said
    assert watched.authorised(good, "alice", "secret")
