"""The stored notes as a memory-mapped Arrow file: what a build reads instead of :func:`load_notes`.

:func:`~miner.ingest.merge.load_notes` makes every title, body, tag and id a Python object (about
0.7 KB of private memory a note: 7 GB for 10M notes). A build needs each text once per pass, so
:meth:`Workspace.build <miner.workspace.Workspace.build>` writes the stored table to an Arrow IPC
file instead (:func:`export_notes_file`: DuckDB record batches, ``ORDER BY note_id``) and maps it
(:func:`open_notes_file`).

Data contract of the frame :func:`open_notes_file` returns: the notes schema's columns in order,
one row per note in ``note_id`` order, with the values :func:`load_notes` gives (text ``""`` when
empty, lists ``[]`` when empty, other missing strings ``pd.NA``, datetimes tz-aware in
``config.timezone``). Text, id and list columns are ``pd.ArrowDtype`` over the mapped file — pages
the OS reads on use and may drop, not private memory; counts, times and flags are numpy/pandas
columns as :func:`load_notes` gives them (a few bytes a note).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from miner.config import MinerConfig
from miner.ingest.merge import conform_columns, select_stored
from miner.schema import NOTES, TableSchema
from miner.store import Store

__all__ = ["BATCH_ROWS", "export_notes_file", "write_notes_file", "open_notes_file"]

BATCH_ROWS = 65_536


def _conformed_batch(batch: pa.RecordBatch, schema: TableSchema) -> pa.RecordBatch:
    """Text nulls → ``""`` and list nulls → ``[]`` (as :func:`load_notes`); strings as ``string``."""
    arrays = []
    for col in schema.columns:
        arr = batch.column(batch.schema.get_field_index(col.name))
        if col.dtype in ("str", "text") and not pa.types.is_string(arr.type):
            arr = arr.cast(pa.string())
        if col.dtype == "text":
            arr = pc.fill_null(arr, "")
        elif col.dtype == "list":
            arr = arr.cast(pa.list_(pa.string()))
            if arr.null_count:
                arr = pc.if_else(pc.is_null(arr), pa.scalar([], pa.list_(pa.string())), arr)
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, names=list(schema.names))


def write_notes_file(batches: Iterable[pa.RecordBatch], path: str | os.PathLike,
                     schema: TableSchema = NOTES) -> Path:
    """Write record batches holding ``schema``'s columns to an Arrow IPC file (temp + rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    writer = None
    try:
        with pa.OSFile(str(tmp), "wb") as sink:
            for batch in batches:
                batch = _conformed_batch(batch, schema)
                if writer is None:
                    writer = pa.ipc.new_file(sink, batch.schema)
                writer.write_batch(batch)
            if writer is None:
                raise ValueError("no notes to write")
            writer.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def export_notes_file(config: MinerConfig, path: str | os.PathLike) -> Path:
    """The stored ``notes`` table, ordered by ``note_id``, as an Arrow IPC file at ``path``; DuckDB
    hands it over ``BATCH_ROWS`` rows at a time, so the table is never in memory whole."""
    if not Path(config.db_path).exists():
        raise FileNotFoundError(f"no 'notes' table in {config.db_path}; ingest a notes file first")
    with Store(config.db_path, read_only=True).connect() as con:
        reader = con.execute(select_stored(con, NOTES, config)).fetch_record_batch(BATCH_ROWS)
        return write_notes_file(reader, path)


def _arrow_backed(arrow_type: pa.DataType):
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_list(arrow_type):
        return pd.ArrowDtype(arrow_type)
    return None                     # numbers, times, flags: pyarrow's usual numpy conversion


def open_notes_file(path: str | os.PathLike, config: MinerConfig) -> pd.DataFrame:
    """The notes in ``path`` (see the module's data contract), memory-mapped. The mapping stays
    valid after the file is deleted (POSIX), so a caller may remove the file once it has the frame."""
    table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    frame = table.to_pandas(types_mapper=_arrow_backed)
    return conform_columns(frame, NOTES, config)
