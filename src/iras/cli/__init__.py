"""The commands: `iras`, one subcommand per module in this package, and `iras-worker`
(`worker`, a program of its own: what an app-tier instance runs).

Each subcommand module offers `register(subparsers)`, which adds its parser and sets
`run` (a function of the parsed arguments returning an exit code) as a default.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from iras import __version__
from iras.cli import bench, classify, gateway, predict, provision, serve, simulate, teardown
from iras.telemetry.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iras",
        description="IRAS: Image Recognition as a Service.",
    )
    parser.add_argument("--version", action="version", version=f"iras {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (serve, gateway, predict, classify, bench, simulate, provision, teardown):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging()  # IRAS_LOG_FORMAT, before the settings load
    except ValueError as error:
        print(f"iras: {error}", file=sys.stderr)
        return 2
    code: int = args.run(args)
    return code
