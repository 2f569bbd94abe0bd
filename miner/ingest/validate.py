"""Header checks and per-chunk row validation: typed clean rows, rejects with reasons, counters.

Header (:func:`prepare_columns`): names are trimmed and lower-cased, renamed by the column map or
preset, checked for duplicates and for the schema's required columns (raise before anything is
written). For a table with text columns (notes) the file needs at least one of them.

Rows (:func:`validate_chunk`): every schema column is parsed (see :mod:`miner.ingest.parse`); a
row with any problem goes to the rejects frame with every reason joined by ``"; "``. A column the
file does not have gets the schema default (``schema.defaults``); the ``text_id`` column (notes:
``note_id``) gets ``"txt-"`` + 16 hex digits of sha256 of the row's text, so identical texts merge.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from miner.ingest.parse import (
    np_bool, parse_bool, parse_datetime, parse_list, parse_number, parse_str, parse_text, strip_controls,
    strip_controls_text,
)
from miner.ingest.presets import normalize_name
from miner.ingest.privacy import hash_ids
from miner.ingest.read import PARSE_ERROR, SOURCE
from miner.schema import COUNTS_CAPPED, TableSchema

__all__ = ["ROW", "REJECT_META", "ChunkResult", "prepare_columns", "validate_chunk", "TEXT_ID_PREFIX"]

ROW = "_row"                       # internal column: 1-based data record number
REJECT_META = ("row", "column", "reason")
REJECT_VALUE_CHARS = 2_000         # original values longer than this are cut in the rejects file
TEXT_ID_PREFIX = "txt-"
_TEXT_ID_SALT = "note-text:"       # not a secret: only makes text ids differ from other sha256 uses
_HAS_TEXT = r"[\p{L}\p{N}]"        # RE2: a letter or digit in any script (not emoji/punctuation)
_INTERNAL = (PARSE_ERROR, SOURCE)


def prepare_columns(
    frame: pd.DataFrame, path: Path, schema: TableSchema, renames: dict[str, str] | None = None,
    check_required: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    """Normalise column names, apply ``renames`` ({normalized header: schema column}), check the header.

    Returns (frame with schema-named columns, ignored column names). Only the first chunk is
    checked: in a later JSONL chunk a key absent from every record just leaves those rows' values
    empty (and rejected if required).
    """
    renames = renames or {}
    names = []
    for i, c in enumerate(frame.columns):
        name = c if c in _INTERNAL else normalize_name(strip_controls_text(str(c))) or f"unnamed_{i + 1}"
        names.append(renames.get(name, name))
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if duplicated:
        raise ValueError(f"{path}: 列名重复 duplicate column(s) {duplicated} (after renaming {renames})"
                         if renames else f"{path}: 列名重复 duplicate column(s) {duplicated}")
    frame = frame.set_axis(names, axis=1)
    only_parse_errors = [n for n in names if n != SOURCE] == [PARSE_ERROR]   # every JSONL line failed
    found = [c for c in names if c not in _INTERNAL]
    if check_required and not only_parse_errors:
        missing = [c for c in schema.required if c not in names]
        texts = schema.text_columns
        no_text = bool(texts) and not any(t in names for t in texts)
        if missing or no_text:
            optional = [c for c in schema.names if c not in schema.required]
            what = missing + ([" or ".join(texts)] if no_text else [])
            raise ValueError(
                f"{path}: 缺少必需列 missing required column(s) {what} for table '{schema.name}'. "
                f"Expected columns — required: {schema.required}"
                + (f" and at least one of {texts}" if texts else "") + f"; optional: {optional}. "
                f"Found: {found}"
            )
    return frame, [c for c in found if c not in schema.names]


def _reject_cell(value) -> str | None:
    """An original value as rejects-file text: lists as Python lists, long values cut and marked."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    else:
        text = str(list(value)) if isinstance(value, (list, np.ndarray)) else str(value)
    if len(text) > REJECT_VALUE_CHARS:
        text = f"{text[:REJECT_VALUE_CHARS]}…[cut, {len(text)} chars in total]"
    return text


