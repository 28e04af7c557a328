"""The command line. Faces (tui, monitor, sandbox) are imported only when their command runs,
so `--help` and `check` start fast."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

from assure_doctor import __version__, apikey
from assure_doctor.bounds import CHECK_BOUNDS as BOUNDS
from assure_doctor.bounds import (
    CUSTOMER_BUDGET,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_MAX_SKEW,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_PAUSE,
    DEFAULT_TIMEOUT,
    MONITOR_BOUNDS,
)
from assure_doctor.errors import InputError
from assure_doctor.kinds import Family

if TYPE_CHECKING:
    from assure_doctor.model import Report
    from assure_doctor.monitor.config import MonitorConfig
    from assure_doctor.options import CheckOptions
    from assure_doctor.pac.location import PacLocation
    from assure_doctor.target import Target

PROG = "assure-doctor"
# Outside 9100-9999, which the Prometheus wiki's default port allocations has given out in full.
DEFAULT_LISTEN = "127.0.0.1:10459"
MONITOR_RETRY_PAUSE = 10.0  # the guide's pause between attempts: the monitor is in no hurry
T = TypeVar("T")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2, options are never
    abbreviated (`--api-key VALUE` is not `--api-key-file`), and no error repeats a value
    from the command line (a user may have pasted the key anywhere)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.endswith("expected one argument"):
            # With -4/-6 defined, argparse reads a value such as -1 as an option.
            message += " (a negative number? write it as --OPTION=VALUE)"
        self.exit(2, f"{PROG}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(_unrecognised(extras))
        return parsed

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise argparse.ArgumentError(action, f"unknown choice (choose from {choices})")


_OPTION_NAME = re.compile(r"^(--[a-z][a-z0-9.-]{1,29}|-[A-Za-z0-9])$")


def _unrecognised(extras: list[str]) -> str:
    """Name unknown options, not values: `--api-key=SECRET` shows as `--api-key`, `-kSECRET`
    as `-k`; anything that does not look like an option name is only counted."""
    options = []
    for arg in extras:
        name = arg.partition("=")[0] if arg.startswith("--") else arg[:2]
        if arg.startswith("-") and _OPTION_NAME.match(name):
            options.append(name)
    others = len(extras) - len(options)
    parts = []
    if options:
        parts.append(f"unknown option {', '.join(dict.fromkeys(options))}")
    if others:
        parts.append(f"{others} unexpected argument{'s' if others > 1 else ''} (not shown)")
    hint = ""
    if any("key" in option.lower() for option in options):
        hint = (f"; the API key is never taken on the command line: use ${apikey.ENV_VAR} or "
                "--api-key-file PATH")
    return "; ".join(parts) + hint


def add_target_options(parser: argparse.ArgumentParser,
                       retry_pause: float = DEFAULT_RETRY_PAUSE) -> None:
    """The contract's target and input options, shared by check, tui and monitor (whose
    default pause between attempts differs)."""
    group = parser.add_argument_group("target")
    group.add_argument("--stack", help="Assure stack, e.g. uk2 → https://api.uk2.sheassure.net")
    group.add_argument("--url", help="full ping URL instead (https://host[:port]/v1/ping)")
    group.add_argument("--api-key-file", metavar="PATH",
                       help=f"file holding the API key (default: ${apikey.ENV_VAR})")
    group.add_argument("--resolver", action="append", default=[], metavar="ADDRESS[:PORT]",
                       help="DNS server to use instead of the system's (repeatable)")
    group.add_argument("--ca-bundle", metavar="PATH", help="extra trust anchors (PEM)")
    group.add_argument("--proxy", metavar="URL", help="http://[user:pass@]host:port: go "
                       "through this proxy (default: HTTPS_PROXY / ALL_PROXY / the system's)")
    group.add_argument("--no-proxy", action="store_true",
                       help="connect directly, whatever the environment says")
    group.add_argument("--pac", metavar="URL_OR_FILE",
                       help="follow this proxy auto-configuration script (http(s) URL or "
                       "file), as the integration would (default: on Windows and macOS, the "
                       "system's PAC / WPAD settings)")
    family = group.add_mutually_exclusive_group()
    family.add_argument("-4", dest="family", action="store_const", const=Family.IPV4,
                        help="use only IPv4 addresses")
    family.add_argument("-6", dest="family", action="store_const", const=Family.IPV6,
                        help="use only IPv6 addresses")
    tuning = parser.add_argument_group("tuning")
    tuning.add_argument("--timeout", type=BOUNDS["timeout"].parse, default=DEFAULT_TIMEOUT,
                        metavar="SECONDS",
                        help=f"per network operation (default {DEFAULT_TIMEOUT:g})")
    tuning.add_argument("--retries", type=BOUNDS["retries"].parse_int, default=DEFAULT_RETRIES,
                        metavar="N",
                        help=f"ping retries after the first attempt (default {DEFAULT_RETRIES})")
    tuning.add_argument("--retry-pause", type=BOUNDS["retry_pause"].parse,
                        default=retry_pause,
                        metavar="SECONDS", help="pause between attempts; Retry-After overrides "
                        f"it (default {retry_pause:g})")
    tuning.add_argument("--max-retry-after", type=BOUNDS["max_retry_after"].parse,
                        default=DEFAULT_MAX_RETRY_AFTER,
                        metavar="SECONDS", help="longest Retry-After to wait for before giving "
                        f"up (default {DEFAULT_MAX_RETRY_AFTER:g})")
    tuning.add_argument("--max-skew", type=BOUNDS["max_skew"].parse, default=DEFAULT_MAX_SKEW,
                        metavar="SECONDS",
                        help=f"clock skew to warn about (default {DEFAULT_MAX_SKEW:g})")
    tuning.add_argument("--no-ping", action="store_true",
                        help="network stages only: send no request carrying the key")
    add_log_options(parser)


def add_history_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-history", action="store_true",
                        help="keep no path history (by default each check is compared with "
                        "the last good one, kept in the platform's state directory)")


def add_log_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument("--log-file", metavar="PATH", help="write the full log (guide format) here")
    group.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")


def configure_logging(args: argparse.Namespace, quiet: str = "ERROR",
                      log_file: str | None = None) -> None:
    """A command's logging: INFO and up on stderr with -v, else `quiet` and up; everything
    in `log_file` or --log-file. (logging is imported here: `--help` sets up none.)"""
    import logging

    from assure_doctor import logs

    level = logging.INFO if args.verbose else logging.getLevelNamesMapping()[quiet]
    logs.configure(level, log_file or args.log_file)


def inputs(args: argparse.Namespace, *, interactive: bool = False
           ) -> tuple[Target | None, CheckOptions, apikey.ApiKey | None]:
    """Validate the target options; raises InputError naming the bad input.

    Interactive faces may start without a target, and load the key even with --no-ping
    (the user can switch the ping on later).
    """
    from assure_doctor import proxyconfig, trust  # not for --help
    from assure_doctor.options import CheckOptions
    from assure_doctor.target import parse_resolver, resolve_target

    if interactive and not (args.stack or args.url):
        target = None
    else:
        target = resolve_target(args.stack, args.url)
    options = CheckOptions(
        timeout=args.timeout,
        retries=args.retries,
        retry_pause=args.retry_pause,
        max_retry_after=args.max_retry_after,
        max_skew=args.max_skew,
        resolvers=tuple(parse_resolver(text) for text in args.resolver),
        trust=trust.load(args.ca_bundle),  # loaded (or refused) here, before any traffic
        no_ping=args.no_ping,
        proxy=proxyconfig.load(args.proxy, args.no_proxy, os.environ,
                               proxyconfig.system_settings(), _pac(args),
                               proxyconfig.system_pac),
        family=getattr(args, "family", None),
    )
    # Read even with --no-ping, so that what is said about the key is true (it is not sent).
    key = apikey.load(args.api_key_file)
    return target, options, key


def _pac(args: argparse.Namespace) -> PacLocation | None:
    """The --pac location, refused here when it is bad input (the pac package loads only
    when the flag is given)."""
    text = getattr(args, "pac", None)
    if text is None:
        return None
    from assure_doctor.pac.fetch import given

    return given(text)


def _run(target: Target, options: CheckOptions, key: apikey.ApiKey | None,
         keep_history: bool) -> Report:
    """One check, its report describing the key as data and, unless --no-history, what
    changed since the last good check (the history is moved on and kept)."""
    import asyncio
    from datetime import UTC, datetime

    from assure_doctor import statedir, warmup
    from assure_doctor.engine import run_check
    from assure_doctor.history.store import History
    warmup.warm()  # the stage times are then the network's, not the imports'
    if not keep_history:
        return asyncio.run(run_check(target, options, key))
    store = History(statedir.default_state_dir())
    record = store.load(target.url)
    report = asyncio.run(run_check(target, options, key, history=record))
    store.keep(target.url, record, report, datetime.now(UTC))
    return report


def _check(args: argparse.Namespace) -> int:
    target, options, key = inputs(args)
    assert target is not None
    configure_logging(args)
    report = _run(target, options, key, not args.no_history)
    if args.json:
        from assure_doctor.render import json  # the face asked for only

        sys.stdout.write(json.render(report) + "\n")
    else:
        from assure_doctor.render import human

        sys.stdout.write(human.render(report, options, colour=human.use_colour(sys.stdout)))
    return 0 if report.ok else 1


def _report(args: argparse.Namespace) -> int:
    """`report --out DIR`: the check, then the support bundle; exit codes like `check`."""

    from assure_doctor.render import bundle

    target, options, key = inputs(args)
    assert target is not None
    out = bundle.prepare(args.out)
    log_path = bundle.start_log(out)  # 0600, never through a link, before the logger appends
    configure_logging(args, log_file=str(log_path))
    report = _run(target, options, key, not args.no_history)
    bundle.write(out, report, options)
    sys.stdout.write(f"Support bundle written to {out}/ ({', '.join(bundle.FILES)})\n")
    sys.stdout.write("".join(f"  {line}\n" for line in bundle.summary(report)))
    return 0 if report.ok else 1


@contextlib.contextmanager
def sandbox_as_target(args: argparse.Namespace) -> Iterator[None]:
    """With --sandbox, run the simulated stack for the command's life and point args at it."""
    if not args.sandbox:
        yield
        return
    from assure_doctor.sandbox.stack import Sandbox

    if args.stack or args.url or getattr(args, "config", None) is not None:
        raise InputError("--sandbox: it is the target; give no --stack, --url or --config")
    with Sandbox(args.sandbox) as sandbox:
        args.url, args.resolver = sandbox.url, [sandbox.resolver]
        args.ca_bundle = args.ca_bundle or str(sandbox.ca_bundle)
        args.api_key_file = args.api_key_file or str(sandbox.key_file)
        if sandbox.pac_url and not (args.no_proxy or args.proxy):
            args.pac = args.pac or sandbox.pac_url
        elif sandbox.proxy_url and not (args.no_proxy or args.pac):
            args.proxy = args.proxy or sandbox.proxy_url
        yield


