"""Assemble a :class:`ContentBrief` for one topic of a snapshot (rules only; the LLM polish is opt-in)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from miner import schema
from miner.insights.briefs import context, parts
from miner.insights.briefs.model import ContentBrief
from miner.insights.briefs.patterns import mine_title_patterns
from miner.insights.briefs.stats import adjusted_engagement
from miner.schema import NOTE_ID, OUTLIER, TOPIC_ID

__all__ = ["build_brief", "build_briefs", "is_mixed_topic"]

DEFAULT_STALE_DAYS = 14


def is_mixed_topic(topic, min_coherence: float | None = None) -> tuple[bool, str | None]:
    """(mixed?, why) from the topic row's ``is_mixed`` / ``coherence`` columns when they exist."""
    flag = topic.get("is_mixed", None)
    coherence = topic.get("coherence", None)
    coh = float(coherence) if coherence is not None and pd.notna(coherence) else None
    if flag is not None and pd.notna(flag) and bool(flag):
        return True, f"关键词一致性低 (coherence {coh:.2f})" if coh is not None else "标记为混合话题"
    if min_coherence is not None and coh is not None and coh < min_coherence:
        return True, f"关键词一致性 {coh:.2f} 低于阈值 {min_coherence:.2f}"
    return False, None


@dataclass
class _Shared:
    """What every brief of one snapshot × planning date shares (computed once by :func:`build_briefs`)."""
    adjusted: pd.DataFrame
    norm: dict
    scores: pd.DataFrame | None
    series: pd.DataFrame | None
    fresh: dict
    stale_note: str | None
    opportunity: pd.DataFrame
    scorecard: pd.DataFrame
    tgi: pd.DataFrame | None


def _shared(snapshot, today, metrics, node, con, k, stale_days, scorecard, tgi, tgi_topics) -> _Shared:
    from miner.insights.opportunity import snapshot_opportunity
    adjusted, norm = adjusted_engagement(snapshot.notes.reset_index(drop=True))
    scores, series, fresh, stale_note = context.shared_trend(snapshot, today, stale_days)
    if scorecard is None:
        from miner.insights.scorecard import topic_scorecard
        scorecard = topic_scorecard(snapshot, metrics=metrics, con=con, today=today)
    if tgi is None and con is not None:
        from miner.insights.tgi import has_tgi_tables, topic_tgi
        if has_tgi_tables(con):
            tgi = topic_tgi(con, snapshot.assignments, topic_ids=tgi_topics, k=k)
    return _Shared(adjusted, norm, scores, series, fresh, stale_note,
                   snapshot_opportunity(snapshot, metrics=metrics, node=node, trends=scores), scorecard, tgi)


def build_brief(snapshot, topic_id: int, segment=None, node: str | None = None,
                metrics: pd.DataFrame | None = None, today: dt.date | None = None,
                polish: bool = False, min_angle_size: int = 10, seed: int = 42, con=None,
                k: int | None = None, min_group_size: int = 10, stale_days: int = DEFAULT_STALE_DAYS,
                min_coherence: float | None = None, scorecard: pd.DataFrame | None = None,
                tgi: pd.DataFrame | None = None) -> ContentBrief:
    """Content brief for ``topic_id`` of ``snapshot``.

    Parameters
    ----------
    snapshot : :class:`miner.topics.snapshot.Snapshot`.
    topic_id : a topic of the snapshot (not −1).
    segment : target audience filter (``AudienceFilter``, spec ``"gender=F,age_band=18-24"``
        or dict); names the audience. Its numbers come from ``metrics``.
    node : marketing node (``"双11"``, ``"double11"``); default the topic's own season when
        :mod:`miner.insights.seasons` finds one, else the node whose 蓄水 starts next.
    metrics : per-topic metrics of the segment (:func:`miner.insights.opportunity.segment_metrics`).
    today : planning date (default: today, Asia/Shanghai). "Recent", day counts and data freshness
        are measured to it.
    polish : opt in to the LLM endpoint for the positioning line (:mod:`miner.insights.briefs.llm`).
    min_angle_size : smallest sub-group listed as an angle.
    con : optional DuckDB connection with the audience tables: adds reach-based scorecard rows and
        the TGI (人群纠偏) section.
    k : k-anonymity threshold for the TGI section (default ``MinerConfig().k_anonymity``).
    min_group_size : smallest group (weekday, hour block, format) the significance tests use.
    stale_days : data older than this many days before ``today`` is flagged as stale.
    min_coherence : also treat a topic with ``coherence`` below this as mixed (``is_mixed`` always counts).
    scorecard, tgi : precomputed :func:`miner.insights.scorecard.topic_scorecard` /
        :func:`miner.insights.tgi.topic_tgi` tables (all topics), to reuse across briefs; computed
        here when None (TGI only when ``con`` is given).
    """
    _check_topic(snapshot, topic_id)
    today = today or dt.datetime.now(ZoneInfo(schema.TZ)).date()
    shared = _shared(snapshot, today, metrics, node, con, k, stale_days, scorecard, tgi, [topic_id])
    return _build_one(snapshot, topic_id, shared, segment=segment, node=node, metrics=metrics, today=today,
                      polish=polish, min_angle_size=min_angle_size, seed=seed, min_group_size=min_group_size,
                      min_coherence=min_coherence)


