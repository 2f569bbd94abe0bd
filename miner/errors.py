"""Errors a front end shows to people (the CLI maps them to exit codes, the app to messages)."""
from __future__ import annotations


class MinerError(Exception):
    """Base class of the engine's user-facing errors."""


class WorkspaceBusyError(MinerError):
    """Another process holds the workspace database; retrying in a moment will work."""

    def __init__(self, path, detail: str = ""):
        self.path = str(path)
        super().__init__(f"工作区正忙，请稍后重试 workspace busy, retry in a moment: {self.path} is locked by "
                         f"another process (an ingest or build){': ' + detail if detail else ''}")
