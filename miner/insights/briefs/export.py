"""Exports a planner downloads: the overview's topic table as an Excel workbook (bytes)."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

__all__ = ["topic_table_excel"]


def _cell(value):
    """Excel cells hold scalars: lists/arrays become '·'-joined text, tz-aware times local wall time."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return "·".join(str(v) for v in value)
    if isinstance(value, pd.Timestamp) and value.tzinfo is not None:
        return value.tz_localize(None)
    return value


def topic_table_excel(table: pd.DataFrame, sheet_name: str = "话题", notes: list[str] | None = None) -> bytes:
    """``table`` as an .xlsx workbook (openpyxl), ready for ``st.download_button(data=...)``.

    List cells (keywords, flags) are joined with ``·``; timezone-aware columns are written as local
    wall-clock times (Excel has no time zones); ``notes`` (e.g. the data source, k-anonymity) go to
    a second sheet 说明.
    """
    frame = table.copy()
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
            frame[col] = frame[col].dt.tz_localize(None)
        elif frame[col].dtype == object:
            frame[col] = frame[col].map(_cell)
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        frame.to_excel(writer, sheet_name=sheet_name[:31], index=False)
        sheet = writer.sheets[sheet_name[:31]]
        for i, col in enumerate(frame.columns, start=1):
            width = max([len(str(col))] + [len(str(v)) for v in frame[col].head(200)])
            sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width = min(max(width + 2, 8), 60)
        sheet.freeze_panes = "A2"
        if notes:
            pd.DataFrame({"说明": list(notes)}).to_excel(writer, sheet_name="说明", index=False)
    return buf.getvalue()
