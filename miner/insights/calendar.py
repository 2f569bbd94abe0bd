"""Chinese marketing calendar (营销节点) for any year: node dates, phases, holidays, the next node.

Nodes (:data:`miner.insights.calendar_nodes.BUILTIN_NODES`): 元旦, 年货节, 春节, 元宵, 情人节, 女神节,
五一, 母亲节, 520, 儿童节, 618, 父亲节, 端午, 七夕, 818, 开学季, 99, 中秋, 国庆, 双11, 双12, 双旦 —
with the platform's festival IPs (``ip_zh``: 小红书过大年, 214满分情人节, 薯你会买, …). Each node has
one date per year, from a solar date, a lunar date (computed with ``lunar_python`` for any year in
1900–2100; outside it a :class:`CalendarError` that says to add ``dates``) or an nth weekday
(母亲节 = 2nd Sunday of May), and three phases around it, each an inclusive date range:

=========  ====  ===========================================================
phase      中文   meaning
=========  ====  ===========================================================
seeding    蓄水   content planting before the node (种草, 预热)
burst      爆发   the node itself and its sales/holiday peak (双11 from the ~10-20 presale)
after      返场   the tail: 返场 sales, reviews, 晒单
=========  ====  ===========================================================

The calendar is read from ``data/calendar/marketing_nodes.json`` (user-editable); the built-in
nodes are the defaults for anything the file does not say. File format::

    {"nodes": [
      {"key": "double11", "name_zh": "双11", "aliases": ["双十一"], "ip_zh": "薯你会买",
       "month_day": "11-11",                        # a solar date, or instead one of
       "lunar_month_day": "08-15",                  #   a lunar date (中秋)
       "nth_weekday": "05-SUN-2",                   #   the 2nd Sunday of May (母亲节)
       "offset_days": -20,                          # optional shift of the rule's date (年货节)
       "dates": {"2025": "2025-11-11"},             # exact per-year dates (win over the rule)
       "phases": {"seeding": [-42, -23], "burst": [-22, 0], "after": [1, 7]},   # day offsets
       "overrides": {"2024": {"seeding": ["2024-10-14", "2024-10-31"]}},          # exact dates
       "enabled": true}
    ]}

An entry whose ``key`` is a built-in replaces only the fields it gives (``dates``, ``phases`` and
``overrides`` merge per year / per phase; a date rule replaces the built-in rule); ``"enabled":
false`` drops a node; a new key needs ``name_zh``, a date rule or ``dates``, and all three phases.
Offsets are days relative to the node date, both ends inclusive; phases must be ordered
seeding < burst < after without overlap. Statutory holidays and 调休 workdays come from
``chinese_calendar`` (:func:`holidays`, :func:`holiday_span`) for the years it knows.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from miner.config import REPO_ROOT
from miner.insights.calendar_nodes import BUILTIN_NODES, rule_date
from miner.insights.holidays import HOLIDAY_COLUMNS, holiday_span, holidays
from miner.schema import TOPIC_ID, TZ

__all__ = [
    "BUILTIN_NODES",
    "CalendarError",
    "DEFAULT_CALENDAR_PATH",
    "DEFAULT_YEARS",
    "MarketingNode",
    "PHASES",
    "PHASE_NAMES_ZH",
    "YOY_COLUMNS",
    "HOLIDAY_COLUMNS",
    "holiday_span",
    "holidays",
    "load_calendar",
    "next_node",
    "resolve_node_key",
    "node_yoy",
    "nodes_between",
    "phase_of",
    "seeding_start",
]

DEFAULT_CALENDAR_PATH = REPO_ROOT / "data" / "calendar" / "marketing_nodes.json"
DEFAULT_YEARS = tuple(range(dt.date.today().year - 3, dt.date.today().year + 3))   # any year works
PHASES = ("seeding", "burst", "after")
PHASE_NAMES_ZH = {"seeding": "蓄水", "burst": "爆发", "after": "返场"}

_RULES = ("month_day", "lunar_month_day", "nth_weekday")
_ENTRY_FIELDS = {"key", "name_zh", "aliases", "ip_zh", *_RULES, "offset_days", "dates", "phases", "overrides", "enabled",
                 "_comment"}
_KEY_RE = re.compile(r"^[a-z0-9_]+$")


class CalendarError(ValueError):
    """A calendar file or entry is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class MarketingNode:
    """One node in one year. ``phases`` maps ``seeding``/``burst``/``after`` → (start, end), inclusive."""

    key: str
    name_zh: str
    date: dt.date
    phases: dict[str, tuple[dt.date, dt.date]]
    aliases: tuple[str, ...] = field(default=())
    ip_zh: str | None = None            # the platform's festival IP (campaign name), if any

    @property
    def year(self) -> int:
        return self.date.year

    @property
    def start(self) -> dt.date:
        return self.phases[PHASES[0]][0]

    @property
    def end(self) -> dt.date:
        return self.phases[PHASES[-1]][1]

    def phase_on(self, day) -> str | None:
        day = _to_date(day)
        for name in PHASES:
            lo, hi = self.phases[name]
            if lo <= day <= hi:
                return name
        return None


