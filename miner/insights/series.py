"""Per-topic time series on a full period grid (day, or week starting Monday, Asia/Shanghai).

:func:`topic_time_series` is the input of :func:`miner.insights.trends.trend_scores`, of
:func:`miner.insights.seasons.topic_seasonality` (one topic's rows) and of the calendar's
year-over-year and node-lift measures.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd

from miner import schema
from miner.schema import NOTE_ID, OUTLIER, PUBLISHED_AT, TOPIC_ID, TZ

__all__ = ["FREQS", "SERIES_COLUMNS", "topic_time_series"]

FREQS = ("D", "W")                      # day; week starting Monday (Asia/Shanghai)
SERIES_COLUMNS = (
    TOPIC_ID, "period_start", "note_count", "engagement", "share_of_volume", "engagement_share",
    "period_notes", "period_engagement",
)


# ---- time series ----------------------------------------------------------------------------------

def topic_time_series(
    notes: pd.DataFrame,
    assignments: pd.DataFrame,
    freq: str = "D",
    start=None,
    end=None,
    include_outliers: bool = False,
) -> pd.DataFrame:
    """Per-topic note count and engagement on a full period grid.

    Parameters
    ----------
    notes : DataFrame
        ``note_id``, ``published_at`` (tz-aware; naive values are read as Asia/Shanghai),
        ``likes``, ``collects``, ``comments``, ``shares`` (missing ones count as 0).
    assignments : DataFrame
        ``note_id``, ``topic_id`` (−1 = outlier). Notes without an assignment count as outliers.
    freq : {"D", "W"}
        Calendar day, or week starting Monday, both in Asia/Shanghai.
    start, end : date-like, optional
        Extend or clip the grid (inclusive; snapped to the period containing them). Default: the
        first and last period with a note.
    include_outliers : bool
        Keep topic −1 as a row group. Outliers always count in the period totals.

    Returns
    -------
    DataFrame with :data:`SERIES_COLUMNS`, one row per (topic, period), zeros where a topic had no
    note. ``share_of_volume = note_count / period_notes`` where ``period_notes`` counts every note
    of the period (all topics and outliers); ``engagement`` is likes + collects + comments + shares
    and ``engagement_share`` its share of ``period_engagement``. Shares are 0 in empty periods.
    ``period_start`` is a tz-aware Asia/Shanghai midnight.
    """
    if freq not in FREQS:
        raise ValueError(f"freq must be one of {FREQS}, got {freq!r}")
    _require(notes, "notes", (NOTE_ID, PUBLISHED_AT))
    _require(assignments, "assignments", (NOTE_ID, TOPIC_ID))
    if assignments[NOTE_ID].duplicated().any():
        dup = assignments.loc[assignments[NOTE_ID].duplicated(), NOTE_ID].iloc[0]
        raise ValueError(f"assignments: note_id {dup!r} is assigned more than once")

    published = _to_local(notes[PUBLISHED_AT])
    if published.isna().any():
        raise ValueError(f"notes: {int(published.isna().sum())} rows have no published_at")
    topic_of = assignments.set_index(NOTE_ID)[TOPIC_ID]
    frame = pd.DataFrame({
        TOPIC_ID: notes[NOTE_ID].map(topic_of).fillna(OUTLIER).astype("int64").to_numpy(),
        "period_start": _period_start(published, freq).to_numpy(),
        "engagement": schema.engagement(notes).to_numpy(dtype="float64"),
    })

    grid_start = _period_start(pd.Series([_to_timestamp(start)]), freq).iloc[0] if start is not None \
        else frame["period_start"].min()
    grid_end = _period_start(pd.Series([_to_timestamp(end)]), freq).iloc[0] if end is not None \
        else frame["period_start"].max()
    if pd.isna(grid_start) or pd.isna(grid_end):      # no notes and no explicit range
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in SERIES_COLUMNS})
    periods = pd.date_range(grid_start, grid_end, freq="D" if freq == "D" else "7D", name="period_start")
    frame = frame[frame["period_start"].between(grid_start, grid_end)]

    totals = frame.groupby("period_start").agg(period_notes=(TOPIC_ID, "size"),
                                               period_engagement=("engagement", "sum"))
    totals = totals.reindex(periods, fill_value=0)

    topics = pd.Index(sorted(set(assignments[TOPIC_ID].astype("int64")) | set(frame[TOPIC_ID])))
    if not include_outliers:
        topics = topics[topics != OUTLIER]
    per = frame.groupby([TOPIC_ID, "period_start"]).agg(note_count=(TOPIC_ID, "size"),
                                                        engagement=("engagement", "sum"))
    full = pd.MultiIndex.from_product([topics, periods], names=[TOPIC_ID, "period_start"])
    out = per.reindex(full, fill_value=0).reset_index()
    out = out.join(totals, on="period_start")
    out["note_count"] = out["note_count"].astype("int64")
    out["period_notes"] = out["period_notes"].astype("int64")
    out["share_of_volume"] = _safe_div(out["note_count"], out["period_notes"])
    out["engagement_share"] = _safe_div(out["engagement"], out["period_engagement"])
    return out[list(SERIES_COLUMNS)]



# ---- helpers (shared with trends) ------------------------------------------------------------------

def _infer_freq(periods: pd.DatetimeIndex) -> str:
    if len(periods) < 2:
        return "D"          # one period: spacing unknown; only the default window depends on it
    step = pd.Series(periods).diff().dropna().min()
    if step == pd.Timedelta(days=1):
        return "D"
    if step >= pd.Timedelta(days=7) and step % pd.Timedelta(days=7) == pd.Timedelta(0):
        return "W"
    raise ValueError(f"series periods must be daily or weekly; smallest spacing is {step}")


def _period_start(local: pd.Series, freq: str) -> pd.Series:
    day = local.dt.normalize()
    if freq == "D":
        return day
    return day - pd.to_timedelta(day.dt.dayofweek, unit="D")


def _to_local(values: pd.Series) -> pd.Series:
    """Timestamps in Asia/Shanghai; naive values are read as Shanghai time, aware ones converted."""
    try:
        ts = pd.to_datetime(values)
    except (ValueError, TypeError):                 # mixed time zones / naive+aware in one column
        ts = None
    if ts is not None and isinstance(ts.dtype, pd.DatetimeTZDtype):
        return ts.dt.tz_convert(TZ)
    if ts is not None and pd.api.types.is_datetime64_dtype(ts.dtype):
        return ts.dt.tz_localize(TZ)
    return pd.Series([_to_timestamp(v) if pd.notna(v) else pd.NaT for v in values],
                     index=values.index, dtype=f"datetime64[ns, {TZ}]")


def _to_timestamp(value, tz=TZ) -> pd.Timestamp:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    ts = pd.Timestamp(value)
    tz = tz or TZ
    return ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)


def _safe_div(num: pd.Series, den: pd.Series) -> pd.Series:
    den = den.astype("float64")
    return (num.astype("float64") / den.where(den > 0)).fillna(0.0)


def _require(frame: pd.DataFrame, name: str, columns) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}; has {list(frame.columns)}")
