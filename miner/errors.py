"""Errors the front ends catch by type: a :class:`MinerError` carries a message meant for the user.

The CLI prints ``str(exc)`` and exits with ``exc.exit_code``; the app shows ``str(exc)`` as plain
text. Nothing here imports the rest of the package.
"""
from __future__ import annotations

__all__ = ["MinerError", "WorkspaceBusyError", "EXIT_BUSY"]

EXIT_BUSY = 75   # EX_TEMPFAIL (sysexits.h): try again later


class MinerError(Exception):
    """Base class of the errors miner raises on purpose (not bugs)."""

    exit_code = 1


class WorkspaceBusyError(MinerError):
    """Another process holds the workspace database; the operation can be retried later."""

    exit_code = EXIT_BUSY