def _tui(args: argparse.Namespace) -> int:
    import logging
    import tempfile
    from pathlib import Path

    from assure_doctor import logs, statedir
    from assure_doctor.history.store import History
    from assure_doctor.tui.app import DoctorApp

    export_dir = Path(args.export_dir)
    if not args.export_dir.strip() or (export_dir.exists() and not export_dir.is_dir()):
        raise InputError("--export-dir: give a directory")
    with sandbox_as_target(args), contextlib.ExitStack() as cleanup:
        target, options, key = inputs(args, interactive=True)
        # Only the log file: lines on stderr would tear the screen.
        logs.configure(logging.CRITICAL + 10, args.log_file)
        history = None  # --no-history
        if not args.no_history:  # as `check`; a throwaway sandbox's only for the session
            history = History(Path(cleanup.enter_context(tempfile.TemporaryDirectory(
                prefix="assure-tui-"))) if args.sandbox else statedir.default_state_dir())
        app = DoctorApp(target, options, key, export_dir=export_dir,
                        watch_interval=args.watch_interval, ping_interval=args.ping_interval,
                        history=history)
        app.run()
    return app.return_code or 0  # 1 when it stopped on an error of its own


def _monitor(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from assure_doctor.monitor import service

    with sandbox_as_target(args), contextlib.ExitStack() as cleanup:
        if args.sandbox and args.state_dir is None:
            # The sandbox's throwaway key must not touch the real budget and last results.
            args.state_dir = cleanup.enter_context(
                tempfile.TemporaryDirectory(prefix="assure-monitor-"))
        config, base, listen = _monitor_config(args)
        web_file = Path(args.web_config_file) if args.web_config_file else None
        if args.check_config:
            from assure_doctor.monitor.webconfig import WebConfigFile

            WebConfigFile(web_file)
            sys.stdout.write(f"{PROG}: the monitor's configuration is valid "
                             f"({len(config.targets)} target(s))\n")
            return 0
        configure_logging(args, quiet="WARNING")
        reload = (lambda: _monitor_config(args)[0]) if args.config else None
        return service.run(config, service.WebSettings(listen, web_file), base, reload)


def _monitor_config(args: argparse.Namespace
                    ) -> tuple[MonitorConfig, CheckOptions, str]:
    """The monitor's configuration from the flags and --config (read again at each reload)."""
    from pathlib import Path

    from assure_doctor import statedir
    from assure_doctor.monitor import allow
    from assure_doctor.monitor import config as monitor_config
    from assure_doctor.monitor.web import parse_listen

    settings: dict[str, object] = {}
    if args.config is not None:
        _, base, _ = inputs(args, interactive=True)
        targets, settings = monitor_config.load_file(args.config, base)
    else:
        target, base, key = inputs(args)
        assert target is not None
        targets = [monitor_config.watched_target(target, base, key)]

    def setting(name: str, default: T) -> T:
        """The flag if given, else the config file's value, else the default (each already
        checked for its type and range by argparse or load_file)."""
        value = getattr(args, name)
        return cast(T, settings.get(name, default) if value is None else value)

    def given(name: str) -> Any:
        """The flag if given, else the config file's value, else None; MonitorConfig checks
        it, types included (a TOML value can be anything)."""
        value = getattr(args, name)
        return settings.get(name) if value is None else value

    defaults = monitor_config
    state_dir = cast(Path | None, settings.get("state_dir")) if args.state_dir is None else None
    config = monitor_config.MonitorConfig(
        targets=tuple(targets),
        interval=setting("interval", defaults.DEFAULT_INTERVAL),
        ping_interval=setting("ping_interval", defaults.DEFAULT_PING_INTERVAL),
        ping_budget=setting("ping_budget", defaults.DEFAULT_PING_BUDGET),
        jitter=setting("jitter", defaults.DEFAULT_JITTER),
        state_dir=state_dir or statedir.state_directory(
            statedir.default_state_dir() if args.state_dir is None else args.state_dir,
            "--state-dir"),
        allow_exhaustion=args.allow_budget_exhaustion,
        site=given("site"),
        ledger_url=given("ledger"),
        customer_budget=given("customer_budget"),
        probe_allow=tuple(allow.parse(text) for text in args.probe_allow),
    )
    listen = setting("listen", DEFAULT_LISTEN)
    if not listen.strip():
        raise InputError(f"--listen: give HOST:PORT, e.g. {DEFAULT_LISTEN}")
    parse_listen(listen)  # bad input is found before anything starts
    return config, base, listen


def _sandbox(args: argparse.Namespace) -> int:
    from assure_doctor.sandbox.serve import serve

    configure_logging(args)
    return serve(args.scenario, args.list)


def _demo(args: argparse.Namespace) -> int:
    from assure_doctor.sandbox.demo import demo

    configure_logging(args)
    return demo(args.scenario)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Connectivity doctor for the Evotix Assure "
                     "Customer API: finds out why a connection fails, and whose problem it is.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    check = commands.add_parser("check", help="run the staged check once")
    add_target_options(check)
    add_history_option(check)
    check.add_argument("--json", action="store_true", help="print the contract's JSON document")
    check.set_defaults(handler=_check)

    report = commands.add_parser("report", help="run the check and write a support bundle")
    add_target_options(report)
    add_history_option(report)
    report.add_argument("--out", required=True, metavar="DIR",
                        help="folder for report.md, report.json, assure-doctor.log and "
                        "reproduce.txt (created 0700; files 0600)")
    report.set_defaults(handler=_report)

    tui = commands.add_parser("tui", help="the interactive troubleshooter")
    add_target_options(tui)
    add_history_option(tui)
    tui.add_argument("--sandbox", metavar="SCENARIO",
                     help="start the simulated stack in-process and point at it")
    tui.add_argument("--export-dir", default=".", metavar="DIR",
                     help="where `e` writes reports (default: here)")
    tui.add_argument("--watch-interval", type=MONITOR_BOUNDS["interval"].parse, default=15.0,
                     metavar="SECONDS",
                     help="watch mode: network stages every SECONDS (default 15)")
    tui.add_argument("--ping-interval", type=MONITOR_BOUNDS["ping_interval"].parse,
                     default=300.0, metavar="SECONDS",
                     help="watch mode: the key-carrying ping at most every SECONDS "
                     "(default 300)")
    tui.set_defaults(handler=_tui)

    monitor = commands.add_parser("monitor", help="watch targets and serve Prometheus metrics")
    add_target_options(monitor, MONITOR_RETRY_PAUSE)
    group = monitor.add_argument_group("monitor")
    group.add_argument("--config", metavar="FILE", help="TOML file with [[targets]]")
    group.add_argument("--web.listen-address", "--listen", dest="listen", metavar="HOST:PORT",
                       help=f"serve /metrics here (default {DEFAULT_LISTEN})")
    group.add_argument("--web.config.file", dest="web_config_file", metavar="PATH",
                       help="exporter-toolkit web config: TLS and basic auth (re-read when "
                       "it changes)")
    group.add_argument("--check-config", action="store_true",
                       help="validate every input and the config files, then exit (0 valid, "
                       "2 not)")
    group.add_argument("--interval", type=MONITOR_BOUNDS["interval"].parse, metavar="SECONDS",
                       help="network stages (no key) every SECONDS (default 60)")
    group.add_argument("--ping-interval", type=MONITOR_BOUNDS["ping_interval"].parse,
                       metavar="SECONDS",
                       help="the key-carrying ping every SECONDS (default 900)")
    group.add_argument("--ping-budget", type=MONITOR_BOUNDS["ping_budget"].parse_int, metavar="N",
                       help="key-carrying requests a day per key, never exceeded (default 100)")
    group.add_argument("--jitter", type=MONITOR_BOUNDS["jitter"].parse, metavar="SECONDS",
                       help="random delay added to each network run (default 5)")
    group.add_argument("--state-dir", metavar="DIR",
                       help="where the spent budget is kept (default "
                       "$XDG_STATE_HOME/assure-doctor)")
    group.add_argument("--allow-budget-exhaustion", action="store_true",
                       help="accept a ping cadence the budget cannot pay for all day: pings "
                       "stop once today's budget is spent")
    group.add_argument("--sandbox", metavar="SCENARIO", nargs="?", const="healthy",
                       help="watch the simulated stack (default scenario: healthy)")
    group.add_argument("--probe.allow", dest="probe_allow", action="append", default=[],
                       metavar="HOST[:PORT]",
                       help="/probe may also check this host (any port, or only PORT); by "
                       "default only the configured targets and hosts under sheassure.net "
                       "(repeatable)")
    fleet = monitor.add_argument_group("fleet: many sites, one customer")
    fleet.add_argument("--site", metavar="NAME",
                       help="a `site` label on every series (this office or server)")
    fleet.add_argument("--ledger", metavar="PROMETHEUS_URL",
                       help="the Prometheus that scrapes every site's monitor: ask it for the "
                       "customer's spend today before each ping")
    fleet.add_argument("--customer-budget", type=CUSTOMER_BUDGET.parse_int, metavar="N",
                       help="key-carrying requests a day for every site together (with "
                       "--ledger); --ping-budget stays this monitor's own cap")
    monitor.set_defaults(handler=_monitor)

    sandbox = commands.add_parser("sandbox", help="serve a simulated Assure stack on loopback")
    sandbox.add_argument("--scenario", default="healthy", help="fault to simulate")
    sandbox.add_argument("--list", action="store_true", help="list the scenarios and exit")
    add_log_options(sandbox)
    sandbox.set_defaults(handler=_sandbox)

    demo = commands.add_parser("demo", help="diagnose the sandbox's faults, in-process")
    demo.add_argument("scenario", nargs="?", default=None,
                      help="a scenario name, or 'all' (default: a healthy run and a few faults)")
    add_log_options(demo)
    demo.set_defaults(handler=_demo)
    for command in commands.choices.values():
        command.set_defaults(command_parser=command)  # a stray flag is the command's error
    return parser


def main(argv: list[str] | None = None) -> int:
    args, stray = build_parser().parse_known_args(argv)
    if stray:
        args.command_parser.error(_unrecognised(stray))  # `check --help`, not the top's
    try:
        return int(args.handler(args))
    except InputError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
