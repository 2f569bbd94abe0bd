"""Schema-driven ingest: read a table file, validate every row, write good rows to the store.

One code path serves every input table in :mod:`miner.schema` (notes, engagements, audience, AIPS,
orders, spend)::

    report = ingest_file("notes.csv", NOTES, config)        # upsert by the schema key
    print(report.summary())
    notes = load_notes(config)

The stages, one module each:

``read``      files → DataFrames of strings: encodings (UTF-8 ± BOM, UTF-16 BOM, GBK/GB18030),
              CSV/TSV (ragged lines kept as rejects with their line number), JSONL, Parquet, Excel
              (every sheet or ``sheet=``)
``presets``   column mapping: presets for common exports (``mediacrawler_xhs``, ``zh_generic``),
              auto-detected; ``suggest_column_map`` and "did you mean" for ignored columns
``parse``     cells → typed values: dates, display counts (``1.2万``, ``10w+`` capped), flags,
              tags; control characters and ANSI escapes stripped
``validate``  header checks (raise before writing) and per-row problems (→ rejects file)
``privacy``   user-id hashing with a per-workspace random salt (the public demo salt refused)
``merge``     staging and the one-transaction upsert/replace (latest wins); reading tables back
``core``      :func:`ingest_file`, which runs them in that order

Rejects file
    ``<rejects_dir>/<table>-<input stem>-<8 hex of the input path>.csv`` (UTF-8 with BOM so Excel
    shows Chinese), rewritten on every ingest of that file and removed when a re-ingest has no
    rejects. Columns: ``row`` (1-based data record number: the first record after the header is
    row 1, so in a spreadsheet it sits on line ``row + 1``; in a JSONL file blank lines are not
    counted), ``column`` and ``reason`` (several problems in one row are joined with ``"; "``; a
    ragged CSV line's reason names its physical line), ``source`` (``Sheet!line`` when several
    Excel sheets were read), then the row's original values as read (hashed id columns already
    hashed; values over 2,000 characters are cut and marked). Nothing is dropped silently:
    ``rows_read == rows_accepted + rows_rejected + duplicates_resolved``.
"""
from miner.errors import MinerError, WorkspaceBusyError
from miner.ingest.core import ingest_file, rejects_path_for
from miner.ingest.merge import load_notes, load_table
from miner.ingest.parse import MAX_STR_CHARS, MAX_TEXT_CHARS, strip_controls
from miner.ingest.presets import PRESETS, detect_preset, did_you_mean, suggest_column_map
from miner.ingest.privacy import hash_ids, resolve_id_salt, workspace_salt
from miner.ingest.read import CHUNK_ROWS, detect_encoding, excel_sheets, iter_table_chunks, read_table_file
from miner.ingest.report import IngestReport, RowError

__all__ = [
    "RowError",
    "IngestReport",
    "detect_encoding",
    "iter_table_chunks",
    "read_table_file",
    "excel_sheets",
    "hash_ids",
    "resolve_id_salt",
    "workspace_salt",
    "ingest_file",
    "rejects_path_for",
    "load_table",
    "load_notes",
    "strip_controls",
    "PRESETS",
    "detect_preset",
    "did_you_mean",
    "suggest_column_map",
    "MinerError",
    "WorkspaceBusyError",
    "CHUNK_ROWS",
    "MAX_TEXT_CHARS",
    "MAX_STR_CHARS",
]
