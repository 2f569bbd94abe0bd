"""The workspace store: one embedded DuckDB file holding the ingested input tables.

Tables are named after their schema (``notes``, ``engagements``, ``audience``, ``aips_stages``,
``orders``, ``spend``). Writers replace or upsert inside a transaction, so a failed ingest leaves
the previous table intact.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd


class Store:
    """Thin wrapper over a DuckDB database file."""

    def __init__(self, db_path: str | Path, read_only: bool = False):
        self.db_path = Path(db_path)
        self.read_only = read_only

    def connect(self) -> duckdb.DuckDBPyConnection:
        if not self.read_only:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.db_path.exists():
            raise FileNotFoundError(f"no workspace database at {self.db_path}; run `python -m miner ingest` first")
        return duckdb.connect(str(self.db_path), read_only=self.read_only)

    def has_table(self, name: str) -> bool:
        if not self.db_path.exists():
            return False
        with duckdb.connect(str(self.db_path), read_only=True) as con:
            rows = con.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]
            ).fetchall()
        return bool(rows)

    def read(self, name: str) -> pd.DataFrame:
        with self.connect() as con:
            return con.execute(f'SELECT * FROM "{name}"').df()

    def replace(self, name: str, frame: pd.DataFrame) -> None:
        """Replace table ``name`` with ``frame`` atomically (one transaction)."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.register("_incoming", frame)
                con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _incoming')
                con.unregister("_incoming")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
