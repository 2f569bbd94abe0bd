"""Content brief (选题简报) for one topic, built from the snapshot's own notes — no LLM needed.

Every claim carries its evidence: the note ids it rests on and the numbers behind it.

* **engagement** = likes + collects + comments + shares of a note (public counts, as in
  :mod:`miner.insights.trends`); **best-performing** notes are the topic's top quartile by engagement.
* **expected engagement range** — P25–P75 (and P50) of the topic's note engagement, linear
  interpolation (``pandas.Series.quantile``).
* **angles** (切入角度) — spherical k-means on the topic's note embeddings
  (k = clamp(round(n / 40), 2, 5); one angle below 2 × ``min_angle_size`` notes), each labelled
  with c-TF-IDF (:class:`miner.topics.label.ClassTfidf`) over the sub-clusters; sorted by median
  engagement.
* **title patterns** — :data:`TITLE_PATTERNS` regexes; a pattern is recommended when it is more
  common among best-performing titles than among all (``lift`` = share_top ÷ share_all).
* **format / posting time** — the note_type, weekday and 3-hour block (Asia/Shanghai) with the
  highest median engagement among groups with at least ``max(5, 5 %)`` of the topic's notes.
* **KPIs** — engagement per note (P50 baseline, P75 stretch), collect/like and comment/like ratios
  (topic medians), plus penetration / conversion when segment metrics are given.
* **timing** — the chosen (or next) marketing node's next occurrence and its 蓄水 start
  (:mod:`miner.insights.calendar`), with the topic's historical volume lift inside that node's windows.

Optional LLM polish: when ``MINER_LLM_BASE_URL`` and ``MINER_LLM_MODEL`` are set (and optionally
``MINER_LLM_API_KEY``, ``MINER_LLM_TIMEOUT`` seconds, default 8), the rule-written positioning line
is sent to the OpenAI-compatible ``/chat/completions`` endpoint to be reworded; on any failure the
rule line is kept and the brief says so in ``notes``.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from miner import schema
from miner.schema import NOTE_ID, OUTLIER, TOPIC_ID

__all__ = [
    "Angle", "ContentBrief", "NoteRef", "TITLE_PATTERNS", "TitlePattern", "build_brief",
    "mine_title_patterns", "title_features",
]

# key → (中文, regex). Compiled once; matched against the raw title (emoji via miner.topics.segment).
TITLE_PATTERNS: dict[str, tuple[str, str]] = {
    # digits, or a Chinese numeral other than a lone 一 ("一个" is filler) before a measure word
    "number": ("数字", r"\d|(?:[二两三四五六七八九十百千万]|一[二两三四五六七八九十百千万])[一二两三四五六七八九十百千万]*"
                      r"\s*(?:个|款|种|招|步|件|天|分钟|元|块|套|类|道|次|年|岁|斤|条|样|家|点|大)|一(?:招|步|分钟|张图)"),
    "emoji": ("表情符号", ""),   # handled by miner.topics.segment.count_emoji
    "question": ("疑问句", r"[?？]|吗|怎么|如何|为什么|为啥|哪|啥|多少|是否|能不能|值不值"),
    "exclaim": ("感叹号", r"[!！]"),
    "bracket": ("括号标签【】", r"[【】《》「」『』\[\]]"),
    "pingti": ("平替", r"平替"),
    "guide": ("攻略", r"攻略|指南|路线"),
    "review": ("测评", r"测评|评测|实测|试吃|试用|开箱|体验"),
    "collection": ("合集/清单", r"合集|大全|清单|汇总|盘点|整理"),
    "tutorial": ("教程", r"教程|教学|手把手|保姆级|步骤|做法|怎么做|新手"),
    "avoid": ("避雷", r"避雷|踩雷|踩坑|千万别|劝退|后悔|翻车"),
    "must": ("必看/干货", r"必看|必备|干货|收藏|建议"),
    "price": ("价格/平价", r"\d+\s*(?:元|块|w|万)|平价|便宜|白菜价|学生党|性价比|省钱"),
    "first_person": ("第一人称", r"我"),
    "compare": ("对比", r"vs|VS|对比|区别|还是"),
}
_COMPILED = {k: re.compile(p) for k, (_, p) in TITLE_PATTERNS.items() if p}
WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
NOTE_TYPES_ZH = {"image": "图文", "video": "视频"}
HOUR_BLOCK = 3
LLM_ENV = ("MINER_LLM_BASE_URL", "MINER_LLM_API_KEY", "MINER_LLM_MODEL")


# ---- dataclasses ---------------------------------------------------------------------------------
@dataclass
class NoteRef:
    note_id: str
    title: str
    engagement: int
    likes: int = 0
    collects: int = 0
    comments: int = 0
    shares: int = 0
    published_at: str | None = None
    note_type: str | None = None
    role: str = ""              # "representative" (near the centroid) | "top" (most engagement)


@dataclass
class Angle:
    label: str
    keywords: list[str]
    n_notes: int
    share: float                # of the topic's notes
    median_engagement: float
    engagement_index: float     # median_engagement ÷ topic median
    note_ids: list[str]         # evidence: the angle's most engaging notes


@dataclass
class TitlePattern:
    key: str
    name_zh: str
    share_top: float            # among best-performing titles
    share_all: float            # among all titles of the topic
    lift: float                 # share_top ÷ share_all
    n_top: int
    n_all: int
    example_note_ids: list[str]
    examples: list[str]


@dataclass
class ContentBrief:
    """A topic's content brief. ``to_markdown()`` for people, ``to_json()`` for machines."""

    topic_id: int
    label: str
    run_id: str
    generated_at: str
    n_notes: int
    positioning: str
    positioning_source: str                 # "rule" | "llm:<model>"
    positioning_evidence: list[str]         # note ids
    audience: dict
    keywords: list[str]
    hashtags: list[dict]
    angles: list[Angle]
    title_patterns: list[TitlePattern]
    title_length: dict
    format: dict
    posting: dict
    engagement_range: dict
    kpis: list[dict]
    trend: dict
    opportunity: dict | None
    timing: dict | None
    evidence_notes: list[NoteRef]
    notes: list[str] = field(default_factory=list)   # caveats and fallbacks

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(_finite(self.to_dict()), ensure_ascii=False, indent=indent, default=_json_default,
                          allow_nan=False)

    def to_markdown(self) -> str:
        return _render_markdown(self)


