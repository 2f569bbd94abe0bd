"""Opportunity score (选题机会): one documented number per topic, with its components visible.

Each component is a 0–1 number where **higher means a better opportunity**:

============  ======  =====================================================================
component     中文     raw signal (per topic) → normalisation
============  ======  =====================================================================
momentum      势头     ½·pct(growth_z) + ½·pct(burst_z) from :func:`miner.insights.trends.trend_scores`,
                      counting **only calls that survive Benjamini–Hochberg** across topics
                      (growth_q / decline_q / burst_q ≤ fdr); a z that is not a call counts as 0
                      (no movement), so noise on small topics cannot rank
headroom      空间     (1 − penetration) · engagement_rate in the target segment, from
                      :func:`miner.insights.audience.topic_metrics_table`: room left among users who
                      respond when reached; (1 − penetration) alone without engagement data
value         价值     assoc_lift · aov_lift (association lift of conversion vs matched unreached
                      users, :mod:`miner.insights.audience.lift`); only a lift whose 95% interval
                      excludes 1 counts, any other lift is 1 (no evidence of value)
openness      蓝海     1 − saturation; saturation = mean of pct(notes per engaged user) and
                      pct(share of commercial notes). Without audience data, notes per 1,000
                      public interactions stand in for notes per engaged user (flagged).
                      ``is_commercial`` null / unrecognised is **unknown**: left out of the share;
                      a topic with < ``min_commercial_known`` known notes has no share (neutral,
                      flagged ``commercial_unknown``), never a known 0
timing        节点     only when a calendar node is chosen: pct(log node_lift), the topic's share
                      of volume inside the node's windows (蓄水→返场, every occurrence the data
                      covers) over its share outside, shrunk toward 1 for small counts
                      (empirical-Bayes, :mod:`miner.insights.node_timing`)
season        季节     only when some topic is seasonal (:mod:`miner.insights.seasons`, BH-
                      corrected): 1 in season (``days_to_season`` ≤ 0), falling linearly to 0 at
                      180 days before its next window; non-seasonal topics get the neutral 0.5
============  ======  =====================================================================

``pct`` is the percentile rank among the topics that have the signal (ties averaged; one topic →
0.5), so components are scale-free and robust to outliers. A topic without the signal (no audience
data, a suppressed k-anonymity cell, no order data, a node the data never covers) gets the neutral
0.5 and a flag naming why (see :data:`FLAG_NAMES_ZH`).

The score is the weighted mean of the components in use::

    score = Σ_c w_c · x_c / Σ_c w_c        (timing only with a node; season only with a season)

with the default weights of :class:`OpportunityWeights`. It is therefore non-decreasing in every
component and in every raw signal (the sign of each raw signal is in the table above).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from miner import schema
from miner.insights.calendar import resolve_node_key
from miner.insights.node_timing import node_lift
from miner.insights.stats import bh_qvalues, normal_sf
from miner.schema import NOTE_ID, OUTLIER, TOPIC_ID

__all__ = [
    "COMPONENTS",
    "COMPONENT_NAMES_ZH",
    "FLAG_NAMES_ZH",
    "OPPORTUNITY_COLUMNS",
    "OpportunityWeights",
    "combine",
    "commercial_flags",
    "momentum_signals",
    "node_lift",
    "opportunity_scores",
    "percentile_rank",
    "resolve_node_key",
    "segment_metrics",
    "snapshot_opportunity",
    "without_hidden",
]

COMPONENTS = ("momentum", "headroom", "value", "openness", "timing", "season")
COMPONENT_NAMES_ZH = {"momentum": "势头", "headroom": "人群空间", "value": "转化价值", "openness": "蓝海度",
                      "timing": "节点契合", "season": "季节契合"}
FLAG_NAMES_ZH = {
    "no_time": "无发布时间, 势头取中性",
    "no_audience": "无人群数据, 人群空间取中性",
    "audience_suppressed": "人群不足k匿名阈值, 人群空间取中性",
    "no_orders": "无订单回流, 转化价值取中性",
    "saturation_proxy": "无互动用户数, 饱和度以每千互动笔记数代替",
    "no_commercial_flag": "无商业笔记标记",
    "commercial_unknown": "商业笔记标记大多未知, 不计入饱和度",
    "node_no_history": "数据未覆盖该节点, 节点契合取中性",
}
OPPORTUNITY_COLUMNS = (
    TOPIC_ID, "label", "rank", "score", *COMPONENTS, "saturation",
    "stage", "stage_zh", "growth_z", "burst_z", "penetration", "engagement_rate", "value_lift",
    "notes_per_engaged_user", "commercial_share", "commercial_known", "node_lift", "is_seasonal",
    "days_to_season", "n_notes", "flags",
)
SEASON_HORIZON_DAYS = 180
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
    season: float = 0.10

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


def momentum_signals(trends: pd.DataFrame, fdr: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The growth and burst z-scores that count toward momentum: a z only where its call survives
    Benjamini–Hochberg (``growth_q`` ≤ fdr for up, ``decline_q`` ≤ fdr for down, ``burst_q`` ≤ fdr),
    0 (no movement) elsewhere and where the trend has no history. A table without q columns
    (an older trend table) gets them computed here from the z-scores, over its rows."""
    gz = trends["growth_z"].to_numpy(float)
    bz = trends["burst_z"].to_numpy(float)

    def q(name, z):
        return trends[name].to_numpy(float) if name in trends else bh_qvalues(normal_sf(z))

    up, down, burst = q("growth_q", gz), q("decline_q", -gz), q("burst_q", bz)
    ok_up = np.nan_to_num(up, nan=1.0) <= fdr
    ok_down = np.nan_to_num(down, nan=1.0) <= fdr
    g = np.where((ok_up & (gz > 0)) | (ok_down & (gz < 0)), gz, 0.0)
    b = np.where(np.nan_to_num(burst, nan=1.0) <= fdr, bz, 0.0)
    return np.nan_to_num(g), np.nan_to_num(b)


