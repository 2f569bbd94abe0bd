"""The workspace store: one embedded DuckDB file holding the ingested input tables.

Tables are named after their schema (``notes``, ``engagements``, ``audience``, ``aips_stages``,
``orders``, ``spend``). Writers replace or upsert inside a transaction, so a failed ingest leaves
the previous table intact.

Concurrency: DuckDB lets one process write a database file (or several processes read it). A
connection refused because another process holds the file lock is retried with exponential
backoff for ``busy_timeout_s`` seconds, then raised as :class:`~miner.errors.WorkspaceBusyError`
("工作区正忙，请稍后重试 workspace busy, retry in a moment") instead of DuckDB's raw ``IOException``. Every connection
to the workspace file goes through :meth:`Store.connect`.
"""
from __future__ import annotations

import time
from pathlib import Path

import duckdb

from miner.errors import MinerError, WorkspaceBusyError

__all__ = ["Store", "WorkspaceBusyError", "MinerError", "BUSY_TIMEOUT_S", "is_lock_error", "table_columns"]

BUSY_TIMEOUT_S = 5.0          # total time spent retrying a locked database before giving up
_FIRST_WAIT_S = 0.05          # first backoff step; doubles up to _MAX_WAIT_S
_MAX_WAIT_S = 1.0
_LOCK_MESSAGES = ("Could not set lock", "Conflicting lock")


def is_lock_error(exc: BaseException) -> bool:
    """True for DuckDB's "another process holds the file lock" error."""
    return isinstance(exc, duckdb.IOException) and any(m in str(exc) for m in _LOCK_MESSAGES)


class Store:
    """Thin wrapper over a DuckDB database file.

    Parameters
    ----------
    db_path : the database file (``config.db_path``).
    read_only : open read-only (several processes may read at once; none while one writes).
    busy_timeout_s : how long :meth:`connect` retries while another process holds the lock.
    """

    def __init__(self, db_path: str | Path, read_only: bool = False, busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.db_path = Path(db_path)
        self.read_only = read_only
        self.busy_timeout_s = busy_timeout_s

    def connect(self, read_only: bool | None = None) -> duckdb.DuckDBPyConnection:
        """Open the database, retrying while it is locked; raises ``WorkspaceBusyError`` after the timeout."""
        read_only = self.read_only if read_only is None else read_only
        if not read_only:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.db_path.exists():
            raise FileNotFoundError(f"no workspace database at {self.db_path}; run `python -m miner ingest` first")
        deadline = time.monotonic() + max(self.busy_timeout_s, 0.0)
        wait = _FIRST_WAIT_S
        while True:
            try:
                return duckdb.connect(str(self.db_path), read_only=read_only)
            except duckdb.IOException as exc:
                if not is_lock_error(exc):
                    raise
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkspaceBusyError(self.db_path, f"waited {self.busy_timeout_s:g} s") from None
                time.sleep(min(wait, left))
                wait = min(wait * 2, _MAX_WAIT_S)

    def has_table(self, name: str) -> bool:
        if not self.db_path.exists():
            return False
        with self.connect(read_only=True) as con:
            rows = con.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'", [name]
            ).fetchall()
        return bool(rows)

    def columns(self, name: str) -> list[str]:
        """Stored column names of table ``name`` in order (``[]`` when the table or file is absent)."""
        if not self.db_path.exists():
            return []
        with self.connect(read_only=True) as con:
            return table_columns(con, name)


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables an open connection sees."""
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def table_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main' "
        "ORDER BY ordinal_position", [name]
    ).fetchall()
    return [r[0] for r in rows]
