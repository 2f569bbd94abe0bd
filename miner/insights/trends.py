"""Topic time series, growth, burst and lifecycle stage (pure functions over DataFrames).

Two steps::

    series = topic_time_series(notes, assignments, freq="D")   # topic × period grid
    scores = trend_scores(series, window=7)                     # one row per topic

Everything is measured on **share of volume** (a topic's notes / all notes in the same period), not
on raw counts, so platform-wide swings — weekends, holidays, a half-filled last day, a crawler that
collected more notes this week — do not read as topic growth.

Counting noise is handled with one tool, the Anscombe variance-stabilising transform of Poisson
counts, ``A(x) = 2·sqrt(x + 3/8)``, which has variance ≈ 1 whatever the mean. Comparing a count
``n`` against a reference count ``m`` observed with ``r`` times less total volume (so that
``r·m`` is the expected ``n`` if the share did not change)::

    z = (A(n) − sqrt(r)·A(m)) / sqrt(φ · (1 + r))

is ≈ N(0, 1) under "same share" and stays sane at low counts (0 → 2 notes gives z ≈ 1.3, not
infinity; at such tiny counts it is somewhat liberal — 2 notes after four empty weeks gives
z ≈ 2.2 where an exact test says p ≈ 0.04 — which is why stages also need ``min_recent_notes``).
``φ ≥ 1`` is an over-dispersion factor: the mean squared Anscombe residual of the topic's own
per-period counts in the trailing baseline, each around its own window's share so that level
shifts between windows are not mistaken for noise (real topics are burstier than Poisson); it is 1
with fewer than ``min_dispersion_periods`` baseline periods.

Lifecycle stages (first matching rule wins; ``w`` = window, thresholds from
:class:`TrendThresholds`; the same table is :data:`LIFECYCLE_RULES`):

=========  ====  ==========================================================================
stage      中文   rule
=========  ====  ==========================================================================
emerging   新兴   recent_notes ≥ min_recent_notes, growth_z ≥ z_min, and all notes before the
                 recent window ≤ emerging_prior_ratio × recent_notes (little history: new)
rising     上升   recent_notes ≥ min_recent_notes, growth_pct ≥ rising_growth_pct and
                 growth_z ≥ z_min (share up vs the previous window, beyond noise)
declining  衰退   (growth_pct ≤ declining_growth_pct and growth_z ≤ −z_min), or post-peak:
                 the best window ended before the recent window, recent share ≤
                 peak_drop × best-window share and burst_z ≤ −z_min
peak       高峰   recent_notes ≥ min_recent_notes, recent share ≥ peak_near × peak share and
                 burst_z ≥ z_min (at its high, well above its baseline, no longer growing)
evergreen  常青   otherwise: no significant movement (steady; also tiny topics — see
                 ``low_volume``)
=========  ====  ==========================================================================

The low-count guard is threefold: growth_pct is shrunk with ``prior_notes`` pseudo-notes, growth
and burst are judged by Anscombe z rather than ratios, and every "up" stage needs
``min_recent_notes``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from miner.schema import ENGAGEMENT_COLS, NOTE_ID, OUTLIER, PUBLISHED_AT, TOPIC_ID, TZ

__all__ = [
    "FREQS",
    "LIFECYCLE_RULES",
    "SERIES_COLUMNS",
    "STAGES",
    "STAGE_NAMES_ZH",
    "SCORE_COLUMNS",
    "TrendThresholds",
    "topic_time_series",
    "trend_scores",
]

FREQS = ("D", "W")                      # day; week starting Monday (Asia/Shanghai)
DEFAULT_WINDOW = {"D": 7, "W": 2}       # periods per comparison window

STAGES = ("emerging", "rising", "peak", "declining", "evergreen")
STAGE_NAMES_ZH = {
    "emerging": "新兴",
    "rising": "上升",
    "peak": "高峰",
    "declining": "衰退",
    "evergreen": "常青",
}
# (stage, 中文, rule) in evaluation order; first match wins. Mirrors the module docstring.
LIFECYCLE_RULES: tuple[tuple[str, str, str], ...] = (
    ("emerging", "新兴", "recent_notes >= min_recent_notes and growth_z >= z_min and "
                        "notes_before_recent <= emerging_prior_ratio * recent_notes"),
    ("rising", "上升", "recent_notes >= min_recent_notes and growth_pct >= rising_growth_pct and "
                      "growth_z >= z_min"),
    ("declining", "衰退", "(growth_pct <= declining_growth_pct and growth_z <= -z_min) or "
                         "(peak window ended before recent window and recent_share <= peak_drop * "
                         "peak_share and burst_z <= -z_min)"),
    ("peak", "高峰", "recent_notes >= min_recent_notes and recent_share >= peak_near * peak_share "
                    "and burst_z >= z_min"),
    ("evergreen", "常青", "otherwise"),
)

SERIES_COLUMNS = (
    TOPIC_ID, "period_start", "note_count", "engagement", "share_of_volume", "engagement_share",
    "period_notes", "period_engagement",
)
SCORE_COLUMNS = (
    TOPIC_ID, "stage", "stage_zh", "total_notes", "recent_notes", "previous_notes", "recent_share",
    "growth_pct", "growth_z", "acceleration", "burst_z", "peak_period", "recent_engagement",
    "low_volume",
)

_ANSCOMBE = 3.0 / 8.0


@dataclass(frozen=True)
class TrendThresholds:
    """Knobs of :func:`trend_scores`. Defaults were chosen so that a stationary Poisson topic is
    called ``evergreen`` ≥ 90% of the time (see tests/test_trends.py)."""

    prior_notes: float = 3.0            # pseudo-notes added to both windows when computing growth_pct
    min_recent_notes: int = 5           # "up" stages (emerging/rising/peak) need this many recent notes
    rising_growth_pct: float = 30.0     # share growth, last window vs previous, in %
    declining_growth_pct: float = -25.0
    z_min: float = 1.96                 # |z| needed for growth_z / burst_z to count (≈ 2.5% per side)
    emerging_prior_ratio: float = 0.25  # notes before the recent window ≤ this × recent notes → new
    peak_near: float = 0.8              # recent share ≥ this × best window share → "at its high"
    peak_drop: float = 0.5              # recent share ≤ this × best window share → fell off its peak
    low_volume_notes: int = 10          # flag topics with fewer notes than this in the last two windows
    baseline_windows: int = 4           # burst_z baseline = this many windows before the recent one
    min_dispersion_periods: int = 6     # fewer baseline periods than this → φ = 1 (pure Poisson)


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
        ``likes``, ``collects``, ``comments``, ``shares``.
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
    _require(notes, "notes", (NOTE_ID, PUBLISHED_AT, *ENGAGEMENT_COLS))
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
        "engagement": notes[list(ENGAGEMENT_COLS)].fillna(0).sum(axis=1).to_numpy(dtype="float64"),
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


# ---- scores ---------------------------------------------------------------------------------------

def trend_scores(
    series: pd.DataFrame,
    window: int | None = None,
    as_of=None,
    thresholds: TrendThresholds | None = None,
) -> pd.DataFrame:
    """Growth, acceleration, burst and lifecycle stage per topic.

    Parameters
    ----------
    series : DataFrame
        Output of :func:`topic_time_series` (needs ``topic_id``, ``period_start``, ``note_count``,
        ``engagement``, ``period_notes``). The frequency is read from the period spacing.
    window : int, optional
        Periods per comparison window; default 7 for daily series, 2 for weekly.
    as_of : date-like, optional
        Last period to use (the period containing it); later periods are ignored. Default: the
        last period of the series. Note the last period may be incomplete — shares absorb that.
    thresholds : TrendThresholds, optional

    Returns
    -------
    DataFrame with :data:`SCORE_COLUMNS`, one row per topic, sorted by ``topic_id``:

    - ``recent_notes`` / ``previous_notes``: notes in the last window / the window before it;
      ``recent_share``: pooled share of volume in the last window.
    - ``growth_pct``: share growth of the last window over the previous one, in %, shrunk with
      ``prior_notes`` pseudo-notes: ``100·((n + c) / (r·m + c) − 1)`` with ``r`` the ratio of
      total volumes (so ``r·m`` is the expected recent count at an unchanged share). NaN when the
      previous window holds no notes at all (not enough history).
    - ``growth_z``: Anscombe z of the recent count against the previous window (see module doc).
    - ``acceleration``: growth_pct minus the previous window's growth_pct (percentage points).
    - ``burst_z``: Anscombe z of the recent count against the ``baseline_windows`` windows before
      it, over-dispersion-corrected with the topic's own baseline φ. ≈ N(0, 1) for a steady topic.
    - ``peak_period``: the period with the most notes (earliest on ties).
    - ``stage`` / ``stage_zh``: lifecycle stage, see :data:`LIFECYCLE_RULES`.
    - ``low_volume``: fewer than ``low_volume_notes`` notes in the last two windows; read its
      stage with care.
    """
    th = thresholds or TrendThresholds()
    _require(series, "series", (TOPIC_ID, "period_start", "note_count", "engagement", "period_notes"))
    if series.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in SCORE_COLUMNS})

    starts = pd.to_datetime(series["period_start"])
    if starts.dt.tz is None:                        # a hand-built naive series: read as Shanghai
        series = series.assign(period_start=starts.dt.tz_localize(TZ))
    periods = pd.DatetimeIndex(sorted(series["period_start"].unique()))
    freq = _infer_freq(periods)
    w = int(window) if window is not None else DEFAULT_WINDOW[freq]
    if w < 1:
        raise ValueError(f"window must be ≥ 1, got {window}")
    grid = pd.date_range(periods[0], periods[-1], freq="D" if freq == "D" else "7D")
    if as_of is not None:
        cut = _period_start(pd.Series([_to_timestamp(as_of, tz=periods.tz)]), freq).iloc[0]
        if cut < grid[0]:
            raise ValueError(f"as_of {as_of} is before the first period {grid[0].date()}")
        grid = grid[grid <= cut]

    counts = series.pivot_table(index=TOPIC_ID, columns="period_start", values="note_count",
                                aggfunc="sum", fill_value=0).reindex(columns=grid, fill_value=0)
    engagement = series.pivot_table(index=TOPIC_ID, columns="period_start", values="engagement",
                                    aggfunc="sum", fill_value=0).reindex(columns=grid, fill_value=0)
    totals = series.groupby("period_start")["period_notes"].max().reindex(grid, fill_value=0)
    C = counts.to_numpy(dtype="float64")            # topics × periods
    N = totals.to_numpy(dtype="float64")            # periods
    T = C.shape[1]

    def span(lo: int, hi: int) -> slice:            # periods [lo, hi) clipped to the grid
        return slice(max(lo, 0), max(hi, 0))

    recent, prev, prev2 = span(T - w, T), span(T - 2 * w, T - w), span(T - 3 * w, T - 2 * w)
    base = span(T - w - th.baseline_windows * w, T - w)
    n_r, n_p, n_p2 = (C[:, s].sum(axis=1) for s in (recent, prev, prev2))
    N_r, N_p, N_p2 = (N[s].sum() for s in (recent, prev, prev2))

    phi = _dispersion(C[:, base], N[base], w, th.min_dispersion_periods)
    growth = _shrunk_growth(n_r, N_r, n_p, N_p, th.prior_notes)
    growth_prev = _shrunk_growth(n_p, N_p, n_p2, N_p2, th.prior_notes)
    growth_z = _anscombe_z(n_r, N_r, n_p, N_p, phi)
    burst_z = _anscombe_z(n_r, N_r, C[:, base].sum(axis=1), N[base].sum(), phi)

    # best (highest-share) window of w periods anywhere in the history, for peak / post-peak rules
    peak_share, peak_end = _best_window(C, N, w)
    recent_share = n_r / N_r if N_r > 0 else np.zeros_like(n_r)
    before_recent = C[:, : max(T - w, 0)].sum(axis=1)

    up_ok = n_r >= th.min_recent_notes
    gz = np.nan_to_num(growth_z, nan=0.0)
    g = np.nan_to_num(growth, nan=0.0)
    bz = np.nan_to_num(burst_z, nan=0.0)
    emerging = up_ok & (gz >= th.z_min) & (before_recent <= th.emerging_prior_ratio * n_r)
    rising = up_ok & (g >= th.rising_growth_pct) & (gz >= th.z_min)
    post_peak = ((peak_end <= T - w) & (recent_share <= th.peak_drop * peak_share)
                 & (bz <= -th.z_min))
    declining = ((g <= th.declining_growth_pct) & (gz <= -th.z_min)) | post_peak
    peak = up_ok & (recent_share >= th.peak_near * peak_share) & (bz >= th.z_min)
    # evaluation order of LIFECYCLE_RULES: first match wins
    stage = np.select([emerging, rising, declining, peak], ["emerging", "rising", "declining", "peak"],
                      default="evergreen")

    peak_period = pd.Series(grid[C.argmax(axis=1)])  # argmax: earliest on ties
    peak_period[C.max(axis=1) == 0] = pd.NaT
    out = pd.DataFrame({
        TOPIC_ID: counts.index.astype("int64"),
        "stage": stage,
        "stage_zh": [STAGE_NAMES_ZH[s] for s in stage],
        "total_notes": C.sum(axis=1).astype("int64"),
        "recent_notes": n_r.astype("int64"),
        "previous_notes": n_p.astype("int64"),
        "recent_share": recent_share,
        "growth_pct": growth,
        "growth_z": growth_z,
        "acceleration": growth - growth_prev,
        "burst_z": burst_z,
        "peak_period": peak_period.array,
        "recent_engagement": engagement.to_numpy(dtype="float64")[:, recent].sum(axis=1),
        "low_volume": (n_r + n_p) < th.low_volume_notes,
    })
    return out[list(SCORE_COLUMNS)].reset_index(drop=True)


# ---- internals ------------------------------------------------------------------------------------

def _anscombe(x):
    return 2.0 * np.sqrt(np.asarray(x, dtype="float64") + _ANSCOMBE)


def _anscombe_z(n, N_n, m, N_m, phi):
    """z for "count n (volume N_n) has the same share as count m (volume N_m)"; NaN if N_m == 0."""
    if N_m <= 0:
        return np.full(np.shape(n), np.nan)
    r = N_n / N_m
    return (_anscombe(n) - np.sqrt(r) * _anscombe(m)) / np.sqrt(phi * (1.0 + r))


def _shrunk_growth(n, N_n, m, N_m, prior):
    if N_m <= 0 or N_n <= 0:
        return np.full(np.shape(n), np.nan)
    expected = m * (N_n / N_m)
    return 100.0 * ((n + prior) / (expected + prior) - 1.0)


def _dispersion(C_base: np.ndarray, N_base: np.ndarray, w: int, min_periods: int) -> np.ndarray:
    """Per-topic over-dispersion φ ≥ 1 from the baseline periods.

    Residuals are taken around each baseline window's own share (not one share for the whole
    baseline), so a genuine level shift between windows — the thing we want to detect — does not
    count as noise; the mean squared Anscombe residual is then corrected for the one share fitted
    per window.
    """
    T = C_base.shape[1]
    if T < min_periods:
        return np.ones(C_base.shape[0])
    ss, dof = np.zeros(C_base.shape[0]), 0
    for hi in range(T, 0, -w):                       # windows aligned to the end of the baseline
        lo = max(hi - w, 0)
        C_w, N_w = C_base[:, lo:hi], N_base[lo:hi]
        ok = N_w > 0
        if ok.sum() < 2:
            continue
        share = C_w[:, ok].sum(axis=1, keepdims=True) / N_w[ok].sum()
        ss += ((_anscombe(C_w[:, ok]) - _anscombe(share * N_w[ok])) ** 2).sum(axis=1)
        dof += int(ok.sum()) - 1
    if dof < min_periods - 1:
        return np.ones(C_base.shape[0])
    return np.maximum(ss / dof, 1.0)


def _best_window(C: np.ndarray, N: np.ndarray, w: int):
    """Highest pooled share over all full windows of w periods: (share, end index exclusive)."""
    T = C.shape[1]
    k = min(w, T)
    cs = np.concatenate([np.zeros((C.shape[0], 1)), C.cumsum(axis=1)], axis=1)
    ns = np.concatenate([[0.0], N.cumsum()])
    win_c = cs[:, k:] - cs[:, :-k]                  # topics × (T-k+1)
    win_n = ns[k:] - ns[:-k]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(win_n > 0, win_c / np.where(win_n > 0, win_n, 1.0), -1.0)
    best = share.argmax(axis=1)                      # earliest on ties
    rows = np.arange(C.shape[0])
    return np.maximum(share[rows, best], 0.0), best + k


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