def build_briefs(snapshot, topic_ids=None, segment=None, node: str | None = None,
                 metrics: pd.DataFrame | None = None, today: dt.date | None = None, con=None,
                 k: int | None = None, stale_days: int = DEFAULT_STALE_DAYS, **options) -> list[ContentBrief]:
    """Briefs for ``topic_ids`` (default every topic not hidden by curation), sharing the snapshot-wide
    work (engagement fit, trends, opportunity, scorecard, TGI). ``options`` as for :func:`build_brief`."""
    hidden = schema.hidden_topic_ids(snapshot.topics)
    ids = ([int(t) for t in snapshot.topics[TOPIC_ID] if int(t) not in hidden] if topic_ids is None
           else [int(t) for t in topic_ids])
    for topic_id in ids:
        _check_topic(snapshot, topic_id)
    today = today or dt.datetime.now(ZoneInfo(schema.TZ)).date()
    shared = _shared(snapshot, today, metrics, node, con, k, stale_days, options.pop("scorecard", None),
                     options.pop("tgi", None), None if topic_ids is None else ids)
    return [_build_one(snapshot, t, shared, segment=segment, node=node, metrics=metrics, today=today, **options)
            for t in ids]


def _check_topic(snapshot, topic_id) -> None:
    if topic_id == OUTLIER or topic_id not in set(snapshot.topics[TOPIC_ID].astype(int)):
        raise ValueError(f"topic {topic_id} is not in snapshot {snapshot.run_id} "
                         f"(topics 0..{len(snapshot.topics) - 1}; see `python -m miner topics`)")


