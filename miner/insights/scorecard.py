"""极光-style scorecard per topic: four quadrants from the data present, each metric with its raw
value and its percentile among topics.

=============  ============  ============================================================================
quadrant       中文           metrics (raw value; higher is better for every one)
=============  ============  ============================================================================
awareness      认知           with ``engagements``: ``impression_share`` (topic impressions ÷ all impression
                             events) and ``reach_share`` (users with any action on the topic ÷ users with
                             any action); without: ``engagement_share`` (topic's public engagement ÷ all
                             notes', a proxy)
accumulation   内容积累        ``note_count`` (notes in the topic), ``note_growth`` (notes in the last
                             ``window_days`` to the planning date ÷ the window before, +1 smoothed, − 1),
                             ``author_count`` (distinct authors)
penetration    人群渗透        ``penetration`` of the chosen audience filter: from ``metrics``
                             (:func:`miner.insights.opportunity.segment_metrics`), else computed here from
                             the tables (reached audience users ÷ audience users matching the filter)
word_of_mouth  口碑激发        ``collects_per_note``, ``comments_per_note``, ``shares_per_note`` (public
                             counts, mean per note); with ``engagements`` also ``collects_per_reach``,
                             ``comments_per_reach``, ``shares_per_reach`` (events ÷ reached users);
                             ``organic_note_share`` and ``organic_engagement_share`` (non-commercial notes)
                             when ``is_commercial`` exists
=============  ============  ============================================================================

``percentile`` = 100 × (average rank − 1) ÷ (topics − 1) among topics with a value
(:func:`miner.insights.opportunity.percentile_rank`); ``quadrant_score`` = mean percentile of the
quadrant's metrics. k-anonymity: reach-based values resting on fewer than ``k`` users are NaN.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from miner import schema
from miner.schema import NOTE_ID, OUTLIER, TOPIC_ID
from miner.store import table_names

__all__ = ["QUADRANTS", "SCORECARD_COLUMNS", "quadrant_scores", "topic_scorecard"]

QUADRANTS = {"awareness": "认知", "accumulation": "内容积累", "penetration": "人群渗透", "word_of_mouth": "口碑激发"}
SCORECARD_COLUMNS = (TOPIC_ID, "label", "quadrant", "quadrant_zh", "metric", "metric_zh", "value", "unit",
                     "percentile", "quadrant_score", "basis")
# metric → (quadrant, 中文, unit: "share" | "count" | "ratio", basis)
_METRICS = {
    "impression_share": ("awareness", "曝光占比", "share", "话题曝光事件 ÷ 全部曝光事件"),
    "reach_share": ("awareness", "触达用户占比", "share", "对话题有任一行为的用户 ÷ 有任一行为的用户"),
    "engagement_share": ("awareness", "互动声量占比", "share", "话题公开互动 ÷ 全部笔记公开互动 (无曝光数据时的替代)"),
    "note_count": ("accumulation", "笔记数", "count", "话题笔记数"),
    "note_growth": ("accumulation", "笔记增长", "ratio", "近窗口 ÷ 前一窗口笔记数 − 1 (+1 平滑)"),
    "author_count": ("accumulation", "作者数", "count", "发布话题笔记的不同作者"),
    "penetration": ("penetration", "人群渗透率", "share", "触达的目标人群 ÷ 目标人群规模"),
    "collects_per_note": ("word_of_mouth", "篇均收藏", "ratio", "公开收藏数 ÷ 笔记数"),
    "comments_per_note": ("word_of_mouth", "篇均评论", "ratio", "公开评论数 ÷ 笔记数"),
    "shares_per_note": ("word_of_mouth", "篇均分享", "ratio", "公开分享数 ÷ 笔记数"),
    "collects_per_reach": ("word_of_mouth", "人均收藏", "ratio", "收藏事件 ÷ 触达用户"),
    "comments_per_reach": ("word_of_mouth", "人均评论", "ratio", "评论事件 ÷ 触达用户"),
    "shares_per_reach": ("word_of_mouth", "人均分享", "ratio", "分享事件 ÷ 触达用户"),
    "organic_note_share": ("word_of_mouth", "自然笔记占比", "share", "非商业笔记 ÷ 笔记数"),
    "organic_engagement_share": ("word_of_mouth", "自然互动占比", "share", "非商业笔记互动 ÷ 话题互动"),
}


def topic_scorecard(snapshot, metrics: pd.DataFrame | None = None, con=None, today: dt.date | None = None,
                    window_days: int = 30, audience_filter=None, k: int | None = None) -> pd.DataFrame:
    """Tidy scorecard: one row per topic × metric (:data:`SCORECARD_COLUMNS`).

    Parameters
    ----------
    snapshot : a topic snapshot (``notes``, ``assignments``, ``topics``).
    metrics : per-topic metrics of the chosen audience filter (``penetration``, ``suppressed``).
    con : optional DuckDB connection with ``engagements`` (and ``audience``) for reach-based rows.
    today : planning date for ``note_growth`` (clipped to the data's last day).
    audience_filter : filter for the penetration computed here when ``metrics`` is None (an object
        with ``filters()`` or a dict of column → values; default the whole audience).
    k : k-anonymity threshold (default ``MinerConfig().k_anonymity``).
    """
    from miner.config import MinerConfig
    from miner.insights.opportunity import percentile_rank
    k = MinerConfig().k_anonymity if k is None else int(k)
    notes = snapshot.notes
    asg = snapshot.assignments[snapshot.assignments[TOPIC_ID] != OUTLIER]
    topics = snapshot.topics[[TOPIC_ID, "label"]].copy()
    wide = topics.set_index(TOPIC_ID)[[]]
    joined = notes.merge(asg[[NOTE_ID, TOPIC_ID]], on=NOTE_ID, how="inner")
    _notes_metrics(wide, notes, joined, today, window_days)
    if con is not None and "engagements" in _tables(con):
        _event_metrics(wide, con, snapshot.assignments, k)
    else:
        eng = _engagement(joined)
        wide["engagement_share"] = eng.groupby(joined[TOPIC_ID]).sum() / max(float(_engagement(notes).sum()), 1.0)
    wide["penetration"] = _penetration(metrics, con, snapshot.assignments, audience_filter, k, wide.index)

    long = wide.reset_index().melt(id_vars=TOPIC_ID, var_name="metric", value_name="value")
    long["value"] = long["value"].astype("float64")
    long["percentile"] = long.groupby("metric")["value"].transform(lambda v: pd.Series(
        100 * percentile_rank(v.to_numpy()), index=v.index))
    info = pd.DataFrame.from_dict(_METRICS, orient="index", columns=["quadrant", "metric_zh", "unit", "basis"])
    long = long.merge(info, left_on="metric", right_index=True, how="left")
    long["quadrant_zh"] = long["quadrant"].map(QUADRANTS)
    long["quadrant_score"] = long.groupby([TOPIC_ID, "quadrant"])["percentile"].transform("mean")
    long = long.merge(topics, on=TOPIC_ID, how="left")
    order = {q: i for i, q in enumerate(QUADRANTS)}
    metric_order = {m: i for i, m in enumerate(_METRICS)}
    long = long.sort_values([TOPIC_ID, "quadrant", "metric"], key=lambda s: s.map(order) if s.name == "quadrant"
                            else s.map(metric_order) if s.name == "metric" else s, kind="stable")
    return long[list(SCORECARD_COLUMNS)].reset_index(drop=True)


def quadrant_scores(card: pd.DataFrame) -> pd.DataFrame:
    """One row per topic, one column per quadrant (its mean percentile, 0–100; NaN = no data)."""
    wide = card.drop_duplicates([TOPIC_ID, "quadrant"]).pivot(index=TOPIC_ID, columns="quadrant",
                                                               values="quadrant_score")
    return wide.reindex(columns=list(QUADRANTS)).reset_index()


# ---- parts ---------------------------------------------------------------------------------------------
_tables = table_names


_engagement = schema.engagement


def _notes_metrics(wide: pd.DataFrame, notes, joined, today, window_days: int) -> None:
    by = joined.groupby(TOPIC_ID)
    wide["note_count"] = by.size()
    if schema.AUTHOR_ID in joined:
        wide["author_count"] = by[schema.AUTHOR_ID].nunique()
    if schema.PUBLISHED_AT in joined and joined[schema.PUBLISHED_AT].notna().any():
        ts = pd.to_datetime(joined[schema.PUBLISHED_AT])
        ts = ts.dt.tz_localize(schema.TZ) if ts.dt.tz is None else ts.dt.tz_convert(schema.TZ)
        days = ts.dt.normalize()
        end = days.max()
        if today is not None:
            end = min(end, pd.Timestamp(today).tz_localize(schema.TZ))
        w = pd.Timedelta(days=window_days)
        recent = ((days > end - w) & (days <= end)).groupby(joined[TOPIC_ID]).sum()
        prev = ((days > end - 2 * w) & (days <= end - w)).groupby(joined[TOPIC_ID]).sum()
        wide["note_growth"] = (recent + 1) / (prev + 1) - 1
    n = wide["note_count"]
    for col, name in ((schema.COLLECTS, "collects_per_note"), (schema.COMMENTS, "comments_per_note"),
                      (schema.SHARES, "shares_per_note")):
        if col in joined:
            wide[name] = by[col].sum() / n
    if schema.IS_COMMERCIAL in joined and joined[schema.IS_COMMERCIAL].notna().any():
        organic = ~joined[schema.IS_COMMERCIAL].fillna(False).astype(bool)
        eng = _engagement(joined)
        wide["organic_note_share"] = organic.groupby(joined[TOPIC_ID]).mean()
        total = eng.groupby(joined[TOPIC_ID]).sum()
        wide["organic_engagement_share"] = (eng.where(organic, 0.0).groupby(joined[TOPIC_ID]).sum()
                                            / total.where(total > 0))


def _event_metrics(wide: pd.DataFrame, con, assignments, k: int) -> None:
    from miner.insights.tgi import registered_assignments
    with registered_assignments(con, assignments) as asg:
        per = con.execute(f"""
            SELECT a.topic_id, count(*) FILTER (WHERE e.action = 'impression') AS impressions,
                   count(DISTINCT e.user_id) AS reach,
                   count(*) FILTER (WHERE e.action = 'collect') AS collects,
                   count(*) FILTER (WHERE e.action = 'comment') AS comments,
                   count(*) FILTER (WHERE e.action = 'share') AS shares
            FROM engagements e JOIN {asg} a ON e.note_id = a.note_id GROUP BY a.topic_id""").df()
    total_imp, total_users = con.execute("SELECT count(*) FILTER (WHERE action = 'impression'), "
                                         "count(DISTINCT user_id) FROM engagements").fetchone()
    per = per.set_index(TOPIC_ID).reindex(wide.index)
    reach = per["reach"].where(per["reach"] >= k)          # k-anonymity: no value from a small cell
    wide["impression_share"] = per["impressions"] / total_imp if total_imp else np.nan
    wide["reach_share"] = reach / total_users if total_users else np.nan
    for col in ("collects", "comments", "shares"):
        wide[f"{col}_per_reach"] = per[col] / reach


def _filters(audience_filter) -> dict:
    if audience_filter is None:
        return {}
    if hasattr(audience_filter, "filters"):
        return dict(audience_filter.filters())
    return {key: (v,) if isinstance(v, str) else tuple(v) for key, v in dict(audience_filter).items()}


def _penetration(metrics, con, assignments, audience_filter, k: int, index) -> pd.Series:
    if metrics is not None and "penetration" in metrics:
        m = metrics.set_index(TOPIC_ID)
        pen = m["penetration"].astype("float64")
        if "suppressed" in m:
            pen = pen.where(~m["suppressed"].fillna(False).astype(bool))
        return pen.reindex(index)
    if con is None or not {"engagements", "audience"} <= _tables(con):
        return pd.Series(np.nan, index=index)
    from miner.insights.tgi import registered_assignments
    clauses, params = ["TRUE"], []
    for key, values in _filters(audience_filter).items():
        if key == "interests":
            clauses.append("list_has_any(au.interests, ?::VARCHAR[])")
            params.append(list(values))
        elif key in ("gender", "age_band", "city_tier"):
            clauses.append(f"au.{key} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
        else:
            raise ValueError(f"unknown audience filter key {key!r}; use gender, age_band, city_tier or interests")
    where = " AND ".join(clauses)
    population = con.execute(f"SELECT count(*) FROM audience au WHERE {where}", params).fetchone()[0]
    with registered_assignments(con, assignments) as asg:
        reached = con.execute(f"""SELECT a.topic_id, count(DISTINCT e.user_id) AS reach
                                  FROM engagements e JOIN {asg} a ON e.note_id = a.note_id
                                  JOIN audience au ON au.user_id = e.user_id WHERE {where}
                                  GROUP BY a.topic_id""", params).df().set_index(TOPIC_ID)["reach"]
    reached = reached.reindex(index)
    if population < k:
        return pd.Series(np.nan, index=index)
    return (reached.where(reached >= k) / population).astype("float64")