# ---- loading ----------------------------------------------------------------------------------------

def load_calendar(path=None, years=None, warn_missing: bool = True) -> list[MarketingNode]:
    """Marketing nodes for ``years``, sorted by date.

    Parameters
    ----------
    path : str or Path, optional
        A JSON calendar file (format in the module docstring). Default: ``DEFAULT_CALENDAR_PATH``
        when it exists, else the built-ins alone. A given path must exist.
    years : iterable of int, optional
        Default :data:`DEFAULT_YEARS` (this year −3 … +2); any year works. A node whose rule
        gives no date in a year (02-29 in a common year, a 腊月 date that falls in December) is
        left out; a node that only has ``dates`` and none for the year is left out with a warning
        unless ``warn_missing`` is False.

    Raises
    ------
    CalendarError
        Malformed file or entry, or a lunar node in a year outside 1900–2100 without ``dates``;
        the message names the file and the entry.
    """
    years = tuple(DEFAULT_YEARS if years is None else sorted({int(y) for y in years}))
    if path is None:
        path = DEFAULT_CALENDAR_PATH if DEFAULT_CALENDAR_PATH.exists() else None
    specs = {spec["key"]: copy.deepcopy(spec) for spec in BUILTIN_NODES}
    source = "built-in calendar"
    if path is not None:
        path = Path(path)
        source = str(path)
        specs = _merge(specs, _read_entries(path), source)

    nodes = []
    for key, spec in specs.items():
        if not spec.get("enabled", True):
            continue
        where = f"{source}: node {key!r}"
        for year in years:
            node = _build(spec, year, where)
            if node is None and warn_missing and not any(r in spec for r in _RULES):
                warnings.warn(f"{where} has no date for {year}; add it under \"dates\"", stacklevel=2)
            elif node is not None:
                nodes.append(node)
    return sorted(nodes, key=lambda n: (n.date, n.key))


def _read_entries(path: Path) -> list[dict]:
    if not path.exists():
        raise FileNotFoundError(f"calendar file not found: {path}")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise CalendarError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise CalendarError(f'{path}: expected an object {{"nodes": [...]}} at the top level')
    extra = set(data) - {"nodes", "_comment", "_format"}
    if extra:
        raise CalendarError(f"{path}: unknown top-level keys {sorted(extra)}")
    return data["nodes"]


def _merge(specs: dict, entries: list, source: str) -> dict:
    for i, entry in enumerate(entries):
        label = f"{source}: nodes[{i}]"
        if not isinstance(entry, dict):
            raise CalendarError(f"{label}: expected an object, got {type(entry).__name__}")
        key = entry.get("key")
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise CalendarError(f"{label}: 'key' must be a snake_case ASCII string, got {key!r}")
        label = f"{label} ({key!r})"
        unknown = set(entry) - _ENTRY_FIELDS
        if unknown:
            raise CalendarError(f"{label}: unknown fields {sorted(unknown)}; allowed: "
                                f"{sorted(_ENTRY_FIELDS - {'_comment'})}")
        base = specs.get(key)
        if base is None:
            missing = [f for f in ("name_zh", "phases") if f not in entry]
            if not any(r in entry for r in _RULES) and "dates" not in entry:
                missing.append("month_day, lunar_month_day, nth_weekday or dates")
            if missing:
                raise CalendarError(f"{label}: a new node needs {missing}")
            base = {"key": key}
        merged = copy.deepcopy(base)
        if any(r in entry for r in _RULES):       # a new date rule replaces the built-in one
            for r in _RULES:
                merged.pop(r, None)
        for name, value in entry.items():
            if name in ("dates", "phases", "overrides") and isinstance(value, dict) \
                    and isinstance(merged.get(name), dict):
                merged[name] = {**merged[name], **copy.deepcopy(value)}
            else:
                merged[name] = copy.deepcopy(value)
        _check_spec(merged, label)
        specs[key] = merged
    return specs


