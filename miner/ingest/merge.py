"""Staging validated rows in DuckDB and merging them into the stored table; reading tables back.

Duplicates: rows sharing the schema key keep the one with the latest value of the table's first
datetime column outside the key (``published_at`` for notes, ``ts`` for orders); ties, and tables
without such a column, keep the last row in the file. ``upsert`` replaces stored rows with the same
key (so re-ingesting a file is idempotent); ``replace`` makes the table exactly the staged rows.

Schema growth: a stored table that lacks columns the schema added later (optional ones, e.g.
``counts_capped``) gets them on the next upsert (``ALTER TABLE … ADD COLUMN`` with the default),
and :func:`load_table` reads such a table with the defaults filled in.
"""
from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from miner.config import MinerConfig
from miner.ingest.validate import ROW
from miner.schema import INPUT_SCHEMAS, NOTES, Column, TableSchema
from miner.store import Store, table_columns

__all__ = ["resolve_schema", "to_arrow", "stage_ddl", "merge_stage", "check_stored_columns", "load_table",
           "load_notes"]

_DUCK_TYPES = {
    "str": "VARCHAR", "text": "VARCHAR", "int": "BIGINT", "float": "DOUBLE",
    "datetime": "TIMESTAMPTZ", "date": "DATE", "bool": "BOOLEAN", "list": "VARCHAR[]",
}


def resolve_schema(schema: TableSchema | str) -> TableSchema:
    if isinstance(schema, TableSchema):
        return schema
    if schema in INPUT_SCHEMAS:
        return INPUT_SCHEMAS[schema]
    raise ValueError(f"unknown table {schema!r}; known: {sorted(INPUT_SCHEMAS)}")


def _arrow_type(col: Column, tz: str) -> pa.DataType:
    return {
        "str": pa.string(), "text": pa.string(), "int": pa.int64(), "float": pa.float64(),
        "datetime": pa.timestamp("ns", tz=tz), "date": pa.date32(), "bool": pa.bool_(),
        "list": pa.list_(pa.string()),
    }[col.dtype]


def to_arrow(frame: pd.DataFrame, schema: TableSchema, tz: str) -> pa.Table:
    arrays, names = [], []
    for col in schema.columns:
        s = frame[col.name]
        if col.dtype == "list":
            arr = pa.array(s.tolist(), type=pa.list_(pa.string()))
        elif col.dtype == "date":
            arr = pa.array(s, type=pa.timestamp("ns")).cast(pa.date32())
        else:
            arr = pa.array(s, type=_arrow_type(col, tz), from_pandas=True)
        arrays.append(arr)
        names.append(col.name)
    arrays.append(pa.array(frame[ROW].to_numpy(), type=pa.int64()))
    names.append(ROW)
    return pa.Table.from_arrays(arrays, names=names)


def _ddl(schema: TableSchema) -> str:
    return ", ".join(f'"{c.name}" {_DUCK_TYPES[c.dtype]}' for c in schema.columns)


def stage_ddl(schema: TableSchema) -> str:
    return f"CREATE OR REPLACE TEMP TABLE _stage ({_ddl(schema)}, {ROW} BIGINT)"


def _addable(schema: TableSchema, stored: list[str]) -> list[Column]:
    """Schema columns missing from a stored table that can be added (optional or defaulted)."""
    defaults = dict(schema.defaults)
    missing = [c for c in schema.columns if c.name not in stored]
    extra = [c for c in stored if c not in schema.names]
    if extra or any(c.required and c.name not in defaults for c in missing):
        raise ValueError(
            f"stored table '{schema.name}' has columns {stored}, expected {schema.names}; "
            "ingest with mode='replace' to rebuild it"
        )
    return missing


def _sql_default(col: Column, schema: TableSchema) -> str:
    value = dict(schema.defaults).get(col.name)
    if value is None:
        return f"NULL::{_DUCK_TYPES[col.dtype]}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def check_stored_columns(con: duckdb.DuckDBPyConnection, schema: TableSchema) -> None:
    """Raise before any work when the stored table cannot take this schema's rows."""
    stored = table_columns(con, schema.name)
    if stored:
        _addable(schema, stored)


