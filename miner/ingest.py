"""Schema-driven ingest: read a table file, validate every row, write good rows to the store.

One code path serves every input table in :mod:`miner.schema` (notes, engagements, audience, AIPS,
orders, spend)::

    report = ingest_file("notes.csv", NOTES, config)        # upsert by the schema key
    print(report.summary())
    notes = load_notes(config)

Reading
    CSV/TSV, JSONL, Parquet and Excel (.xlsx). Text files may be UTF-8, UTF-8 with BOM, UTF-16 (BOM)
    or GBK/GB18030 (tried in that order, strictly). CSV, JSONL and Excel cells are read as strings,
    so validation sees the value the user typed (``00123`` stays ``00123``). Large CSV, JSONL and
    Parquet files are read in chunks of ``chunk_rows`` rows; validation is vectorised per chunk.

Validation
    Required columns missing from the file raise ``ValueError`` before anything is written. Bad rows
    (unparseable date, non-integer or negative count, value outside a closed vocabulary, empty
    required value, no text, over-long text, ...) go to a rejects file; nothing is dropped silently:
    ``rows_read == rows_accepted + rows_rejected + duplicates_resolved``.

Rejects file
    ``<rejects_dir>/<table>-<input stem>.csv`` (UTF-8 with BOM so Excel shows Chinese), rewritten on
    every ingest of that file and removed when a re-ingest has no rejects. Columns: ``row`` (1-based
    data record number: the first record after the header is row 1, so in a spreadsheet it sits on
    line ``row + 1``; in a JSONL file blank lines are not counted), ``column`` and ``reason`` (several
    problems in one row are joined with ``"; "``), then the row's original values as read (hashed id
    columns already hashed; values over 2,000 characters are cut and marked).

Duplicates
    Rows sharing the schema key keep the one with the latest value of the table's first datetime
    column outside the key (``published_at`` for notes, ``ts`` for orders); ties, and tables without
    such a column, keep the last row in the file. Across ingests (``mode="upsert"``) an incoming row
    replaces the stored row with the same key, so re-ingesting a file is idempotent.

Privacy
    Columns listed in ``schema.hashed_ids`` (``user_id``) are replaced by
    ``sha256(config.id_salt + raw_id)`` (first 16 hex digits) before validation results are written
    anywhere: the store and the rejects file only ever see the hash.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from miner.config import MinerConfig
from miner.schema import INPUT_SCHEMAS, NOTES, Column, TableSchema, split_tags
from miner.store import Store

__all__ = [
    "RowError",
    "IngestReport",
    "detect_encoding",
    "iter_table_chunks",
    "read_table_file",
    "hash_ids",
    "ingest_file",
    "load_table",
    "load_notes",
    "MAX_TEXT_CHARS",
    "MAX_STR_CHARS",
]

MAX_TEXT_CHARS = 100_000       # longest accepted title/body (characters)
MAX_STR_CHARS = 1_000          # longest accepted id/label value
CHUNK_ROWS = 500_000           # rows validated per chunk
MAX_LISTED_ERRORS = 200        # RowErrors kept on the report for display; the rejects file has all
REJECT_VALUE_CHARS = 2_000     # original values longer than this are cut in the rejects file
HASH_HEX_CHARS = 16            # 64 bits of the salted sha256
DATE_MIN, DATE_MAX = pd.Timestamp("2000-01-01", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC")

TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".ndjson": None}
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
REJECT_META = ("row", "column", "reason")

_PARSE_ERROR = "__parse_error__"   # internal column: a JSONL line that did not parse
_ROW = "_row"                      # internal column: 1-based data record number
_DUCK_TYPES = {
    "str": "VARCHAR", "text": "VARCHAR", "int": "BIGINT", "float": "DOUBLE",
    "datetime": "TIMESTAMPTZ", "date": "DATE", "bool": "BOOLEAN", "list": "VARCHAR[]",
}
_TRUE = {"true", "t", "yes", "y", "1", "1.0", "是", "真"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", "否", "假"}
_HAS_TEXT = r"[\p{L}\p{N}]"        # RE2: a letter or digit in any script (not emoji/punctuation)
_STRIP = " \t\r\n\f\v\xa0\u3000\u200b\ufeff"   # whitespace, NBSP, ideographic space, ZWSP, BOM
_DATE_HINT = "expected ISO 8601, 'YYYY-MM-DD HH:MM[:SS]' or unix seconds"


# ---- report --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowError:
    """One problem in one row: ``row`` is the 1-based data record number (header not counted)."""

    file: str
    row: int
    column: str
    reason: str


@dataclass
class IngestReport:
    """What one :func:`ingest_file` call read, kept, rejected and merged."""

    file: str
    table: str
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    duplicates_resolved: int = 0
    rejects_path: Path | None = None
    errors: list[RowError] = field(default_factory=list)   # first MAX_LISTED_ERRORS problems
    mode: str = "upsert"
    encoding: str | None = None          # text files: the encoding that decoded the file
    ignored_columns: list[str] = field(default_factory=list)   # file columns not in the schema
    table_rows: int = 0                  # rows in the stored table after this ingest

    def summary(self) -> str:
        line = (
            f"{Path(self.file).name} → {self.table}: 读取 {self.rows_read} 行 read, "
            f"接受 {self.rows_accepted} accepted, 拒绝 {self.rows_rejected} rejected, "
            f"重复合并 {self.duplicates_resolved} duplicates resolved; "
            f"表内共 {self.table_rows} rows in table ({self.mode})"
        )
        if self.rejects_path is not None:
            line += f"; 拒绝明细 rejects: {self.rejects_path}"
        return line


# ---- reading -------------------------------------------------------------------------------------
def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def _decodes(path: Path, encoding: str, block: int = 1 << 22) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with _open_binary(path) as fh:
            while chunk := fh.read(block):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: str | os.PathLike) -> str:
    """Return the encoding that strictly decodes the whole text file.

    UTF-16 is taken from its byte-order mark; otherwise ``utf-8-sig`` (UTF-8 with or without BOM) is
    tried, then ``gb18030`` (a superset of GBK/GB2312). Raises ``ValueError`` if neither decodes.
    """
    path = Path(path)
    with _open_binary(path) as fh:
        head = fh.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ("utf-8-sig", "gb18030"):
        if _decodes(path, encoding):
            return encoding
    raise ValueError(f"{path}: 无法识别编码 not valid UTF-8 or GBK/GB18030 text; re-save it as UTF-8")


def _json_cell(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return [None if v is None else (v if isinstance(v, str) else _json_cell(v)) for v in value]
    return value   # str (numbers are parsed as their source text) or None


def _iter_jsonl(path: Path, encoding: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    records: list[dict] = []
    yielded = False
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding=encoding, newline="") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line, parse_int=str, parse_float=str, parse_constant=str)
            except json.JSONDecodeError as exc:
                obj = {_PARSE_ERROR: f"invalid JSON on line {line_no}: {exc.msg} at column {exc.colno}"}
            if not isinstance(obj, dict):
                obj = {_PARSE_ERROR: f"line {line_no} is not a JSON object"}
            records.append({str(k): _json_cell(v) for k, v in obj.items()})
            if len(records) >= chunk_rows:
                yield pd.DataFrame.from_records(records)
                yielded, records = True, []
    if records or not yielded:
        yield pd.DataFrame.from_records(records)


def _arrow_strings(dtype: pa.DataType):
    return pd.ArrowDtype(dtype) if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) else None


def _iter_csv(path: Path, sep: str, encoding: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Arrow's streaming CSV reader, every column typed as string (quoted newlines allowed)."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding=encoding, newline="") as fh:
        header = next(csv.reader(fh, delimiter=sep), None)
    if not header:
        raise ValueError(f"{path}: 文件为空 the file is empty (no header row)")
    invalid: list = []

    def on_invalid(row):                  # keep the row's shape, not its text (it may hold raw ids)
        invalid.append(row)
        return "error"

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(encoding="utf8" if encoding == "utf-8-sig" else encoding,
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        pending: list[pa.RecordBatch] = []
        rows = 0
        yielded = False
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            if rows >= chunk_rows:
                table = pa.Table.from_batches(pending)
                while table.num_rows >= chunk_rows:
                    yield table.slice(0, chunk_rows).to_pandas(types_mapper=_arrow_strings)
                    yielded = True
                    table = table.slice(chunk_rows)
                pending, rows = table.to_batches(), table.num_rows
        if rows or not yielded:
            yield pa.Table.from_batches(pending, schema=reader.schema).to_pandas(types_mapper=_arrow_strings)
    except pa.ArrowInvalid as exc:
        if invalid:
            row = invalid[-1]
            where = f"line {row.number}" if row.number is not None else "a row"
            detail = f"{where} has {row.actual_columns} fields, the header has {row.expected_columns}"
        else:
            detail = str(exc).splitlines()[0][:200]
        raise ValueError(f"{path}: CSV 格式错误 malformed CSV: {detail}") from None


def iter_table_chunks(
    path: str | os.PathLike, chunk_rows: int = CHUNK_ROWS, encoding: str | None = None
) -> Iterator[pd.DataFrame]:
    """Yield the file as DataFrames of at most ``chunk_rows`` rows, columns exactly as in the file.

    CSV/TSV/JSONL/Excel values are strings (JSON lists stay lists; JSON numbers keep their source
    text); Parquet keeps its stored types. Always yields at least one frame (possibly empty).
    ``encoding`` (text files) defaults to :func:`detect_encoding`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    kind = _suffix(path)
    if kind in TEXT_SUFFIXES:
        encoding = encoding or detect_encoding(path)
        if TEXT_SUFFIXES[kind] is None:
            yield from _iter_jsonl(path, encoding, chunk_rows)
        else:
            yield from _iter_csv(path, TEXT_SUFFIXES[kind], encoding, chunk_rows)
    elif kind in PARQUET_SUFFIXES:
        pf = pq.ParquetFile(path)
        yielded = False
        for batch in pf.iter_batches(batch_size=chunk_rows):
            yielded = True
            yield batch.to_pandas(types_mapper=_arrow_strings)
        if not yielded:
            yield pf.schema_arrow.empty_table().to_pandas(types_mapper=_arrow_strings)
    elif kind in EXCEL_SUFFIXES:
        frame = pd.read_excel(path, sheet_name=0, dtype=str, keep_default_na=False, engine="openpyxl")
        for start in range(0, max(len(frame), 1), chunk_rows):
            yield frame.iloc[start:start + chunk_rows].reset_index(drop=True)
    else:
        raise ValueError(
            f"{path}: 不支持的文件类型 unsupported file type '{kind or path.name}'; "
            "use .csv, .tsv, .jsonl, .parquet or .xlsx (.csv/.tsv/.jsonl may be .gz-compressed)"
        )


