"""Command line: run, check-config, --version (SPEC "Command line")."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from monitor import __version__
from monitor.config import ConfigError, load_config
from monitor.logs import configure_logging

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="janus-monitor", description="Monitor Janus WebRTC servers (VideoRoom)."
    )
    parser.add_argument("--version", action="version", version=f"janus-monitor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="serve until SIGTERM/SIGINT; SIGHUP reloads")
    run.add_argument("--config", required=True, metavar="FILE")
    check = commands.add_parser("check-config", help="validate a config file")
    check.add_argument("file", metavar="FILE")
    doctor = commands.add_parser(
        "doctor", help="check every target through its Admin API; exit 1 on an error"
    )
    doctor.add_argument("--config", required=True, metavar="FILE")
    doctor.add_argument(
        "--janus-config",
        action="append",
        default=[],
        metavar="[TARGET=]DIR",
        help="a Janus's config folder, to check its rabbitmqevh settings (repeat per target; "
        "TARGET= may be left out when there is one target)",
    )
    return parser


def janus_config_dirs(values: list[str], targets: list[str]) -> dict[str, Path]:
    """``--janus-config`` values -> {target: folder}; raises ValueError naming the problem."""
    folders: dict[str, Path] = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep:
            if len(targets) != 1:
                raise ValueError(f"--janus-config {value}: say which target, as TARGET=DIR")
            name, folder = targets[0], value
        folders[name] = Path(folder)
    return folders


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        try:
            config = load_config(args.file)
        except ConfigError as exc:
            print(f"janus-monitor: invalid config: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        print(f"config OK: {config.summary()}")
        return 0
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"janus-monitor: invalid config: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "doctor":
        from monitor.doctor import doctor  # the Janus clients are not needed by check-config

        try:
            folders = janus_config_dirs(args.janus_config, [t.name for t in config.targets])
        except ValueError as exc:
            print(f"janus-monitor: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        configure_logging("error", "console")
        return asyncio.run(doctor(config, janus_configs=folders))
    configure_logging(config.log.level, config.log.format)
    from monitor.app import serve  # the server stack is not needed by check-config

    try:
        asyncio.run(serve(config, Path(args.config)))
    except OSError as exc:
        print(f"janus-monitor: cannot serve on {config.listen}: {exc}", file=sys.stderr)
        return 1
    return 0