@dataclass
class ChunkResult:
    clean: pd.DataFrame           # accepted rows: schema columns + ROW
    rejects: pd.DataFrame         # rejected rows for the rejects file
    problems: pd.DataFrame        # one row per problem: row, column, reason
    control_chars: int = 0        # control characters / escape sequences removed
    control_cells: int = 0        # cells they were removed from
    capped_rows: int = 0          # accepted rows with a capped count ('10w+')
    text_ids: int = 0             # accepted rows whose id was generated from the text


def _parse_column(s: pd.Series, col, schema: TableSchema, tz: str):
    """One column through its parser: (values, missing, problems, capped mask or None)."""
    hashed = col.name in schema.hashed_ids
    if col.dtype == "str":
        return (*parse_str(s, col, hashed), None)
    if col.dtype == "text":
        return (*parse_text(s, col), None)
    if col.dtype in ("int", "float"):
        return parse_number(s, col, integer=col.dtype == "int", allow_capped=COUNTS_CAPPED in schema.names)
    if col.dtype in ("datetime", "date"):
        values, missing, problems = parse_datetime(s, tz)
        if col.dtype == "date":
            values = values.dt.tz_localize(None).dt.normalize()
        return values, missing, problems, None
    if col.dtype == "bool":
        return (*parse_bool(s), None)
    if col.dtype == "list":
        return (*parse_list(s), None)
    raise ValueError(f"schema {schema.name}.{col.name}: unknown dtype {col.dtype!r}")


def _filled(values: pd.Series, default) -> pd.Series:
    """An absent column's values: its schema default in every row (None stays missing)."""
    return values if default is None else values.fillna(default)


