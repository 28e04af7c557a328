"""The command line. Faces (tui, monitor, sandbox) are imported only when their command runs,
so `--help` and `check` start fast."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

from assure_doctor import __version__, apikey, logs
from assure_doctor.errors import InputError
from assure_doctor.options import (
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_MAX_SKEW,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_PAUSE,
    DEFAULT_TIMEOUT,
    CheckOptions,
)
from assure_doctor.target import Target, parse_resolver, resolve_target

PROG = "assure-doctor"
T = TypeVar("T")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """The contract's target and input options, shared by check, tui and monitor."""
    group = parser.add_argument_group("target")
    group.add_argument("--stack", help="Assure stack, e.g. uk2 → https://api.uk2.sheassure.net")
    group.add_argument("--url", help="full ping URL instead (https://host[:port]/v1/ping)")
    group.add_argument("--api-key-file", metavar="PATH",
                       help=f"file holding the API key (default: ${apikey.ENV_VAR})")
    group.add_argument("--resolver", action="append", default=[], metavar="ADDRESS[:PORT]",
                       help="DNS server to use instead of the system's (repeatable)")
    group.add_argument("--ca-bundle", metavar="PATH", help="extra trust anchors (PEM)")
    tuning = parser.add_argument_group("tuning")
    tuning.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"per network operation (default {DEFAULT_TIMEOUT:g})")
    tuning.add_argument("--retries", type=int, default=DEFAULT_RETRIES, metavar="N",
                        help=f"ping retries after the first attempt (default {DEFAULT_RETRIES})")
    tuning.add_argument("--retry-pause", type=float, default=DEFAULT_RETRY_PAUSE,
                        metavar="SECONDS", help="pause between attempts; Retry-After overrides "
                        f"it (default {DEFAULT_RETRY_PAUSE:g})")
    tuning.add_argument("--max-retry-after", type=float, default=DEFAULT_MAX_RETRY_AFTER,
                        metavar="SECONDS", help="longest Retry-After to wait for before giving "
                        f"up (default {DEFAULT_MAX_RETRY_AFTER:g})")
    tuning.add_argument("--max-skew", type=float, default=DEFAULT_MAX_SKEW, metavar="SECONDS",
                        help=f"clock skew to warn about (default {DEFAULT_MAX_SKEW:g})")
    tuning.add_argument("--no-ping", action="store_true",
                        help="network stages only: send no request carrying the key")
    add_log_options(parser)


def add_log_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument("--log-file", metavar="PATH", help="write the full log (guide format) here")
    group.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")


def configure_logging(args: argparse.Namespace) -> None:
    logs.configure(logging.INFO if args.verbose else logging.ERROR, args.log_file)


def inputs(args: argparse.Namespace, *, interactive: bool = False
           ) -> tuple[Target | None, CheckOptions, apikey.ApiKey | None]:
    """Validate the target options; raises InputError naming the bad input.

    Interactive faces may start without a target, and load the key even with --no-ping
    (the user can switch the ping on later).
    """
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
        ca_bundle=args.ca_bundle,
        no_ping=args.no_ping,
    )
    from assure_doctor.probes import tlsctx  # ssl and certifi: not for --help

    tlsctx.verifying(options.ca_bundle)  # a bad bundle is bad input: refuse it before any traffic
    key = None if args.no_ping and not interactive else apikey.load(args.api_key_file)
    return target, options, key


def _check(args: argparse.Namespace) -> int:
    target, options, key = inputs(args)
    assert target is not None
    import asyncio  # after the inputs: bad input is refused before the engine is loaded

    from assure_doctor.engine import run_check
    from assure_doctor.render import human, json

    configure_logging(args)
    report = asyncio.run(run_check(target, options, key))
    if args.json:
        sys.stdout.write(json.render(report) + "\n")
    else:
        sys.stdout.write(human.render(report, colour=human.use_colour(sys.stdout)))
    return 0 if report.ok else 1


@contextlib.contextmanager
def sandbox_as_target(args: argparse.Namespace) -> Iterator[None]:
    """With --sandbox, run the simulated stack for the command's life and point args at it."""
    if not args.sandbox:
        yield
        return
    from assure_doctor.sandbox.stack import Sandbox

    if args.stack or args.url or getattr(args, "config", None):
        raise InputError("--sandbox: it is the target; give no --stack, --url or --config")
    with Sandbox(args.sandbox) as sandbox:
        args.url, args.resolver = sandbox.url, [sandbox.resolver]
        args.ca_bundle = args.ca_bundle or str(sandbox.ca_bundle)
        args.api_key_file = args.api_key_file or str(sandbox.key_file)
        yield


