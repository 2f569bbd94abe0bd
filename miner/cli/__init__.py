"""Command line: ``python -m miner <command> ...``.

Each command parses its arguments, makes one :class:`miner.workspace.Workspace` call and prints a
readable summary (:mod:`miner.cli.render`). Commands live in small modules, each exposing
``register(subparsers)``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from miner.config import MinerConfig

COMMAND_MODULES = (
    "miner.cli.core",       # ingest, build, topics, predict
    "miner.cli.audience",   # audience, metrics, simulate
    "miner.cli.insight",    # trends, opportunity, brief, search
    "miner.cli.planner",    # scorecard, tgi
    "miner.cli.accounts",   # user add
)
EXIT_USAGE = 2
EXIT_BUSY = 75                # EX_TEMPFAIL: the workspace is locked by another process; retry


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m miner", description="选题雷达 Topic Miner")
    parser.add_argument("--config", help="JSON config file (see miner/config.py for keys)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from miner.errors import MinerError, WorkspaceBusyError
    from miner.cli.render import clean
    parser = build_parser()
    args = parser.parse_args(argv)
    config = MinerConfig.load(args.config)
    try:
        return int(args.handler(args, config) or 0)
    except WorkspaceBusyError as exc:
        print(f"错误 error: {clean(exc)}", file=sys.stderr)
        return EXIT_BUSY
    except (FileNotFoundError, ValueError, LookupError, MinerError) as exc:   # user-facing: one clear line, no traceback
        print(f"错误 error: {clean(exc)}", file=sys.stderr)
        return EXIT_USAGE
