"""Sections of a brief that read beyond the topic's notes: trend and data freshness (to the planning
date), opportunity, audience metrics, and timing (the topic's own season, or a marketing node)."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from miner import schema
from miner.insights.briefs.model import num
from miner.schema import TOPIC_ID

SEASON_LEAD_DAYS = 14      # 蓄水 before a topic's own season starts (no calendar node to borrow phases from)
RECENT_DAYS = 7


def _local_dates(values: pd.Series) -> pd.Series:
    ts = pd.to_datetime(values)
    ts = ts.dt.tz_localize(schema.TZ) if ts.dt.tz is None else ts.dt.tz_convert(schema.TZ)
    return ts.dt.date


def shared_trend(snapshot, today: dt.date, stale_days: int):
    """(trend_scores to min(today, data end) or None, daily series or None, freshness dict, stale note or None)."""
    notes = snapshot.notes
    fresh = {"planned_on": today.isoformat(), "data_end": None, "data_age_days": None, "stale": False,
             "stale_days": int(stale_days)}
    if schema.PUBLISHED_AT not in notes or notes[schema.PUBLISHED_AT].isna().all():
        return None, None, fresh, None
    from miner.insights.trends import topic_time_series, trend_scores
    data_end = max(_local_dates(notes[schema.PUBLISHED_AT].dropna()))
    age = (today - data_end).days
    fresh.update(data_end=data_end.isoformat(), data_age_days=int(age), stale=bool(age > stale_days))
    note = None
    if fresh["stale"]:
        note = (f"数据截至 {data_end}, 比规划日 {today} 早 {age} 天 (超过 {stale_days} 天): "
                f"生命周期与增长为数据末尾的状态, 不代表当前; 近{RECENT_DAYS}天 (到规划日) 该话题无新数据")
    series = topic_time_series(notes, snapshot.assignments)
    return trend_scores(series, as_of=min(today, data_end)), series, fresh, note


def topic_trend(snapshot, scores, topic_id: int, today: dt.date, fresh: dict) -> dict:
    """The topic's lifecycle row, plus its note counts in the 7 days to the planning date and the 7 before."""
    if scores is None:
        return {"stage": None}
    notes = snapshot.notes
    as_of = min(today, dt.date.fromisoformat(fresh["data_end"]))
    mine = snapshot.assignments.loc[snapshot.assignments[TOPIC_ID] == topic_id, schema.NOTE_ID]
    pub = _local_dates(notes.loc[notes[schema.NOTE_ID].isin(mine), schema.PUBLISHED_AT].dropna())
    week = dt.timedelta(days=RECENT_DAYS)
    out = {"stage": None, "as_of": as_of.isoformat(), "planned_on": today.isoformat(),
           "recent_notes_to_planning": int(((pub > today - week) & (pub <= today)).sum()),
           "previous_notes_to_planning": int(((pub > today - 2 * week) & (pub <= today - week)).sum()),
           "window_days": RECENT_DAYS}
    row = scores[scores[TOPIC_ID] == topic_id]
    if not row.empty:
        r = row.iloc[0]
        out.update({"stage": r["stage"], "stage_zh": r["stage_zh"], "growth_pct": num(r["growth_pct"]),
                    "growth_z": num(r["growth_z"]), "burst_z": num(r["burst_z"]), "recent_notes": int(r["recent_notes"]),
                    "previous_notes": int(r["previous_notes"]), "low_volume": bool(r["low_volume"]),
                    "basis": f"share of daily note volume, the {RECENT_DAYS} days to {as_of} vs the "
                             f"{RECENT_DAYS} before (miner.insights.trends)"})
    return out


def opportunity(table: pd.DataFrame, topic_id) -> dict | None:
    """The topic's row of :func:`miner.insights.opportunity.snapshot_opportunity`."""
    from miner.insights.opportunity import FLAG_NAMES_ZH
    row = table[table[TOPIC_ID] == topic_id]
    if row.empty:
        return None
    r = row.iloc[0]
    return {"score": float(r["score"]), "rank": int(r["rank"]), "of": int(len(table)),
            **{c: num(r[c]) for c in ("momentum", "headroom", "value", "openness", "timing", "saturation",
                                      "node_lift", "notes_per_engaged_user", "commercial_share")},
            "flags": list(r["flags"]), "flags_zh": [FLAG_NAMES_ZH.get(f, f) for f in r["flags"]]}


