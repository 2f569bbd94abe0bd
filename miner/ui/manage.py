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


def update_summary_zh(result) -> str:
    """The result of an incremental update, in Chinese."""
    emerging = "、".join(f"#{t}" for t in result.emerging_ids) or "无"
    return (f"增量更新完成，快照 {result.run_id}：新增 {result.n_new:,} 篇笔记（{result.n_assigned:,} 篇归入话题，"
            f"{result.n_unassigned:,} 篇未归类），刷新 {result.n_updated:,} 篇；新话题 {emerging}；"
            f"候选 {result.n_candidates}；用时 {result.seconds:.1f} 秒")


def run_update(workspace, ctx) -> None:
    """The 增量更新 button: Workspace.update on the stored notes the snapshot lacks, with progress."""
    import streamlit as st

    from miner.ui import loaders
    from miner.ui.widgets import md_escape
    lock = loaders.build_lock()
    if not lock.acquire(blocking=False):
        st.warning("另一个重建或更新正在进行，请稍后刷新 Another build is running; refresh in a while.")
        return
    bar = st.progress(0.1, text="读取笔记 reading notes…")
    try:
        with loaders.db_lock():
            bar.progress(0.3, text="归入话题 assigning new notes…")
            result = workspace.update(embedder=loaders.embedder(ctx.config)).result
        bar.progress(1.0, text="完成 done")
    except Exception as exc:          # any failure: report it; `latest` still names the old snapshot
        st.session_state["data.update_result"] = ("error", f"更新失败，继续使用快照 {ctx.source.run_id}："
                                                            f"{md_escape(exc)}")
        return
    finally:
        lock.release()
    st.session_state["data.update_result"] = ("ok", update_summary_zh(result))
    loaders.clear_tables()
    st.rerun()