# ---- title patterns ------------------------------------------------------------------------------
def title_features(title: str) -> dict[str, bool]:
    """Which :data:`TITLE_PATTERNS` a title shows."""
    from miner.topics.segment import count_emoji
    title = str(title or "")
    out = {k: bool(rx.search(title)) for k, rx in _COMPILED.items()}
    out["emoji"] = count_emoji(title) > 0
    return {k: out[k] for k in TITLE_PATTERNS}


def mine_title_patterns(titles, engagement, note_ids=None, top_quantile: float = 0.75,
                        min_top: int = 3, n_examples: int = 3) -> list[TitlePattern]:
    """Patterns over-represented among best-performing titles (engagement ≥ ``top_quantile``).

    Returns patterns seen in at least ``min_top`` best titles with lift > 1, best lift first
    (ties: more common first).
    """
    titles = pd.Series(list(titles), dtype=object).fillna("").astype(str).reset_index(drop=True)
    eng = pd.Series(np.asarray(engagement, dtype="float64"))
    ids = pd.Series(list(note_ids) if note_ids is not None else titles.index.astype(str))
    if len(titles) == 0:
        return []
    feats = pd.DataFrame([title_features(t) for t in titles])
    top = (eng >= eng.quantile(top_quantile)).to_numpy()
    out = []
    for key in TITLE_PATTERNS:
        has = feats[key].to_numpy()
        n_top, n_all = int((has & top).sum()), int(has.sum())
        share_top, share_all = n_top / max(int(top.sum()), 1), n_all / len(titles)
        if n_top < min_top or share_all == 0:
            continue
        lift = share_top / share_all
        if lift <= 1.0:
            continue
        rows = np.flatnonzero(has & top)
        rows = rows[np.argsort(-eng.to_numpy()[rows], kind="stable")[:n_examples]]
        out.append(TitlePattern(key=key, name_zh=TITLE_PATTERNS[key][0], share_top=share_top,
                                share_all=share_all, lift=lift, n_top=n_top, n_all=n_all,
                                example_note_ids=[str(ids[r]) for r in rows],
                                examples=[titles[r] for r in rows]))
    return sorted(out, key=lambda p: (-p.lift, -p.share_top, p.key))


