"""Statutory holidays and 调休 workdays (from ``chinese_calendar``) for the marketing calendar."""
from __future__ import annotations

import datetime as dt

import pandas as pd

__all__ = ["HOLIDAY_COLUMNS", "holiday_span", "holidays"]


def _to_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


HOLIDAY_COLUMNS = ("date", "is_holiday", "is_workday", "in_lieu", "holiday_zh")
_HOLIDAY_ZH = {"New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明",
               "Labour Day": "劳动节", "Dragon Boat Festival": "端午", "National Day": "国庆",
               "Mid-autumn Festival": "中秋", "Anti-Fascist 70th Day": "抗战胜利70周年"}


def holidays(start, end) -> pd.DataFrame:
    """Statutory holidays and 调休 days in ``[start, end]`` from ``chinese_calendar``.

    One row per day: ``is_holiday`` (a day off: weekend or statutory holiday), ``is_workday``,
    ``in_lieu`` (a weekend day that is a 调休 workday), ``holiday_zh`` (the statutory holiday's name
    or None).

    Raises
    ------
    ValueError
        A year ``chinese_calendar`` has no government schedule for (the message names its range).
    """
    import chinese_calendar as cc
    start, end = _to_date(start), _to_date(end)
    rows = []
    for i in range((end - start).days + 1):
        d = start + dt.timedelta(days=i)
        try:
            off, name = cc.get_holiday_detail(d)
        except NotImplementedError as exc:
            raise ValueError(f"chinese_calendar has no holiday schedule for {d}: {exc}") from None
        name = _HOLIDAY_ZH.get(name, name) if name else None
        rows.append((d, bool(off), not off, (not off) and d.weekday() >= 5, name if off else None))
    return pd.DataFrame(rows, columns=list(HOLIDAY_COLUMNS))


def holiday_span(node, max_gap_days: int = 3) -> tuple[dt.date, dt.date] | None:
    """The statutory days off around a node (春节, 国庆, 中秋, 端午, 劳动节, 元旦), e.g. 国庆 2025 →
    (10-01, 10-08); None when the node date is not a statutory holiday or ``chinese_calendar`` has
    no schedule for that year."""
    try:
        days = holidays(node.date - dt.timedelta(days=10), node.date + dt.timedelta(days=10))
    except ValueError:
        return None
    named = days[days["holiday_zh"].notna()]
    if named.empty or node.date not in set(named["date"]):
        return None
    run = list(named["date"])
    i = run.index(node.date)
    lo = hi = i
    while lo > 0 and (run[lo] - run[lo - 1]).days <= 1:
        lo -= 1
    while hi < len(run) - 1 and (run[hi + 1] - run[hi]).days <= 1:
        hi += 1
    # weekends glued to the run count as part of the break
    off = days[days["is_holiday"]]["date"].tolist()
    a, b = run[lo], run[hi]
    while a - dt.timedelta(days=1) in off and (run[lo] - a).days < max_gap_days:
        a -= dt.timedelta(days=1)
    while b + dt.timedelta(days=1) in off and (b - run[hi]).days < max_gap_days:
        b += dt.timedelta(days=1)
    return a, b


