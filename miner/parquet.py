"""Parquet writing in row groups: the Arrow copy of a large frame is held one slice at a time.

``DataFrame.to_parquet`` converts the whole frame to Arrow first; for a million notes with their
tokens that copy is about a gigabyte on top of the frame itself. Writing slices into one file keeps
that overhead at one slice, and the file reads back exactly like ``to_parquet``'s.
"""
from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROWS_PER_GROUP = 100_000


def _has_null_type(arrow_type: pa.DataType) -> bool:
    if pa.types.is_null(arrow_type):
        return True
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _has_null_type(arrow_type.value_type)
    return False


def _non_empty(values: pd.Series) -> pd.Series:
    values = values.dropna()
    if len(values) and values.dtype == object:
        values = values[values.map(lambda v: not hasattr(v, "__len__") or isinstance(v, str) or len(v) > 0)]
    return values


def frame_schema(frame: pd.DataFrame, probe_rows: int = 1_000) -> pa.Schema:
    """The Arrow schema of ``frame``, inferred from its first rows; a column those rows leave
    untyped (all missing, or empty lists) is typed from its first rows that hold a value."""
    schema = pa.Schema.from_pandas(frame.iloc[:probe_rows], preserve_index=False)
    for i, field in enumerate(schema):
        if not _has_null_type(field.type):
            continue
        values = _non_empty(frame[field.name])
        if len(values):
            probe = frame.loc[values.index[:probe_rows], [field.name]]
            schema = schema.set(i, pa.Schema.from_pandas(probe, preserve_index=False).field(0))
    return schema


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``'s types; a lossy cast (2.5 into int64) raises ``ArrowInvalid``.
    (``from_pandas(schema=...)`` would truncate such values silently.)"""
    if not table.schema.equals(schema, check_metadata=False):
        table = table.cast(schema.remove_metadata(), safe=True)
    return table.replace_schema_metadata(schema.metadata)


def _plain(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """``frame`` with pyarrow-backed columns as object columns, so the file's pandas metadata reads
    back as the usual object dtypes (not ``pd.ArrowDtype``): the values are the same."""
    arrow = [c for c in columns if isinstance(frame[c].dtype, pd.ArrowDtype)]
    if not arrow:
        return frame
    return frame.assign(**{c: pd.Series(frame[c].tolist(), index=frame.index, dtype=object) for c in arrow})


def _extra_array(values, lo: int, hi: int, arrow_type: pa.DataType) -> pa.Array:
    """Rows ``lo:hi`` of an extra column; a source with ``arrow_slice`` (a TokenTable) gives Arrow directly."""
    if hasattr(values, "arrow_slice"):
        return values.arrow_slice(lo, hi)
    return pa.array(list(values[lo:hi]), type=arrow_type)


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike, rows_per_group: int = ROWS_PER_GROUP,
                  extra_columns: dict[str, tuple] | None = None) -> None:
    """Write ``frame`` (index dropped) to ``path`` as parquet, converting ``rows_per_group`` rows at
    a time. A frame whose slices do not share one Arrow schema (mixed types in a column) is written
    whole, as ``to_parquet`` would.

    ``extra_columns``: ``{name: (values, arrow_type)}``, columns appended after the frame's, taken
    ``values[lo:hi]`` a row group at a time (a sequence kept out of the frame, e.g. token lists on
    disk); the file reads back as if the frame had held them."""
    extra = extra_columns or {}

    def whole() -> None:
        full = frame.assign(**{name: list(values) for name, (values, _) in extra.items()})
        _plain(full, full.columns).to_parquet(path, index=False)
    if len(frame) <= rows_per_group:
        whole()
        return

    def with_extra(chunk: pd.DataFrame, lo: int) -> pd.DataFrame:
        return chunk.assign(**{name: values[lo:lo + len(chunk)] for name, (values, _) in extra.items()})
    probe = with_extra(frame.iloc[:1_000], 0)
    schema = frame_schema(_plain(probe, probe.columns), probe_rows=min(rows_per_group, 1_000))
    for name, (_, arrow_type) in extra.items():
        schema = schema.set(schema.get_field_index(name), pa.field(name, arrow_type))
    try:
        with pq.ParquetWriter(path, schema) as writer:
            for start in range(0, len(frame), rows_per_group):
                chunk = pa.Table.from_pandas(frame.iloc[start:start + rows_per_group], preserve_index=False)
                for name, (values, arrow_type) in extra.items():
                    chunk = chunk.append_column(name, _extra_array(values, start, start + chunk.num_rows, arrow_type))
                writer.write_table(_conformed(chunk, schema))
    except pa.ArrowException:   # invalid, type or not-implemented cast: the whole frame at once
        whole()