_TRUE = {"true", "1", "yes", "y", "t", "是", "商业", "商业笔记"}
_FALSE = {"false", "0", "no", "n", "f", "否", "非商业"}


def commercial_flags(values: pd.Series) -> pd.Series:
    """``is_commercial`` as 1.0 / 0.0 / NaN (unknown): booleans and 0/1 kept, common spellings
    ("true", "是", "否", …) read, everything else — None, NaN, "", "unknown", "未知" — unknown."""
    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return np.nan
        if isinstance(v, (bool, np.bool_)):
            return float(v)
        if isinstance(v, (int, float, np.integer, np.floating)):
            return float(v) if v in (0, 1) else np.nan
        text = str(v).strip().lower()
        return 1.0 if text in _TRUE else 0.0 if text in _FALSE else np.nan

    return pd.Series([one(v) for v in values], index=values.index, dtype="float64")


def opportunity_scores(notes: pd.DataFrame, assignments: pd.DataFrame, topics: pd.DataFrame | None = None,
                       trends: pd.DataFrame | None = None, metrics: pd.DataFrame | None = None,
                       node: str | None = None, weights: OpportunityWeights | None = None,
                       freq: str = "D", nodes=None, fdr: float = 0.05,
                       min_commercial_known: int = 3) -> pd.DataFrame:
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
    fdr : BH level a trend call must meet to count in momentum.
    min_commercial_known : notes with a known ``is_commercial`` a topic needs for its share.

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
        gz, bz = momentum_signals(t, fdr)
        out["momentum"] = 0.5 * percentile_rank(gz) + 0.5 * percentile_rank(bz)
        out["is_seasonal"] = t["is_seasonal"].fillna(False).astype(bool).to_numpy() \
            if "is_seasonal" in t else False
        out["days_to_season"] = t["days_to_season"].to_numpy(float) if "days_to_season" in t else np.nan
    else:
        out["stage"], out["stage_zh"], out["growth_z"], out["burst_z"] = None, None, np.nan, np.nan
        out["momentum"] = np.nan
        out["is_seasonal"], out["days_to_season"] = False, np.nan
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

    conv, aov = col("assoc_lift"), col("aov_lift")
    if m is not None and "lift_significant" in m:
        # an association lift whose interval contains 1 is no evidence: treated as no lift (1.0)
        significant = m["lift_significant"].fillna(False).astype(bool).to_numpy()
        conv = np.where(np.isnan(conv) | significant, conv, 1.0)
    out["value_lift"] = np.where(np.isnan(aov), conv, conv * aov)
    out["value"] = percentile_rank(out["value_lift"])
    flag(out["value_lift"].isna(), "no_orders")

    # saturation → openness
    engaged = col("engaged_users")
    engaged = np.where(np.isnan(engaged), col("reach"), engaged)
    npu = out["n_notes"].to_numpy(float) / np.where(engaged > 0, engaged, np.nan)
    if any(c in joined.columns for c in schema.ENGAGEMENT_COLS):
        per_topic = schema.engagement(joined).groupby(joined[TOPIC_ID]).sum()
        inter = out[TOPIC_ID].map(per_topic).to_numpy(float)
        proxy = 1000.0 * out["n_notes"].to_numpy(float) / np.maximum(inter, 1.0)
    else:
        proxy = np.full(len(out), np.nan)
    use_proxy = np.isnan(npu)
    flag(use_proxy & ~np.isnan(proxy), "saturation_proxy")
    out["notes_per_engaged_user"] = npu
    density = np.where(use_proxy, np.nan, percentile_rank(npu))
    # a topic's proxy rank is taken among the proxy values, so both scales never mix
    density = np.where(use_proxy, percentile_rank(np.where(use_proxy, proxy, np.nan)), density)
    flags_known = (commercial_flags(joined[schema.IS_COMMERCIAL]) if schema.IS_COMMERCIAL in joined.columns
                   else pd.Series(np.nan, index=joined.index))
    if flags_known.notna().any():
        grouped = flags_known.groupby(joined[TOPIC_ID])
        n_known = out[TOPIC_ID].map(grouped.count()).fillna(0).to_numpy(int)
        share = out[TOPIC_ID].map(grouped.mean()).to_numpy(float)
        enough = n_known >= min_commercial_known
        out["commercial_share"] = np.where(enough, share, np.nan)
        out["commercial_known"] = n_known
        commercial = percentile_rank(out["commercial_share"])
        flag(~enough, "commercial_unknown")
    else:
        out["commercial_share"], out["commercial_known"] = np.nan, 0
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
    out["season"] = np.nan
    if out["is_seasonal"].any():
        days = out["days_to_season"].to_numpy(float)
        closeness = 1.0 - np.clip(days, 0.0, SEASON_HORIZON_DAYS) / SEASON_HORIZON_DAYS
        out["season"] = np.where(out["is_seasonal"].to_numpy(bool) & np.isfinite(days), closeness, NEUTRAL)
        use.append("season")

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


def snapshot_opportunity(snapshot, metrics: pd.DataFrame | None = None, node: str | None = None,
                         weights: OpportunityWeights | None = None, trends: pd.DataFrame | None = None
                         ) -> pd.DataFrame:
    """:func:`opportunity_scores` over a :class:`miner.topics.snapshot.Snapshot`."""
    return opportunity_scores(snapshot.notes, snapshot.assignments, snapshot.topics, trends=trends,
                              metrics=metrics, node=node, weights=weights)


def without_hidden(table: pd.DataFrame, topics: pd.DataFrame, keep=()) -> pd.DataFrame:
    """Rows of a ranked per-topic table whose topic is not hidden by curation (except ``keep``),
    ``rank`` renumbered 1..n among them: the list a planner sees. Scores are left as computed
    over every topic, as the app's overview shows them."""
    drop = schema.hidden_topic_ids(topics) - {int(t) for t in keep}
    out = table[~table[TOPIC_ID].isin(drop)].reset_index(drop=True)
    if "rank" in out:
        out["rank"] = out["rank"].rank(method="first").astype("int64")
    return out


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
