"""Workspace management for the 数据管理 page: ingest an uploaded file, list tables and snapshots,
rebuild topics. Plain functions (no streamlit) so they are testable without a browser."""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from miner.config import MinerConfig
from miner.topics.snapshot import latest_run_id, list_snapshots

TABLE_NAMES_ZH = {
    "notes": "笔记 notes",
    "engagements": "互动行为 engagements",
    "audience": "用户画像 audience",
    "aips_stages": "AIPS 人群资产 aips_stages",
    "orders": "订单回流 orders",
    "spend": "投放花费 spend",
}
UPLOAD_TYPES = ["csv", "tsv", "jsonl", "ndjson", "xlsx", "parquet", "gz"]
_UNSAFE = re.compile(r"[^\w.\-]+")


def safe_filename(name: str) -> str:
    """The uploaded name without folders or odd characters (CJK letters are kept)."""
    base = _UNSAFE.sub("_", Path(str(name)).name).strip("._") or "upload.csv"
    return base[:120]


def ingest_upload(config: MinerConfig, filename: str, data: bytes, table: str, mode: str = "upsert"):
    """Write the uploaded bytes to a private temp folder under the workspace and ingest them.

    Returns the :class:`miner.ingest.IngestReport`; raises ``ValueError`` for files the validator
    refuses outright (missing columns, unreadable encoding, unsupported type).
    """
    from miner.ingest import ingest_file
    from miner.schema import INPUT_SCHEMAS
    if table not in INPUT_SCHEMAS:
        raise ValueError(f"unknown table {table!r}; choose one of {sorted(INPUT_SCHEMAS)}")
    root = Path(config.workspace_dir) / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=root))
    try:
        path = folder / safe_filename(filename)
        path.write_bytes(data)
        return ingest_file(path, INPUT_SCHEMAS[table], config, mode=mode)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report_errors(report) -> pd.DataFrame:
    """Row-level problems of an ingest report (the first ones; the rejects file has all)."""
    rows = [{"行 row": e.row, "列 column": e.column, "原因 reason": e.reason} for e in report.errors]
    return pd.DataFrame(rows, columns=["行 row", "列 column", "原因 reason"])


def table_counts(config: MinerConfig) -> pd.DataFrame:
    """Rows per input table in the workspace database (0 when missing)."""
    import duckdb
    counts = {name: 0 for name in TABLE_NAMES_ZH}
    if Path(config.db_path).exists():
        with duckdb.connect(str(config.db_path), read_only=True) as con:
            have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            for name in counts:
                if name in have:
                    counts[name] = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
    return pd.DataFrame({"表 table": [TABLE_NAMES_ZH[n] for n in counts], "行数 rows": list(counts.values())})


def snapshot_catalog(config: MinerConfig) -> pd.DataFrame:
    """Every snapshot folder with its stamp (read from config.json only), newest first."""
    serving = latest_run_id(config)
    rows = []
    for run_id in list_snapshots(config):
        meta_path = Path(config.snapshots_dir) / run_id / "config.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rows.append({"serving": run_id == serving, "run_id": run_id, "created_at": meta.get("created_at", ""),
                     "n_notes": meta.get("n_notes"), "model": meta.get("embedding", {}).get("model_id", ""),
                     "data_hash": meta.get("data_hash", "")})
    frame = pd.DataFrame(rows, columns=["serving", "run_id", "created_at", "n_notes", "model", "data_hash"])
    return frame.sort_values("created_at", ascending=False).reset_index(drop=True)


def stored_notes(config: MinerConfig) -> pd.DataFrame:
    from miner.ingest import load_notes
    return load_notes(config)


def rebuild(config: MinerConfig, notes: pd.DataFrame, embedder=None, on_progress=None):
    """Mine topics from ``notes`` and write a new snapshot (``latest`` moves only on success)."""
    from miner.topics.pipeline import build_topics
    return build_topics(config, notes, embedder=embedder, show_progress=False, on_progress=on_progress)