def _tui(args: argparse.Namespace) -> int:
    from pathlib import Path

    from assure_doctor.tui.app import DoctorApp

    with sandbox_as_target(args):
        target, options, key = inputs(args, interactive=True)
        # Only the log file: lines on stderr would tear the screen.
        logs.configure(logging.CRITICAL + 10, args.log_file)
        DoctorApp(target, options, key, export_dir=Path(args.export_dir),
                  watch_interval=args.watch_interval, ping_interval=args.ping_interval).run()
    return 0


def _monitor(args: argparse.Namespace) -> int:
    from pathlib import Path

    from assure_doctor.monitor import config as monitor_config
    from assure_doctor.monitor import service

    with sandbox_as_target(args):
        settings: dict[str, object] = {}
        if args.config:
            _, base, _ = inputs(args, interactive=True)
            targets, settings = monitor_config.load_file(args.config, base)
        else:
            target, options, key = inputs(args)
            assert target is not None
            targets = [monitor_config.watched_target(target, options, key)]

        def setting(name: str, default: object, kind: Callable[[Any], T]) -> T:
            """The flag if given, else the config file's value, else the default."""
            value = getattr(args, name)
            value = settings.get(name, default) if value is None else value
            try:
                return kind(value)
            except (TypeError, ValueError):
                raise InputError(f"{name} = {value!r}: not a valid {kind.__name__}") from None

        defaults = monitor_config
        config = monitor_config.MonitorConfig(
            targets=tuple(targets),
            interval=setting("interval", defaults.DEFAULT_INTERVAL, float),
            ping_interval=setting("ping_interval", defaults.DEFAULT_PING_INTERVAL, float),
            ping_budget=setting("ping_budget", defaults.DEFAULT_PING_BUDGET, int),
            jitter=setting("jitter", defaults.DEFAULT_JITTER, float),
            state_dir=setting("state_dir", defaults.default_state_dir(), Path),
            allow_exhaustion=args.allow_budget_exhaustion,
        )
        listen = setting("listen", "127.0.0.1:9464", str)
        logs.configure(logging.INFO if args.verbose else logging.WARNING, args.log_file)
        return service.run(config, listen)


def _sandbox(args: argparse.Namespace) -> int:
    from assure_doctor.sandbox.serve import serve

    configure_logging(args)
    return serve(args.scenario, args.list)


def _demo(args: argparse.Namespace) -> int:
    from assure_doctor.sandbox.demo import demo

    configure_logging(args)
    return demo(args.scenario)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Connectivity doctor for the Evotix Assure "
                     "Customer API: finds out why a connection fails, and whose problem it is.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    check = commands.add_parser("check", help="run the staged check once")
    add_target_options(check)
    check.add_argument("--json", action="store_true", help="print the contract's JSON document")
    check.set_defaults(handler=_check)

    tui = commands.add_parser("tui", help="the interactive troubleshooter")
    add_target_options(tui)
    tui.add_argument("--sandbox", metavar="SCENARIO",
                     help="start the simulated stack in-process and point at it")
    tui.add_argument("--export-dir", default=".", metavar="DIR",
                     help="where `e` writes reports (default: here)")
    tui.add_argument("--watch-interval", type=_positive, default=15.0, metavar="SECONDS",
                     help="watch mode: network stages every SECONDS (default 15)")
    tui.add_argument("--ping-interval", type=_positive, default=300.0, metavar="SECONDS",
                     help="watch mode: the key-carrying ping at most every SECONDS "
                     "(default 300)")
    tui.set_defaults(handler=_tui)

    monitor = commands.add_parser("monitor", help="watch targets and serve Prometheus metrics")
    add_target_options(monitor)
    monitor.set_defaults(retry_pause=10.0)  # the guide's pause: the monitor is in no hurry
    group = monitor.add_argument_group("monitor")
    group.add_argument("--config", metavar="FILE", help="TOML file with [[targets]]")
    group.add_argument("--listen", metavar="HOST:PORT",
                       help="serve /metrics here (default 127.0.0.1:9464)")
    group.add_argument("--interval", type=_positive, metavar="SECONDS",
                       help="network stages (no key) every SECONDS (default 60)")
    group.add_argument("--ping-interval", type=_positive, metavar="SECONDS",
                       help="the key-carrying ping every SECONDS (default 900)")
    group.add_argument("--ping-budget", type=int, metavar="N",
                       help="key-carrying requests a day per key, never exceeded (default 100)")
    group.add_argument("--jitter", type=float, metavar="SECONDS",
                       help="random delay added to each network run (default 5)")
    group.add_argument("--state-dir", metavar="DIR",
                       help="where the spent budget is kept (default "
                       "$XDG_STATE_HOME/assure-doctor)")
    group.add_argument("--allow-budget-exhaustion", action="store_true",
                       help="accept a ping cadence the budget cannot pay for all day: pings "
                       "stop once today's budget is spent")
    group.add_argument("--sandbox", metavar="SCENARIO", nargs="?", const="healthy",
                       help="watch the simulated stack (default scenario: healthy)")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except InputError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
