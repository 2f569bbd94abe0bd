"""Opportunity score (选题机会): one documented number per topic, with its components visible.

Each component is a 0–1 number where **higher means a better opportunity**:

============  ======  =====================================================================
component     中文     raw signal (per topic) → normalisation
============  ======  =====================================================================
momentum      势头     ½·pct(growth_z) + ½·pct(burst_z) from :func:`miner.insights.trends.trend_scores`
                      (share-of-volume growth vs the previous window, and burst vs baseline)
headroom      空间     (1 − penetration) · engagement_rate in the target segment, from
                      :func:`miner.insights.audience.topic_metrics_table`: room left among users who
                      respond when reached; (1 − penetration) alone without engagement data
value         价值     conversion_lift · aov_lift (= lift of GMV per reached user vs comparable
                      unreached users); conversion_lift alone when amounts are suppressed
openness      蓝海     1 − saturation; saturation = mean of pct(notes per engaged user) and
                      pct(share of commercial notes). Without audience data, notes per 1,000
                      public interactions stand in for notes per engaged user (flagged)
timing        节点     only when a calendar node is chosen: pct(log node_lift), the topic's share
                      of volume inside the node's windows (蓄水→返场, every occurrence the data
                      covers) over its share outside, with +1 note smoothing
============  ======  =====================================================================

``pct`` is the percentile rank among the topics that have the signal (ties averaged; one topic →
0.5), so components are scale-free and robust to outliers. A topic without the signal (no audience
data, a suppressed k-anonymity cell, no order data, a node the data never covers) gets the neutral
0.5 and a flag naming why (see :data:`FLAG_NAMES_ZH`).

The score is the weighted mean of the components in use::

    score = Σ_c w_c · x_c / Σ_c w_c        (timing only counts when a node is given)

with the default weights of :class:`OpportunityWeights`. It is therefore non-decreasing in every
component and in every raw signal (the sign of each raw signal is in the table above).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from miner import schema
from miner.schema import NOTE_ID, OUTLIER, TOPIC_ID

__all__ = [
    "COMPONENTS",
    "COMPONENT_NAMES_ZH",
    "FLAG_NAMES_ZH",
    "OPPORTUNITY_COLUMNS",
    "OpportunityWeights",
    "combine",
    "node_lift",
    "opportunity_scores",
    "percentile_rank",
    "segment_metrics",
    "snapshot_opportunity",
    "trend_table",
]

COMPONENTS = ("momentum", "headroom", "value", "openness", "timing")
COMPONENT_NAMES_ZH = {"momentum": "势头", "headroom": "人群空间", "value": "转化价值", "openness": "蓝海度",
                      "timing": "节点契合"}
FLAG_NAMES_ZH = {
    "no_time": "无发布时间, 势头取中性",
    "no_audience": "无人群数据, 人群空间取中性",
    "audience_suppressed": "人群不足k匿名阈值, 人群空间取中性",
    "no_orders": "无订单回流, 转化价值取中性",
    "saturation_proxy": "无互动用户数, 饱和度以每千互动笔记数代替",
    "no_commercial_flag": "无商业笔记标记",
    "node_no_history": "数据未覆盖该节点, 节点契合取中性",
}
OPPORTUNITY_COLUMNS = (
    TOPIC_ID, "label", "rank", "score", *COMPONENTS, "saturation",
    "stage", "stage_zh", "growth_z", "burst_z", "penetration", "engagement_rate", "value_lift",
    "notes_per_engaged_user", "commercial_share", "node_lift", "n_notes", "flags",
)
NEUTRAL = 0.5


@dataclass(frozen=True)
class OpportunityWeights:
    """Default weights of the opportunity score (they need not sum to 1: the score divides by
    the sum of the weights in use). Momentum leads because it is the signal every dataset has;
    timing is small so a node re-orders near-ties rather than overriding the rest."""

    momentum: float = 0.30
    headroom: float = 0.20
    value: float = 0.20
    openness: float = 0.20
    timing: float = 0.10

    def __post_init__(self):
        for name, w in asdict(self).items():
            if not np.isfinite(w) or w < 0:
                raise ValueError(f"weight {name} must be a finite number ≥ 0, got {w}")


def percentile_rank(values) -> np.ndarray:
    """Map values to [0, 1] by rank: (average rank − 1) / (n − 1); NaN stays NaN; one value → 0.5."""
    s = pd.Series(np.asarray(values, dtype="float64"))
    n = int(s.notna().sum())
    if n == 0:
        return s.to_numpy()
    if n == 1:
        return np.where(s.notna(), NEUTRAL, np.nan)
    return ((s.rank(method="average") - 1.0) / (n - 1)).to_numpy()


def combine(components: pd.DataFrame, weights: OpportunityWeights | None = None,
            use: tuple[str, ...] | None = None) -> pd.Series:
    """Weighted mean of component columns (each in [0, 1]; NaN counts as neutral 0.5)."""
    weights = weights or OpportunityWeights()
    use = tuple(c for c in (use or COMPONENTS) if c in components.columns)
    w = np.array([getattr(weights, c) for c in use], dtype="float64")
    if w.sum() <= 0:
        raise ValueError(f"the weights of the components in use {list(use)} sum to 0")
    X = components[list(use)].astype("float64").fillna(NEUTRAL).to_numpy()
    return pd.Series(X @ w / w.sum(), index=components.index, name="score")


def node_lift(series: pd.DataFrame, node_key: str, nodes=None) -> pd.Series:
    """Per topic: share of volume inside the node's windows ÷ share outside (+1 note smoothing).

    ``series`` is a daily :func:`miner.insights.trends.topic_time_series`. Windows are every occurrence of
    the node (蓄水 start → 返场 end) overlapping the series. NaN for every topic when the series
    covers no occurrence; an empty series gives an empty result.
    """
    from miner.insights.calendar import DEFAULT_YEARS, load_calendar

    if series.empty:
        return pd.Series(np.nan, index=pd.Index([], name=TOPIC_ID, dtype="int64"), name="node_lift", dtype=float)
    days = pd.to_datetime(series["period_start"])
    days = (days.dt.tz_convert(schema.TZ) if days.dt.tz is not None else days).dt.date
    first, last = days.min(), days.max()
    if nodes is None:
        nodes = load_calendar(years=[y for y in range(first.year - 1, last.year + 2) if y in DEFAULT_YEARS]
                              or [first.year])
    mine = [n for n in nodes if n.key == node_key]
    if not mine:
        raise ValueError(f"no marketing node {node_key!r}; known: {sorted({n.key for n in nodes})}")
    inside = np.zeros(len(series), dtype=bool)
    for node in mine:
        inside |= ((days >= node.start) & (days <= node.end)).to_numpy()
    frame = series.assign(_in=inside)
    topics = pd.Index(sorted(series[TOPIC_ID].unique()), name=TOPIC_ID)
    if not inside.any() or inside.all():
        return pd.Series(np.nan, index=topics, name="node_lift")
    per = frame.groupby([TOPIC_ID, "_in"])["note_count"].sum().unstack(fill_value=0)
    per = per.reindex(index=topics, columns=[False, True], fill_value=0)
    totals = frame.drop_duplicates("period_start").groupby("_in")["period_notes"].sum()
    n_in, n_out = totals.get(True, 0), totals.get(False, 0)
    if n_in == 0 or n_out == 0:
        return pd.Series(np.nan, index=topics, name="node_lift")
    lift = ((per[True] + 1) / n_in) / ((per[False] + 1) / n_out)
    return lift.rename("node_lift")


def opportunity_scores(notes: pd.DataFrame, assignments: pd.DataFrame, topics: pd.DataFrame | None = None,
                       trends: pd.DataFrame | None = None, metrics: pd.DataFrame | None = None,
                       node: str | None = None, weights: OpportunityWeights | None = None,
                       freq: str = "D", nodes=None) -> pd.DataFrame:
    """Rank topics by opportunity (module docstring has the formula).

    Parameters
    ----------
    notes : notes table (``note_id``; ``published_at`` and engagement counts for momentum;
        ``is_commercial`` if known).
    assignments : ``note_id``, ``topic_id`` (−1 outliers are left out).
    topics : optional ``topic_id``, ``label``.
    trends : optional precomputed :func:`miner.insights.trends.trend_scores`; computed when None.
    metrics : optional per-topic audience table for the target segment
        (:func:`segment_metrics` / :func:`miner.insights.audience.topic_metrics_table`): ``penetration``,
        ``engagement_rate``, ``conversion_lift``, ``aov_lift``, ``engaged_users`` or ``reach``,
        ``suppressed``.
    node : marketing node key (e.g. ``"double11"``) or its Chinese name / alias; adds ``timing``.
    weights : :class:`OpportunityWeights`.

    Returns
    -------
    DataFrame with :data:`OPPORTUNITY_COLUMNS`, best first; ``flags`` is a list of codes
    (:data:`FLAG_NAMES_ZH`).
    """
    weights = weights or OpportunityWeights()
    asg = assignments.loc[assignments[TOPIC_ID] != OUTLIER, [NOTE_ID, TOPIC_ID]]
    topic_ids = sorted(asg[TOPIC_ID].astype("int64").unique())
    if topics is not None:
        topic_ids = sorted(set(topic_ids) | set(topics[TOPIC_ID].astype("int64")))
    out = pd.DataFrame({TOPIC_ID: np.asarray(topic_ids, dtype="int64")})
    flags: dict[int, list[str]] = {t: [] for t in topic_ids}

    def flag(mask, code):
        for t in out.loc[np.asarray(mask, dtype=bool), TOPIC_ID]:
            flags[int(t)].append(code)

    joined = asg.merge(notes, on=NOTE_ID, how="left")
    by_topic = joined.groupby(TOPIC_ID)
    out["n_notes"] = out[TOPIC_ID].map(by_topic.size()).fillna(0).astype("int64")

    # momentum
    has_time = schema.PUBLISHED_AT in notes.columns and notes[schema.PUBLISHED_AT].notna().any()
    series = None
    if trends is None and has_time:
        from miner.insights.trends import topic_time_series, trend_scores
        series = topic_time_series(notes, assignments, freq=freq)
        trends = trend_scores(series)
    if trends is not None and len(trends):
        t = out[[TOPIC_ID]].merge(trends, on=TOPIC_ID, how="left")
        out["stage"], out["stage_zh"] = t["stage"].to_numpy(), t["stage_zh"].to_numpy()
        out["growth_z"], out["burst_z"] = t["growth_z"].to_numpy(float), t["burst_z"].to_numpy(float)
        gz, bz = out["growth_z"].fillna(0.0), out["burst_z"].fillna(0.0)   # no history = no movement
        out["momentum"] = 0.5 * percentile_rank(gz) + 0.5 * percentile_rank(bz)
    else:
        out["stage"], out["stage_zh"], out["growth_z"], out["burst_z"] = None, None, np.nan, np.nan
        out["momentum"] = np.nan
        flag(np.ones(len(out)), "no_time")

    # headroom and value (target segment)
    m = out[[TOPIC_ID]].merge(metrics, on=TOPIC_ID, how="left") if metrics is not None else None

    def col(name):
        return m[name].to_numpy(float) if m is not None and name in m else np.full(len(out), np.nan)

    suppressed = (m["suppressed"].eq(True).to_numpy() if m is not None and "suppressed" in m
                  else np.zeros(len(out), bool))
    out["penetration"], out["engagement_rate"] = col("penetration"), col("engagement_rate")
    pen = out["penetration"].to_numpy(float)
    er = out["engagement_rate"].to_numpy(float)
    room = np.where(np.isnan(er), 1.0 - pen, (1.0 - pen) * er)
    out["headroom"] = percentile_rank(room)
    if metrics is None:
        flag(np.ones(len(out)), "no_audience")
    else:
        flag(np.isnan(pen) & suppressed, "audience_suppressed")
        flag(np.isnan(pen) & ~suppressed, "no_audience")

    conv, aov = col("conversion_lift"), col("aov_lift")
    out["value_lift"] = np.where(np.isnan(aov), conv, conv * aov)
    out["value"] = percentile_rank(out["value_lift"])
    flag(out["value_lift"].isna(), "no_orders")

    # saturation → openness
    engaged = col("engaged_users")
    engaged = np.where(np.isnan(engaged), col("reach"), engaged)
    npu = out["n_notes"].to_numpy(float) / np.where(engaged > 0, engaged, np.nan)
    counts = [c for c in schema.ENGAGEMENT_COLS if c in joined.columns]
    if counts:
        inter = out[TOPIC_ID].map(by_topic[counts].sum().sum(axis=1)).to_numpy(float)
        proxy = 1000.0 * out["n_notes"].to_numpy(float) / np.maximum(inter, 1.0)
    else:
        proxy = np.full(len(out), np.nan)
    use_proxy = np.isnan(npu)
    flag(use_proxy & ~np.isnan(proxy), "saturation_proxy")
    out["notes_per_engaged_user"] = npu
    density = np.where(use_proxy, np.nan, percentile_rank(npu))
    # a topic's proxy rank is taken among the proxy values, so both scales never mix
    density = np.where(use_proxy, percentile_rank(np.where(use_proxy, proxy, np.nan)), density)
    if schema.IS_COMMERCIAL in joined.columns and joined[schema.IS_COMMERCIAL].notna().any():
        share = by_topic[schema.IS_COMMERCIAL].apply(lambda s: s.dropna().astype(float).mean())
        out["commercial_share"] = out[TOPIC_ID].map(share).to_numpy(float)
        commercial = percentile_rank(out["commercial_share"])
    else:
        out["commercial_share"] = np.nan
        commercial = np.full(len(out), np.nan)
        flag(np.ones(len(out)), "no_commercial_flag")
    parts = np.vstack([density, commercial])
    known = (~np.isnan(parts)).sum(axis=0)
    out["saturation"] = np.where(known > 0, np.nansum(parts, axis=0) / np.maximum(known, 1), np.nan)
    out["openness"] = 1.0 - out["saturation"]

    # timing (node)
    use = ["momentum", "headroom", "value", "openness"]
    out["node_lift"] = np.nan
    out["timing"] = np.nan
    if node is not None:
        node_key = resolve_node_key(node, nodes)
        if has_time:
            from miner.insights.trends import topic_time_series
            daily = series if series is not None and freq == "D" else topic_time_series(notes, assignments, "D")
            lift = node_lift(daily, node_key, nodes)
            out["node_lift"] = out[TOPIC_ID].map(lift).to_numpy(float)
            out["timing"] = percentile_rank(np.log(out["node_lift"]))
        flag(out["node_lift"].isna(), "node_no_history")
        use.append("timing")

    out["score"] = combine(out, weights, tuple(use))
    for c in COMPONENTS:
        out[c] = out[c].astype("float64").fillna(NEUTRAL) if c in use else out[c]
    if topics is not None:
        out = out.merge(topics[[TOPIC_ID, "label"]], on=TOPIC_ID, how="left")
    else:
        out["label"] = None
    out["flags"] = [flags[int(t)] for t in out[TOPIC_ID]]
    out = out.sort_values(["score", TOPIC_ID], ascending=[False, True], kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out[list(OPPORTUNITY_COLUMNS)]


def resolve_node_key(node: str, nodes=None) -> str:
    """``"双11"``, ``"双十一"`` or ``"double11"`` → ``"double11"``."""
    from miner.insights.calendar import load_calendar
    nodes = nodes if nodes is not None else load_calendar()
    wanted = str(node).strip().lower()
    for n in nodes:
        if wanted in {n.key.lower(), n.name_zh.lower(), *(a.lower() for a in n.aliases)}:
            return n.key
    known = sorted({f"{n.name_zh}({n.key})" for n in nodes})
    raise ValueError(f"unknown marketing node {node!r}; known: {', '.join(known)}")


def snapshot_opportunity(snapshot, metrics: pd.DataFrame | None = None, node: str | None = None,
                         weights: OpportunityWeights | None = None, trends: pd.DataFrame | None = None
                         ) -> pd.DataFrame:
    """:func:`opportunity_scores` over a :class:`miner.topics.snapshot.Snapshot`."""
    return opportunity_scores(snapshot.notes, snapshot.assignments, snapshot.topics, trends=trends,
                              metrics=metrics, node=node, weights=weights)


def segment_metrics(con, snapshot, segment=None, window=None, k: int = 50, brand=None,
                    attribution_days: int = 15) -> pd.DataFrame:
    """Audience metrics of every topic for a target segment, ready for :func:`opportunity_scores`.

    :func:`miner.insights.audience.topic_metrics_table` plus ``engaged_users``: segment users with a like,
    collect, comment or share on the topic (the denominator of notes per engaged user).
    """
    from miner.insights.audience import INTERACTION_ACTIONS, default_brand, topic_metrics_table, topic_reach_penetration
    brand = brand or default_brand(con)     # metrics are per brand, never pooled: the main brand unless chosen
    table = topic_metrics_table(con, snapshot.assignments, snapshot.topics, snapshot.notes, segment=segment,
                                window=window, brand=brand, attribution_days=attribution_days, k=k)
    engaged = topic_reach_penetration(con, snapshot.assignments, segment, window, k,
                                      actions=INTERACTION_ACTIONS)
    return table.merge(engaged[[TOPIC_ID, "reach"]].rename(columns={"reach": "engaged_users"}),
                       on=TOPIC_ID, how="left")


TREND_TABLE_COLUMNS = (
    TOPIC_ID, "label", "size", "stage", "stage_zh", "growth_pct", "growth_z", "burst_z", "recent_notes",
    "low_volume", "next_node", "next_node_zh", "node_date", "seeding_start", "node_lift", "node_reason",
)


def trend_table(snapshot, freq: str = "D", today=None, horizon_days: int = 365, min_lift: float = 1.2,
                nodes=None) -> pd.DataFrame:
    """Lifecycle per topic plus the marketing node to plan for.

    The node is the first upcoming node (within ``horizon_days`` of ``today``) whose past windows
    held at least ``min_lift`` × the topic's usual share of volume (``node_reason`` =
    "history"); when the data shows no such node, simply the next node ("next").
    """
    import datetime as dt
    from zoneinfo import ZoneInfo

    from miner.insights.calendar import load_calendar, seeding_start
    from miner.insights.trends import topic_time_series, trend_scores

    notes, asg = snapshot.notes, snapshot.assignments
    if schema.PUBLISHED_AT not in notes or notes[schema.PUBLISHED_AT].isna().all():
        raise ValueError("the snapshot's notes have no published_at; trends need publish times")
    today = today or dt.datetime.now(ZoneInfo(schema.TZ)).date()
    if isinstance(today, str):
        today = dt.date.fromisoformat(today)
    scores = trend_scores(topic_time_series(notes, asg, freq=freq))
    daily = topic_time_series(notes, asg, freq="D")
    first = pd.to_datetime(daily["period_start"]).min().date()
    from miner.insights.calendar import DEFAULT_YEARS
    years = sorted({y for y in range(first.year - 1, today.year + 2) if y in DEFAULT_YEARS} or {today.year})
    nodes = nodes if nodes is not None else load_calendar(years=years)
    upcoming = sorted((n for n in nodes if today <= n.date <= today + dt.timedelta(days=horizon_days)),
                      key=lambda n: n.date)
    lifts = {}
    for key in dict.fromkeys(n.key for n in upcoming):
        lifts[key] = node_lift(daily, key, nodes)
    out = snapshot.topics[[TOPIC_ID, "label", "size"]].merge(scores, on=TOPIC_ID, how="left")
    chosen = []
    for t in out[TOPIC_ID].astype(int):
        pick, reason, lift = (upcoming[0] if upcoming else None), "next", np.nan
        for n in upcoming:
            value = lifts[n.key].get(t, np.nan)
            if np.isfinite(value) and value >= min_lift:
                pick, reason, lift = n, "history", value
                break
        if pick is not None and reason == "next":
            lift = lifts[pick.key].get(t, np.nan)
        chosen.append((pick, reason, lift))
    out["next_node"] = [p.key if p else None for p, _, _ in chosen]
    out["next_node_zh"] = [p.name_zh if p else None for p, _, _ in chosen]
    out["node_date"] = [p.date if p else None for p, _, _ in chosen]
    out["seeding_start"] = [seeding_start(p) if p else None for p, _, _ in chosen]
    out["node_lift"] = [float(v) for _, _, v in chosen]
    out["node_reason"] = [r for _, r, _ in chosen]
    return out[list(TREND_TABLE_COLUMNS)]