def audience_filter(spec):
    """The :class:`~miner.insights.audience.AudienceFilter` for ``spec``, or None."""
    if spec is None:
        return None
    from miner.insights.audience import AudienceFilter
    return AudienceFilter.from_spec(spec)


def audience(seg, metrics, topic_id, caveats) -> dict:
    from miner.schema import AIPS_STAGE_NAMES
    flow_pairs = tuple(zip(schema.AIPS_STAGES[:-1], schema.AIPS_STAGES[1:]))   # A→I, I→TI, TI→P, P→S
    out = {"segment": seg.filters() if seg else {}, "segment_zh": seg.label if seg else "全部用户",
           "aips_stage": None}
    row = None
    if metrics is not None and TOPIC_ID in metrics:
        sel = metrics[metrics[TOPIC_ID] == topic_id]
        row = sel.iloc[0] if len(sel) else None
    if row is None:
        caveats.append("未提供人群指标 (metrics), 人群部分仅给出目标人群名称")
        return out
    for c in ("reach", "segment_size", "penetration", "penetration_change", "engagement_rate", "engaged_users",
              "buyers", "attributed_gmv", "aov", "conversion_rate", "assoc_lift", "assoc_lift_lo",
              "assoc_lift_hi", "n_reached", "n_matched_control", "aov_lift"):
        if c in row.index:
            out[c] = num(row[c])
    if "lift_significant" in row.index and pd.notna(row["lift_significant"]):
        out["lift_significant"] = bool(row["lift_significant"])
    if bool(row.get("suppressed", False)):
        caveats.append("该人群在此话题的触达用户少于 k 匿名阈值, 人群指标已隐藏")
    flows = []
    for a, b in flow_pairs:
        lift, rate = row.get(f"flow_lift_{a}_{b}"), row.get(f"flow_rate_{a}_{b}")
        significant = row.get(f"flow_significant_{a}_{b}", True)
        # Only a flow whose association-lift interval excludes 1 names the audience's stage.
        if lift is not None and pd.notna(lift) and significant is not None and bool(pd.notna(significant)
                                                                                    and significant):
            flows.append({"from": a, "to": b, "rate": num(rate), "lift": float(lift),
                          "moved": num(row.get(f"flow_{a}_{b}"))})
    out["aips_flows"] = flows
    if flows:
        best = max(flows, key=lambda f: f["lift"])
        out["aips_stage"] = best["from"]
        out["aips_stage_zh"] = (f"{AIPS_STAGE_NAMES[best['from']]}({best['from']}) → "
                                f"{AIPS_STAGE_NAMES[best['to']]}({best['to']})")
        out["aips_basis"] = (f"该话题触达用户 {best['from']}→{best['to']} 流转率是匹配未触达用户的 "
                             f"{best['lift']:.2f} 倍 (关联提升, 区间不含 1), 流转最强")
    else:
        caveats.append("无显著的 AIPS 关联提升 (或被 k 匿名隐藏), 未判定人群所处阶段")
    return out


# ---- timing ----------------------------------------------------------------------------------------
def season_call(series_topic: pd.DataFrame | None, caveats: list[str]):
    """The topic's :class:`SeasonCall` from ``miner.insights.seasons`` when that module exists."""
    if series_topic is None or series_topic.empty:
        return None
    try:
        from miner.insights.seasons import topic_seasonality
    except ImportError:
        return None
    try:
        return topic_seasonality(series_topic)
    except (TypeError, ValueError, KeyError) as exc:
        caveats.append(f"季节性判断失败 ({type(exc).__name__}: {exc}), 节点按营销日历选择")
        return None


def _to_date(value) -> dt.date | None:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return pd.Timestamp(value).date()
    except (TypeError, ValueError):
        return None


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:                       # 02-29
        return day.replace(year=day.year + years, day=28)


