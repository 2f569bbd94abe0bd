"""Yearly seasons from the data: does a topic come back at the same time every year?

One call per topic::

    call = topic_seasonality(series)      # -> SeasonCall
    call.is_seasonal, call.peak_window_zh, call.next_start   # True, "每年6月上旬", 2026-06-01

The test (same-calendar-window share vs a shift null)
-----------------------------------------------------
1. Days are put in **bins of ten days** (上旬 1–10, 中旬 11–20, 下旬 21–end), 36 per year, in two
   alignments: the solar calendar (6月上旬) and the lunar calendar (农历八月中旬; a leap month
   shares the bins of its month), so a festival that moves with the lunar new year lines up too.
2. For every year with data (calendar year, or lunar year for the lunar alignment, with at least
   ``min_bins`` bins covered) the topic's **rate** in each bin is its notes ÷ all notes of those
   days (share of volume, so platform growth does not matter), normalised to sum to 1 over the
   year: ``p[y, b]``. Uncovered bins get the neutral 1/36.
3. The statistic is ``T = max_W Σ_y p[y, W]`` over windows ``W`` of ``window_bins`` consecutive
   bins (circular): how much of each year's volume falls in the *same* calendar window, summed
   over years. A topic whose years peak at different times, or that peaked in one year only
   (世界杯), scores what it would score anyway.
4. Null: every year's profile is shifted circularly by an independent random number of bins
   (``n_shifts`` draws; seeded) — the years keep their shape but lose their calendar alignment.
   ``p_value = (1 + #{T_null ≥ T}) / (1 + n_shifts)``. With **two or three** years this null
   cannot go below ≈ (5/36)^(years − 1) whatever the data (0.14 with two years), so there each
   year's count in the window picked from the *other* years is tested against its expected count
   (quasi-Poisson z with the dispersion of that year's other bins, one-sided), and ``p_value`` is
   the h-th smallest of the years' p-values, h = the number of hit years required below.
5. **Seasonal** when ``p_value ≤ alpha``, the window holds ≥ ``hit_ratio`` × its uniform share in
   at least ``min_years`` years **and** in at least ``min_hit_fraction`` of the years with data
   (an Olympic topic, hot in two summers out of four, is not yearly), and the topic has
   ``min_notes`` notes. Of the two alignments the one with the higher strength wins.

``strength = (mean_y p[y, W] − u) / (1 − u)`` with ``u = window_bins / 36``: 0 = spread evenly
over the year, 1 = every year's volume inside the window. The reported window is the core of
``W``: its best single bin if that holds half of ``W``'s volume, else its best two bins if they
hold three quarters, else all of ``W``. Lunar windows touching 腊月下旬–正月中旬 read "农历新年前后".
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SeasonCall", "lunar_bin", "season_window", "seasonality_calls", "solar_bin", "topic_seasonality"]

BINS = 36
_PART_ZH = ("上旬", "中旬", "下旬")
_LUNAR_MONTH_ZH = ("正", "二", "三", "四", "五", "六", "七", "八", "九", "十", "冬", "腊")
_NEW_YEAR_BINS = {34, 35, 0, 1}          # 腊月中旬 … 正月中旬


@dataclass(frozen=True)
class SeasonCall:
    """The yearly-season verdict of one topic (see the module docstring for the test).

    ``peak_month`` is a solar month (1–12); for a lunar season the solar month its window fell in
    most often. ``years`` counts the years whose volume peaked in the window; ``n_years`` the years
    with data. ``next_start`` / ``next_end`` are the next occurrence of the window on or after
    ``today`` (None when not seasonal). ``p_value`` is the shift-null p-value (NaN: not tested).
    """

    is_seasonal: bool
    peak_month: int | None
    peak_window_zh: str | None
    lunar: bool
    next_start: dt.date | None
    strength: float
    years: int
    n_years: int = 0
    p_value: float = float("nan")
    next_end: dt.date | None = None
    reason_zh: str = ""
    window_bins: tuple[int, ...] = ()       # the reported window's ten-day bins (solar or lunar)


def season_window(call: SeasonCall, day) -> tuple[dt.date, dt.date] | None:
    """The occurrence of a seasonal topic's window that contains ``day``, else the next one after
    it: ``(start, end)``; None when the call is not seasonal. (``call.next_start`` is always the
    next start *after* its ``today``; this also answers "is it in season now?".)"""
    if not call.is_seasonal or not call.window_bins:
        return None
    day = _as_date(day)
    start, end = _next_window(list(call.window_bins), call.lunar, day - dt.timedelta(days=40))
    while end < day:
        start, end = _next_window(list(call.window_bins), call.lunar, end + dt.timedelta(days=1))
    return start, end


def solar_bin(day: dt.date) -> int:
    """0–35: (month − 1) · 3 + (上旬 0, 中旬 1, 下旬 2)."""
    return (day.month - 1) * 3 + min((day.day - 1) // 10, 2)


@functools.lru_cache(maxsize=256)
def _lunar_months(year: int) -> tuple[tuple[dt.date, int, int], ...]:
    """(first solar day, lunar year, month 1–12) of each lunar month starting in solar ``year``
    (leap months keep their month number), from ``lunar_python``'s month table."""
    from lunar_python import LunarYear, Solar
    out = []
    for ly in (year - 1, year, year + 1):
        for m in LunarYear.fromYear(ly).getMonths():
            s = Solar.fromJulianDay(m.getFirstJulianDay())
            out.append((dt.date(s.getYear(), s.getMonth(), s.getDay()), m.getYear(), abs(m.getMonth())))
    return tuple(sorted(set(out)))