# ---- the brief -----------------------------------------------------------------------------------
def build_brief(snapshot, topic_id: int, segment=None, node: str | None = None,
                metrics: pd.DataFrame | None = None, today: dt.date | None = None,
                polish: bool = True, min_angle_size: int = 10, seed: int = 42) -> ContentBrief:
    """Content brief for ``topic_id`` of ``snapshot``.

    Parameters
    ----------
    snapshot : :class:`miner.topics.snapshot.Snapshot`.
    topic_id : a topic of the snapshot (not −1).
    segment : target segment (:class:`miner.insights.audience.Segment`, spec ``"gender=F,age_band=18-24"``
        or dict); names the audience. Its numbers come from ``metrics``.
    node : marketing node (``"双11"``, ``"double11"``); default the next node after ``today``.
    metrics : per-topic metrics of the segment (:func:`miner.insights.opportunity.segment_metrics`).
    today : planning date for the calendar (default: today, Asia/Shanghai).
    polish : try the optional LLM endpoint for the positioning line.
    """
    topics = snapshot.topics
    if topic_id == OUTLIER or topic_id not in set(topics[TOPIC_ID].astype(int)):
        raise ValueError(f"topic {topic_id} is not in snapshot {snapshot.run_id} "
                         f"(topics 0..{len(topics) - 1}; see `python -m miner topics`)")
    topic = topics.set_index(TOPIC_ID).loc[topic_id]
    notes = snapshot.notes.reset_index(drop=True)
    topic_of = snapshot.assignments.set_index(NOTE_ID)[TOPIC_ID]
    rows = np.flatnonzero(notes[NOTE_ID].map(topic_of).fillna(OUTLIER).astype(int).to_numpy() == topic_id)
    if len(rows) == 0:
        raise ValueError(f"topic {topic_id} has no notes in snapshot {snapshot.run_id}")
    tn = notes.iloc[rows].copy()
    tn["_row"] = rows
    tn["_eng"] = _engagement(tn)
    caveats: list[str] = []

    seg = _segment(segment)
    engagement_range = _engagement_range(tn)
    evidence = _evidence_notes(tn, topic)
    angles = _angles(snapshot, tn, min_angle_size, seed)
    patterns = mine_title_patterns(tn[schema.TITLE], tn["_eng"], tn[NOTE_ID])
    title_len = _title_length(tn)
    fmt = _format(tn, caveats)
    posting = _posting(tn, caveats)
    keywords = [str(k) for k in schema.list_cell(topic.get("keywords"), split_text=True)]
    hashtags = _hashtags(tn, keywords, caveats)
    trend, trend_table = _trend(snapshot, topic_id)
    opp = _opportunity(snapshot, topic_id, metrics, node, trend_table)
    audience = _audience(seg, metrics, topic_id, caveats)
    timing = _timing(snapshot, topic_id, node, today, caveats)
    kpis = _kpis(tn, engagement_range, audience)

    label = str(topic.get("label", f"话题{topic_id}"))
    positioning, pos_evidence = _positioning(label, seg, angles, trend, fmt, patterns, evidence, timing)
    source = "rule"
    if polish:
        positioning, source, note = _polish_positioning(positioning, label, keywords)
        if note:
            caveats.append(note)

    return ContentBrief(
        topic_id=int(topic_id), label=label, run_id=str(snapshot.run_id),
        generated_at=dt.datetime.now(ZoneInfo(schema.TZ)).isoformat(timespec="seconds"),
        n_notes=int(len(tn)), positioning=positioning, positioning_source=source,
        positioning_evidence=pos_evidence, audience=audience, keywords=keywords, hashtags=hashtags,
        angles=angles, title_patterns=patterns, title_length=title_len, format=fmt, posting=posting,
        engagement_range=engagement_range, kpis=kpis, trend=trend, opportunity=opp, timing=timing,
        evidence_notes=evidence, notes=caveats)


# ---- parts ---------------------------------------------------------------------------------------
def _engagement(frame: pd.DataFrame) -> pd.Series:
    cols = [c for c in schema.ENGAGEMENT_COLS if c in frame.columns]
    if not cols:
        return pd.Series(0, index=frame.index, dtype="int64")
    return frame[cols].fillna(0).astype("int64").sum(axis=1)


def _engagement_range(tn: pd.DataFrame) -> dict:
    e = tn["_eng"].astype("float64")
    return {"metric": "likes + collects + comments + shares", "n_notes": int(len(e)),
            "p25": float(e.quantile(0.25)), "p50": float(e.quantile(0.5)), "p75": float(e.quantile(0.75)),
            "mean": float(e.mean()), "max": float(e.max())}


def _ref(row, role: str) -> NoteRef:
    def count(name):
        v = row.get(name, 0)
        return int(v) if pd.notna(v) else 0
    published = row.get(schema.PUBLISHED_AT)
    return NoteRef(note_id=str(row[NOTE_ID]), title=str(row.get(schema.TITLE) or ""), engagement=int(row["_eng"]),
                   likes=count(schema.LIKES), collects=count(schema.COLLECTS), comments=count(schema.COMMENTS),
                   shares=count(schema.SHARES),
                   published_at=pd.Timestamp(published).isoformat() if published is not None and pd.notna(published)
                   else None,
                   note_type=row.get(schema.NOTE_TYPE) if pd.notna(row.get(schema.NOTE_TYPE, None)) else None,
                   role=role)


def _evidence_notes(tn: pd.DataFrame, topic, n_top: int = 5) -> list[NoteRef]:
    by_id = tn.set_index(NOTE_ID, drop=False)
    out, seen = [], set()
    for nid in schema.list_cell(topic.get("representative_note_ids"), split_text=True):
        if str(nid) in by_id.index and str(nid) not in seen:
            out.append(_ref(by_id.loc[str(nid)], "representative"))
            seen.add(str(nid))
    for _, row in tn.sort_values("_eng", ascending=False, kind="stable").head(n_top).iterrows():
        if row[NOTE_ID] not in seen:
            out.append(_ref(row, "top"))
            seen.add(row[NOTE_ID])
    return out


