"""Command line: ``python -m miner <command> ...``.

Each command parses its arguments, makes one library call and prints a readable summary. Commands
live in small ``cli_*`` modules, each exposing ``register(subparsers)``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from miner.config import MinerConfig

COMMAND_MODULES = (
    "miner.cli.core",       # ingest, build, topics, predict
    "miner.cli.audience",   # audience, metrics, simulate
    "miner.cli.insight",    # trends, brief, search
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m miner", description="选题雷达 Topic Miner")
    parser.add_argument("--config", help="JSON config file (see miner/config.py for keys)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config = MinerConfig.load(args.config)
    try:
        return int(args.handler(args, config) or 0)
    except (FileNotFoundError, ValueError) as exc:   # user-facing errors: one clear line, no traceback
        print(f"错误 error: {exc}", file=sys.stderr)
        return 2
