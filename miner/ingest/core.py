"""``ingest_file``: read → map columns → validate → stage → merge, with a rejects file and a report."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd

from miner.config import MinerConfig
from miner.ingest.merge import check_stored_columns, merge_stage, resolve_schema, stage_ddl, to_arrow
from miner.ingest.presets import PRESETS, detect_preset, did_you_mean, normalize_name, preset_map
from miner.ingest.privacy import resolve_id_salt
from miner.ingest.read import (
    CHUNK_ROWS, EXCEL_SUFFIXES, PARSE_ERROR, RAGGED, SOURCE, TEXT_SUFFIXES, detect_encoding, excel_sheets, file_kind,
    frame_chunks, iter_table_chunks,
)
from miner.ingest.report import MAX_LISTED_ERRORS, IngestReport, RowError
from miner.ingest.validate import REJECT_META, prepare_columns, validate_chunk
from miner.schema import ENGAGEMENT_COLS, PUBLISHED_AT, TableSchema
from miner.store import BUSY_TIMEOUT_S, Store

__all__ = ["ingest_file", "rejects_path_for"]

_STEM_BYTES = 80               # rejects file names stay well under the 255-byte limit
_NOTICES = {                   # absent column → what it means for the user
    "note_id": "未提供 note_id 列: 按标题+正文生成稳定 id, 相同文本合并 (note_id missing: ids are a hash of the text)",
    "author_id": "未提供作者列: author_id 留空 (author missing: left empty; author features unavailable)",
    PUBLISHED_AT: "未提供发布时间: published_at 留空, 趋势/日历/时机功能需要发布时间 "
                  "(published_at missing: left empty; trends, seasons and timing need publish times)",
    "counts": "未提供互动数: 点赞/收藏/评论/分享记为 0, 热度与机会分无意义 "
              "(engagement counts missing: set to 0; engagement and opportunity scores are not meaningful)",
}


def _order_column(schema: TableSchema) -> str | None:
    for col in schema.columns:
        if col.dtype == "datetime" and col.name not in schema.key:
            return col.name
    return None


def rejects_path_for(path: str | os.PathLike, table: str, rejects_dir: str | os.PathLike) -> Path:
    """``<rejects_dir>/<table>-<stem>-<8 hex of the absolute input path>.csv``: one per input file.

    Two inputs named ``notes.csv`` in different folders get different files; re-ingesting the same
    file rewrites its own. Long stems are cut (by UTF-8 bytes) to keep the name short.
    """
    path = Path(path)
    stem = Path(path.name[:-3]).stem if path.name.lower().endswith(".gz") else path.stem
    stem = stem.encode("utf-8")[:_STEM_BYTES].decode("utf-8", errors="ignore")
    digest = hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:8]
    return Path(rejects_dir) / f"{table}-{stem}-{digest}.csv"


def _renames(headers, schema: TableSchema, column_map: dict | None, preset: str | None,
             path: Path) -> tuple[dict[str, str], str | None]:
    """{normalized header: schema column} from an explicit map, a named preset or the detected one."""
    names = [normalize_name(h) for h in headers]
    if column_map is not None:
        out = {}
        for source, target in column_map.items():
            key, target = normalize_name(source), normalize_name(target)
            if target not in schema.names:
                raise ValueError(f"{path}: column_map target {target!r} is not a {schema.name} column; "
                                 f"columns: {schema.names}")
            if key not in names:
                raise ValueError(f"{path}: column_map source {source!r} is not in the file; found: {names}")
            if key != target:
                out[key] = target
        # An explicit map is the whole mapping: a header it leaves out is ignored, even one that
        # happens to carry a schema column's name (the mapper's "ignore" choice).
        chosen = {normalize_name(s) for s in column_map}
        for key in names:
            if key not in chosen and key in schema.names:
                out[key] = f"{key} (ignored)"
        return out, None
    if preset == "auto":
        preset = detect_preset(headers, schema.name)
    if preset is None:
        return {}, None
    if preset not in PRESETS or PRESETS[preset].table != schema.name:
        known = sorted(p.name for p in PRESETS.values() if p.table == schema.name)
        raise ValueError(f"unknown preset {preset!r} for table {schema.name}; known: {known}")
    return preset_map(headers, preset, schema), preset


def _excel_frame(path: Path, schema: TableSchema, sheet, column_map, preset, report: IngestReport) -> pd.DataFrame:
    """Every sheet whose header fits the schema (the first such sheet's header), concatenated."""
    sheets = excel_sheets(path, sheet)
    if len(sheets) == 1:
        report.sheets = {sheets[0][0]: len(sheets[0][1])}
        return sheets[0][1]
    usable, skipped, first_error = [], [], None
    for name, frame in sheets:
        frame = frame.set_axis([normalize_name(c) for c in frame.columns], axis=1)
        try:
            renames, _ = _renames(frame.columns, schema, column_map, preset, path)
            prepare_columns(frame.head(0), path, schema, renames)
        except ValueError as exc:
            skipped.append(name)
            first_error = first_error or exc
            continue
        if usable and list(frame.columns) != list(usable[0][1].columns):
            skipped.append(name)
            continue
        usable.append((name, frame))
    if not usable:
        raise ValueError(f"{path}: 没有可用的工作表 no sheet fits table '{schema.name}' "
                         f"(sheets: {[n for n, _ in sheets]}); pass sheet=NAME. First sheet: {first_error}")
    for name in skipped:
        report.notices.append(f"工作表 '{name}' 已跳过 sheet skipped: its header differs from '{usable[0][0]}'")
    parts = []
    for name, frame in usable:
        report.sheets[name] = len(frame)
        parts.append(frame.assign(**{SOURCE: [f"{name}!{i + 2}" for i in range(len(frame))]}))
    return pd.concat(parts, ignore_index=True)


def _header_notices(schema: TableSchema, columns, report: IngestReport) -> None:
    present = set(columns)
    absent = [name for name, _ in schema.defaults if name not in present]
    if schema.text_id and schema.text_id not in present:
        absent.insert(0, schema.text_id)
    report.defaulted = [c for c in absent if c in schema.names and schema.column(c).required]
    for name in report.defaulted:
        if name in _NOTICES:
            report.notices.append(_NOTICES[name])
    if any(c in report.defaulted for c in ENGAGEMENT_COLS):
        report.notices.append(_NOTICES["counts"])


def _map_values(frame: pd.DataFrame, preset: str | None) -> pd.DataFrame:
    if preset is None:
        return frame
    for column, pairs in PRESETS[preset].values:
        if column in frame.columns:
            frame[column] = frame[column].replace(dict(pairs))
    return frame


def ingest_file(
    path: str | os.PathLike,
    schema: TableSchema | str,
    config: MinerConfig | None = None,
    mode: str = "upsert",
    chunk_rows: int = CHUNK_ROWS,
    *,
    column_map: dict[str, str] | None = None,
    preset: str | None = "auto",
    sheet: str | int | None = None,
    allow_public_salt: bool = False,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
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
    column_map : ``{file column: schema column}`` chosen by the user (e.g. the app's column mapper,
        see :func:`~miner.ingest.suggest_column_map`); replaces preset detection.
    preset : ``"auto"`` (detect from the header), a preset name (:data:`~miner.ingest.PRESETS`) or None.
    sheet : Excel sheet name or 0-based index; default every sheet whose header fits the schema.
    allow_public_salt : True only for the demo workspace (see :func:`~miner.ingest.resolve_id_salt`).
    busy_timeout_s : how long to retry while another process holds the workspace database.

    Returns
    -------
    IngestReport with ``rows_read == rows_accepted + rows_rejected + duplicates_resolved``.

    Raises
    ------
    ValueError
        Required columns missing, unreadable encoding, unsupported type, bad column map, or the
        public salt for real user ids; raised before the store or rejects folder is touched.
    miner.errors.WorkspaceBusyError
        Another process kept the workspace database locked for ``busy_timeout_s`` seconds.
    """
    path = Path(path)
    schema = resolve_schema(schema)
    config = config or MinerConfig()
    if mode not in ("upsert", "replace"):
        raise ValueError(f"mode must be 'upsert' or 'replace', not {mode!r}")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be ≥ 1")
    report = IngestReport(file=str(path), table=schema.name, mode=mode)
    kind = file_kind(path)
    if kind in TEXT_SUFFIXES and path.is_file():
        report.encoding = detect_encoding(path)

    if kind in EXCEL_SUFFIXES and path.is_file():
        chunks = frame_chunks(_excel_frame(path, schema, sheet, column_map, preset, report), chunk_rows)
    else:
        chunks = iter_table_chunks(path, chunk_rows, report.encoding)
    first = next(chunks)
    renames, report.preset = _renames([c for c in first.columns if c not in (PARSE_ERROR, SOURCE)],
                                      schema, column_map, preset, path)
    report.renamed = dict(renames)
    first, report.ignored_columns = prepare_columns(first, path, schema, renames)
    taken = set(first.columns)
    report.suggestions = {c: s for c in report.ignored_columns if (s := did_you_mean(c, schema, taken))}
    _header_notices(schema, first.columns, report)
    salt = (resolve_id_salt(config, allow_public_salt)
            if any(c in first.columns for c in schema.hashed_ids) else None)
    reject_columns = list(REJECT_META) + (["source"] if SOURCE in first.columns else []) + [
        f"orig_{c}" if c in REJECT_META else c
        for c in list(first.columns) + [c for c in schema.names if c not in first.columns]
        if c not in (PARSE_ERROR, SOURCE)
    ]

    rejects_dir = Path(config.rejects_dir)
    target = rejects_path_for(path, schema.name, rejects_dir)
    tmp_rejects = rejects_dir / f".{target.name}.{os.getpid()}.tmp"
    con = Store(config.db_path, busy_timeout_s=busy_timeout_s).connect()
    con.execute("SET enable_progress_bar = false")
    done = False
    try:
        if mode == "upsert":
            check_stored_columns(con, schema)
        con.execute(stage_ddl(schema))
        next_row = 1
        frame = first
        while frame is not None:
            if frame is not first:
                frame, _ = prepare_columns(frame, path, schema, renames, check_required=False)
            result = validate_chunk(_map_values(frame, report.preset), schema, salt, config.timezone, next_row)
            next_row += len(frame)
            report.rows_read += len(frame)
            report.control_chars_removed += result.control_chars
            report.control_cells += result.control_cells
            report.capped_rows += result.capped_rows
            report.generated_ids += result.text_ids
            if PARSE_ERROR in frame.columns:
                report.ragged_lines += int(frame[PARSE_ERROR].astype(str).str.startswith(RAGGED).sum())
            if len(result.clean):
                con.register("_chunk", to_arrow(result.clean, schema, config.timezone))
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

        staged, report.rows_accepted = merge_stage(con, schema, mode, _order_column(schema))
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