def _lunar_parts(day: dt.date) -> tuple[int, int, int]:
    """(lunar year, lunar month 1–12, lunar day 1–30) of a solar day."""
    months = _lunar_months(day.year)
    i = max(j for j, (first, _, _) in enumerate(months) if first <= day)
    first, year, month = months[i]
    return year, month, (day - first).days + 1


def lunar_bin(day: dt.date) -> int:
    """0–35 on the lunar calendar (a leap month shares its month's bins)."""
    _, month, d = _lunar_parts(day)
    return (month - 1) * 3 + min((d - 1) // 10, 2)


def topic_seasonality(series, totals=None, *, today=None, alpha: float = 0.05, n_shifts: int = 999,
                      seed: int = 0, min_notes: int = 20, min_years: int = 2,
                      min_hit_fraction: float = 0.6, hit_ratio: float = 2.0, window_bins: int = 3,
                      min_bins: int = 12) -> SeasonCall:
    """Yearly recurrence of one topic.

    Parameters
    ----------
    series : Series or DataFrame
        A count per day (or per week, by its start day): a Series indexed by date, or one topic's
        rows of :func:`miner.insights.trends.topic_time_series` (``period_start``, ``note_count``
        and, when present, ``period_notes`` as the volume denominator).
    totals : Series, optional
        All notes per day, aligned with a Series ``series``; default: every day weighs the same.
    today : date-like, optional
        ``next_start`` is on or after it; default the day after the last day of the series.
    alpha, n_shifts, seed, min_notes, min_years, min_hit_fraction, hit_ratio, window_bins, min_bins
        The test's knobs (module docstring).

    Returns
    -------
    SeasonCall
    """
    days, counts, volume = _as_days(series, totals)
    return seasonality_calls(days, counts[None, :], volume, today=today, alpha=alpha, n_shifts=n_shifts,
                             seed=seed, min_notes=min_notes, min_years=min_years,
                             min_hit_fraction=min_hit_fraction, hit_ratio=hit_ratio,
                             window_bins=window_bins, min_bins=min_bins)[0]


def seasonality_calls(days, counts, volume, *, today=None, alpha: float = 0.05, n_shifts: int = 999,
                      seed: int = 0, min_notes: int = 20, min_years: int = 2,
                      min_hit_fraction: float = 0.6, hit_ratio: float = 2.0, window_bins: int = 3,
                      min_bins: int = 12) -> list[SeasonCall]:
    """:func:`topic_seasonality` for many topics on one shared day grid.

    ``days``: sorted dates (one per period); ``counts``: topics × days; ``volume``: all notes per
    day (days with no volume are ignored). Alignments are computed once for the grid.
    """
    days = [_as_date(d) for d in days]
    counts = np.atleast_2d(np.asarray(counts, dtype="float64"))
    volume = np.asarray(volume, dtype="float64")
    keep = volume > 0
    days = [d for d, k in zip(days, keep) if k]
    counts, volume = counts[:, keep], volume[keep]
    today = _as_date(today) if today is not None else (days[-1] + dt.timedelta(days=1) if days else None)
    empty = dict(is_seasonal=False, peak_month=None, peak_window_zh=None, lunar=False, next_start=None,
                 strength=0.0, years=0)
    if not days or (days[-1] - days[0]).days + 1 < 365:
        return [SeasonCall(**empty, reason_zh="历史不足一年") for _ in range(len(counts))]
    shifts = np.random.default_rng(seed).integers(0, BINS, size=(n_shifts, 64))
    grids = [_alignment(days, lunar) for lunar in (False, True)]
    out = []
    for row in counts:
        if row.sum() < min_notes:
            out.append(SeasonCall(**empty, reason_zh=f"笔记少于 {min_notes} 篇"))
            continue
        calls = [_test(year, bins, row, volume, lunar, shifts, today, alpha, min_years, min_hit_fraction,
                       hit_ratio, window_bins, min_bins) for lunar, (year, bins) in zip((False, True), grids)]
        seasonal = [c for c in calls if c.is_seasonal]
        if seasonal:
            out.append(max(seasonal, key=lambda c: (c.strength, not c.lunar)))
        else:
            out.append(min(calls, key=lambda c: (np.nan_to_num(c.p_value, nan=2.0), c.lunar)))
    return out


# ---- internals ------------------------------------------------------------------------------------

def _alignment(days, lunar: bool) -> tuple[np.ndarray, np.ndarray]:
    """(year, bin) per day: calendar year and solar bin, or lunar year and lunar bin."""
    if lunar:
        parts = [_lunar_parts(d) for d in days]
        return (np.array([p[0] for p in parts]),
                np.array([(p[1] - 1) * 3 + min((p[2] - 1) // 10, 2) for p in parts]))
    return np.array([d.year for d in days]), np.array([solar_bin(d) for d in days])


def _test(year, bins, counts, volume, lunar, shifts, today, alpha, min_years, min_hit_fraction, hit_ratio,
          k, min_bins) -> SeasonCall:
    years = np.unique(year)
    P, used, cov, raw = [], [], [], []
    for y in years:
        sel = year == y
        c = np.bincount(bins[sel], weights=counts[sel], minlength=BINS)
        v = np.bincount(bins[sel], weights=volume[sel], minlength=BINS)
        covered = v > 0
        if covered.sum() < min_bins:
            continue
        rate = np.where(covered, c / np.where(covered, v, 1.0), 0.0)
        if rate.sum() > 0:
            p = np.where(covered, rate / rate.sum() * covered.sum() / BINS, 1.0 / BINS)
        else:
            p = np.full(BINS, 1.0 / BINS)           # a year without the topic: no peak anywhere
        P.append(p)
        used.append(int(y))
        cov.append(covered)
        raw.append((c, v))
    n_years = len(P)
    u = k / BINS
    base = dict(lunar=lunar, n_years=n_years)
    if n_years < min_years:
        return SeasonCall(False, None, None, next_start=None, strength=0.0, years=0,
                          reason_zh=f"有数据的年份少于 {min_years} 个", **base)
    P = np.vstack(P)
    win = _window_sums(P, k)                        # years × 36 (window starting at bin b)
    total = win.sum(axis=0)
    start = int(total.argmax())
    t_obs = total[start]
    idx = np.arange(BINS)
    sh = shifts[:, :n_years]                        # n_shifts × years
    rolled = win[np.arange(n_years)[None, :, None], (idx[None, None, :] + sh[:, :, None]) % BINS]
    t_null = rolled.sum(axis=1).max(axis=1)
    p_value = float((1 + (t_null >= t_obs - 1e-12).sum()) / (1 + len(t_null)))
    test_zh = "移位检验"
    if n_years <= 3:        # the shift null cannot go below ≈ (5/36)^(years−1): count test instead
        need = max(min_years, int(np.ceil(min_hit_fraction * n_years)))
        p_value, test_zh = _count_test_p(win, raw, k, need), "逐年计数检验"
    window = [(start + j) % BINS for j in range(k)]
    seen = np.vstack(cov)[:, window].sum(axis=1) * 2 > k     # years that cover most of the window
    per_year = win[seen, start]
    n_years = int(seen.sum())
    base["n_years"] = n_years
    if n_years == 0:
        return SeasonCall(False, None, None, next_start=None, strength=0.0, years=0,
                          reason_zh="峰值窗口没有数据覆盖", **base)
    hits = int((per_year >= hit_ratio * u).sum())
    strength = float(np.clip((per_year.mean() - u) / (1 - u), 0.0, 1.0))
    core = _core(window, P.sum(axis=0))
    label = _label(core, lunar)
    peak_bin = max(core, key=lambda b: P.sum(axis=0)[b])
    peak_month = _typical_solar_month(peak_bin, used) if lunar else peak_bin // 3 + 1
    ok = p_value <= alpha and hits >= min_years and hits >= min_hit_fraction * n_years
    if ok:
        nxt_start, nxt_end = _next_window(core, lunar, today)
        reason = f"{hits}/{n_years} 年集中在{label.removeprefix('每年')} ({test_zh} p={p_value:.3f})"
    else:
        nxt_start = nxt_end = None
        reason = (f"仅 {hits}/{n_years} 年在同一窗口集中" if p_value <= alpha
                  else f"各年峰值不在同一时间 ({test_zh} p={p_value:.3f})")
    return SeasonCall(bool(ok), peak_month, label, next_start=nxt_start, strength=strength, years=hits,
                      p_value=p_value, next_end=nxt_end, reason_zh=reason, window_bins=tuple(core), **base)


def _count_test_p(win: np.ndarray, raw, k: int, need: int) -> float:
    """Few years: each year's count in the window picked from the *other* years' pooled profile,
    against its expected count at that year's own average share (quasi-Poisson z, dispersion from
    the year's other bins, one-sided). The p-value is the ``need``-th smallest of the years'
    p-values: at least ``need`` years must each be concentrated in the others' window."""
    from miner.insights.stats import normal_sf
    ps = []
    for y in range(len(raw)):
        others = np.delete(win, y, axis=0).sum(axis=0)
        start = int(others.argmax())
        window = [(start + j) % BINS for j in range(k)]
        c, v = raw[y]
        if c.sum() <= 0 or v.sum() <= 0:
            ps.append(1.0)
            continue
        expected = c.sum() * v / v.sum()                  # per bin at the year's average share
        inside = np.zeros(BINS, dtype=bool)
        inside[window] = True
        rest = ~inside & (expected > 0)
        phi = max(1.0, float(((c[rest] - expected[rest]) ** 2 / expected[rest]).mean())) if rest.any() else 1.0
        e = expected[inside].sum()
        ps.append(1.0 if e <= 0 else float(normal_sf([(c[inside].sum() - e) / np.sqrt(phi * e)])[0]))
    ps.sort()
    return ps[min(need, len(ps)) - 1]


def _window_sums(P: np.ndarray, k: int) -> np.ndarray:
    return sum(np.roll(P, -j, axis=1) for j in range(k))


def _core(window: list[int], pooled: np.ndarray) -> list[int]:
    mass = pooled[window].sum()
    if mass <= 0:
        return window
    best = max(window, key=lambda b: pooled[b])
    if pooled[best] >= 0.5 * mass:
        return [best]
    pairs = [window[i:i + 2] for i in range(len(window) - 1)]
    pair = max(pairs, key=lambda p: pooled[p].sum())
    if pooled[pair].sum() >= 0.75 * mass:
        return pair
    return window


def _label(core: list[int], lunar: bool) -> str:
    if lunar and set(core) & _NEW_YEAR_BINS:
        return "农历新年前后"
    first, last = core[0], core[-1]

    def month_zh(b):
        return f"农历{_LUNAR_MONTH_ZH[b // 3]}月" if lunar else f"{b // 3 + 1}月"

    prefix = "每年"
    if len(core) == 3 and first % 3 == 0:
        return f"{prefix}{month_zh(first)}"
    if len(core) == 1:
        return f"{prefix}{month_zh(first)}{_PART_ZH[first % 3]}"
    if first // 3 == last // 3:
        return f"{prefix}{month_zh(first)}{_PART_ZH[first % 3]}至{_PART_ZH[last % 3]}"
    last_month = f"{_LUNAR_MONTH_ZH[last // 3]}月" if lunar else f"{last // 3 + 1}月"
    return f"{prefix}{month_zh(first)}{_PART_ZH[first % 3]}至{last_month}{_PART_ZH[last % 3]}"


def _bin_start(b: int, year: int, lunar: bool) -> dt.date:
    month, day = b // 3 + 1, (b % 3) * 10 + 1
    if not lunar:
        return dt.date(year, month, day)
    from lunar_python import Lunar
    s = Lunar.fromYmd(year, month, day).getSolar()
    return dt.date(s.getYear(), s.getMonth(), s.getDay())


def _next_window(core: list[int], lunar: bool, today: dt.date) -> tuple[dt.date, dt.date]:
    year0 = _lunar_parts(today)[0] if lunar else today.year
    for year in range(year0 - 1, year0 + 3):
        end_bin = core[-1] + 1
        start = _bin_start(core[0], year, lunar)
        end_year = year + (1 if end_bin >= BINS or core[-1] < core[0] else 0)
        end = _bin_start(end_bin % BINS, end_year, lunar) - dt.timedelta(days=1)
        if start >= today:
            return start, end
    raise ValueError(f"no next season window after {today}")       # unreachable for valid bins


def _typical_solar_month(b: int, lunar_years: list[int]) -> int:
    months = [(_bin_start(b, y, True) + dt.timedelta(days=4)).month for y in lunar_years]
    values, counts = np.unique(months, return_counts=True)
    return int(values[counts.argmax()])


def _as_days(series, totals):
    if isinstance(series, pd.DataFrame):
        if "topic_id" in series and series["topic_id"].nunique() > 1:
            raise ValueError("topic_seasonality takes one topic; filter the series by topic_id first")
        for col in ("period_start", "note_count"):
            if col not in series:
                raise ValueError(f"series: missing column {col!r}; has {list(series.columns)}")
        idx = series["period_start"]
        values = series["note_count"]
        vol = series["period_notes"] if "period_notes" in series else None
    elif isinstance(series, pd.Series):
        idx, values = pd.Series(series.index), series.reset_index(drop=True)
        vol = None if totals is None else pd.Series(totals).reindex(series.index).reset_index(drop=True)
    else:
        raise TypeError(f"series must be a pandas Series or DataFrame, got {type(series).__name__}")
    stamps = pd.to_datetime(pd.Series(idx).reset_index(drop=True))
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("Asia/Shanghai")
    frame = pd.DataFrame({"day": stamps.dt.date.to_numpy(),
                          "c": pd.Series(values).to_numpy(dtype="float64"),
                          "v": (np.ones(len(stamps)) if vol is None
                                else pd.Series(vol).fillna(0).to_numpy(dtype="float64"))})
    if frame["c"].lt(0).any() or frame["c"].isna().any():
        raise ValueError("series: counts must be non-negative numbers")
    frame = frame[frame["v"] > 0].groupby("day", sort=True).sum()
    return list(frame.index), frame["c"].to_numpy(), frame["v"].to_numpy()


def _as_date(value) -> dt.date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