def _check_spec(spec: dict, label: str) -> None:
    if not isinstance(spec.get("name_zh"), str) or not spec["name_zh"].strip():
        raise CalendarError(f"{label}: 'name_zh' must be a non-empty string")
    if not isinstance(spec.get("aliases", []), list) or \
            not all(isinstance(a, str) for a in spec.get("aliases", [])):
        raise CalendarError(f"{label}: 'aliases' must be a list of strings")
    if not isinstance(spec.get("enabled", True), bool):
        raise CalendarError(f"{label}: 'enabled' must be true or false")
    if "month_day" in spec:
        md = spec["month_day"]
        if not isinstance(md, str) or not re.fullmatch(r"\d{2}-\d{2}", md):
            raise CalendarError(f"{label}: 'month_day' must look like \"11-11\", got {md!r}")
        _parse_date(f"2024-{md}", label, "month_day")        # leap year: accepts 02-29
    dates = spec.get("dates", {})
    if not isinstance(dates, dict):
        raise CalendarError(f"{label}: 'dates' must map year → \"YYYY-MM-DD\"")
    for year, value in dates.items():
        day = _parse_date(value, label, f"dates[{year!r}]")
        if str(day.year) != str(year):
            raise CalendarError(f"{label}: dates[{year!r}] = {value!r} is not in {year}")
    phases = spec.get("phases")
    if not isinstance(phases, dict) or set(phases) != set(PHASES):
        got = sorted(phases) if isinstance(phases, dict) else phases
        raise CalendarError(f"{label}: 'phases' must have exactly {list(PHASES)}, got {got}")
    for name in PHASES:
        rng = phases[name]
        if (not isinstance(rng, (list, tuple)) or len(rng) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in rng)):
            raise CalendarError(f"{label}: phases.{name} must be [start_offset, end_offset] in days, "
                                f"got {rng!r}")
    _check_order([tuple(phases[p]) for p in PHASES], label, "phases")
    overrides = spec.get("overrides", {})
    if not isinstance(overrides, dict):
        raise CalendarError(f"{label}: 'overrides' must map year → {{phase: [start, end]}}")
    for year, phase_map in overrides.items():
        if not isinstance(phase_map, dict) or not set(phase_map) <= set(PHASES):
            raise CalendarError(f"{label}: overrides[{year!r}] must map some of {list(PHASES)} "
                                "to [\"YYYY-MM-DD\", \"YYYY-MM-DD\"]")
        for name, rng in phase_map.items():
            if not isinstance(rng, (list, tuple)) or len(rng) != 2:
                raise CalendarError(f"{label}: overrides[{year!r}].{name} must be two dates")
            for v in rng:
                _parse_date(v, label, f"overrides[{year!r}].{name}")
    rules = [r for r in _RULES if r in spec]
    if len(rules) > 1:
        raise CalendarError(f"{label}: give one date rule, not {rules}")
    if "lunar_month_day" in spec:
        lmd = spec["lunar_month_day"]
        if not isinstance(lmd, str) or not re.fullmatch(r"(0[1-9]|1[0-2])-(0[1-9]|[12]\d|30)", lmd):
            raise CalendarError(f"{label}: 'lunar_month_day' must look like \"08-15\", got {lmd!r}")
    if "nth_weekday" in spec:
        try:
            rule_date({"nth_weekday": spec["nth_weekday"]}, 2024)
        except ValueError as exc:
            raise CalendarError(f"{label}: {exc}") from None
    if not rules and not dates:
        raise CalendarError(f"{label}: needs 'month_day', 'lunar_month_day', 'nth_weekday' or 'dates'")
    off = spec.get("offset_days", 0)
    if not isinstance(off, int) or isinstance(off, bool) or abs(off) > 60:
        raise CalendarError(f"{label}: 'offset_days' must be a whole number of days within ±60, got {off!r}")
    if "ip_zh" in spec and not isinstance(spec["ip_zh"], str):
        raise CalendarError(f"{label}: 'ip_zh' must be a string")


