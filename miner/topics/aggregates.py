"""Per-topic daily aggregates, computed once at build time and stored with the snapshot.

The app's pages need counts, not notes: how many notes a filter keeps, the data's date range and
categories, a topic's daily series. Recomputing those from a million notes on every view costs
seconds, so the build writes ``topic_daily.parquet`` — one row per (topic, local day, category)
with the note count, summed engagement and commercial-note count — and readers derive their small
tables from it. A snapshot written before this file existed gets it computed on load
(:func:`snapshot_aggregates`).

Days are calendar days in Asia/Shanghai (naive publish times are read as local), the same days
:func:`miner.insights.trends.topic_time_series` uses; outliers keep ``topic_id`` −1 so period
totals count every note.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from miner import schema

__all__ = ["AGGREGATE_COLUMNS", "AGGREGATES_FILE", "daily_aggregates", "daily_series", "filter_aggregates",
           "snapshot_aggregates"]

AGGREGATES_FILE = "topic_daily.parquet"
DAY = "day"
AGGREGATE_COLUMNS = (schema.TOPIC_ID, DAY, schema.CATEGORY, "notes", schema.ENGAGEMENT, "commercial_notes")
NO_CATEGORY = ""                  # category value for notes without one (parquet group keys need a value)


def _local_days(published: pd.Series) -> pd.Series:
    values = pd.to_datetime(published)
    values = values.dt.tz_localize(schema.TZ) if values.dt.tz is None else values.dt.tz_convert(schema.TZ)
    return values.dt.tz_localize(None).dt.normalize()


def daily_aggregates(notes: pd.DataFrame, assignments: pd.DataFrame) -> pd.DataFrame:
    """One row per (topic, local day, category) with :data:`AGGREGATE_COLUMNS`.

    ``notes`` needs ``note_id`` and ``published_at`` (engagement counts, ``category`` and
    ``is_commercial`` are used when present); ``assignments`` maps ``note_id`` → ``topic_id``
    (notes without one count as outliers, −1). ``day`` is a naive midnight of the Asia/Shanghai
    publish day; ``category`` is ``""`` where missing. Notes without a publish time are left out.
    """
    missing = [c for c in (schema.NOTE_ID, schema.PUBLISHED_AT) if c not in notes]
    if missing:
        raise ValueError(f"notes: missing column(s) {missing} needed for the daily aggregates")
    commercial = (notes[schema.IS_COMMERCIAL].astype("boolean").fillna(False).astype("int64")
                  if schema.IS_COMMERCIAL in notes else pd.Series(0, index=notes.index))
    frame = pd.DataFrame({
        schema.TOPIC_ID: _topic_of_notes(notes, assignments),
        DAY: _local_days(notes[schema.PUBLISHED_AT]).to_numpy(),
        schema.CATEGORY: _categories(notes),
        schema.ENGAGEMENT: schema.engagement(notes).to_numpy(),
        "commercial_notes": commercial.to_numpy(),
    })
    frame = frame[frame[DAY].notna()]
    out = frame.groupby([schema.TOPIC_ID, DAY, schema.CATEGORY], sort=True, observed=True).agg(
        notes=(schema.TOPIC_ID, "size"), engagement=(schema.ENGAGEMENT, "sum"),
        commercial_notes=("commercial_notes", "sum")).reset_index()
    out[schema.CATEGORY] = out[schema.CATEGORY].astype(object)
    return out[list(AGGREGATE_COLUMNS)].astype({"notes": "int64", schema.ENGAGEMENT: "float64",
                                                 "commercial_notes": "int64"})


def _topic_of_notes(notes: pd.DataFrame, assignments: pd.DataFrame) -> np.ndarray:
    """Each note's topic id; read straight across when ``assignments`` rows are the notes' rows
    (a build's), else looked up by note id (−1 when absent)."""
    ids, assigned = notes[schema.NOTE_ID], assignments[schema.NOTE_ID]
    if len(ids) == len(assigned) and ids.dtype == assigned.dtype and ids.array.equals(assigned.array):
        return assignments[schema.TOPIC_ID].to_numpy(dtype=np.int64)
    topic_of = assignments.set_index(schema.NOTE_ID)[schema.TOPIC_ID]
    return ids.map(topic_of).fillna(schema.OUTLIER).astype("int64").to_numpy()


def _categories(notes: pd.DataFrame) -> pd.Categorical:
    """The notes' category as a categorical (codes, not a string per note), "" where missing;
    categories sorted, so grouping orders them as strings sort."""
    if schema.CATEGORY not in notes:
        return pd.Categorical([NO_CATEGORY] * len(notes))
    found = pd.Categorical(notes[schema.CATEGORY])
    names = [str(c) for c in found.categories]
    categories = sorted({NO_CATEGORY, *names})
    codes = np.searchsorted(categories, names)[found.codes] if names else np.zeros(len(found), np.int64)
    codes = np.where(found.codes >= 0, codes, categories.index(NO_CATEGORY))
    return pd.Categorical.from_codes(codes, categories=categories)


def snapshot_aggregates(snapshot) -> pd.DataFrame:
    """The snapshot's stored aggregates, or computed from its notes when the file is absent."""
    path = Path(snapshot.path) / AGGREGATES_FILE
    if path.exists():
        return pd.read_parquet(path)
    return daily_aggregates(snapshot.notes, snapshot.assignments)


def filter_aggregates(agg: pd.DataFrame, start=None, end=None, category: str | None = None) -> pd.DataFrame:
    """Rows with ``start <= day <= end`` (inclusive dates; None = open) and the given category."""
    keep = np.ones(len(agg), dtype=bool)
    days = agg[DAY]
    if start is not None:
        keep &= (days >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (days <= pd.Timestamp(end)).to_numpy()
    if category:
        keep &= (agg[schema.CATEGORY] == category).to_numpy()
    return agg[keep]


def daily_series(agg: pd.DataFrame, start=None, end=None, category: str | None = None) -> pd.DataFrame:
    """Per-topic daily series from the aggregates — the same frame as
    ``topic_time_series(notes_in_filter, assignments, freq="D", start=start, end=end)``: one row per
    (topic, day) on the full day grid, zeros where a topic had no note, shares of every note of the
    day (outliers included); ``period_start`` is a tz-aware Asia/Shanghai midnight.

    The topics are those with at least one note in the aggregates (any day, any category).
    """
    columns = (schema.TOPIC_ID, "period_start", "note_count", "engagement", "share_of_volume",
               "engagement_share", "period_notes", "period_engagement")
    kept = filter_aggregates(agg, start, end, category)
    lo = pd.Timestamp(start) if start is not None else kept[DAY].min()
    hi = pd.Timestamp(end) if end is not None else kept[DAY].max()
    if pd.isna(lo) or pd.isna(hi):
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    days = pd.date_range(lo, hi, freq="D", name=DAY)
    totals = kept.groupby(DAY).agg(period_notes=("notes", "sum"), period_engagement=(schema.ENGAGEMENT, "sum"))
    totals = totals.reindex(days, fill_value=0)
    topics = pd.Index(sorted(t for t in agg[schema.TOPIC_ID].unique() if t != schema.OUTLIER), name=schema.TOPIC_ID)
    per = kept.groupby([schema.TOPIC_ID, DAY]).agg(note_count=("notes", "sum"),
                                                   engagement=(schema.ENGAGEMENT, "sum"))
    full = pd.MultiIndex.from_product([topics, days], names=[schema.TOPIC_ID, DAY])
    out = per.reindex(full, fill_value=0).reset_index()
    out = out.merge(totals, left_on=DAY, right_index=True, how="left")
    out["share_of_volume"] = _ratio(out["note_count"], out["period_notes"])
    out["engagement_share"] = _ratio(out["engagement"], out["period_engagement"])
    out["period_start"] = out[DAY].dt.tz_localize(schema.TZ)
    out = out.astype({schema.TOPIC_ID: "int64", "note_count": "int64", "period_notes": "int64",
                      "engagement": "float64", "period_engagement": "float64"})
    return out[list(columns)]


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    den = den.astype("float64")
    return (num.astype("float64") / den.where(den > 0)).fillna(0.0)
