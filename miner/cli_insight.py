"""CLI commands for this area; see miner/cli.py."""


def register(subparsers) -> None:
    """Add this module's subcommands (each sets ``handler=fn(args, config)``)."""