def season_timing(call, today: dt.date, caveats: list[str]) -> dict | None:
    """Timing from the topic's own season: its next start (rolled to the next occurrence after today)."""
    start = _to_date(getattr(call, "next_start", None))
    peak_month = getattr(call, "peak_month", None)
    if start is None and peak_month:
        start = dt.date(today.year, int(peak_month), 1)
    if start is None:
        return None
    rolled = 0
    while start - dt.timedelta(days=SEASON_LEAD_DAYS) < today:
        start, rolled = _add_years(start, 1), rolled + 1
    if rolled and getattr(call, "lunar", False):
        caveats.append("该话题旺季随农历变化, 下一次旺季日期按公历顺延估计, 请对照农历核实")
    seeding = start - dt.timedelta(days=SEASON_LEAD_DAYS)
    window = getattr(call, "peak_window_zh", None) or (f"{int(peak_month)}月" if peak_month else "")
    return {"node": "season", "node_zh": f"话题旺季{f' ({window})' if window else ''}", "source": "seasonality",
            "date": start.isoformat(), "seeding_start": seeding.isoformat(),
            "phases": {"蓄水": [seeding.isoformat(), (start - dt.timedelta(days=1)).isoformat()]},
            "days_until_seeding": (seeding - today).days, "days_until_node": (start - today).days,
            "planned_on": today.isoformat(), "node_lift": None,
            "season": {"strength": num(getattr(call, "strength", None)), "years": getattr(call, "years", None),
                       "peak_month": peak_month, "lunar": bool(getattr(call, "lunar", False))}}


def calendar_timing(node: str | None, today: dt.date, series, topic_id: int, caveats: list[str]) -> dict | None:
    """The next occurrence of ``node`` (or of any node) on or after ``today``
    (:func:`miner.insights.calendar.next_node`). When its 蓄水 has already begun, the days until
    蓄水 are 0 and the brief says how far into it the planning date is: never a negative count."""
    from miner.insights.calendar import PHASE_NAMES_ZH, load_calendar, next_node, seeding_start
    from miner.insights.opportunity import node_lift
    nodes = load_calendar(years=range(today.year, today.year + 3), warn_missing=False)
    target = next_node(today, nodes, key=node)
    if target is None:
        caveats.append(f"日历中没有 {node or '任何节点'} 在 {today} 之后的日期, 请在 data/calendar 中补充")
        return None
    start = seeding_start(target)
    started = start < today
    if started:
        caveats.append(f"{target.name_zh} ({target.date}) 的蓄水期已于 {start} 开始 ({(today - start).days} 天前), "
                       f"距节点 {(target.date - today).days} 天: 现在就是投放窗口")
    out = {"node": target.key, "node_zh": target.name_zh, "source": "calendar", "date": target.date.isoformat(),
           "seeding_start": start.isoformat(), "seeding_started": started,
           "phases": {PHASE_NAMES_ZH[p]: [a.isoformat(), b.isoformat()] for p, (a, b) in target.phases.items()},
           "days_until_seeding": max(0, (start - today).days), "days_until_node": (target.date - today).days,
           "planned_on": today.isoformat(), "node_lift": None}
    if series is not None:
        value = node_lift(series, target.key).get(topic_id, np.nan)
        out["node_lift"] = num(value)
        if not np.isfinite(value):
            caveats.append(f"数据未覆盖往年 {target.name_zh}, 无法验证该话题在节点期的热度")
    return out


def timing(node, today, series, topic_id, caveats) -> dict | None:
    """An explicit ``node`` wins; otherwise the topic's own season when it has one; else the calendar."""
    topic_series = series[series[TOPIC_ID] == topic_id] if series is not None else None
    call = season_call(topic_series, caveats)
    seasonal = bool(getattr(call, "is_seasonal", False))
    if node is None and seasonal:
        out = season_timing(call, today, caveats)
        if out is not None:
            return out
    out = calendar_timing(node, today, series, topic_id, caveats)
    if out is not None and seasonal:
        caveats.append(f"该话题有自身旺季 ({getattr(call, 'peak_window_zh', '') or getattr(call, 'peak_month', '')}), "
                       f"但已指定节点 {out['node_zh']}")
    elif out is not None and call is not None:
        out["season_checked"] = True          # seasonality was tested and found none
    return out