def _angles(snapshot, tn: pd.DataFrame, min_size: int, seed: int) -> list[Angle]:
    from miner.topics.cluster import as_float32_normalized, spherical_kmeans
    from miner.topics.label import ClassTfidf, short_label
    n = len(tn)
    k = int(np.clip(round(n / 40), 2, 5)) if n >= 2 * min_size else 1
    if k > 1:
        X = as_float32_normalized(snapshot.embeddings[tn["_row"].to_numpy()])
        _, labels = spherical_kmeans(X, k, seed)
    else:
        labels = np.zeros(n, dtype=np.int64)
    tokens = [schema.list_cell(t, split_text=True) for t in tn["tokens"]] if "tokens" in tn else [[] for _ in range(n)]
    ctf = ClassTfidf(min_df=1).fit(tokens, labels)
    median_all = float(tn["_eng"].median()) or 1.0
    out = []
    for a in np.unique(labels):
        members = tn[labels == a]
        terms = [t for t, _ in ctf.top_terms(a, 6)]
        med = float(members["_eng"].median())
        best = members.sort_values("_eng", ascending=False, kind="stable").head(3)
        out.append(Angle(label=short_label(terms, 2), keywords=terms, n_notes=int(len(members)),
                         share=len(members) / n, median_engagement=med, engagement_index=med / median_all,
                         note_ids=best[NOTE_ID].astype(str).tolist()))
    return sorted(out, key=lambda a: (-a.median_engagement, -a.n_notes))


def _title_length(tn: pd.DataFrame) -> dict:
    lengths = tn[schema.TITLE].fillna("").astype(str).str.len()
    top = tn["_eng"] >= tn["_eng"].quantile(0.75)
    lt = lengths[top]
    return {"median_all": float(lengths.median()), "median_top": float(lt.median()),
            "recommended": [int(lt.quantile(0.25)), int(lt.quantile(0.75))], "n_top": int(top.sum())}


def _min_group(n: int) -> int:
    return max(5, int(np.ceil(0.05 * n)))


def _best_group(tn: pd.DataFrame, key: pd.Series) -> tuple[object, pd.DataFrame, bool]:
    """(best group by median engagement among big-enough groups, the per-group table, fallback?)."""
    table = tn.groupby(key)["_eng"].agg(n_notes="size", median_engagement="median")
    table["share"] = table["n_notes"] / len(tn)
    big = table[table["n_notes"] >= _min_group(len(tn))]
    if big.empty:
        return table["n_notes"].idxmax(), table, True
    return big["median_engagement"].idxmax(), table, False


def _top_ids(tn: pd.DataFrame, mask, n: int = 3) -> list[str]:
    return tn[mask].sort_values("_eng", ascending=False, kind="stable").head(n)[NOTE_ID].astype(str).tolist()


def _format(tn: pd.DataFrame, caveats: list[str]) -> dict:
    if schema.NOTE_TYPE not in tn or tn[schema.NOTE_TYPE].isna().all():
        caveats.append("笔记无 note_type 字段, 无法推荐形式")
        return {"recommended": None}
    types = tn[schema.NOTE_TYPE].fillna("unknown").astype(str)
    best, table, fallback = _best_group(tn, types)
    if fallback:
        caveats.append("各形式笔记数都偏少, 形式按数量最多者推荐")
    return {"recommended": best, "recommended_zh": NOTE_TYPES_ZH.get(best, best),
            "by_type": {str(k): {"n_notes": int(r.n_notes), "share": float(r.share),
                                 "median_engagement": float(r.median_engagement)} for k, r in table.iterrows()},
            "evidence_note_ids": _top_ids(tn, types == best)}