def _build_one(snapshot, topic_id, shared: _Shared, segment, node, metrics, today, polish=False,
               min_angle_size=10, seed=42, min_group_size=10, min_coherence=None) -> ContentBrief:
    topic = snapshot.topics.set_index(TOPIC_ID).loc[topic_id]
    notes = snapshot.notes.reset_index(drop=True)
    topic_of = snapshot.assignments.set_index(NOTE_ID)[TOPIC_ID]
    rows = np.flatnonzero(notes[NOTE_ID].map(topic_of).fillna(OUTLIER).astype(int).to_numpy() == topic_id)
    if len(rows) == 0:
        raise ValueError(f"topic {topic_id} has no notes in snapshot {snapshot.run_id}")
    tn = notes.iloc[rows].copy()
    tn["_row"] = rows
    tn["_eng"] = shared.adjusted["engagement"].iloc[rows].astype("int64").to_numpy()
    tn["_idx"] = shared.adjusted["engagement_index"].iloc[rows].to_numpy()
    norm = dict(shared.norm)
    caveats: list[str] = [] if shared.stale_note is None else [shared.stale_note]
    if not norm["by_age"]:
        caveats.append("笔记无可用发布时间, 互动未按笔记年龄调整")
    if not norm["by_author_size"]:
        norm["author_note_zh"] = "笔记无作者粉丝数字段, 互动未按作者体量调整"

    mixed, why = is_mixed_topic(topic, min_coherence)
    seg = context.audience_filter(segment)
    rng = parts.engagement_range(tn)
    evidence = parts.evidence_notes(tn, topic)
    angles = parts.angles(snapshot, tn, min_angle_size, seed, caveats)
    patterns = mine_title_patterns(tn[schema.TITLE], tn["_idx"], tn[NOTE_ID])
    hooks = mine_title_patterns(tn[schema.TITLE], tn["_idx"], tn[NOTE_ID], hooks=True)
    fmt = parts.fmt(tn, min_group_size, caveats)
    posting = parts.posting(tn, min_group_size, caveats)
    keywords = [str(kw) for kw in schema.list_cell(topic.get("keywords"), split_text=True)]
    hashtags = parts.hashtags(tn, keywords, caveats)
    trend = context.topic_trend(snapshot, shared.scores, topic_id, today, shared.fresh)
    from miner.insights.opportunity import without_hidden
    # ranked among the topics a planner sees (hidden ones left out; this one kept even if hidden)
    opp = context.opportunity(without_hidden(shared.opportunity, snapshot.topics, keep=[topic_id]), topic_id)
    audience = context.audience(seg, metrics, topic_id, caveats)
    timing = context.timing(node, today, shared.series, topic_id, caveats)
    kpis = parts.kpis(tn, rng, audience)
    card = shared.scorecard[shared.scorecard[TOPIC_ID] == topic_id].drop(columns=[TOPIC_ID]).to_dict("records")
    tgi_rows = []
    if shared.tgi is not None:
        mine = shared.tgi[(shared.tgi[TOPIC_ID] == topic_id) & shared.tgi["over_index"].astype(bool)]
        tgi_rows = mine.head(8).drop(columns=[TOPIC_ID]).to_dict("records")

    label = str(topic.get("label", f"话题{topic_id}"))
    if mixed:
        positioning = (f"不推荐: 「{label}」是混合话题 ({why}), 笔记来自多个不相关的主题, "
                       f"不宜作为一个选题; 请查看下方子群或换一个话题。")
        pos_evidence = [r.note_id for r in evidence if r.role == "representative"][:3]
        caveats.insert(0, f"混合话题: {why}; 本简报不作选题推荐")
    else:
        positioning, pos_evidence = _positioning(label, seg, angles, trend, fmt, patterns, timing, evidence)
    source = "rule"
    if polish and not mixed:
        from miner.insights.briefs.llm import polish_positioning
        positioning, source, note = polish_positioning(positioning, label, keywords)
        if note:
            caveats.append(note)

    return ContentBrief(
        topic_id=int(topic_id), label=label, run_id=str(snapshot.run_id),
        generated_at=dt.datetime.now(ZoneInfo(schema.TZ)).isoformat(timespec="seconds"),
        n_notes=int(len(tn)), positioning=positioning, positioning_source=source,
        positioning_evidence=pos_evidence, audience=audience, keywords=keywords, hashtags=hashtags,
        angles=angles, title_patterns=patterns, title_length=parts.title_length(tn), format=fmt, posting=posting,
        engagement_range=rng, kpis=kpis, trend=trend, opportunity=opp, timing=timing,
        evidence_notes=evidence, notes=caveats, recommended=not mixed, hooks=hooks, normalisation=norm,
        data_freshness=shared.fresh, scorecard=card, tgi=tgi_rows)


def _positioning(label, seg, angles, trend, fmt, patterns, timing, evidence) -> tuple[str, list[str]]:
    """One sentence from the evidence: only claims whose test or interval supports them."""
    who = seg.label if seg else "目标用户"
    parts_ = [f"面向{who}的「{label}」选题"]
    strong = [a for a in angles if a.index_low is not None and a.index_low > 1.0]
    angle = strong[0] if strong else None
    if angle is not None:
        parts_.append(f"优先从「{angle.label}」切入 ({angle.n_notes} 篇, 年龄调整互动为话题的 "
                      f"{angle.engagement_index:.2f} 倍, 区间 {angle.index_low:.2f}–{angle.index_high:.2f})")
    if trend.get("stage_zh"):
        parts_.append(f"截至 {trend['as_of']} 处于{trend['stage_zh']}期")
    if fmt.get("recommended_zh"):
        parts_.append(f"以{fmt['recommended_zh']}为主")
    sig = [p for p in patterns if p.p_value is not None and p.p_value < 0.05]
    if sig:
        parts_.append(f"标题多用{'、'.join(p.name_zh for p in sig[:2])}")
    if timing:
        parts_.append(f"{timing['seeding_start']} 起为{timing['node_zh']}蓄水 (距规划日 {timing['days_until_seeding']} 天)")
    ids = ((angle.note_ids if angle else []) + [i for p in sig[:2] for i in p.example_note_ids[:1]]
           + [r.note_id for r in evidence if r.role == "representative"][:2])
    return "，".join(parts_) + "。", list(dict.fromkeys(ids))
