"""Sections of a brief computed from the topic's own notes (``tn``: the topic's notes with ``_row``,
``_eng`` raw engagement and ``_idx`` age-adjusted engagement index columns)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from miner import schema
from miner.insights.briefs.model import Angle, NoteRef
from miner.insights.briefs.stats import best_group, median_ratio_interval
from miner.schema import NOTE_ID

WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
NOTE_TYPES_ZH = {"image": "图文", "video": "视频"}
HOUR_BLOCK = 3


def engagement_range(tn: pd.DataFrame) -> dict:
    e = tn["_eng"].astype("float64")
    return {"metric": "likes + collects + comments + shares", "n_notes": int(len(e)),
            "p25": float(e.quantile(0.25)), "p50": float(e.quantile(0.5)), "p75": float(e.quantile(0.75)),
            "mean": float(e.mean()), "max": float(e.max())}


def _ref(row, role: str) -> NoteRef:
    def count(name):
        v = row.get(name, 0)
        return int(v) if pd.notna(v) else 0
    published = row.get(schema.PUBLISHED_AT)
    note_type = row.get(schema.NOTE_TYPE, None)
    return NoteRef(note_id=str(row[NOTE_ID]), title=str(row.get(schema.TITLE) or ""), engagement=int(row["_eng"]),
                   likes=count(schema.LIKES), collects=count(schema.COLLECTS), comments=count(schema.COMMENTS),
                   shares=count(schema.SHARES),
                   published_at=pd.Timestamp(published).isoformat() if published is not None and pd.notna(published)
                   else None,
                   note_type=note_type if pd.notna(note_type) else None, role=role,
                   engagement_index=float(row["_idx"]))


def evidence_notes(tn: pd.DataFrame, topic, n_top: int = 5) -> list[NoteRef]:
    by_id = tn.set_index(NOTE_ID, drop=False)
    out, seen = [], set()
    for nid in schema.list_cell(topic.get("representative_note_ids"), split_text=True):
        if str(nid) in by_id.index and str(nid) not in seen:
            out.append(_ref(by_id.loc[str(nid)], "representative"))
            seen.add(str(nid))
    for _, row in tn.sort_values("_idx", ascending=False, kind="stable").head(n_top).iterrows():
        if row[NOTE_ID] not in seen:
            out.append(_ref(row, "top"))
            seen.add(row[NOTE_ID])
    return out


def top_ids(tn: pd.DataFrame, mask, n: int = 3) -> list[str]:
    return tn[mask].sort_values("_idx", ascending=False, kind="stable").head(n)[NOTE_ID].astype(str).tolist()


def angles(snapshot, tn: pd.DataFrame, min_size: int, seed: int, caveats: list[str]) -> list[Angle]:
    """Sub-groups of the topic (spherical k-means on its embeddings); only those ≥ ``min_size``."""
    from miner.topics.cluster import as_float32_normalized, spherical_kmeans
    from miner.topics.label import ClassTfidf, short_label
    n = len(tn)
    k = int(np.clip(round(n / 40), 2, 5)) if n >= 2 * min_size else 1
    if k == 1:
        caveats.append(f"话题仅 {n} 篇笔记 (< 2 × 最小角度 {min_size} 篇), 不再细分切入角度")
        return []
    X = as_float32_normalized(snapshot.embeddings[tn["_row"].to_numpy()])
    _, labels = spherical_kmeans(X, k, seed)
    tokens = [schema.list_cell(t, split_text=True) for t in tn["tokens"]] if "tokens" in tn else [[] for _ in range(n)]
    ctf = ClassTfidf(min_df=1).fit(tokens, labels)
    idx = tn["_idx"].to_numpy()
    out, small = [], 0
    for a in np.unique(labels):
        mask = labels == a
        if mask.sum() < min_size:
            small += int(mask.sum())
            continue
        members = tn[mask]
        terms = [t for t, _ in ctf.top_terms(a, 6)]
        ratio, lo, hi = median_ratio_interval(idx, mask, seed=seed + int(a))
        out.append(Angle(label=short_label(terms, 2), keywords=terms, n_notes=int(mask.sum()), share=mask.sum() / n,
                         median_engagement=float(members["_eng"].median()), engagement_index=ratio,
                         index_low=lo, index_high=hi, note_ids=top_ids(tn, mask)))
    if small:
        caveats.append(f"{small} 篇笔记所在的子群不足 {min_size} 篇, 未列为切入角度")
    return sorted(out, key=lambda a: (-a.engagement_index, -a.n_notes))


def title_length(tn: pd.DataFrame) -> dict:
    lengths = tn[schema.TITLE].fillna("").astype(str).str.len()
    top = tn["_idx"] >= tn["_idx"].quantile(0.75)
    lt = lengths[top]
    return {"median_all": float(lengths.median()), "median_top": float(lt.median()),
            "recommended": [int(lt.quantile(0.25)), int(lt.quantile(0.75))], "n_top": int(top.sum())}


def _group_dict(table: pd.DataFrame, names) -> dict:
    return {names(k): {"n_notes": int(r.n_notes), "share": float(r.share), "median_index": float(r.median_score)}
            for k, r in table.iterrows()}


def fmt(tn: pd.DataFrame, min_size: int, caveats: list[str]) -> dict:
    if schema.NOTE_TYPE not in tn or tn[schema.NOTE_TYPE].isna().all():
        caveats.append("笔记无 note_type 字段, 无法推荐形式")
        return {"recommended": None}
    types = tn[schema.NOTE_TYPE].fillna("unknown").astype(str)
    res = best_group(tn["_idx"], types, min_size)
    by_type = _group_dict(res["table"], str)
    for k in by_type:
        by_type[k]["median_engagement"] = float(tn.loc[types == k, "_eng"].median())
    out = {"recommended": res["best"], "recommended_zh": NOTE_TYPES_ZH.get(res["best"], res["best"]),
           "by_type": by_type, "p_value": res["p_value"], "test": "Kruskal–Wallis", "min_group_size": min_size,
           "evidence_note_ids": top_ids(tn, types == res["best"]) if res["best"] is not None else []}
    if res["best"] is None:
        out["recommended_zh"] = None
        out["verdict_zh"] = _no_difference("各形式", res)
    return out


def _no_difference(what: str, res: dict) -> str:
    if res["n_groups_tested"] < 2:
        return f"{what}中至少 {res['min_size']} 篇的分组不足两个, 无法比较"
    return f"{what}之间互动无显著差异 (Kruskal–Wallis p = {res['p_value']:.2f} ≥ 0.05)"


def posting(tn: pd.DataFrame, min_size: int, caveats: list[str]) -> dict:
    """Weekday and 3-hour block advice, each only when Kruskal–Wallis says the groups differ."""
    if schema.PUBLISHED_AT not in tn or tn[schema.PUBLISHED_AT].isna().all():
        caveats.append("笔记无发布时间, 无法推荐发布时段")
        return {"weekday": None, "hour_block": None}
    ts = pd.to_datetime(tn[schema.PUBLISHED_AT])
    ts = ts.dt.tz_localize(schema.TZ) if ts.dt.tz is None else ts.dt.tz_convert(schema.TZ)
    weekday = pd.Series(ts.dt.dayofweek.to_numpy(), index=tn.index)
    block = pd.Series((ts.dt.hour // HOUR_BLOCK * HOUR_BLOCK).to_numpy(), index=tn.index)
    wd, hb = best_group(tn["_idx"], weekday, min_size), best_group(tn["_idx"], block, min_size)
    out = {"weekday": None, "weekday_zh": None, "hour_block": None, "hour_block_zh": None,
           "weekday_p_value": wd["p_value"], "hour_block_p_value": hb["p_value"], "test": "Kruskal–Wallis",
           "min_group_size": min_size, "timezone": schema.TZ,
           "by_weekday": _group_dict(wd["table"], lambda k: WEEKDAYS_ZH[int(k)]),
           "by_hour_block": _group_dict(hb["table"], lambda k: f"{int(k):02d}-{int(k) + HOUR_BLOCK:02d}"),
           "verdicts_zh": []}
    mask = pd.Series(True, index=tn.index)
    if wd["best"] is not None:
        out["weekday"], out["weekday_zh"] = int(wd["best"]), WEEKDAYS_ZH[int(wd["best"])]
        mask &= weekday == wd["best"]
    else:
        out["verdicts_zh"].append(_no_difference("星期几", wd))
    if hb["best"] is not None:
        lo = int(hb["best"])
        out["hour_block"], out["hour_block_zh"] = [lo, lo + HOUR_BLOCK], f"{lo:02d}:00–{lo + HOUR_BLOCK:02d}:00"
        mask &= block == hb["best"]
    else:
        out["verdicts_zh"].append(_no_difference("发布时段", hb))
    out["evidence_note_ids"] = top_ids(tn, mask) if (wd["best"] is not None or hb["best"] is not None) else []
    return out


def hashtags(tn: pd.DataFrame, keywords: list[str], caveats: list[str], n: int = 8) -> list[dict]:
    rows = []
    if schema.TAGS in tn:
        tags = tn[schema.TAGS].map(lambda v: schema.list_cell(v, split_text=True))
        exploded = tn[[NOTE_ID, "_eng", "_idx"]].assign(tag=tags).explode("tag")
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
                sub = exploded[exploded["tag"] == tag].sort_values("_idx", ascending=False, kind="stable")
                rows.append({"tag": f"#{tag}", "source": "notes", "n_notes": int(r.n_notes),
                             "share": float(r.n_notes / len(tn)), "median_engagement": float(r.median_engagement),
                             "note_ids": sub[NOTE_ID].astype(str).head(3).tolist()})
    if len(rows) < 3:
        caveats.append("该话题笔记的话题标签很少, 其余标签由 c-TF-IDF 关键词建议 (source=keywords)")
        have = {r["tag"] for r in rows}
        tokens = (tn["tokens"].map(lambda v: schema.list_cell(v, split_text=True)) if "tokens" in tn
                  else pd.Series([[]] * len(tn), index=tn.index))
        for kw in keywords:
            if len(rows) >= min(n, 5):
                break
            if f"#{kw}" in have:
                continue
            has = tokens.map(lambda ts, kw=kw: kw in ts)
            rows.append({"tag": f"#{kw}", "source": "keywords", "n_notes": int(has.sum()),
                         "share": float(has.mean()), "median_engagement": float(tn.loc[has, "_eng"].median())
                         if has.any() else None, "note_ids": top_ids(tn, has)})
    return rows


def kpis(tn: pd.DataFrame, rng: dict, audience: dict) -> list[dict]:
    n = len(tn)
    out = [{"name": "单篇互动量 (赞+藏+评+转)", "baseline": rng["p50"], "target": rng["p75"],
            "basis": f"话题 {n} 篇笔记互动 P50 / P75 (原始计数)"}]
    if {schema.LIKES, schema.COLLECTS, schema.COMMENTS} <= set(tn.columns):
        likes = tn[schema.LIKES].astype("float64")
        ok = likes > 0
        top = ok & (tn["_idx"] >= tn["_idx"].quantile(0.75))
        for name, col in (("收藏/点赞比", schema.COLLECTS), ("评论/点赞比", schema.COMMENTS)):
            if not ok.any():
                break
            ratio = tn[col].astype("float64") / likes.where(ok)
            out.append({"name": name, "baseline": float(ratio[ok].median()),
                        "target": float(ratio[top].median()) if top.any() else None,
                        "basis": f"话题 {int(ok.sum())} 篇有点赞笔记的中位数 / 其中年龄调整互动前 25% 的 "
                                 f"{int(top.sum())} 篇的中位数"})
    pen = audience.get("penetration")
    if pen is not None:
        out.append({"name": "目标人群渗透率", "baseline": pen, "target": None,
                    "basis": f"{audience.get('segment_zh')} 当前渗透率 (触达 ÷ 人群规模)"})
    conv = audience.get("conversion_rate")
    if conv is not None:
        out.append({"name": "触达后转化率", "baseline": conv, "target": None,
                    "basis": "归因窗口内下单用户 ÷ 触达用户"})
    return out