def read_table_file(path: str | os.PathLike) -> pd.DataFrame:
    """Read a whole CSV/TSV, JSONL, Parquet or Excel file (see :func:`iter_table_chunks`)."""
    frames = list(iter_table_chunks(path))
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


# ---- value parsing -----------------------------------------------------------------------------------
# Each parser takes one raw column and returns (values, missing, problems): ``missing`` is a numpy
# bool mask of empty cells and ``problems`` a list of (mask, reason) where reason is one string or
# an array with one reason per masked row. String work runs in Arrow compute kernels (RE2 regexes).
def _np_bool(arr) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _np_int(arr) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _as_text(s: pd.Series) -> tuple[pa.Array, np.ndarray]:
    """Trimmed strings as an Arrow array, empty → null. Returns (array, missing mask)."""
    if isinstance(s.dtype, pd.ArrowDtype) and s.dtype.pyarrow_dtype in (pa.string(), pa.large_string()):
        arr = pa.array(s).cast(pa.string())
    else:
        missing = s.isna().to_numpy()
        if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
            values = s
        else:   # typed (Parquet ints/dates) or mixed objects (JSON lists in a text column)
            values = s.astype(object).where(missing, s.astype(str))
        arr = pa.array(values, type=pa.string(), from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = pc.utf8_trim(arr, characters=_STRIP)
    missing = _np_bool(pc.or_kleene(pc.is_null(arr), pc.equal(arr, "")))
    if missing.any():
        arr = pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), arr)
    return arr, missing