def validate_chunk(
    raw: pd.DataFrame, schema: TableSchema, salt: str | None, tz: str, first_row: int
) -> ChunkResult:
    """Parse and check one chunk; ``salt`` hashes ``schema.hashed_ids`` columns (required if present)."""
    n = len(raw)
    rows = np.arange(first_row, first_row + n, dtype=np.int64)
    raw = raw.copy()
    control_chars = control_cells = 0
    for col in schema.columns:
        if col.name in raw.columns and col.dtype in ("str", "text", "list") and col.name not in schema.hashed_ids:
            raw[col.name], chars, cells = strip_controls(raw[col.name])
            control_chars, control_cells = control_chars + chars, control_cells + cells
    for name in schema.hashed_ids:
        if name in raw.columns:
            if salt is None:
                raise ValueError(f"table {schema.name}: column {name} must be hashed but no salt was given")
            raw[name] = hash_ids(raw[name], salt)

    found: list[tuple[np.ndarray, str, object]] = []     # (mask, column, reason str or per-masked array)
    if PARSE_ERROR in raw.columns:
        parse_error = raw[PARSE_ERROR].notna().to_numpy()
        found.append((parse_error, "(line)", raw[PARSE_ERROR].to_numpy()[parse_error]))

    defaults = dict(schema.defaults)
    clean = {}
    capped = np.zeros(n, dtype=bool)
    empty_series = pd.Series([None] * n, index=raw.index, dtype=object)
    for col in schema.columns:
        present = col.name in raw.columns
        values, missing, problems, cap = _parse_column(raw[col.name] if present else empty_series, col, schema, tz)
        if cap is not None:
            capped |= cap
        if not present and col.name in defaults:
            values = _filled(values, defaults[col.name])
        elif col.required and col.dtype != "text" and missing.any() and (present or col.name != schema.text_id):
            what = "id" if col.name in schema.key or col.name in schema.hashed_ids or col.name.endswith("_id") \
                else "value"
            found.append((missing, col.name, f"empty required {what} (必填值为空)"))
        for mask, reason in problems:
            found.append((mask, col.name, reason))
        clean[col.name] = values
    if COUNTS_CAPPED in clean:
        clean[COUNTS_CAPPED] = pd.Series(clean[COUNTS_CAPPED].fillna(False).to_numpy(dtype=bool) | capped,
                                         index=raw.index, dtype="boolean")

    text_cols = schema.text_columns
    text_ids = 0
    if text_cols:
        label = "+".join(text_cols)
        texts = [pa.array(clean[c]) for c in text_cols]
        all_empty = np.logical_and.reduce([np_bool(pc.is_null(t)) for t in texts])
        if all_empty.any():
            found.append((all_empty, label, f"{' and '.join(text_cols)} all empty (标题和正文均为空)"))
        combined = pc.binary_join_element_wise(*[pc.fill_null(t, "") for t in texts], "\n")
        no_text = ~all_empty & ~np_bool(pc.match_substring_regex(combined, _HAS_TEXT))
        if no_text.any():
            found.append((no_text, label, "no text left after removing emoji/punctuation (仅表情或符号)"))
        for c in text_cols:
            clean[c] = clean[c].fillna("")      # an empty title/body is stored as "", not NULL
        if schema.text_id and schema.text_id not in raw.columns:
            hashed = hash_ids(pd.Series(combined.to_pylist(), index=raw.index, dtype=object), _TEXT_ID_SALT)
            clean[schema.text_id] = TEXT_ID_PREFIX + hashed.astype(object)
            text_ids = -1                       # counted on the accepted rows below

    bad = np.zeros(n, dtype=bool)
    parts = []
    unparsed = raw[PARSE_ERROR].notna().to_numpy() if PARSE_ERROR in raw.columns else np.zeros(n, dtype=bool)
    for mask, column, reason in found:
        if column != "(line)" and unparsed.any():   # a line that did not parse: its one reason is enough
            if not isinstance(reason, str):
                reason = np.asarray(reason, dtype=object)[~unparsed[mask]]
            mask = mask & ~unparsed
        positions = np.flatnonzero(mask)
        if not len(positions):
            continue
        bad[positions] = True
        reasons = np.full(len(positions), reason, dtype=object) if isinstance(reason, str) \
            else np.asarray(reason, dtype=object)
        parts.append(pd.DataFrame({"pos": positions, "column": column, "reason": reasons}))
    problems = (
        pd.concat(parts, ignore_index=True).sort_values("pos", kind="stable")
        if parts else pd.DataFrame({"pos": pd.Series(dtype=np.int64), "column": [], "reason": []})
    )
    problems.insert(0, "row", rows[problems["pos"].to_numpy()])

    frame = pd.DataFrame(clean, index=raw.index)
    frame[ROW] = rows
    accepted = frame[~bad].reset_index(drop=True)
    capped_rows = int((capped & ~bad).sum())
    text_ids = int((~bad).sum()) if text_ids else 0

    rejects = pd.DataFrame()
    if bad.any():
        grouped = problems.groupby("pos", sort=True).agg(column=("column", "; ".join), reason=("reason", "; ".join))
        originals = raw.iloc[grouped.index.to_numpy()].drop(columns=[PARSE_ERROR], errors="ignore")
        originals = originals.rename(columns={c: f"orig_{c}" for c in originals.columns if c in REJECT_META})
        originals = originals.rename(columns={SOURCE: "source"})
        originals = originals.astype(object).where(originals.notna(), None)
        for c in originals.columns:
            originals[c] = originals[c].map(_reject_cell)
        rejects = pd.concat(
            [pd.DataFrame({"row": rows[grouped.index.to_numpy()], "column": grouped["column"].to_numpy(),
                           "reason": grouped["reason"].to_numpy()}),
             originals.reset_index(drop=True)],
            axis=1,
        )
    return ChunkResult(accepted, rejects, problems.drop(columns="pos"), control_chars, control_cells,
                       capped_rows, text_ids)