def merge_stage(con: duckdb.DuckDBPyConnection, schema: TableSchema, mode: str, order: str | None) -> tuple[int, int]:
    """Move ``_stage`` into the stored table in one transaction, one row per key.

    Per key the row with the latest ``order`` column (then the highest ``_row``) wins. ``upsert``
    first deletes stored rows whose key is staged; ``replace`` recreates the table. Returns
    (staged, written).
    """
    staged = con.execute("SELECT count(*) FROM _stage").fetchone()[0]
    key = ", ".join(f'"{k}"' for k in schema.key)
    order_by = (f'"{order}" DESC NULLS LAST, ' if order else "") + f"{ROW} DESC"
    columns = ", ".join(f'"{c}"' for c in schema.names)
    con.execute("BEGIN TRANSACTION")
    try:
        if mode == "replace":
            con.execute(f'CREATE OR REPLACE TABLE "{schema.name}" ({_ddl(schema)})')
        else:
            con.execute(f'CREATE TABLE IF NOT EXISTS "{schema.name}" ({_ddl(schema)})')
            for col in _addable(schema, table_columns(con, schema.name)):
                con.execute(f'ALTER TABLE "{schema.name}" ADD COLUMN "{col.name}" {_DUCK_TYPES[col.dtype]} '
                            f"DEFAULT {_sql_default(col, schema)}")
            match = " AND ".join(f't."{k}" = d."{k}"' for k in schema.key)
            con.execute(f'DELETE FROM "{schema.name}" AS t USING (SELECT DISTINCT {key} FROM _stage) AS d '
                        f"WHERE {match}")
        written = con.execute(
            f'INSERT INTO "{schema.name}" ({columns}) SELECT {columns} FROM _stage '
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order_by}) = 1"
        ).fetchone()[0]
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return staged, written


def _as_list(value) -> list:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return []
    return list(value)


def load_table(config: MinerConfig, name: str) -> pd.DataFrame:
    """Read a stored input table with schema dtypes and column order, ordered by the schema key.

    Datetimes are tz-aware in ``config.timezone``; counts ``int64`` (``Int64`` if any is missing);
    flags ``boolean``; lists are lists of ``str`` (``[]`` when empty); text is ``""`` when empty;
    other missing strings are ``None``; ``date`` columns hold ``datetime.date``. Columns the schema
    gained after the table was written come back with their defaults.
    """
    schema = resolve_schema(name)
    if not Path(config.db_path).exists():
        _no_table(config, schema)
    with Store(config.db_path, read_only=True).connect() as con:
        frame = con.execute(select_stored(con, schema, config)).df()
    return conform_columns(frame, schema, config)


def _no_table(config: MinerConfig, schema: TableSchema):
    raise FileNotFoundError(f"no '{schema.name}' table in {config.db_path}; ingest a {schema.name} file first")


def select_stored(con: duckdb.DuckDBPyConnection, schema: TableSchema, config: MinerConfig) -> str:
    """The SELECT that reads a stored table in schema column order, ordered by the schema key, with
    the defaults of columns the schema gained after the table was written."""
    stored = table_columns(con, schema.name)
    if not stored:
        _no_table(config, schema)
    missing = {c.name for c in _addable(schema, stored)}
    select = ", ".join(f'{_sql_default(c, schema)} AS "{c.name}"' if c.name in missing else f'"{c.name}"'
                       for c in schema.columns)
    order = ", ".join(f'"{k}"' for k in schema.key)
    return f'SELECT {select} FROM "{schema.name}" ORDER BY {order}'


def conform_columns(frame: pd.DataFrame, schema: TableSchema, config: MinerConfig) -> pd.DataFrame:
    """``frame``'s columns in the dtypes :func:`load_table` documents (in place, returned).
    Columns already pyarrow-backed (``pd.ArrowDtype``, see :mod:`miner.ingest.notes_file`) stay so."""
    for col in schema.columns:
        s = frame[col.name]
        if isinstance(s.dtype, pd.ArrowDtype):
            continue
        if col.dtype == "datetime":
            s = pd.to_datetime(s, utc=True) if not isinstance(s.dtype, pd.DatetimeTZDtype) else s
            frame[col.name] = s.dt.tz_convert(config.timezone)
        elif col.dtype == "date":
            frame[col.name] = pd.to_datetime(s).dt.date
        elif col.dtype == "int":
            frame[col.name] = s.astype("int64") if s.notna().all() else s.astype("Int64")
        elif col.dtype == "float":
            frame[col.name] = s.astype("float64")
        elif col.dtype == "bool":
            frame[col.name] = s.astype("boolean")
        elif col.dtype == "list":
            frame[col.name] = s.map(_as_list)
        elif col.dtype == "text":
            frame[col.name] = s.fillna("").astype(object)
        else:
            frame[col.name] = s.astype(object).where(s.notna(), None)
    return frame


def load_notes(config: MinerConfig) -> pd.DataFrame:
    """The stored ``notes`` table (see :func:`load_table`), ordered by ``note_id``."""
    return load_table(config, NOTES.name)