def _posting(tn: pd.DataFrame, caveats: list[str]) -> dict:
    if schema.PUBLISHED_AT not in tn or tn[schema.PUBLISHED_AT].isna().all():
        caveats.append("笔记无发布时间, 无法推荐发布时段")
        return {"weekday": None, "hour_block": None}
    ts = pd.to_datetime(tn[schema.PUBLISHED_AT])
    ts = ts.dt.tz_localize(schema.TZ) if ts.dt.tz is None else ts.dt.tz_convert(schema.TZ)
    weekday = pd.Series(ts.dt.dayofweek.to_numpy(), index=tn.index)
    block = pd.Series((ts.dt.hour // HOUR_BLOCK * HOUR_BLOCK).to_numpy(), index=tn.index)
    wd, wd_table, wd_fb = _best_group(tn, weekday)
    hb, hb_table, hb_fb = _best_group(tn, block)
    if wd_fb or hb_fb:
        caveats.append("每个发布时段的笔记数偏少, 发布时间按数量最多的时段推荐")
    return {
        "weekday": int(wd), "weekday_zh": WEEKDAYS_ZH[int(wd)],
        "hour_block": [int(hb), int(hb) + HOUR_BLOCK], "hour_block_zh": f"{int(hb):02d}:00–{int(hb) + HOUR_BLOCK:02d}:00",
        "by_weekday": {WEEKDAYS_ZH[int(k)]: {"n_notes": int(r.n_notes), "median_engagement": float(r.median_engagement)}
                       for k, r in wd_table.iterrows()},
        "by_hour_block": {f"{int(k):02d}-{int(k) + HOUR_BLOCK:02d}": {"n_notes": int(r.n_notes),
                                                                      "median_engagement": float(r.median_engagement)}
                          for k, r in hb_table.iterrows()},
        "evidence_note_ids": _top_ids(tn, (weekday == wd) & (block == hb)) or _top_ids(tn, block == hb),
        "timezone": schema.TZ,
    }


def _hashtags(tn: pd.DataFrame, keywords: list[str], caveats: list[str], n: int = 8) -> list[dict]:
    rows = []
    if schema.TAGS in tn:
        tags = tn[schema.TAGS].map(lambda v: schema.list_cell(v, split_text=True))
        exploded = tn[[NOTE_ID, "_eng"]].assign(tag=tags).explode("tag")
        exploded = exploded[exploded["tag"].notna()]
        exploded["tag"] = exploded["tag"].astype(str).str.strip().str.strip("#").str.strip()
        exploded = exploded[exploded["tag"] != ""].drop_duplicates([NOTE_ID, "tag"])
        if not exploded.empty:
            g = exploded.groupby("tag")
            table = pd.DataFrame({"n_notes": g.size(), "median_engagement": g["_eng"].median()})
            # a tag counts as the topic's when several notes use it (any tag in a tiny topic)
            table = table[table["n_notes"] >= (2 if len(tn) >= 20 else 1)]
            table = table.sort_values(["n_notes", "median_engagement"], ascending=False, kind="stable")
            for tag, r in table.head(n).iterrows():
                sub = exploded[exploded["tag"] == tag].sort_values("_eng", ascending=False, kind="stable")
                rows.append({"tag": f"#{tag}", "source": "notes", "n_notes": int(r.n_notes),
                             "share": float(r.n_notes / len(tn)), "median_engagement": float(r.median_engagement),
                             "note_ids": sub[NOTE_ID].astype(str).head(3).tolist()})
    if len(rows) < 3:
        caveats.append("该话题笔记的话题标签很少, 其余标签由 c-TF-IDF 关键词建议 (source=keywords)")
        have = {r["tag"] for r in rows}
        tokens = tn["tokens"].map(lambda v: schema.list_cell(v, split_text=True)) if "tokens" in tn else pd.Series([[]] * len(tn), index=tn.index)
        for kw in keywords:
            if len(rows) >= min(n, 5):
                break
            if f"#{kw}" in have:
                continue
            has = tokens.map(lambda ts, kw=kw: kw in ts)
            rows.append({"tag": f"#{kw}", "source": "keywords", "n_notes": int(has.sum()),
                         "share": float(has.mean()), "median_engagement": float(tn.loc[has, "_eng"].median())
                         if has.any() else None, "note_ids": _top_ids(tn, has)})
    return rows


def _trend(snapshot, topic_id: int) -> tuple[dict, pd.DataFrame | None]:
    notes = snapshot.notes
    if schema.PUBLISHED_AT not in notes or notes[schema.PUBLISHED_AT].isna().all():
        return {"stage": None}, None
    from miner.insights.trends import topic_time_series, trend_scores
    scores = trend_scores(topic_time_series(notes, snapshot.assignments))
    row = scores[scores[TOPIC_ID] == topic_id]
    if row.empty:
        return {"stage": None}, scores
    r = row.iloc[0]
    return {"stage": r["stage"], "stage_zh": r["stage_zh"], "growth_pct": _num(r["growth_pct"]),
            "growth_z": _num(r["growth_z"]), "burst_z": _num(r["burst_z"]), "recent_notes": int(r["recent_notes"]),
            "previous_notes": int(r["previous_notes"]), "low_volume": bool(r["low_volume"]),
            "basis": "share of daily note volume, last 7 days vs the 7 before (miner.insights.trends)"}, scores


def _opportunity(snapshot, topic_id, metrics, node, trends) -> dict | None:
    from miner.insights.opportunity import FLAG_NAMES_ZH, snapshot_opportunity
    table = snapshot_opportunity(snapshot, metrics=metrics, node=node, trends=trends)
    row = table[table[TOPIC_ID] == topic_id]
    if row.empty:
        return None
    r = row.iloc[0]
    return {"score": float(r["score"]), "rank": int(r["rank"]), "of": int(len(table)),
            **{c: _num(r[c]) for c in ("momentum", "headroom", "value", "openness", "timing", "saturation",
                                       "node_lift", "notes_per_engaged_user", "commercial_share")},
            "flags": list(r["flags"]), "flags_zh": [FLAG_NAMES_ZH.get(f, f) for f in r["flags"]]}


def _segment(segment):
    if segment is None:
        return None
    from miner.insights.audience import Segment
    return Segment.from_spec(segment)


def _audience(seg, metrics, topic_id, caveats) -> dict:
    from miner.insights.audience import FLOW_PAIRS
    from miner.schema import AIPS_STAGE_NAMES
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
              "buyers", "gmv", "aov", "conversion_rate", "conversion_lift", "aov_lift"):
        if c in row.index:
            out[c] = _num(row[c])
    if bool(row.get("suppressed", False)):
        caveats.append("该人群在此话题的触达用户少于 k 匿名阈值, 人群指标已隐藏")
    flows = []
    for a, b in FLOW_PAIRS:
        lift, rate = row.get(f"flow_lift_{a}_{b}"), row.get(f"flow_rate_{a}_{b}")
        if lift is not None and pd.notna(lift):
            flows.append({"from": a, "to": b, "rate": _num(rate), "lift": float(lift),
                          "moved": _num(row.get(f"flow_{a}_{b}"))})
    out["aips_flows"] = flows
    if flows:
        best = max(flows, key=lambda f: f["lift"])
        out["aips_stage"] = best["from"]
        out["aips_stage_zh"] = (f"{AIPS_STAGE_NAMES[best['from']]}({best['from']}) → "
                                f"{AIPS_STAGE_NAMES[best['to']]}({best['to']})")
        out["aips_basis"] = (f"该话题触达用户 {best['from']}→{best['to']} 流转率是未触达用户的 "
                             f"{best['lift']:.2f} 倍, 流转最强")
    else:
        caveats.append("无 AIPS 流转数据 (或被 k 匿名隐藏), 未判定人群所处阶段")
    return out


def _timing(snapshot, topic_id, node, today, caveats) -> dict | None:
    from miner.insights.calendar import PHASE_NAMES_ZH, load_calendar, next_node, seeding_start
    from miner.insights.opportunity import node_lift, resolve_node_key
    today = today or dt.datetime.now(ZoneInfo(schema.TZ)).date()
    nodes = load_calendar()
    if node is not None:
        key = resolve_node_key(node, nodes)
        upcoming = [n for n in nodes if n.key == key and n.date >= today]
        target = min(upcoming, key=lambda n: n.date) if upcoming else None
        if target is None:
            caveats.append(f"日历中没有 {node} 在 {today} 之后的日期, 请在 data/calendar 中补充")
            return None
    else:
        target = next_node(today, nodes)
        if target is None:
            return None
    start = seeding_start(target)
    out = {"node": target.key, "node_zh": target.name_zh, "date": target.date.isoformat(),
           "seeding_start": start.isoformat(),
           "phases": {PHASE_NAMES_ZH[p]: [a.isoformat(), b.isoformat()] for p, (a, b) in target.phases.items()},
           "days_until_seeding": (start - today).days, "planned_on": today.isoformat(), "node_lift": None}
    notes = snapshot.notes
    if schema.PUBLISHED_AT in notes and notes[schema.PUBLISHED_AT].notna().any():
        from miner.insights.trends import topic_time_series
        lift = node_lift(topic_time_series(notes, snapshot.assignments, "D"), target.key)
        value = lift.get(topic_id, np.nan)
        out["node_lift"] = _num(value)
        if not np.isfinite(value):
            caveats.append(f"数据未覆盖往年 {target.name_zh}, 无法验证该话题在节点期的热度")
    return out


def _kpis(tn: pd.DataFrame, rng: dict, audience: dict) -> list[dict]:
    n = len(tn)
    kpis = [{"name": "单篇互动量 (赞+藏+评+转)", "baseline": rng["p50"], "target": rng["p75"],
             "basis": f"话题 {n} 篇笔记互动 P50 / P75"}]
    if {schema.LIKES, schema.COLLECTS, schema.COMMENTS} <= set(tn.columns):
        likes = tn[schema.LIKES].astype("float64")
        ok = likes > 0
        top = ok & (tn["_eng"] >= tn["_eng"].quantile(0.75))
        for name, col in (("收藏/点赞比", schema.COLLECTS), ("评论/点赞比", schema.COMMENTS)):
            if not ok.any():
                break
            ratio = tn[col].astype("float64") / likes.where(ok)
            kpis.append({"name": name, "baseline": float(ratio[ok].median()),
                         "target": float(ratio[top].median()) if top.any() else None,
                         "basis": f"话题 {int(ok.sum())} 篇有点赞笔记的中位数 / 其中互动前 25% 的 "
                                  f"{int(top.sum())} 篇的中位数"})
    pen = audience.get("penetration")
    if pen is not None:
        kpis.append({"name": "目标人群渗透率", "baseline": pen, "target": None,
                     "basis": f"{audience.get('segment_zh')} 当前渗透率 (触达 ÷ 人群规模)"})
    conv = audience.get("conversion_rate")
    if conv is not None:
        kpis.append({"name": "触达后转化率", "baseline": conv, "target": None,
                     "basis": "归因窗口内下单用户 ÷ 触达用户"})
    return kpis


def _positioning(label, seg, angles, trend, fmt, patterns, evidence, timing) -> tuple[str, list[str]]:
    who = seg.label if seg else "目标用户"
    angle = angles[0] if angles else None
    parts = [f"面向{who}的「{label}」选题"]
    if angle is not None and len(angles) > 1:
        parts.append(f"优先从「{angle.label}」切入 (互动中位数为话题的 {angle.engagement_index:.1f} 倍)")
    if trend.get("stage_zh"):
        parts.append(f"话题处于{trend['stage_zh']}期")
    if fmt.get("recommended_zh"):
        parts.append(f"以{fmt['recommended_zh']}为主")
    if patterns:
        parts.append(f"标题多用{'、'.join(p.name_zh for p in patterns[:2])}")
    if timing:
        parts.append(f"{timing['seeding_start']} 起为{timing['node_zh']}蓄水")
    ids = (angle.note_ids if angle else []) + [r.note_id for r in evidence if r.role == "representative"][:2]
    return "，".join(parts) + "。", list(dict.fromkeys(ids))


def _polish_positioning(text: str, label: str, keywords: list[str]) -> tuple[str, str, str | None]:
    """Reword ``text`` with the optional OpenAI-compatible endpoint; (text, source, note)."""
    base, key, model = (os.environ.get(v, "").strip() for v in LLM_ENV)
    if not base or not model:
        return text, "rule", None
    timeout = float(os.environ.get("MINER_LLM_TIMEOUT", "8"))
    payload = {"model": model, "temperature": 0.3, "max_tokens": 200, "messages": [
        {"role": "system", "content": "你是小红书内容策划。把用户给的选题定位句改写得更简洁有吸引力，"
                                      "保留其中所有数字、日期和事实，不要添加新的事实；只输出一句中文，不超过80字。"},
        {"role": "user", "content": f"话题：{label}\n关键词：{'、'.join(keywords[:8])}\n定位句：{text}"}]}
    req = urllib.request.Request(base.rstrip("/") + "/chat/completions", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {key}"} if key else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.loads(resp.read().decode("utf-8"))
        polished = str(body["choices"][0]["message"]["content"]).strip()
        if not polished:
            raise ValueError("empty reply")
        return polished, f"llm:{model}", None
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        return text, "rule", f"LLM 润色不可用 ({type(exc).__name__}), 定位句为规则生成"


# ---- rendering -----------------------------------------------------------------------------------
def _fmt_num(v, pct=False) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    if pct:
        return f"{v:.1%}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}".rstrip("0").rstrip(".")


def _ids(ids) -> str:
    return "证据: " + ", ".join(f"`{i}`" for i in ids) if ids else "证据: —"


def _render_markdown(b: ContentBrief) -> str:
    L = [f"# 选题简报 · [{b.topic_id}] {b.label}", "",
         f"> 快照 `{b.run_id}` · {b.n_notes} 篇笔记 · 生成于 {b.generated_at}", "",
         "## 定位", "", b.positioning + ("" if b.positioning_source == "rule" else f" _(由 {b.positioning_source} 润色)_"),
         "", f"{_ids(b.positioning_evidence)}", ""]
    a = b.audience
    L += ["## 目标人群", "", f"- 人群: {a.get('segment_zh')}"]
    for key, name, pct in (("penetration", "渗透率", True), ("reach", "触达人数", False),
                           ("engagement_rate", "互动率", True), ("conversion_rate", "转化率", True),
                           ("aov", "客单价", False)):
        if key in a:
            L.append(f"- {name}: {_fmt_num(a[key], pct)}")
    if a.get("aips_stage"):
        L.append(f"- AIPS 阶段: 重点人群在 {a['aips_stage_zh']} ({a['aips_basis']})")
    L.append("")
    t = b.trend
    if t.get("stage"):
        L += ["## 趋势与机会", "", f"- 生命周期: **{t['stage_zh']}** (增长 {_fmt_num(t.get('growth_pct'))}%, "
                              f"增长 z {_fmt_num(t.get('growth_z'))}, 爆发 z {_fmt_num(t.get('burst_z'))}; "
                              f"近7天 {t['recent_notes']} 篇 vs 前7天 {t['previous_notes']} 篇)"]
    else:
        L += ["## 趋势与机会", ""]
    if b.opportunity:
        o = b.opportunity
        L.append(f"- 机会分 {o['score'] * 100:.0f}/100 (第 {o['rank']}/{o['of']} 名): 势头 {o['momentum']:.2f} · "
                 f"人群空间 {o['headroom']:.2f} · 转化价值 {o['value']:.2f} · 蓝海度 {o['openness']:.2f}"
                 + (f" · 节点契合 {o['timing']:.2f}" if o.get("timing") is not None else ""))
        if o["flags_zh"]:
            L.append(f"  - 说明: {'; '.join(o['flags_zh'])}")
    L.append("")
    L += ["## 关键词与话题标签", "", "关键词: " + " · ".join(b.keywords), ""]
    for h in b.hashtags:
        src = "笔记中使用" if h["source"] == "notes" else "由关键词建议"
        L.append(f"- {h['tag']} ({src}, {h['n_notes']} 篇, 占 {h['share']:.0%}, 互动中位数 "
                 f"{_fmt_num(h['median_engagement'])}) {_ids(h['note_ids'])}")
    L += ["", "## 切入角度", ""]
    for i, ang in enumerate(b.angles, 1):
        L.append(f"{i}. **{ang.label}** — {ang.n_notes} 篇 ({ang.share:.0%}), 互动中位数 "
                 f"{_fmt_num(ang.median_engagement)} (话题的 {ang.engagement_index:.2f} 倍); 关键词 "
                 f"{' '.join(ang.keywords)}. {_ids(ang.note_ids)}")
    L += ["", "## 标题公式", ""]
    tl = b.title_length
    L.append(f"- 标题长度: 高互动标题中位数 {tl['median_top']:.0f} 字 (全部 {tl['median_all']:.0f} 字), "
             f"建议 {tl['recommended'][0]}–{tl['recommended'][1]} 字 (基于前 25% 的 {tl['n_top']} 篇)")
    for p in b.title_patterns:
        ex = " / ".join(f"「{e}」" for e in p.examples[:2])
        L.append(f"- **{p.name_zh}**: 高互动标题中 {p.share_top:.0%} vs 全部 {p.share_all:.0%} "
                 f"(提升 {p.lift:.2f} 倍). 例: {ex} {_ids(p.example_note_ids)}")
    if not b.title_patterns:
        L.append("- 未发现在高互动标题中明显更常见的句式")
    L += ["", "## 形式与发布时间", ""]
    f = b.format
    if f.get("recommended"):
        detail = "; ".join(f"{NOTE_TYPES_ZH.get(k, k)} {v['n_notes']} 篇 中位数 {_fmt_num(v['median_engagement'])}"
                           for k, v in f["by_type"].items())
        L.append(f"- 形式: **{f['recommended_zh']}** ({detail}) {_ids(f['evidence_note_ids'])}")
    p = b.posting
    if p.get("weekday") is not None:
        wd = p["by_weekday"][p["weekday_zh"]]
        hb = p["by_hour_block"][f"{p['hour_block'][0]:02d}-{p['hour_block'][1]:02d}"]
        L.append(f"- 发布: **{p['weekday_zh']} {p['hour_block_zh']}** (北京时间; 该日 {wd['n_notes']} 篇 互动中位数 "
                 f"{_fmt_num(wd['median_engagement'])}; 该时段 {hb['n_notes']} 篇 中位数 "
                 f"{_fmt_num(hb['median_engagement'])}) {_ids(p['evidence_note_ids'])}")
    r = b.engagement_range
    L += ["", "## 预期互动与 KPI", "",
          f"- 预期单篇互动: P25 {_fmt_num(r['p25'])} – P75 {_fmt_num(r['p75'])} (中位数 {_fmt_num(r['p50'])}; "
          f"{r['n_notes']} 篇, {r['metric']})"]
    for k in b.kpis:
        pct = "比" in k["name"] or "率" in k["name"]
        target = f", 目标 {_fmt_num(k['target'], pct)}" if k.get("target") is not None else ""
        L.append(f"- {k['name']}: 基线 {_fmt_num(k['baseline'], pct)}{target} ({k['basis']})")
    L += ["", "## 节点节奏", ""]
    if b.timing:
        tm = b.timing
        phases = "; ".join(f"{name} {a}~{z}" for name, (a, z) in tm["phases"].items())
        L.append(f"- {tm['node_zh']} ({tm['date']}): **{tm['seeding_start']} 开始蓄水** "
                 f"(距今 {tm['days_until_seeding']} 天). {phases}")
        if tm.get("node_lift") is not None:
            L.append(f"- 往年节点期该话题声量占比为平时的 {tm['node_lift']:.2f} 倍")
    else:
        L.append("- 未指定或找不到营销节点")
    L += ["", "## 证据笔记", "", "| note_id | 角色 | 标题 | 互动 | 赞 | 藏 | 评 | 转 | 发布 |", "|---|---|---|---|---|---|---|---|---|"]
    for n in b.evidence_notes:
        role = "代表" if n.role == "representative" else "高互动"
        title = n.title.replace("|", "/").replace("\n", " ")[:40]
        L.append(f"| `{n.note_id}` | {role} | {title} | {n.engagement} | {n.likes} | {n.collects} | {n.comments} | "
                 f"{n.shares} | {(n.published_at or '')[:16]} |")
    if b.notes:
        L += ["", "## 说明", ""] + [f"- {c}" for c in b.notes]
    return "\n".join(L) + "\n"


# ---- helpers -------------------------------------------------------------------------------------
def _num(v):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _finite(obj):
    """NaN/inf → None, recursively (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None
    return obj


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (dt.date, dt.datetime, pd.Timestamp)):
        return o.isoformat()
    return str(o)