def _check_order(ranges, label, what) -> None:
    for name, (lo, hi) in zip(PHASES, ranges):
        if lo > hi:
            raise CalendarError(f"{label}: {what}.{name} starts after it ends ({lo} > {hi})")
    for (a, (_, a_hi)), (b, (b_lo, _)) in zip(zip(PHASES, ranges), zip(PHASES[1:], ranges[1:])):
        if not a_hi < b_lo:
            raise CalendarError(f"{label}: {what}.{a} must end before {what}.{b} starts "
                                f"({a_hi} ≥ {b_lo})")


def _build(spec: dict, year: int, label: str) -> MarketingNode | None:
    raw = spec.get("dates", {}).get(str(year))
    if raw is not None:
        date = _parse_date(raw, label, f"dates['{year}']")
    else:
        try:
            date = rule_date(spec, year)
        except ValueError as exc:       # a lunar year outside LUNAR_YEARS
            raise CalendarError(f"{label}: {exc}") from None
        if date is None:
            return None
    phases = {name: (date + dt.timedelta(days=lo), date + dt.timedelta(days=hi))
              for name, (lo, hi) in spec["phases"].items()}
    for name, (lo, hi) in spec.get("overrides", {}).get(str(year), {}).items():
        phases[name] = (_parse_date(lo, label, name), _parse_date(hi, label, name))
    phases = {name: phases[name] for name in PHASES}
    _check_order(list(phases.values()), f"{label} {year}", "phases")
    return MarketingNode(key=spec["key"], name_zh=spec["name_zh"], date=date, phases=phases,
                         aliases=tuple(spec.get("aliases", ())), ip_zh=spec.get("ip_zh"))


