"""Reading table files: encodings, CSV/TSV (Arrow, with a Python fallback for ragged lines), JSONL,
Parquet and Excel (every sheet, or one).

CSV, JSONL and Excel cells are read as strings, so validation sees the value the user typed
(``00123`` stays ``00123``). Large CSV, JSONL and Parquet files are read in chunks.

Ragged CSV lines (more or fewer fields than the header) do not stop the file: Arrow's fast reader
refuses such a file, so it is read again with Python's :mod:`csv` module, and each ragged line
becomes a row whose ``PARSE_ERROR`` cell names its physical line number and field count (the
validator turns it into a reject). Its fields are kept by position, so a hashed id column is still
hashed before the line reaches the rejects file.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import json
import os
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["detect_encoding", "iter_table_chunks", "read_table_file", "excel_sheets", "frame_chunks", "file_kind",
           "TEXT_SUFFIXES", "EXCEL_SUFFIXES", "PARQUET_SUFFIXES", "PARSE_ERROR", "SOURCE", "RAGGED", "CHUNK_ROWS"]

CHUNK_ROWS = 500_000           # rows validated per chunk
TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".ndjson": None}
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
PARSE_ERROR = "__parse_error__"   # internal column: a line that did not parse (JSONL) or is ragged (CSV)
SOURCE = "__source__"             # internal column: 'Sheet!line' of an Excel row when several sheets are read
RAGGED = "CSV 列数不符 ragged"   # start of the PARSE_ERROR reason of a ragged CSV line
_BLOCK_BYTES = 1 << 24           # Arrow CSV block: one batch per 16 MiB
_FIELD_LIMIT = 1 << 30            # csv module's per-field limit (default 128 KiB would refuse long bodies)


def file_kind(path: Path) -> str:
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
    with _text_open(path, encoding) as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line, parse_int=str, parse_float=str, parse_constant=str)
            except json.JSONDecodeError as exc:
                obj = {PARSE_ERROR: f"invalid JSON on line {line_no}: {exc.msg} at column {exc.colno}"}
            if not isinstance(obj, dict):
                obj = {PARSE_ERROR: f"line {line_no} is not a JSON object"}
            records.append({str(k): _json_cell(v) for k, v in obj.items()})
            if len(records) >= chunk_rows:
                yield pd.DataFrame.from_records(records)
                yielded, records = True, []
    if records or not yielded:
        yield pd.DataFrame.from_records(records)


def _arrow_strings(dtype: pa.DataType):
    return pd.ArrowDtype(dtype) if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) else None


def _text_open(path: Path, encoding: str):
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    return opener(path, "rt", encoding=encoding, newline="")


def _batches_to_chunks(batches, schema: pa.Schema, chunk_rows: int) -> Iterator[pd.DataFrame]:
    pending: list[pa.RecordBatch] = []
    rows = 0
    yielded = False
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows >= chunk_rows:
            table = pa.Table.from_batches(pending, schema=schema)
            while table.num_rows >= chunk_rows:
                yield table.slice(0, chunk_rows).to_pandas(types_mapper=_arrow_strings)
                yielded = True
                table = table.slice(chunk_rows)
            pending, rows = table.to_batches(), table.num_rows
    if rows or not yielded:
        yield pa.Table.from_batches(pending, schema=schema).to_pandas(types_mapper=_arrow_strings)


def _iter_csv(path: Path, sep: str, encoding: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Arrow's streaming CSV reader, every column a string; ragged files continue in :func:`_iter_csv_py`.

    No ``invalid_row_handler``: a Python callback from Arrow's reader threads is what aborted the
    process under load, so a malformed file simply raises and the Python reader takes over from the
    first record Arrow had not delivered.
    """
    with _text_open(path, encoding) as fh:
        header = next(csv.reader(fh, delimiter=sep), None)
    if not header:
        raise ValueError(f"{path}: 文件为空 the file is empty (no header row)")
    delivered = 0
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(encoding="utf8" if encoding == "utf-8-sig" else encoding,
                                           block_size=_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        for frame in _batches_to_chunks(reader, reader.schema, chunk_rows):
            delivered += len(frame)
            yield frame
        return
    except pa.ArrowInvalid:
        pass
    yield from _iter_csv_py(path, sep, encoding, chunk_rows, skip_records=delivered)


def _iter_csv_py(path: Path, sep: str, encoding: str, chunk_rows: int, skip_records: int = 0) -> Iterator[pd.DataFrame]:
    """Python :mod:`csv` reader: ragged lines become PARSE_ERROR rows naming their physical line."""
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    with _text_open(path, encoding) as fh:
        reader = csv.reader(fh, delimiter=sep)
        header = next(reader)
        width = len(header)
        records: list[list] = []
        seen = 0
        yielded = False
        line = reader.line_num
        for fields in reader:
            start, line = line + 1, reader.line_num
            if not fields:                        # blank line (Arrow skips them too)
                continue
            seen += 1
            if seen <= skip_records:
                continue
            if len(fields) == width:
                records.append([*fields, None])
            else:
                where = f"line {start}" if start == line else f"lines {start}-{line}"
                reason = (f"{RAGGED} {where}: {len(fields)} fields, the header has {width}"
                          + ("; extra fields dropped" if len(fields) > width else ""))
                padded = (fields + [None] * width)[:width]
                records.append([*padded, reason])
            if len(records) >= chunk_rows:
                yield pd.DataFrame(records, columns=[*header, PARSE_ERROR], dtype=object)
                yielded, records = True, []
        if records or not yielded:
            yield pd.DataFrame(records, columns=[*header, PARSE_ERROR], dtype=object)


def excel_sheets(path: str | os.PathLike, sheet: str | int | None = None) -> list[tuple[str, pd.DataFrame]]:
    """``[(sheet name, frame of strings)]`` of every non-empty sheet, or of ``sheet`` (name or 0-based index)."""
    path = Path(path)
    try:
        frames = pd.read_excel(path, sheet_name=None if sheet is None else sheet, dtype=str,
                               keep_default_na=False, engine="openpyxl")
    except (ValueError, IndexError) as exc:
        if sheet is None:
            raise
        raise ValueError(f"{path}: 没有工作表 no sheet {sheet!r} ({exc})") from None
    if not isinstance(frames, dict):
        name = sheet if isinstance(sheet, str) else pd.ExcelFile(path, engine="openpyxl").sheet_names[sheet]
        return [(str(name), frames)]
    out = [(str(name), frame) for name, frame in frames.items() if len(frame.columns)]
    return out or [(str(next(iter(frames), "Sheet1")), pd.DataFrame())]


def frame_chunks(frame: pd.DataFrame, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """An in-memory frame in chunks of ``chunk_rows`` (at least one, possibly empty)."""
    for start in range(0, max(len(frame), 1), chunk_rows):
        yield frame.iloc[start:start + chunk_rows].reset_index(drop=True)


def _same_header(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    def names(frame):
        return [str(c).strip().lower() for c in frame.columns]
    return names(a) == names(b)


def iter_table_chunks(
    path: str | os.PathLike, chunk_rows: int = CHUNK_ROWS, encoding: str | None = None,
    sheet: str | int | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield the file as DataFrames of at most ``chunk_rows`` rows, columns exactly as in the file.

    CSV/TSV/JSONL/Excel values are strings (JSON lists stay lists; JSON numbers keep their source
    text); Parquet keeps its stored types. Always yields at least one frame (possibly empty).
    ``encoding`` (text files) defaults to :func:`detect_encoding`. Excel: ``sheet`` (name or index)
    or, by default, every sheet with the first sheet's header, concatenated (see :func:`excel_sheets`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    kind = file_kind(path)
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
        sheets = excel_sheets(path, sheet)
        yield from frame_chunks(
            pd.concat([f for _, f in sheets if _same_header(f, sheets[0][1])], ignore_index=True), chunk_rows)
    else:
        raise ValueError(
            f"{path}: 不支持的文件类型 unsupported file type '{kind or path.name}'; "
            "use .csv, .tsv, .jsonl, .parquet or .xlsx (.csv/.tsv/.jsonl may be .gz-compressed)"
        )


def read_table_file(path: str | os.PathLike, sheet: str | int | None = None) -> pd.DataFrame:
    """Read a whole CSV/TSV, JSONL, Parquet or Excel file (see :func:`iter_table_chunks`)."""
    frames = list(iter_table_chunks(path, sheet=sheet))
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)
