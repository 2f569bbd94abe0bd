"""Topic growth, burst, season and lifecycle stage, with error control across topics.

Two steps, or one table::

    series = topic_time_series(notes, assignments, freq="D")   # topic × period grid
    scores = trend_scores(series, window=7)                     # one row per topic
    table = trend_table(notes, assignments, topics)             # + label, engagement, next node

Everything is measured on **share of volume** (a topic's notes / all notes in the same period), not
on raw counts, so platform-wide swings — weekends, holidays, a half-filled last day, a crawler that
collected more notes this week — do not read as topic growth.

Counting noise is handled with the Anscombe variance-stabilising transform of Poisson counts,
``A(x) = 2·sqrt(x + 3/8)``. Comparing a count ``n`` against a reference count ``m`` observed with
``r`` times less total volume (so ``r·m`` is the expected ``n`` at an unchanged share)::

    z = (A(n) − sqrt(r)·A(m)) / sqrt(φ · (1 + r))

is ≈ N(0, 1) under "same share". ``φ ≥ 1`` is the topic's own over-dispersion from its trailing
baseline (1 with fewer than ``min_dispersion_periods`` baseline periods). The one-sided p-value
``P(Z ≥ z)`` of ``growth_z`` (last window vs the previous one) and of ``burst_z`` (last window vs
``baseline_windows`` windows before it) are **Benjamini–Hochberg adjusted across topics**, the
growth and burst tests of all topics as one family (``growth_q``, ``burst_q``), the downward growth
test as another (``decline_q``); a call needs ``q ≤ fdr``, so on hundreds of steady topics the
expected share of false calls among the up-calls is ≤ ``fdr``.
Only topics above the minimum volume enter a family (others have NaN p and q).

Growth is always shown with its base counts: ``growth_base`` (previous window) → ``growth_recent``
(last window) and ``growth_display`` such as ``"+67% (3→5)"`` (share-adjusted change; equals the
count change when total volume is flat). ``growth_pct`` is the same change shrunk with
``prior_notes`` pseudo-notes, for sorting.

Seasons come from :func:`miner.insights.seasons.seasonality_calls` when the grid spans a year; their
p-values are BH-adjusted across topics too (``season_q``). ``season_next_start`` is the next window
start after the planning date; ``in_season`` / ``days_to_season`` (≤ 0 while in season) use the
window occurrence containing the planning date, else the next one.

Lifecycle stages (first matching rule wins; the same table is :data:`LIFECYCLE_RULES`):

=========  ==========  ===================================================================
stage      中文         rule
=========  ==========  ===================================================================
seasonal   季节性        recurs in the same calendar window every year (season test, season_q ≤
                       season_fdr)
emerging   新兴          recent_notes ≥ min_recent_notes, growth_q ≤ fdr and notes before the
                       recent window ≤ emerging_prior_ratio × recent_notes (new)
rising     上升          recent_notes ≥ min_recent_notes, growth_base ≥ min_growth_base,
                       growth_pct ≥ rising_growth_pct, growth_q ≤ fdr
burst      爆发          recent_notes ≥ min_recent_notes, burst_q ≤ fdr, recent share ≥ peak_near ×
                       best-window share (at its high now, far above its baseline)
one_off    一次性热点     not seasonal; one_off_days around its best moment hold ≥ one_off_share of
                       all its notes (≥ min_one_off_notes) and ≥ one_off_ratio × their share of
                       the time span, and that moment is over (世界杯 2022 on the zhihu list)
declining  衰退          (growth_pct ≤ declining_growth_pct and decline_q ≤ fdr) or post-peak:
                       best window before the recent one, recent share ≤ peak_drop × best share
                       and burst_z ≤ −z_min
evergreen  常青          otherwise: no significant movement (also tiny topics — ``low_volume``)
=========  ==========  ===================================================================
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from miner import schema
from miner.insights.seasons import SeasonCall, season_window, seasonality_calls
from miner.insights.series import (
    FREQS,
    SERIES_COLUMNS,
    _infer_freq,
    _period_start,
    _require,
    _to_local,
    _to_timestamp,
    topic_time_series,
)
from miner.insights.stats import (
    _anscombe_z,
    _best_window,
    _dispersion,
    _shrunk_growth,
    bh_qvalues,
    normal_sf,
)
from miner.schema import NOTE_ID, OUTLIER, PUBLISHED_AT, TOPIC_ID, TZ

__all__ = [
    "FREQS",
    "LIFECYCLE_RULES",
    "SCORE_COLUMNS",
    "SERIES_COLUMNS",
    "STAGES",
    "STAGE_NAMES_ZH",
    "TREND_TABLE_COLUMNS",
    "TrendThresholds",
    "UP_STAGES",
    "growth_display",
    "topic_time_series",
    "trend_scores",
    "trend_table",
]

DEFAULT_WINDOW = {"D": 7, "W": 2}       # periods per comparison window

STAGES = ("seasonal", "emerging", "rising", "burst", "one_off", "declining", "evergreen")
STAGE_NAMES_ZH = {
    "seasonal": "季节性",
    "emerging": "新兴",
    "rising": "上升",
    "burst": "爆发",
    "one_off": "一次性热点",
    "declining": "衰退",
    "evergreen": "常青",
}
UP_STAGES = ("emerging", "rising", "burst")
# (stage, 中文, rule) in evaluation order; first match wins. Mirrors the module docstring.
LIFECYCLE_RULES: tuple[tuple[str, str, str], ...] = (
    ("seasonal", "季节性", "season test significant (season_q <= season_fdr) with the window hit in "
                        "most years"),
    ("emerging", "新兴", "recent_notes >= min_recent_notes and growth_q <= fdr and "
                        "notes_before_recent <= emerging_prior_ratio * recent_notes"),
    ("rising", "上升", "recent_notes >= min_recent_notes and growth_base >= min_growth_base and "
                      "growth_pct >= rising_growth_pct and growth_q <= fdr"),
    ("burst", "爆发", "recent_notes >= min_recent_notes and burst_q <= fdr and recent_share >= "
                     "peak_near * peak_share"),
    ("one_off", "一次性热点", "not seasonal and the best one_off_days hold >= one_off_share of all "
                          "notes (>= min_one_off_notes) and >= one_off_ratio x their time share, and "
                          "ended before the recent window"),
    ("declining", "衰退", "(growth_pct <= declining_growth_pct and decline_q <= fdr) or (peak window "
                         "ended before recent window and recent_share <= peak_drop * peak_share and "
                         "burst_z <= -z_min)"),
    ("evergreen", "常青", "otherwise"),
)

SCORE_COLUMNS = (
    TOPIC_ID, "stage", "stage_zh", "total_notes", "recent_notes", "previous_notes", "recent_share",
    "growth_pct", "growth_raw_pct", "growth_base", "growth_recent", "growth_display",
    "growth_z", "growth_p", "growth_q", "decline_q", "acceleration",
    "burst_z", "burst_p", "burst_q", "peak_period", "peak_window_share", "recent_engagement", "low_volume",
    "is_seasonal", "season_window_zh", "season_lunar", "season_peak_month", "season_next_start",
    "in_season", "days_to_season", "season_strength", "season_years", "season_p", "season_q",
)


@dataclass(frozen=True)
class TrendThresholds:
    """Knobs of :func:`trend_scores`. ``fdr`` = 0.05 because the z-scores are somewhat liberal on
    over-dispersed topics: on 400 simulated steady topics with weekly rhythm and extra-Poisson noise
    plus planted ×3 bursts, BH at 0.10 gave precision 0.85, at 0.05 precision 0.93 with recall 0.97
    (bench/recovery_trends.py)."""

    fdr: float = 0.05                   # Benjamini–Hochberg level for growth / burst / decline calls
    season_fdr: float = 0.05            # … and for season calls
    prior_notes: float = 3.0            # pseudo-notes added to both windows when computing growth_pct
    min_recent_notes: int = 5           # growth / burst / emerging need this many recent notes
    min_growth_base: int = 3            # "rising" needs this many notes in the previous window
    rising_growth_pct: float = 30.0     # share growth, last window vs previous, in %
    declining_growth_pct: float = -25.0
    z_min: float = 1.96                 # post-peak decline: burst_z ≤ −z_min
    emerging_prior_ratio: float = 0.25  # notes before the recent window ≤ this × recent notes → new
    peak_near: float = 0.8              # recent share ≥ this × best window share → "at its high"
    peak_drop: float = 0.5              # recent share ≤ this × best window share → fell off its peak
    low_volume_notes: int = 10          # flag topics with fewer notes than this in the last two windows
    baseline_windows: int = 4           # burst_z baseline = this many windows before the recent one
    min_dispersion_periods: int = 6     # fewer baseline periods than this → φ = 1 (pure Poisson)
    one_off_days: int = 28              # span of a one-off spike (days; 4 periods on a weekly grid)
    one_off_share: float = 0.35         # … holding at least this share of all the topic's notes
    one_off_ratio: float = 5.0          # … and at least this many times its share of the time span
    min_one_off_notes: int = 20
    min_season_notes: int = 20          # season test needs this many notes (and ≥ 1 year of grid)


def growth_display(base, recent, raw_pct) -> list[str]:
    """``"+67% (3→5)"`` per topic; ``"新出现 (0→5)"`` without a base; ``"—"`` when both are 0."""
    out = []
    for m, n, g in zip(np.asarray(base), np.asarray(recent), np.asarray(raw_pct, dtype="float64")):
        m, n = int(m), int(n)
        if m == 0 and n == 0:
            out.append("—")
        elif m == 0 or not np.isfinite(g):
            out.append(f"新出现 ({m}→{n})")
        else:
            out.append(f"{g:+.0f}% ({m}→{n})")
    return out


# ---- scores ---------------------------------------------------------------------------------------

def trend_scores(
    series: pd.DataFrame,
    window: int | None = None,
    as_of=None,
    thresholds: TrendThresholds | None = None,
    today=None,
) -> pd.DataFrame:
    """Growth, burst, season and lifecycle stage per topic, error-controlled across topics.

    Parameters
    ----------
    series : DataFrame
        Output of :func:`topic_time_series` (needs ``topic_id``, ``period_start``, ``note_count``,
        ``engagement``, ``period_notes``). The frequency is read from the period spacing.
    window : int, optional
        Periods per comparison window; default 7 for daily series, 2 for weekly.
    as_of : date-like, optional
        Last period to use (the period containing it); later periods are ignored. Default: the
        last period of the series.
    thresholds : TrendThresholds, optional
    today : date-like, optional
        Planning date for ``season_next_start`` (on or after it); default the day after ``as_of``.

    Returns
    -------
    DataFrame with :data:`SCORE_COLUMNS`, one row per topic, sorted by ``topic_id`` (module
    docstring for the rules). ``growth_pct`` is NaN when the previous window holds no notes at
    all; ``growth_p``/``burst_p``/``decline_q`` … are NaN for topics below the minimum volume;
    season columns are empty when the grid spans less than a year.
    """
    return _score(series, window, as_of, thresholds, today)[0]


def _score(series, window, as_of, thresholds, today):
    th = thresholds or TrendThresholds()
    _require(series, "series", (TOPIC_ID, "period_start", "note_count", "engagement", "period_notes"))
    if series.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in SCORE_COLUMNS}), {}

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
    with np.errstate(divide="ignore", invalid="ignore"):
        growth_raw = np.where(n_p > 0, _shrunk_growth(n_r, N_r, n_p, N_p, 0.0), np.nan)
    growth_prev = _shrunk_growth(n_p, N_p, n_p2, N_p2, th.prior_notes)
    growth_z = _anscombe_z(n_r, N_r, n_p, N_p, phi)
    burst_z = _anscombe_z(n_r, N_r, C[:, base].sum(axis=1), N[base].sum(), phi)

    # one-sided p-values, BH across the topics above the minimum volume
    up_ok = n_r >= th.min_recent_notes
    growth_p = np.where(up_ok, normal_sf(growth_z), np.nan)
    burst_p = np.where(up_ok, normal_sf(burst_z), np.nan)
    decline_p = np.where(n_p >= th.min_recent_notes, normal_sf(-np.asarray(growth_z)), np.nan)
    # one family for the "up" calls (growth and burst tests of every topic together), so the
    # false-discovery rate holds for the union of emerging / rising / burst calls
    up_q = bh_qvalues(np.concatenate([growth_p, burst_p]))
    growth_q, burst_q = up_q[: len(growth_p)], up_q[len(growth_p):]
    decline_q = bh_qvalues(decline_p)

    peak_share, peak_end = _best_window(C, N, w)
    recent_share = n_r / N_r if N_r > 0 else np.zeros_like(n_r)
    before_recent = C[:, : max(T - w, 0)].sum(axis=1)
    k1 = max(1, int(round(th.one_off_days / (1 if freq == "D" else 7))))
    spike, spike_end = _best_count_window(C, k1)
    total = C.sum(axis=1)
    spike_share = np.where(total > 0, spike / np.maximum(total, 1), 0.0)

    day_list = [p.date() for p in grid]
    as_of_day = day_list[-1]
    plan = _to_timestamp(today).date() if today is not None else \
        as_of_day + dt.timedelta(days=1 if freq == "D" else 7)
    calls = _season_calls(C, N, day_list, plan, th)
    season_p = np.array([c.p_value for c in calls], dtype="float64")
    season_q = bh_qvalues(season_p)
    seasonal = np.array([c.is_seasonal for c in calls]) & (np.nan_to_num(season_q, nan=1.0) <= th.season_fdr)
    calls = [c if s else _not_seasonal(c) for c, s in zip(calls, seasonal)]
    windows = [season_window(c, plan) for c in calls]           # current or next occurrence

    def sig(q):
        return np.nan_to_num(q, nan=1.0) <= th.fdr

    g = np.nan_to_num(growth, nan=0.0)
    bz = np.nan_to_num(burst_z, nan=0.0)
    emerging = up_ok & sig(growth_q) & (before_recent <= th.emerging_prior_ratio * n_r)
    rising = up_ok & (n_p >= th.min_growth_base) & (g >= th.rising_growth_pct) & sig(growth_q)
    burst = up_ok & sig(burst_q) & (recent_share >= th.peak_near * peak_share)
    one_off = ((total >= th.min_one_off_notes) & (spike_share >= th.one_off_share)
               & (spike_share >= th.one_off_ratio * k1 / T) & (spike_end <= T - w) & (T >= 3 * k1))
    post_peak = ((peak_end <= T - w) & (recent_share <= th.peak_drop * peak_share)
                 & (bz <= -th.z_min))
    declining = ((g <= th.declining_growth_pct) & sig(decline_q)) | post_peak
    stage = np.select([seasonal, emerging, rising, burst, one_off, declining],
                      ["seasonal", "emerging", "rising", "burst", "one_off", "declining"],
                      default="evergreen")

    peak_period = pd.Series(grid[C.argmax(axis=1)])  # argmax: earliest on ties
    peak_period[C.max(axis=1) == 0] = pd.NaT
    topic_ids = counts.index.astype("int64")
    out = pd.DataFrame({
        TOPIC_ID: topic_ids,
        "stage": stage,
        "stage_zh": [STAGE_NAMES_ZH[s] for s in stage],
        "total_notes": total.astype("int64"),
        "recent_notes": n_r.astype("int64"),
        "previous_notes": n_p.astype("int64"),
        "recent_share": recent_share,
        "growth_pct": growth,
        "growth_raw_pct": growth_raw,
        "growth_base": n_p.astype("int64"),
        "growth_recent": n_r.astype("int64"),
        "growth_display": growth_display(n_p, n_r, growth_raw),
        "growth_z": growth_z, "growth_p": growth_p, "growth_q": growth_q, "decline_q": decline_q,
        "acceleration": growth - growth_prev,
        "burst_z": burst_z, "burst_p": burst_p, "burst_q": burst_q,
        "peak_period": peak_period.array,
        "peak_window_share": spike_share,
        "recent_engagement": engagement.to_numpy(dtype="float64")[:, recent].sum(axis=1),
        "low_volume": (n_r + n_p) < th.low_volume_notes,
        "is_seasonal": seasonal,
        "season_window_zh": [c.peak_window_zh if c.is_seasonal else None for c in calls],
        "season_lunar": [bool(c.lunar) if c.is_seasonal else None for c in calls],
        "season_peak_month": [c.peak_month if c.is_seasonal else None for c in calls],
        "season_next_start": [c.next_start for c in calls],
        "in_season": [bool(w is not None and w[0] <= plan <= w[1]) for w in windows],
        "days_to_season": [float((w[0] - plan).days) if w is not None else np.nan for w in windows],
        "season_strength": [float(c.strength) for c in calls],
        "season_years": [int(c.years) for c in calls],
        "season_p": season_p, "season_q": season_q,
    })
    return out[list(SCORE_COLUMNS)].reset_index(drop=True), dict(zip(topic_ids.tolist(), calls))


def _season_calls(C, N, days, plan, th) -> list[SeasonCall]:
    if len(days) < 2 or (days[-1] - days[0]).days + 1 < 365:
        return [SeasonCall(False, None, None, False, None, 0.0, 0, reason_zh="历史不足一年")
                for _ in range(C.shape[0])]
    # alpha=1: the test reports every p-value; the call is made after BH across topics
    return seasonality_calls(days, C, N, today=plan, alpha=1.0, min_notes=th.min_season_notes)


def _not_seasonal(call: SeasonCall) -> SeasonCall:
    if not call.is_seasonal:
        return call
    return dataclasses.replace(call, is_seasonal=False, next_start=None, next_end=None,
                               reason_zh=call.reason_zh + "; 多重检验校正后不显著")


def _best_count_window(C: np.ndarray, k: int):
    """Most notes in any k consecutive periods: (count, end index exclusive)."""
    T = C.shape[1]
    k = min(k, T)
    cs = np.concatenate([np.zeros((C.shape[0], 1)), C.cumsum(axis=1)], axis=1)
    win = cs[:, k:] - cs[:, :-k]
    best = win.argmax(axis=1)
    return win[np.arange(C.shape[0]), best], best + k


# ---- one table for the CLI and the app ----------------------------------------------------------------

TREND_TABLE_COLUMNS = (
    TOPIC_ID, "label", "keywords", "size", "notes", "engagement",
    *[c for c in SCORE_COLUMNS if c != TOPIC_ID],
    "next_node", "next_node_zh", "next_node_ip_zh", "node_date", "seeding_start", "node_lift",
    "node_reason",
)


def trend_table(notes: pd.DataFrame, assignments: pd.DataFrame, topics: pd.DataFrame, *, start=None,
                end=None, freq: str = "D", today=None, calendar=None, nodes=None,
                thresholds: TrendThresholds | None = None, horizon_days: int = 365,
                min_lift: float = 1.2) -> pd.DataFrame:
    """One row per topic with notes in ``[start, end]``: label, keywords, notes, engagement, the
    :func:`trend_scores` columns (stage, growth with base counts, BH q-values, season) and the
    marketing node to plan for.

    The node (``node_reason``): for a seasonal topic the upcoming node closest to its own season
    window (``"season"``); else the first upcoming node, within ``horizon_days`` of ``today``,
    whose past windows held ≥ ``min_lift`` × the topic's usual share (shrunk
    :func:`miner.insights.node_timing.node_lift`; ``"history"``); else simply the next node
    (``"next"``). Never a node in the past.

    Parameters
    ----------
    notes, assignments, topics : the snapshot's tables (``topics``: ``topic_id``, ``label``,
        optional ``keywords``, ``size``).
    start, end : date-like, optional; inclusive filter on the local publish day.
    freq : "D" or "W" for the stage computation; node lift always uses days.
    today : planning date; default today in Asia/Shanghai.
    calendar : path of a calendar JSON (default: the shipped one); ``nodes`` overrides it.
    """
    from miner.insights.calendar import load_calendar, next_node, seeding_start
    from miner.insights.node_timing import node_lift

    if PUBLISHED_AT not in notes or (len(notes) and notes[PUBLISHED_AT].isna().all()):
        raise ValueError("notes have no published_at; trends need publish times")
    if notes.empty:                                   # e.g. a filter that left nothing
        return pd.DataFrame({c: pd.Series(dtype="object") for c in TREND_TABLE_COLUMNS})
    today = _to_timestamp(today).date() if today is not None else pd.Timestamp.now(tz=TZ).date()
    day = _to_local(notes[PUBLISHED_AT]).dt.date
    keep = pd.Series(True, index=notes.index)
    if start is not None:
        keep &= day >= _to_timestamp(start).date()
    if end is not None:
        keep &= day <= _to_timestamp(end).date()
    notes = notes[keep.to_numpy()]
    asg = assignments[[NOTE_ID, TOPIC_ID]]
    joined = notes[[NOTE_ID]].assign(engagement=schema.engagement(notes).to_numpy()).merge(asg, on=NOTE_ID)
    joined = joined[joined[TOPIC_ID] != OUTLIER]
    counts = joined.groupby(TOPIC_ID).agg(notes=(NOTE_ID, "size"), engagement=("engagement", "sum"))
    base = topics[[c for c in (TOPIC_ID, "label", "keywords", "size") if c in topics]].copy()
    base["keywords"] = (base["keywords"].map(lambda k: " ".join(schema.list_cell(k)[:6]))
                        if "keywords" in base else "")
    if "size" not in base:
        base["size"] = np.nan
    out = base.merge(counts.reset_index(), on=TOPIC_ID, how="inner")
    if out.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in TREND_TABLE_COLUMNS})

    series = topic_time_series(notes, asg, freq=freq, start=start, end=end)
    scores, calls = _score(series, None, None, thresholds, today)
    out = out.merge(scores, on=TOPIC_ID, how="left")
    daily = series if freq == "D" else topic_time_series(notes, asg, freq="D", start=start, end=end)
    first = pd.to_datetime(daily["period_start"]).min().date()
    last = (today + dt.timedelta(days=horizon_days)).year
    if nodes is None:
        nodes = load_calendar(calendar, years=range(first.year - 1, last + 1))
    upcoming = sorted((n for n in nodes if today <= n.date <= today + dt.timedelta(days=horizon_days)),
                      key=lambda n: (n.date, n.key))
    lifts = {key: node_lift(daily, key, nodes) for key in dict.fromkeys(n.key for n in upcoming)}
    chosen = []
    for t in out[TOPIC_ID].astype(int):
        call = calls.get(t)
        pick, reason = (upcoming[0] if upcoming else None), "next"
        if call is not None and call.is_seasonal and upcoming:
            seasonal_pick = next_node(today, upcoming, topic_season=call, horizon_days=horizon_days)
            if seasonal_pick is not None and _near_season(seasonal_pick, call):
                pick, reason = seasonal_pick, "season"
        if reason == "next":
            for n in upcoming:
                value = lifts[n.key].get(t, np.nan)
                if np.isfinite(value) and value >= min_lift:
                    pick, reason = n, "history"
                    break
        lift = lifts[pick.key].get(t, np.nan) if pick is not None else np.nan
        chosen.append((pick, reason, float(lift)))
    out["next_node"] = [p.key if p else None for p, _, _ in chosen]
    out["next_node_zh"] = [p.name_zh if p else None for p, _, _ in chosen]
    out["next_node_ip_zh"] = [p.ip_zh if p else None for p, _, _ in chosen]
    out["node_date"] = [p.date if p else None for p, _, _ in chosen]
    out["seeding_start"] = [seeding_start(p) if p else None for p, _, _ in chosen]
    out["node_lift"] = [v for _, _, v in chosen]
    out["node_reason"] = [r for _, r, _ in chosen]
    return out[list(TREND_TABLE_COLUMNS)].reset_index(drop=True)


def _near_season(node, call: SeasonCall, slack_days: int = 31) -> bool:
    lo, hi = call.next_start, call.next_end or call.next_start
    return lo - dt.timedelta(days=slack_days) <= node.date <= hi + dt.timedelta(days=slack_days)