def _series(arr: pa.Array, index: pd.Index) -> pd.Series:
    return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=index)


def _quote(values, mask: np.ndarray) -> np.ndarray:
    """``'value'`` (cut at 40 characters) for each masked row, for reasons."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        picked = values.filter(pa.array(mask)).to_pylist()
    else:
        picked = list(np.asarray(values.astype(object))[mask])
    return np.array([f"'{str(v)[:40]}{'…' if len(str(v)) > 40 else ''}'" for v in picked], dtype=object)


def _parse_str(s: pd.Series, col: Column, hashed: bool) -> tuple[pd.Series, np.ndarray, list]:
    arr, missing = _as_text(s)
    problems = []
    long = _np_int(pc.utf8_length(arr)) > MAX_STR_CHARS
    if long.any():
        problems.append((long, f"value longer than {MAX_STR_CHARS} characters (值过长)"))
    if col.allowed is not None:
        bad = ~missing & ~_np_bool(pc.is_in(arr, value_set=pa.array(col.allowed, pa.string())))
        if bad.any():
            reason = f"not one of {'/'.join(col.allowed)} (不在允许值内)"
            problems.append((bad, reason if hashed else _quote(arr, bad) + " " + reason))
    return _series(arr, s.index), missing, problems


def _parse_text(s: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray, list]:
    arr, missing = _as_text(s)
    lengths = _np_int(pc.utf8_length(arr))
    long = lengths > MAX_TEXT_CHARS
    problems = []
    if long.any():
        reasons = np.array([f"text too long (文本过长): {n} characters > limit {MAX_TEXT_CHARS}"
                            for n in lengths[long]], dtype=object)
        problems.append((long, reasons))
    return _series(arr, s.index), missing, problems


def _parse_number(s: pd.Series, col: Column, integer: bool) -> tuple[pd.Series, np.ndarray, list]:
    """Numbers; text may use thousands separators, currency signs or 万/w (×10,000): '1.2万' → 12000."""
    problems = []
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        number = s.astype(float).to_numpy()
        missing = np.isnan(number)
        shown = s
    else:
        shown, missing = _as_text(s)
        cleaned = pc.replace_substring_regex(shown, r"[,，_\s¥￥$]", "")
        wan = _np_bool(pc.match_substring_regex(cleaned, r"^[-+]?[\d.]+[万wW]$"))
        cleaned = pc.replace_substring_regex(cleaned, r"([\d.])[万wW]$", r"\1")
        number = pd.to_numeric(cleaned.to_numpy(zero_copy_only=False), errors="coerce").astype(float)
        number = np.where(wan, np.round(number * 10_000), number)
    with np.errstate(invalid="ignore"):
        invalid = ~missing & ~np.isfinite(number)
        if integer:
            invalid |= ~missing & np.isfinite(number) & ((number != np.floor(number)) | (np.abs(number) > 2**53))
    if invalid.any():
        kind = "an integer (非整数)" if integer else "a number (非数值)"
        problems.append((invalid, _quote(shown, invalid) + f" is not {kind}"))
    if col.min_value is not None:
        with np.errstate(invalid="ignore"):
            low = ~missing & ~invalid & (number < col.min_value)
        if low.any():
            label = "negative value (负数)" if col.min_value == 0 else f"value below the minimum {col.min_value:g}"
            problems.append((low, _quote(shown, low) + f" is a {label}; must be ≥ {col.min_value:g}"))
    usable = ~missing & ~invalid
    if integer:
        out = pd.array(np.where(usable, number, 0).astype(np.int64), dtype="Int64")
    else:
        out = pd.array(np.where(usable, number, np.nan), dtype="Float64")
    out[~usable] = pd.NA
    return pd.Series(out, index=s.index), missing, problems


def _epoch_ns(seconds: np.ndarray) -> np.ndarray:
    """Unix seconds (or milliseconds when ≥ 1e11, i.e. 13 digits) → UTC int64 ns; NaT outside 1973–2103."""
    seconds = np.where(seconds >= 1e11, seconds / 1000.0, seconds)
    ok = (seconds >= 1e8) & (seconds <= 4.2e9)
    ns = np.full(len(seconds), np.datetime64("NaT", "ns").astype(np.int64))
    ns[ok] = np.round(seconds[ok] * 1e9).astype(np.int64)
    return ns


def _iso_ns(text: np.ndarray, aware: np.ndarray, tz: str) -> np.ndarray:
    """ISO 8601 strings → UTC int64 ns; ``aware`` rows carry an offset, the rest are ``tz`` local time."""
    out = np.full(len(text), np.datetime64("NaT", "ns").astype(np.int64))
    if aware.any():
        parsed = pd.DatetimeIndex(pd.to_datetime(text[aware], format="ISO8601", errors="coerce", utc=True))
        out[aware] = parsed.as_unit("ns").asi8
    if (~aware).any():
        parsed = pd.DatetimeIndex(pd.to_datetime(text[~aware], format="ISO8601", errors="coerce"))
        local = parsed.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        out[~aware] = local.as_unit("ns").asi8
    return out


def _parse_datetime(s: pd.Series, tz: str) -> tuple[pd.Series, np.ndarray, list]:
    """Datetimes → tz-aware in ``tz``; naive values are taken as ``tz`` local time.

    Text may be ISO 8601 (``2023-09-01``, ``2023-09-01 10:00[:00]``, ``2023-09-01T10:00:00+08:00``,
    ``...Z``), ``2023/9/1 10:00``, ``2023年9月1日``, or unix seconds (9–13 digits; 13 = milliseconds).
    """
    nat = np.datetime64("NaT", "ns").astype(np.int64)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        utc_ns = pd.DatetimeIndex(s).tz_convert("UTC").as_unit("ns").asi8
        missing, shown = s.isna().to_numpy(), s
    elif pd.api.types.is_datetime64_dtype(s):
        utc_ns = pd.DatetimeIndex(s).tz_localize(tz, ambiguous="NaT", nonexistent="NaT").as_unit("ns").asi8
        missing, shown = s.isna().to_numpy(), s
    elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        seconds = s.astype(float).to_numpy()
        missing, shown = np.isnan(seconds), s
        utc_ns = _epoch_ns(np.nan_to_num(seconds, nan=0.0))
    else:
        shown, missing = _as_text(s)
        utc_ns = np.full(len(s), nat)
        present = np.flatnonzero(~missing)
        text = shown.filter(pa.array(~missing))
        lengths = _np_int(pc.utf8_length(text))
        epoch = _np_bool(pc.utf8_is_digit(text)) & (lengths >= 9) & (lengths <= 13)
        if epoch.any():
            seconds = pc.cast(text.filter(pa.array(epoch)), pa.float64()).to_numpy(zero_copy_only=False)
            utc_ns[present[epoch]] = _epoch_ns(seconds)
        rest = text.filter(pa.array(~epoch))
        if len(rest):
            if not _np_bool(pc.equal(pc.utf8_slice_codeunits(rest, 4, 5), "-")).all():
                rest = pc.replace_substring_regex(   # 2023/9/1, 2023.9.1, 2023年9月1日 → 2023-9-1
                    rest, r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", r"\1-\2-\3")
            # An offset (Z, +08:00, -0500) can only follow the date part, so look past its 10 chars.
            tail = pc.utf8_slice_codeunits(rest, 10)
            aware = np.logical_or.reduce([_np_bool(pc.match_substring(tail, m)) for m in ("Z", "z", "+", "-")])
            rest_np = np.asarray(rest.to_numpy(zero_copy_only=False), dtype=object)
            parsed = _iso_ns(rest_np, aware, tz)
            failed = parsed == nat
            if failed.any():                   # JSON floats such as '1692866952.0'
                decimal = _np_bool(pc.match_substring_regex(rest, r"^\d{9,13}\.\d*$")) & failed
                if decimal.any():
                    parsed[decimal] = _epoch_ns(np.array(rest_np[decimal], dtype=float))
            utc_ns[present[~epoch]] = parsed
    utc_ns = np.asarray(utc_ns, dtype=np.int64).copy()
    problems = []
    unparsed = ~missing & (utc_ns == nat)
    if unparsed.any():
        problems.append((unparsed, "bad date (日期无法解析) " + _quote(shown, unparsed) + f"; {_DATE_HINT}"))
    out_of_range = ~missing & ~unparsed & ((utc_ns < DATE_MIN.value) | (utc_ns >= DATE_MAX.value))
    if out_of_range.any():
        problems.append((out_of_range, "date out of range (日期超出范围) " + _quote(shown, out_of_range)
                         + f"; expected {DATE_MIN.year}–{DATE_MAX.year}"))
        utc_ns[out_of_range] = nat
    values = pd.DatetimeIndex(utc_ns.view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    return pd.Series(values, index=s.index), missing, problems


def _parse_bool(s: pd.Series) -> tuple[pd.Series, np.ndarray, list]:
    if pd.api.types.is_bool_dtype(s):
        return s.astype("boolean"), s.isna().to_numpy(), []
    arr, missing = _as_text(s)
    lower = pc.utf8_lower(arr)
    is_true = _np_bool(pc.is_in(lower, value_set=pa.array(sorted(_TRUE))))
    is_false = _np_bool(pc.is_in(lower, value_set=pa.array(sorted(_FALSE))))
    out = pd.array(is_true, dtype="boolean")
    out[~(is_true | is_false)] = pd.NA
    bad = ~missing & ~is_true & ~is_false
    problems = [(bad, _quote(arr, bad) + " is not true/false (非布尔值)")] if bad.any() else []
    return pd.Series(out, index=s.index), missing, problems


def _split_tags(value) -> list[str]:
    """``['a','b']``, ``'a|b'``, ``'a,b'``, ``'a b'``, ``'#a# #b#'``, ``'#a[话题]#'`` → ``['a', 'b']``
    (the shared rule, :func:`miner.schema.split_tags`)."""
    return split_tags(value)


def _parse_list(s: pd.Series) -> tuple[pd.Series, np.ndarray, list]:
    values = pd.Series([_split_tags(v) for v in s.astype(object)], index=s.index, dtype=object)
    missing = values.map(len).eq(0).to_numpy()
    return values, missing, []


def hash_ids(values: pd.Series, salt: str) -> pd.Series:
    """``sha256(salt + id)`` as lowercase hex, first 16 digits, of each trimmed id; empty stays missing.

    Same digest as ``hashlib.sha256((salt + id).encode("utf-8")).hexdigest()[:16]``, computed by
    DuckDB's vectorised ``sha256`` (about 20× faster than a Python loop on millions of ids).
    """
    arr, _ = _as_text(values)
    with duckdb.connect() as con:
        ids = pa.table({"id": arr})   # noqa: F841 (read by the query below)
        hashed = con.execute(
            f"SELECT left(sha256(? || id), {HASH_HEX_CHARS}) AS h FROM ids", [salt]
        ).fetch_arrow_table().column("h")
    return _series(hashed.combine_chunks(), values.index)


# ---- chunk validation ------------------------------------------------------------------------------
def _normalize_name(name) -> str:
    return str(name).strip().lstrip("\ufeff").strip().lower()


def _order_column(schema: TableSchema) -> str | None:
    for col in schema.columns:
        if col.dtype == "datetime" and col.name not in schema.key:
            return col.name
    return None


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
class _ChunkResult:
    clean: pd.DataFrame           # accepted rows: schema columns + _row
    rejects: pd.DataFrame         # rejected rows for the rejects file
    problems: pd.DataFrame        # one row per problem: row, column, reason


def _validate_chunk(raw: pd.DataFrame, schema: TableSchema, config: MinerConfig, first_row: int) -> _ChunkResult:
    n = len(raw)
    rows = np.arange(first_row, first_row + n, dtype=np.int64)
    raw = raw.copy()
    for name in schema.hashed_ids:
        if name in raw.columns:
            raw[name] = hash_ids(raw[name], config.id_salt)

    found: list[tuple[np.ndarray, str, object]] = []     # (mask, column, reason str or per-masked array)
    if _PARSE_ERROR in raw.columns:
        parse_error = raw[_PARSE_ERROR].notna().to_numpy()
        found.append((parse_error, "(line)", raw[_PARSE_ERROR].to_numpy()[parse_error]))

    clean = {}
    empty_series = pd.Series([None] * n, index=raw.index, dtype=object)
    for col in schema.columns:
        s = raw[col.name] if col.name in raw.columns else empty_series
        hashed = col.name in schema.hashed_ids
        if col.dtype == "str":
            values, missing, problems = _parse_str(s, col, hashed)
        elif col.dtype == "text":
            values, missing, problems = _parse_text(s, col)
        elif col.dtype in ("int", "float"):
            values, missing, problems = _parse_number(s, col, integer=col.dtype == "int")
        elif col.dtype in ("datetime", "date"):
            values, missing, problems = _parse_datetime(s, config.timezone)
            if col.dtype == "date":
                values = values.dt.tz_localize(None).dt.normalize()
        elif col.dtype == "bool":
            values, missing, problems = _parse_bool(s)
        elif col.dtype == "list":
            values, missing, problems = _parse_list(s)
        else:
            raise ValueError(f"schema {schema.name}.{col.name}: unknown dtype {col.dtype!r}")
        if col.required and col.dtype != "text" and missing.any():
            what = "id" if col.name in schema.key or hashed or col.name.endswith("_id") else "value"
            found.append((missing, col.name, f"empty required {what} (必填值为空)"))
        for mask, reason in problems:
            found.append((mask, col.name, reason))
        clean[col.name] = values

    text_cols = [c.name for c in schema.columns if c.dtype == "text"]
    if text_cols:
        label = "+".join(text_cols)
        texts = [pa.array(clean[c]) for c in text_cols]
        all_empty = np.logical_and.reduce([_np_bool(pc.is_null(t)) for t in texts])
        if all_empty.any():
            found.append((all_empty, label, f"{' and '.join(text_cols)} all empty (标题和正文均为空)"))
        combined = pc.binary_join_element_wise(*[pc.fill_null(t, "") for t in texts], "\n")
        no_text = ~all_empty & ~_np_bool(pc.match_substring_regex(combined, _HAS_TEXT))
        if no_text.any():
            found.append((no_text, label, "no text left after removing emoji/punctuation (仅表情或符号)"))
        for c in text_cols:
            clean[c] = clean[c].fillna("")      # an empty title/body is stored as "", not NULL

    bad = np.zeros(n, dtype=bool)
    parts = []
    for mask, column, reason in found:
        positions = np.flatnonzero(mask)
        if not len(positions):
            continue
        bad[positions] = True
        if isinstance(reason, str):
            reasons = np.full(len(positions), reason, dtype=object)
        else:
            reasons = np.asarray(reason, dtype=object)
        parts.append(pd.DataFrame({"pos": positions, "column": column, "reason": reasons}))
    problems = (
        pd.concat(parts, ignore_index=True).sort_values("pos", kind="stable")
        if parts else pd.DataFrame({"pos": pd.Series(dtype=np.int64), "column": [], "reason": []})
    )
    problems.insert(0, "row", rows[problems["pos"].to_numpy()])

    frame = pd.DataFrame(clean, index=raw.index)
    frame[_ROW] = rows
    accepted = frame[~bad].reset_index(drop=True)

    rejects = pd.DataFrame()
    if bad.any():
        grouped = problems.groupby("pos", sort=True).agg(column=("column", "; ".join), reason=("reason", "; ".join))
        originals = raw.iloc[grouped.index.to_numpy()].drop(columns=[_PARSE_ERROR], errors="ignore")
        originals = originals.rename(columns={c: f"orig_{c}" for c in originals.columns if c in REJECT_META})
        originals = originals.astype(object).where(originals.notna(), None)
        for c in originals.columns:
            originals[c] = originals[c].map(_reject_cell)
        rejects = pd.concat(
            [pd.DataFrame({"row": rows[grouped.index.to_numpy()], "column": grouped["column"].to_numpy(),
                           "reason": grouped["reason"].to_numpy()}),
             originals.reset_index(drop=True)],
            axis=1,
        )
    return _ChunkResult(accepted, rejects, problems.drop(columns="pos"))


# ---- storing ---------------------------------------------------------------------------------------
def _arrow_type(col: Column, tz: str) -> pa.DataType:
    return {
        "str": pa.string(), "text": pa.string(), "int": pa.int64(), "float": pa.float64(),
        "datetime": pa.timestamp("ns", tz=tz), "date": pa.date32(), "bool": pa.bool_(),
        "list": pa.list_(pa.string()),
    }[col.dtype]


def _to_arrow(frame: pd.DataFrame, schema: TableSchema, tz: str) -> pa.Table:
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
    arrays.append(pa.array(frame[_ROW].to_numpy(), type=pa.int64()))
    names.append(_ROW)
    return pa.Table.from_arrays(arrays, names=names)


def _ddl(schema: TableSchema) -> str:
    return ", ".join(f'"{c.name}" {_DUCK_TYPES[c.dtype]}' for c in schema.columns)


def _check_stored_columns(con, schema: TableSchema) -> None:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main' "
        "ORDER BY ordinal_position", [schema.name]
    ).fetchall()
    stored = [r[0] for r in rows]
    if stored and stored != schema.names:
        raise ValueError(
            f"stored table '{schema.name}' has columns {stored}, expected {schema.names}; "
            "ingest with mode='replace' to rebuild it"
        )


def _resolve_schema(schema: TableSchema | str) -> TableSchema:
    if isinstance(schema, TableSchema):
        return schema
    if schema in INPUT_SCHEMAS:
        return INPUT_SCHEMAS[schema]
    raise ValueError(f"unknown table {schema!r}; known: {sorted(INPUT_SCHEMAS)}")


def _prepare_columns(
    frame: pd.DataFrame, path: Path, schema: TableSchema, check_required: bool = True
) -> tuple[pd.DataFrame, list[str]]:
    """Normalise column names (trim, lower-case, drop a BOM); check the header has the required columns.

    Only the first chunk is checked: in a later JSONL chunk a key absent from every record just
    leaves those rows' values empty (and rejected if required).
    """
    names = [_normalize_name(c) or f"unnamed_{i + 1}" for i, c in enumerate(frame.columns)]
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if duplicated:
        raise ValueError(f"{path}: 列名重复 duplicate column(s) {duplicated}")
    frame = frame.set_axis(names, axis=1)
    only_parse_errors = names == [_PARSE_ERROR]   # every JSONL line failed: reject rows, don't blame columns
    missing = [c for c in schema.required if c not in names]
    if missing and check_required and not only_parse_errors:
        optional = [c for c in schema.names if c not in schema.required]
        raise ValueError(
            f"{path}: 缺少必需列 missing required column(s) {missing} for table '{schema.name}'. "
            f"Expected columns — required: {schema.required}; optional: {optional}. "
            f"Found: {[c for c in names if c != _PARSE_ERROR]}"
        )
    ignored = [c for c in names if c not in schema.names and c != _PARSE_ERROR]
    return frame, ignored


def _merge_stage(con, schema: TableSchema, mode: str) -> tuple[int, int]:
    """Move ``_stage`` into the stored table in one transaction, one row per key.

    Per key the row with the latest order column (then the highest ``_row``) wins. ``upsert`` first
    deletes stored rows whose key is staged; ``replace`` recreates the table. Returns (staged, written).
    """
    staged = con.execute("SELECT count(*) FROM _stage").fetchone()[0]
    key = ", ".join(f'"{k}"' for k in schema.key)
    order = _order_column(schema)
    order_by = (f'"{order}" DESC NULLS LAST, ' if order else "") + f"{_ROW} DESC"
    columns = ", ".join(f'"{c}"' for c in schema.names)
    con.execute("BEGIN TRANSACTION")
    try:
        if mode == "replace":
            con.execute(f'CREATE OR REPLACE TABLE "{schema.name}" ({_ddl(schema)})')
        else:
            con.execute(f'CREATE TABLE IF NOT EXISTS "{schema.name}" ({_ddl(schema)})')
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


def ingest_file(
    path: str | os.PathLike,
    schema: TableSchema | str,
    config: MinerConfig | None = None,
    mode: str = "upsert",
    chunk_rows: int = CHUNK_ROWS,
) -> IngestReport:
    """Validate ``path`` against ``schema`` and write the accepted rows to the workspace store.

    Parameters
    ----------
    path : CSV/TSV, JSONL, Parquet or .xlsx file.
    schema : a :class:`~miner.schema.TableSchema` (or its name, e.g. ``"notes"``).
    config : paths (``db_path``, ``rejects_dir``), ``id_salt`` and ``timezone``; defaults to ``MinerConfig()``.
    mode : ``"upsert"`` replaces stored rows with the same key and keeps the rest;
        ``"replace"`` makes the table exactly this file's accepted rows.
    chunk_rows : rows read and validated at a time.

    Returns
    -------
    IngestReport with ``rows_read == rows_accepted + rows_rejected + duplicates_resolved``.

    Raises
    ------
    ValueError
        Required columns missing, unreadable encoding, unsupported type or malformed CSV; raised
        before the store or rejects folder is touched when detectable from the header.
    """
    path = Path(path)
    schema = _resolve_schema(schema)
    config = config or MinerConfig()
    if mode not in ("upsert", "replace"):
        raise ValueError(f"mode must be 'upsert' or 'replace', not {mode!r}")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be ≥ 1")
    report = IngestReport(file=str(path), table=schema.name, mode=mode)
    if _suffix(path) in TEXT_SUFFIXES and path.is_file():
        report.encoding = detect_encoding(path)

    chunks = iter_table_chunks(path, chunk_rows, report.encoding)
    first, ignored = _prepare_columns(next(chunks), path, schema)
    report.ignored_columns = ignored
    reject_columns = list(REJECT_META) + [
        f"orig_{c}" if c in REJECT_META else c
        for c in list(first.columns) + [c for c in schema.names if c not in first.columns]
        if c != _PARSE_ERROR
    ]

    rejects_dir = Path(config.rejects_dir)
    stem = Path(path.name[:-3]).stem if path.name.lower().endswith(".gz") else path.stem
    target = rejects_dir / f"{schema.name}-{stem}.csv"
    tmp_rejects = rejects_dir / f".{target.name}.{os.getpid()}.tmp"
    store = Store(config.db_path)
    con = store.connect()
    con.execute("SET enable_progress_bar = false")
    done = False
    try:
        if mode == "upsert":
            _check_stored_columns(con, schema)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _stage ({_ddl(schema)}, {_ROW} BIGINT)")
        next_row = 1
        frame = first
        while frame is not None:
            if frame is not first:
                frame, _ = _prepare_columns(frame, path, schema, check_required=False)
            result = _validate_chunk(frame, schema, config, next_row)
            next_row += len(frame)
            report.rows_read += len(frame)
            if len(result.clean):
                con.register("_chunk", _to_arrow(result.clean, schema, config.timezone))
                con.execute("INSERT INTO _stage SELECT * FROM _chunk")
                con.unregister("_chunk")
            if len(result.rejects):
                report.rows_rejected += len(result.rejects)
                rejects_dir.mkdir(parents=True, exist_ok=True)
                new_file = not tmp_rejects.exists()
                result.rejects.reindex(columns=reject_columns).to_csv(
                    tmp_rejects, mode="w" if new_file else "a", header=new_file, index=False,
                    encoding="utf-8-sig" if new_file else "utf-8",
                )
            room = MAX_LISTED_ERRORS - len(report.errors)
            for row, column, reason in result.problems.head(max(room, 0)).itertuples(index=False):
                report.errors.append(RowError(str(path), int(row), column, reason))
            frame = next(chunks, None)

        staged, report.rows_accepted = _merge_stage(con, schema, mode)
        report.duplicates_resolved = staged - report.rows_accepted
        report.table_rows = con.execute(f'SELECT count(*) FROM "{schema.name}"').fetchone()[0]
        done = True
    finally:
        con.close()                # temp tables go with the connection
        chunks.close()
        if not done and tmp_rejects.exists():
            tmp_rejects.unlink()   # failed part-way: leave the previous rejects file alone

    if tmp_rejects.exists():
        os.replace(tmp_rejects, target)
        report.rejects_path = target
    elif target.exists():
        target.unlink()            # this ingest had no rejects: an older file would mislead
    return report


# ---- reading back ------------------------------------------------------------------------------------
def load_table(config: MinerConfig, name: str) -> pd.DataFrame:
    """Read a stored input table with schema dtypes, ordered by the schema key.

    Datetimes are tz-aware in ``config.timezone``; counts ``int64`` (``Int64`` if any is missing);
    flags ``boolean``; lists are lists of ``str`` (``[]`` when empty); text is ``""`` when empty;
    other missing strings are ``None``; ``date`` columns hold ``datetime.date``.
    """
    schema = _resolve_schema(name)
    store = Store(config.db_path, read_only=True)
    if not store.has_table(schema.name):
        raise FileNotFoundError(f"no '{schema.name}' table in {config.db_path}; ingest a {schema.name} file first")
    order = ", ".join(f'"{k}"' for k in schema.key)
    with store.connect() as con:
        frame = con.execute(f'SELECT * FROM "{schema.name}" ORDER BY {order}').df()
    for col in schema.columns:
        s = frame[col.name]
        if col.dtype == "datetime":
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
            frame[col.name] = s.map(lambda v: [] if v is None or (isinstance(v, float) and math.isnan(v)) else list(v))
        elif col.dtype == "text":
            frame[col.name] = s.fillna("").astype(object)
        else:
            frame[col.name] = s.astype(object).where(s.notna(), None)
    return frame


def load_notes(config: MinerConfig) -> pd.DataFrame:
    """The stored ``notes`` table (see :func:`load_table`), ordered by ``note_id``."""
    return load_table(config, NOTES.name)
