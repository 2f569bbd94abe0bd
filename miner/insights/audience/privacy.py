"""k-anonymity: every number shown describes at least ``k`` distinct people, or it is hidden.

A hidden cell is NaN in the tables and carries a flag column saying why (``suppressed``,
``orders_suppressed``, ``lift_suppressed``, ``flow_suppressed``); front ends render it as
:func:`suppressed_text` (``"<k"``), never as a small number and never as ``None``.
Counts are of **distinct users** of one brand (never user × brand pairs).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

__all__ = ["suppress", "suppressed_text"]


def suppress(frame: pd.DataFrame, count_col: str, value_cols: Iterable[str], k: int,
             flag: str = "suppressed") -> pd.DataFrame:
    """NaN the value columns (and the count) of rows whose ``count_col`` < k; OR the flag column in."""
    small = (frame[count_col].isna() | (frame[count_col] < k)).to_numpy()
    cols = list(dict.fromkeys([count_col, *[c for c in value_cols if c in frame]]))
    frame[cols] = frame[cols].astype("float64")
    frame.loc[small, cols] = np.nan
    frame[flag] = (frame[flag].fillna(False).astype(bool).to_numpy() | small) if flag in frame else small
    return frame


def suppressed_text(k: int) -> str:
    """How a hidden cell is shown: ``"<50"`` for k = 50."""
    return f"<{int(k)}"
