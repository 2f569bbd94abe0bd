"""Display helpers for the 数据管理 page (the work itself is in :class:`miner.workspace.Workspace`)."""
from __future__ import annotations

import pandas as pd

from miner.workspace import TABLE_NAMES_ZH

__all__ = ["TABLE_NAMES_ZH", "UPLOAD_TYPES", "report_errors"]

UPLOAD_TYPES = ["csv", "tsv", "jsonl", "ndjson", "xlsx", "parquet", "gz"]


def report_errors(report) -> pd.DataFrame:
    """Row-level problems of an ingest report (the first ones; the rejects file has all)."""
    rows = [{"行 row": e.row, "列 column": e.column, "原因 reason": e.reason} for e in report.errors]
    return pd.DataFrame(rows, columns=["行 row", "列 column", "原因 reason"])
