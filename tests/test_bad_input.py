"""Bad input through the command line: one line on stderr, exit 2, never a traceback, and
never the key (a user may paste it where a path or an option belongs).

The tables run `cli.main` in-process (fast; an escaping exception fails the test), and a sample
of them through a real process.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from pathlib import Path

import pytest

from assure_doctor import cli
from tests.conftest import Run, clean_env, run_cli

KEY = "ZZ_PlantedKey0123456789abcd"
URL = "https://127.0.0.1:9/v1/ping"  # should a check start after all, it stays on loopback
LOOPBACK = ["--url", URL]
MONITOR = ["monitor", *LOOPBACK, "--no-ping", "--listen", "127.0.0.1:0"]


def run_main(*args: str, env: dict[str, str] | None = None) -> Run:
    """`assure-doctor ARGS` in this process, with `env` as the whole environment."""
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env if env is not None else clean_env())
    start = time.monotonic()
    codes: list[int] = []
    escaped: list[BaseException] = []

    def run() -> None:
        try:
            codes.append(cli.main(list(args)))
        except SystemExit as exc:  # argparse's usage errors
            codes.append(int(exc.code or 0))
        except BaseException as exc:  # a traceback the user would see: fail with it
            escaped.append(exc)

    # In a thread, so that input wrongly accepted (a monitor that starts) fails, not hangs.
    worker = threading.Thread(target=run, daemon=True)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            worker.start()
            worker.join(20)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if escaped:
        raise escaped[0]
    assert codes, f"still running after 20 s: the input was accepted ({err.getvalue()[-300:]})"
    return Run(codes[0], out.getvalue(), err.getvalue(), time.monotonic() - start)


def one_line_exit_2(run: Run, *words: str) -> str:
    assert run.returncode == 2, (run.returncode, run.stderr)
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert len(lines[0]) < 600 and "\x1b" not in lines[0], lines[0][:600]  # bounded, inert
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# --- the command line -------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "words"), [
    (["monitor", *LOOPBACK, "--interval", "inf"], ["--interval", "finite"]),
    (["monitor", *LOOPBACK, "--jitter", "nan"], ["--jitter", "finite"]),
    (["monitor", *LOOPBACK, "--jitter", "inf"], ["--jitter", "finite"]),
    (["monitor", *LOOPBACK, "--ping-interval", "0"], ["--ping-interval"]),
    (["monitor", *LOOPBACK, "--ping-budget", "-1"], ["--ping-budget"]),
    (["monitor", *LOOPBACK, "--ping-budget", "10001"], ["--ping-budget", "10000"]),
    (["monitor", *LOOPBACK, "--ping-budget", "1.9"], ["--ping-budget", "whole number"]),
    ([*MONITOR, "--state-dir", "/proc/self"], ["--state-dir", "/proc"]),
    ([*MONITOR, "--state-dir", "/proc/new/folder"], ["--state-dir", "/proc"]),
    ([*MONITOR, "--state-dir", "/etc/hostname"], ["--state-dir", "not a directory"]),
    ([*MONITOR, "--state-dir", ""], ["--state-dir", "give a directory"]),
    (["monitor", *LOOPBACK, "--no-ping", "--listen", ""], ["--listen", "HOST:PORT"]),
    (["check", *LOOPBACK, "--resolver", "::1:53"], ["--resolver", "[ADDRESS]:PORT"]),
    (["check", *LOOPBACK, "--resolver", "fe80::1:5353"], ["--resolver", "[ADDRESS]:PORT"]),
    (["check", *LOOPBACK, "--timeout", "nan"], ["--timeout", "finite"]),
    (["check", *LOOPBACK, "--timeout", "inf"], ["--timeout", "finite"]),
    (["check", *LOOPBACK, "--timeout", "-1"], ["--timeout", "--OPTION=VALUE"]),
    (["check", *LOOPBACK, "--timeout=-1.0"], ["--timeout", "-1:", "more than 0"]),
    (["check", *LOOPBACK, "--timeout", "1e309"], ["--timeout", "finite"]),
    (["check", *LOOPBACK, "--timeout", "0"], ["--timeout"]),
    (["check", *LOOPBACK, "--retries", "-1"], ["--retries"]),
    (["check", *LOOPBACK, "--retries", "11"], ["--retries", "10"]),
    (["check", *LOOPBACK, "--retries", "2.5"], ["--retries", "whole number"]),
    (["check", *LOOPBACK, "--retry-pause", "-0.5"], ["--retry-pause"]),
    (["check", *LOOPBACK, "--max-retry-after", "nan"], ["--max-retry-after"]),
    (["check", *LOOPBACK, "--max-skew", "0"], ["--max-skew"]),
    (["check", *LOOPBACK, "--max-skew", "-inf"], ["--max-skew"]),
    (["check", *LOOPBACK, "--api-key-file", "/dev/zero"], ["--api-key-file", "regular file"]),
    (["check", *LOOPBACK, "--api-key-file", "/"], ["--api-key-file", "directory"]),
    (["check", *LOOPBACK, "--api-key-file", "/proc/self/status"], ["--api-key-file", "kernel"]),
    (["monitor", "--config", "/sys/kernel/mm/transparent_hugepage/enabled"], ["--config"]),
    (["check", *LOOPBACK, "--no-ping", "--ca-bundle", "/dev/zero"], ["--ca-bundle", "regular"]),
    (["monitor", "--config", "/dev/zero"], ["--config", "regular file"]),
    (["monitor", "--config", "/"], ["--config", "directory"]),
    (["tui", *LOOPBACK, "--watch-interval", "inf"], ["--watch-interval"]),
    (["check", *LOOPBACK, "--log-file", ""], ["--log-file"]),
    (["check", *LOOPBACK, "--log-file", "/"], ["--log-file"]),
    (["monitor", "--config", ""], ["--config"]),
    (["tui", *LOOPBACK, "--export-dir", "/etc/hostname"], ["--export-dir"]),
    (["check", "--url", "https://" + "a" * 1_000_000], ["--url", "longer than"]),
    (["check", "--url", "https://x\x1b]0;pwned\x07/"], ["--url", "control characters"]),
    (["check", "--url", "https://host:٣٣٣٣/"], ["--url", "port"]),
    ([*MONITOR[:-2], "--listen", "127.0.0.1:²"], ["--web.listen-address", "HOST:PORT"]),
    ([*MONITOR[:-2], "--listen", ":٣٣٣٣"], ["--web.listen-address", "HOST:PORT"]),
    ([*MONITOR[:-2], "--listen", "127.0.0.1:1_0"], ["--web.listen-address", "HOST:PORT"]),
    ([*MONITOR, "--customer-budget", "١٠", "--ledger", "http://127.0.0.1:9"],
     ["--customer-budget"]),
    (["check", *LOOPBACK, "--pac", ""], ["--pac", "empty"]),
    (["check", *LOOPBACK, "--pac", "gopher://pac.example/x.pac"], ["--pac", "http://"]),
    (["check", *LOOPBACK, "--pac", "http://pac.example:٣٣/x.pac"], ["--pac", "port"]),
    (["check", *LOOPBACK, "--pac", "/nonexistent/proxy.pac"], ["--pac", "cannot read"]),
    (["check", *LOOPBACK, "--pac", "/dev/zero"], ["--pac", "regular file"]),
    (["check", *LOOPBACK, "--pac", "/"], ["--pac", "directory"]),
    (["check", *LOOPBACK, "--pac", "http://x/p.pac", "--proxy", "http://p:1"],
     ["--proxy and --pac", "one of them"]),
    (["check", *LOOPBACK, "--pac", "http://x/p.pac", "--no-proxy"],
     ["--pac and --no-proxy", "one of them"]),
    (["tui", *LOOPBACK, "--pac", "/dev/zero"], ["--pac", "regular file"]),
    ([*MONITOR, "--pac", "ftp://x/p.pac"], ["--pac", "http://"]),
])
def test_bad_flags(args: list[str], words: list[str], tmp_path: Path) -> None:
    one_line_exit_2(run_main(*args, env=clean_env(ASSURE_API_KEY=KEY)), *words)


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["monitor", *LOOPBACK, "--interval", "inf"], [*MONITOR, "--state-dir", ""],
    ["check", *LOOPBACK, "--api-key", KEY], ["check", *LOOPBACK, "--api-key-file", "/dev/zero"],
])
def test_bad_flags_in_a_real_process(args: list[str]) -> None:
    run = run_cli(*args, env=clean_env(ASSURE_API_KEY=KEY), timeout=20)
    one_line_exit_2(run)
    assert KEY not in run.stderr


def test_a_pipe_as_key_file_config_or_log_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for args, words in ((["check", *LOOPBACK, "--api-key-file", str(fifo)], "pipe"),
                        (["monitor", "--config", str(fifo)], "pipe"),
                        (["check", *LOOPBACK, "--no-ping", "--log-file", str(fifo)], "--log-file")):
        run = run_main(*args)
        one_line_exit_2(run, words)
        assert run.seconds < 10


def test_an_oversized_config_or_key_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("# padding\n" * 120_000)  # over 1 MiB
    one_line_exit_2(run_main("monitor", "--config", str(big)), "--config", "1 MiB")
    key = tmp_path / "key"
    key.write_text("k" * 5000)  # over 4 KiB
    one_line_exit_2(run_main("check", *LOOPBACK, "--api-key-file", str(key)), "4 KiB")


# --- the TOML file -----------------------------------------------------------------------------
GOOD = f'[[targets]]\nurl = "{URL}"\nno_ping = true\n'


@pytest.mark.parametrize(("text", "words"), [
    (f"interval = inf\n{GOOD}", ["interval = inf", "finite"]),
    (f"interval = nan\n{GOOD}", ["interval = nan"]),
    (f"interval = true\n{GOOD}", ["interval = True", "a number"]),
    (f"jitter = -inf\n{GOOD}", ["jitter = -inf"]),
    (f"ping_interval = 0\n{GOOD}", ["ping_interval = 0"]),
    (f"ping_budget = 1.9\n{GOOD}", ["ping_budget = 1.9", "whole number"]),
    (f"ping_budget = 10001\n{GOOD}", ["ping_budget = 10001"]),
    (f'ping_budget = "10"\n{GOOD}', ["ping_budget = '10'"]),
    (f'state_dir = "/proc/self/x"\n{GOOD}', ["state_dir =", "/proc"]),
    (f'state_dir = ""\n{GOOD}', ["state_dir ="]),
    (f'state_dir = "/etc/hostname"\n{GOOD}', ["state_dir =", "not a directory"]),
    (f"state_dir = 5\n{GOOD}", ["state_dir = 5", "a string"]),
    (f'listen = ""\n{GOOD}', ["listen ="]),
    ("[[targets]]\nurl = 5\nno_ping = true\n", ["#1", "url = 5", "a string"]),
    ("[[targets]]\nstack = 5\nno_ping = true\n", ["#1", "stack = 5"]),
    ("[[targets]]\nstack = 'uk 2'\nno_ping = true\n", ["#1", "stack = 'uk 2'"]),
    (f'{GOOD}name = 5\n', ["name = 5", "a string"]),
    (f'{GOOD}name = "[1]"\n{GOOD}name = "[1]"\n', ["#1", "name = '[1]'", "'['"]),
    (f'{GOOD}name = "a\\u001b]0;x\\u0007"\n', ["name =", "control character"]),
    (f'{GOOD}name = "a\\nb"\n', ["name =", "control character"]),
    (f'{GOOD}name = "{"x" * 65}"\n', ["name =", "64"]),
    (GOOD + 'name = "a\\"} 1\\nfake"\n', ["name ="]),
    ('[[targets]]\nurl = "' + URL + '"\nno_ping = "false"\n', ["no_ping = 'false'", "true or"]),
    (f"{GOOD}timeout = -1\n", ["timeout = -1"]),
    (f"{GOOD}timeout = nan\n", ["timeout = nan"]),
    (f'{GOOD}timeout = "5"\n', ["timeout = '5'"]),
    (f'{GOOD}resolvers = ["::1:53"]\n', ["resolvers = '::1:53'", "[ADDRESS]:PORT"]),
    (f'{GOOD}resolvers = "127.0.0.1"\n', ["resolvers =", "a list"]),
    (f"{GOOD}resolvers = [53]\n", ["resolvers =", "a string"]),
    (f'{GOOD}{GOOD}ca_bundle = "/dev/zero"\n', ["[[targets]] #2", "ca_bundle =", "regular"]),
    (f"{GOOD}ca_bundle = 5\n", ["ca_bundle = 5"]),
    ('[[targets]]\nurl = "' + URL + '"\nkey_file = "/dev/zero"\n', ["key_file =", "regular"]),
    ('[[targets]]\nurl = "' + URL + '"\nkey_env = "ASSURE_DOCTOR_TEST_UNSET"\n',
     ["key_env", "ASSURE_DOCTOR_TEST_UNSET is not set"]),
    ('[[targets]]\nurl = "' + URL + '"\nkey_env = "NOT A NAME"\n', ["key_env", "variable name"]),
    ("targets = 5\n", ["[[targets]]"]),
    (f"{GOOD}x = {'[' * 50_000}\n", ["nested too deeply"]),
    ("[[targets]]\n", ["#1", "no target"]),
    (f'{GOOD}pac = "gopher://pac.example/x.pac"\n', ["#1", "pac =", "http://"]),
    (f'{GOOD}pac = "/dev/zero"\n', ["#1", "pac =", "regular file"]),
    (f"{GOOD}pac = 5\n", ["#1", "pac = 5", "a string"]),
])
def test_bad_toml(text: str, words: list[str], tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(text)
    run = run_main("monitor", "--config", str(path), "--listen", "127.0.0.1:0")
    line = one_line_exit_2(run, *words)
    # TOML errors name the file's keys, not the command line's flags.
    flags = ("--url", "--stack", "--ca-bundle", "--api-key-file", "--interval", "--jitter",
             "--ping-budget", "--state-dir", "--resolver", "--timeout", "--listen")
    assert not any(flag in line for flag in flags), line


def test_bad_toml_in_the_ca_bundle_of_the_second_target_names_it(tmp_path: Path) -> None:
    bundle = tmp_path / "not-pem.pem"
    bundle.write_text("not a certificate\n")
    path = tmp_path / "targets.toml"
    path.write_text(f'{GOOD}{GOOD}name = "second"\nca_bundle = "{bundle}"\n')
    run = run_main("monitor", "--config", str(path), "--listen", "127.0.0.1:0")
    one_line_exit_2(run, "[[targets]] #2", "ca_bundle =", "not a PEM")


# --- the key never escapes -----------------------------------------------------------------
def key_file_with(tmp_path: Path, text: str) -> str:
    path = tmp_path / "key"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("place", [
    "--api-key VALUE", "--api-key=VALUE", "--apikey VALUE", "--key VALUE", "-k VALUE",
    "-kVALUE", "--VALUE", "-VALUE", "--x-api-key=VALUE",
    "--api-key-f VALUE", "--api-key-file VALUE", "--api-key-file=VALUE", "VALUE",
    "check VALUE", "check --timeout VALUE", "check --retries VALUE", "check --pac VALUE",
    "monitor --ping-budget VALUE", "monitor --config VALUE", "check --ca-bundle VALUE",
])
def test_a_key_pasted_on_the_command_line_is_never_echoed(place: str) -> None:
    words = place.replace("VALUE", KEY).split()
    if words[0] not in ("check", "monitor", KEY):
        words = ["check", *words]
    no_ping = [] if "api-key-file" in place else ["--no-ping"]  # or the file is never read
    args = [*words[:1], *LOOPBACK, *no_ping, *words[1:]] if words[0] != KEY else words
    run = run_main(*args)
    assert run.returncode == 2
    assert KEY not in run.stderr + run.stdout
    assert KEY[3:15] not in run.stderr  # nor a part of it
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


@pytest.mark.parametrize(("text", "words"), [
    (f"ASSURE_API_KEY={KEY}\n", ["assignment"]),
    (f"export ASSURE_API_KEY={KEY}\n", ["assignment"]),
    (f"export ASSURE_API_KEY='{KEY}'\n", ["assignment"]),
    (f"x-api-key: {KEY}\n", ["header"]),
    (f'"{KEY}"\n', ["quotes"]),
    (f"{KEY}\n\n", ["whitespace"]),
    (f"{KEY} \n", ["whitespace"]),
    (f"{KEY}\x1b[2J\n", ["control"]),
])
def test_a_malformed_key_is_refused_the_same_from_file_and_env(
        text: str, words: list[str], tmp_path: Path) -> None:
    from_file = run_main("check", *LOOPBACK, "--api-key-file", key_file_with(tmp_path, text))
    from_env = run_main("check", *LOOPBACK, env=clean_env(ASSURE_API_KEY=text))
    for run, source in ((from_file, "--api-key-file"), (from_env, "ASSURE_API_KEY")):
        one_line_exit_2(run, source, *words)
        assert KEY not in run.stderr and KEY[3:15] not in run.stderr
    assert from_file.stderr.replace("--api-key-file", "X") == \
        from_env.stderr.replace("ASSURE_API_KEY", "X")


def test_toml_key_file_errors_never_echo_the_path(tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text(f'[[targets]]\nurl = "{URL}"\nkey_file = "{KEY}"\n')
    run = run_main("monitor", "--config", str(path), "--listen", "127.0.0.1:0")
    one_line_exit_2(run, "key_file =")
    assert KEY not in run.stderr


# --- secrets in URLs, and values never echoed ------------------------------------------------
SECRET = "S3cr/etPW"  # the `/` ends urllib's idea of the host: it then reads "S3cr" as a port


@pytest.mark.slow
@pytest.mark.parametrize(("args", "env", "name"), [
    (["check", *LOOPBACK, "--no-ping", "--proxy", f"http://u:{SECRET}@host:8080"], {},
     "--proxy"),
    (["check", *LOOPBACK, "--no-ping"], {"HTTPS_PROXY": f"http://u:{SECRET}@host:8080"},
     "HTTPS_PROXY"),
    (["check", *LOOPBACK, "--no-ping"], {"https_proxy": f"u:{SECRET}@host:8080"}, "https_proxy"),
    (["check", "--url", f"https://u:{SECRET}@host:8080/v1/ping", "--no-ping"], {}, "--url"),
    ([*MONITOR, "--ledger", f"http://u:{SECRET}@host:9090", "--customer-budget", "5"], {},
     "--ledger"),
])
def test_a_password_in_a_url_that_does_not_parse_is_never_shown(
        args: list[str], env: dict[str, str], name: str) -> None:
    for run in (run_main(*args, env=clean_env(**env)),
                run_cli(*args, env=clean_env(**env), timeout=30)):
        line = one_line_exit_2(run, name)
        for part in (SECRET, "S3cr", "etPW"):
            assert part not in run.stderr + run.stdout, line


@pytest.mark.parametrize(("args", "value"), [
    ([*MONITOR, "--site", "a site with spaces"], "a site with spaces"),
    ([*MONITOR, "--ledger", "http://127.0.0.1:9", "--customer-budget", "9999999"], "9999999"),
    ([*MONITOR, "--ledger", "http://127.0.0.1:9", "--customer-budget", "lots"], "lots"),
    ([*MONITOR[:-2], "--listen", "not-a-listen-value"], "not-a-listen-value"),
    ([*MONITOR, "--probe.allow", "evil.example/path"], "evil.example"),
    ([*MONITOR, "--probe.allow", "evil.example:٣"], "evil.example"),
])
def test_fleet_and_listen_errors_name_the_flag_not_the_value(args: list[str], value: str
                                                             ) -> None:
    line = one_line_exit_2(run_main(*args))
    assert value not in line


@pytest.mark.slow
def test_a_listen_host_that_does_not_resolve_is_not_echoed() -> None:
    # In a process of its own: the monitor gets as far as binding, after taking over logging.
    run = run_cli(*MONITOR[:-2], "--listen", "no such host name:1", timeout=30)
    line = one_line_exit_2(run, "--web.listen-address", "cannot listen")
    assert "no such host name" not in line


@pytest.mark.slow
def test_a_no_proxy_port_that_is_no_number_matches_nothing_and_crashes_nothing() -> None:
    env = clean_env(HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="host:², 127.0.0.1:٣, [::1]:²")
    run = run_cli("check", *LOOPBACK, "--no-ping", "--json", "--timeout", "2", env=env,
                  timeout=60)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    stages = run.json()["stages"]
    assert not any(stage["condition"] == "internal_error" for stage in stages), stages
    tcp = next(stage for stage in stages if stage["name"] == "tcp")
    assert tcp["condition"] == "proxy_connect_failed"  # no entry exempted the target