def _parse_date(value, label: str, what: str) -> dt.date:
    if not isinstance(value, str):
        raise CalendarError(f"{label}: {what} must be a \"YYYY-MM-DD\" string, got {value!r}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CalendarError(f"{label}: {what} = {value!r} is not a valid YYYY-MM-DD date") from None


# ---- queries ----------------------------------------------------------------------------------------

def nodes_between(start, end, nodes: list[MarketingNode] | None = None) -> list[MarketingNode]:
    """Nodes whose date lies in [start, end] (inclusive), sorted by date."""
    start, end = _to_date(start), _to_date(end)
    if nodes is None:
        nodes = _default_nodes(range(start.year, end.year + 1))
    return [n for n in sorted(nodes, key=lambda n: n.date) if start <= n.date <= end]


def phase_of(day, nodes: list[MarketingNode] | None = None) -> list[tuple[MarketingNode, str]]:
    """Every (node, phase) whose phase contains ``day``, sorted by node date (nodes overlap:
    e.g. 中秋 2025-10-06 falls inside 国庆's 爆发)."""
    day = _to_date(day)
    if nodes is None:       # a neighbour year's phases can reach into this one (春节 蓄水, 双旦 爆发)
        nodes = _default_nodes([day.year], [day.year - 1, day.year + 1])
    out = []
    for node in sorted(nodes, key=lambda n: n.date):
        phase = node.phase_on(day)
        if phase is not None:
            out.append((node, phase))
    return out


def next_node(day, nodes: list[MarketingNode] | None = None, topic_season=None, key: str | None = None,
              horizon_days: int = 400, season_slack_days: int = 31) -> MarketingNode | None:
    """The next marketing node to plan for: never one in the past (a node on ``day`` counts).

    Parameters
    ----------
    day : date-like
        Planning date ("today").
    nodes : list of MarketingNode, optional
        Default: the calendar (:func:`load_calendar`) for ``day``'s year and the next one.
    topic_season : SeasonCall, optional
        A :func:`miner.insights.seasons.topic_seasonality` verdict. When it is seasonal, the node
        whose date lies closest to the season's ``next_start`` … ``next_end`` window (within
        ``season_slack_days`` of it) is chosen instead of simply the first one.
    key : str, optional
        Only this node (key, Chinese name or alias): its next occurrence.
    horizon_days : int
        Nodes more than this many days ahead are not considered.

    Returns
    -------
    MarketingNode or None
        None when no node (of ``key``) falls in ``[day, day + horizon_days]``.
    """
    day = _to_date(day)
    if nodes is None:
        last = (day + dt.timedelta(days=horizon_days)).year
        nodes = _default_nodes(range(day.year, last + 1))
    if key is not None:
        wanted = resolve_node_key(key, nodes)
        nodes = [n for n in nodes if n.key == wanted]
    horizon = day + dt.timedelta(days=horizon_days)
    upcoming = sorted((n for n in nodes if day <= n.date <= horizon), key=lambda n: (n.date, n.key))
    if not upcoming:
        return None
    if topic_season is not None and getattr(topic_season, "is_seasonal", False) \
            and topic_season.next_start is not None:
        lo = topic_season.next_start
        hi = topic_season.next_end or lo

        def gap(n):
            return 0 if lo <= n.date <= hi else min(abs((n.date - lo).days), abs((n.date - hi).days))

        near = [n for n in upcoming if gap(n) <= season_slack_days]
        if near:
            return min(near, key=lambda n: (gap(n), n.date, n.key))
    return upcoming[0]


def resolve_node_key(node: str, nodes: list[MarketingNode] | None = None) -> str:
    """``"双11"``, ``"双十一"`` or ``"double11"`` → ``"double11"`` (keys, names, aliases)."""
    nodes = nodes if nodes is not None else load_calendar(years=[dt.date.today().year])
    wanted = str(node).strip().lower()
    for n in nodes:
        if wanted in {n.key.lower(), n.name_zh.lower(), *(a.lower() for a in n.aliases)}:
            return n.key
    known = sorted({f"{n.name_zh}({n.key})" for n in nodes})
    raise ValueError(f"unknown marketing node {node!r}; known: {', '.join(known)}")


def seeding_start(node: MarketingNode) -> dt.date:
    """First day of the node's 蓄水 (seeding) phase: when content should start going out."""
    return node.phases["seeding"][0]


def _default_nodes(years, quiet_years=()) -> list[MarketingNode]:
    """The default calendar for ``years`` (warning about missing dates) plus ``quiet_years``
    (neighbours consulted only for phases that spill over; no warning when absent)."""
    years = sorted(set(years))
    nodes = load_calendar(years=years)
    extra = sorted(set(quiet_years) - set(years))
    if extra:
        nodes += load_calendar(years=extra, warn_missing=False)
    return nodes


# ---- year over year ----------------------------------------------------------------------------------

YOY_COLUMNS = (
    TOPIC_ID, "node_key", "name_zh", "year", "window_start", "window_end", "days",
    "note_count", "share_of_volume", "engagement",
    "prev_window_start", "prev_window_end", "prev_note_count", "prev_share_of_volume",
    "yoy_note_pct", "yoy_share_pct", "has_history", "history_zh",
)


def node_yoy(series: pd.DataFrame, node_key: str, nodes: list[MarketingNode] | None = None,
             phase: str | None = None) -> pd.DataFrame:
    """Each topic's volume in a node's window versus the same window a year earlier.

    Parameters
    ----------
    series : DataFrame
        Output of :func:`miner.insights.trends.topic_time_series`; a daily series is best (a weekly period
        counts when its start falls in the window).
    node_key : str
        e.g. ``"double11"``.
    nodes : list of MarketingNode, optional
        Default: :func:`load_calendar` for the years the series spans.
    phase : {"seeding", "burst", "after"}, optional
        Compare one phase only; default the whole span (蓄水 start → 返场 end).

    Returns
    -------
    DataFrame with :data:`YOY_COLUMNS`, one row per (topic, node year) whose window starts inside
    the series. A window still in progress (series ends inside it) is compared to-date: the same
    number of days from the start of last year's window. ``has_history`` is False and the
    ``yoy_*`` columns NaN (``history_zh`` = "无历史") when last year's window is not fully inside
    the series or the node has no previous year; ``yoy_*`` is also NaN when last year's count was 0.
    Shares are pooled: notes of the topic / all notes in the window.
    """
    for col in (TOPIC_ID, "period_start", "note_count", "engagement", "period_notes"):
        if col not in series.columns:
            raise ValueError(f"series: missing column {col!r}; has {list(series.columns)}")
    if phase is not None and phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES} or None, got {phase!r}")
    if series.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in YOY_COLUMNS})

    starts = pd.to_datetime(series["period_start"])
    days = (starts.dt.tz_convert(TZ) if starts.dt.tz is not None else starts).dt.date
    frame = series.assign(_day=days.to_numpy())
    first_day, last_day = min(frame["_day"]), max(frame["_day"])
    if nodes is None:
        nodes = _default_nodes(range(first_day.year, last_day.year + 1), [first_day.year - 1])
    mine = sorted((n for n in nodes if n.key == node_key), key=lambda n: n.date)
    if not mine:
        known = sorted({n.key for n in nodes})
        raise ValueError(f"no marketing node {node_key!r}; known: {known}")
    by_year = {n.year: n for n in mine}

    counts = frame.pivot_table(index=TOPIC_ID, columns="_day", values="note_count", aggfunc="sum",
                               fill_value=0)
    eng = frame.pivot_table(index=TOPIC_ID, columns="_day", values="engagement", aggfunc="sum",
                            fill_value=0).reindex(columns=counts.columns, fill_value=0)
    totals = frame.groupby("_day")["period_notes"].max().reindex(counts.columns, fill_value=0)
    cols = np.array(counts.columns)

    def window_sums(lo, hi):
        mask = (cols >= lo) & (cols <= hi)
        n = counts.to_numpy()[:, mask].sum(axis=1)
        total = totals.to_numpy()[mask].sum()
        return n, total, eng.to_numpy()[:, mask].sum(axis=1)

    rows = []
    for node in mine:
        lo, hi = node.phases[phase] if phase else (node.start, node.end)
        if lo < first_day or lo > last_day:
            continue
        hi = min(hi, last_day)
        n_days = (hi - lo).days + 1
        n, total, e = window_sums(lo, hi)
        prev = by_year.get(node.year - 1)
        p_lo = p_hi = None
        has_history = False
        if prev is not None:
            p_lo, p_full_hi = prev.phases[phase] if phase else (prev.start, prev.end)
            p_hi = min(p_full_hi, p_lo + dt.timedelta(days=n_days - 1))
            has_history = p_lo >= first_day and p_hi <= last_day
        if has_history:
            pn, ptotal, _ = window_sums(p_lo, p_hi)
        else:
            pn, ptotal = np.full(len(n), np.nan), np.nan
        share = n / total if total > 0 else np.zeros(len(n))
        pshare = pn / ptotal if has_history and ptotal > 0 else np.full(len(n), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            yoy_n = np.where(pn > 0, 100.0 * (n / pn - 1.0), np.nan)
            yoy_s = np.where(pshare > 0, 100.0 * (share / pshare - 1.0), np.nan)
        rows.append(pd.DataFrame({
            TOPIC_ID: counts.index.astype("int64"), "node_key": node.key, "name_zh": node.name_zh,
            "year": node.year, "window_start": lo, "window_end": hi, "days": n_days,
            "note_count": n.astype("int64"), "share_of_volume": share, "engagement": e,
            "prev_window_start": p_lo, "prev_window_end": p_hi,
            "prev_note_count": pn, "prev_share_of_volume": pshare,
            "yoy_note_pct": yoy_n, "yoy_share_pct": yoy_s,
            "has_history": has_history, "history_zh": "有历史" if has_history else "无历史",
        }))
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in YOY_COLUMNS})
    return pd.concat(rows, ignore_index=True)[list(YOY_COLUMNS)]


def _to_date(value) -> dt.date:
    if isinstance(value, pd.Timestamp):
        return (value.tz_convert(TZ) if value.tzinfo is not None else value).date()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return pd.Timestamp(value).tz_convert(TZ).date()
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    raise TypeError(f"expected a date, datetime, Timestamp or 'YYYY-MM-DD', got {value!r}")
