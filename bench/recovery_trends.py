"""Trend-call recovery: planted bursts in simulated steady topics, and seasons on the real zhihu series.

    python bench/recovery_trends.py [--quick]

1. **Planted bursts.** ``n_topics`` steady topics (rates ~ Gamma(2, 2.5) notes/day, a shared weekly
   rhythm of ±40 %, mild extra-Poisson noise: each topic-day rate × Gamma(20, 1/20)) over 24
   weeks of days, with the platform volume following the same weekly rhythm. At each of four
   evaluation dates a fresh set of topics (with base rate ≥ 1 note/day) gets a burst: rate × 3 on
   the 7 days ending that date. :func:`miner.insights.trends.trend_scores` runs with ``as_of`` = that
   date; a topic is *called* when its stage is emerging / rising / burst. Truth = the topics
   bursting on that date; topics that burst at an earlier date count as false positives if called.
   ``trend_precision`` = TP / calls, ``trend_recall`` = TP / planted, pooled over dates and seeds.
   The same simulation *before* BH (calls with the raw one-sided p ≤ fdr) is reported for contrast.
2. **Zhihu seasons.** The 4.5-year hot list (``zhihu-hot-questions``): one (day, question) row = a
   note published that day. Topics = keyword groups (``zhihu_method`` = ``keyword_match``: a title
   goes to the first PROVENANCE keyword it contains, plus 40 frequent non-seasonal control words so
   BH has a realistic family; everything else is an outlier in the day volume). The full
   ``trend_scores`` (BH across topics included) decides ``is_seasonal``; ``zhihu_seasonal_found``
   lists the PROVENANCE keywords called seasonal with the expected peak month (春晚: a lunar
   season in January/February), ``zhihu_not_seasonal_ok`` is True when 世界杯 and 奥运 are not;
   ``zhihu_one_off`` lists which of those two the lifecycle calls 一次性热点.

Writes ``bench/results/insight_recovery_trends.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from miner.atomic import write_text_atomic  # noqa: E402
from miner.insights.stats import normal_sf  # noqa: E402
from miner.insights.trends import UP_STAGES, TrendThresholds, topic_time_series, trend_scores  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "insight_recovery_trends.json"
ZHIHU = Path("/work/shared/datasets/zhihu-hot-questions/zhihu_daily.parquet")
TZ = "Asia/Shanghai"

# keyword → (expected peak months, lunar expected) from the dataset's PROVENANCE.md
ZHIHU_SEASONAL = {"高考": ({6}, False), "春晚": ({1, 2}, True), "双十一": ({10}, False),
                  "中秋": ({9}, None), "七夕": ({8}, None)}
ZHIHU_NOT_SEASONAL = ("世界杯", "奥运")
ZHIHU_PATTERNS = {"高考": "高考", "春晚": "春晚", "双十一": "双十一|双11|双 11", "中秋": "中秋",
                  "七夕": "七夕", "世界杯": "世界杯", "奥运": "奥运", "考研": "考研"}
CONTROLS = ("美国", "日本", "游戏", "手机", "公司", "孩子", "大学", "电影", "工作", "女生", "男生", "医生",
            "老师", "父母", "朋友", "中国", "历史", "科学", "经济", "网友", "视频", "小说", "动漫",
            "汽车", "房价", "结婚", "学生", "程序员", "律师", "足球", "篮球", "苹果", "华为", "特斯拉",
            "俄罗斯", "乌克兰", "芯片", "AI", "疫情", "考试")


# ---- planted bursts -------------------------------------------------------------------------------------

def simulate(seed: int, n_topics: int, n_days: int = 168, eval_days=(83, 111, 139, 167),
             per_date: int = 15, multiplier: float = 3.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n_days)
    week = 1 + 0.4 * np.sin(2 * np.pi * t / 7)
    base = rng.gamma(2.0, 2.5, n_topics)
    rate = base[:, None] * week[None, :] * rng.gamma(20.0, 1 / 20.0, (n_topics, n_days))
    eligible = np.flatnonzero(base >= 1.0)
    chosen = rng.choice(eligible, size=per_date * len(eval_days), replace=False)
    planted = {}
    for i, day in enumerate(eval_days):
        topics = chosen[i * per_date:(i + 1) * per_date]
        rate[np.ix_(topics, np.arange(day - 6, day + 1))] *= multiplier
        planted[day] = set(int(x) for x in topics)
    C = rng.poisson(rate)
    N = rng.poisson(4000 * week) + C.sum(axis=0)        # platform volume includes the topics
    return C, N, planted, base


def _series(C, N, day0="2025-01-06"):
    K, T = C.shape
    days = pd.date_range(day0, periods=T, freq="D", tz=TZ)
    return pd.DataFrame({"topic_id": np.repeat(np.arange(K), T), "period_start": np.tile(days, K),
                         "note_count": C.ravel(), "engagement": 0.0, "period_notes": np.tile(N, K)}), days


def planted_bursts(seeds, n_topics: int) -> dict:
    th = TrendThresholds()
    tp = fp = fn = 0
    raw_tp = raw_fp = 0
    by_band = {"1-3/day": [0, 0], "3-6/day": [0, 0], ">=6/day": [0, 0]}
    for seed in seeds:
        C, N, planted, base = simulate(seed, n_topics)
        series, days = _series(C, N)
        for day, truth in planted.items():
            sc = trend_scores(series, as_of=days[day].date())
            called = set(sc.loc[sc.stage.isin(UP_STAGES), "topic_id"].astype(int))
            tp += len(called & truth)
            fp += len(called - truth)
            fn += len(truth - called)
            # contrast: the same z-scores without multiple-testing correction
            p = np.fmin(normal_sf(sc.growth_z.to_numpy(float)), normal_sf(sc.burst_z.to_numpy(float)))
            raw = set(sc.topic_id[(p <= th.fdr) & (sc.recent_notes >= th.min_recent_notes)].astype(int))
            raw_tp += len(raw & truth)
            raw_fp += len(raw - truth)
            for topic in truth:
                band = "1-3/day" if base[topic] < 3 else "3-6/day" if base[topic] < 6 else ">=6/day"
                by_band[band][0] += topic in called
                by_band[band][1] += 1
    return {
        "trend_precision": tp / max(tp + fp, 1),
        "trend_recall": tp / max(tp + fn, 1),
        "planted": tp + fn, "called": tp + fp, "false_calls": fp,
        "uncorrected_precision": raw_tp / max(raw_tp + raw_fp, 1),
        "uncorrected_false_calls": raw_fp,
        "recall_by_base_rate": {k: (v[0] / v[1] if v[1] else None) for k, v in by_band.items()},
    }


# ---- zhihu seasons ----------------------------------------------------------------------------------------

def zhihu_seasons() -> dict:
    rows = pd.read_parquet(ZHIHU, columns=["date", "question_id", "title"])
    groups = {**ZHIHU_PATTERNS, **{w: w for w in CONTROLS}}
    names = list(groups)
    topic = np.full(len(rows), -1)
    for i in reversed(range(len(names))):               # first matching name wins
        topic[rows.title.str.contains(groups[names[i]], regex=True).to_numpy()] = i
    notes = pd.DataFrame({"note_id": np.arange(len(rows)).astype(str),
                          "published_at": pd.to_datetime(rows.date).dt.tz_localize(TZ) + pd.Timedelta(hours=12)})
    asg = pd.DataFrame({"note_id": notes.note_id, "topic_id": topic})
    series = topic_time_series(notes, asg, freq="D")
    sc = trend_scores(series).set_index("topic_id")
    calls = {}
    for i, name in enumerate(names):
        r = sc.loc[i]
        calls[name] = {"stage": r.stage, "is_seasonal": bool(r.is_seasonal), "window": r.season_window_zh,
                       "peak_month": None if pd.isna(r.season_peak_month) else int(r.season_peak_month),
                       "lunar": r.season_lunar, "next_start": str(r.season_next_start),
                       "p": float(r.season_p), "q": float(r.season_q), "notes": int(r.total_notes)}
    found = []
    for name, (months, lunar) in ZHIHU_SEASONAL.items():
        c = calls[name]
        if c["is_seasonal"] and c["peak_month"] in months and (lunar is None or bool(c["lunar"]) == lunar):
            found.append(name)
    not_ok = all(not calls[n]["is_seasonal"] for n in ZHIHU_NOT_SEASONAL)
    controls_seasonal = [w for w in CONTROLS if calls[w]["is_seasonal"]]
    one_off = [n for n in ZHIHU_NOT_SEASONAL if calls[n]["stage"] == "one_off"]
    return {"zhihu_seasonal_found": found, "zhihu_not_seasonal_ok": not_ok, "zhihu_one_off": one_off,
            "zhihu_method": "keyword_match", "zhihu_topics": len(names),
            "zhihu_controls_called_seasonal": controls_seasonal, "zhihu_calls": calls}


def run(quick: bool = False) -> dict:
    """Both parts; quick = one seed of 300 topics (full: 3 seeds of 400)."""
    t0 = time.time()
    seeds, n_topics = ((11,), 300) if quick else ((11, 12, 13), 400)
    out = planted_bursts(seeds, n_topics)
    out.update({"seeds": list(seeds), "n_topics": n_topics, "burst_multiplier": 3.0,
                "fdr": TrendThresholds().fdr, "planted_seconds": round(time.time() - t0, 1)})
    t1 = time.time()
    if ZHIHU.exists():
        out.update(zhihu_seasons())
    else:
        out.update({"zhihu_seasonal_found": [], "zhihu_not_seasonal_ok": None, "zhihu_method": "missing data"})
    out["zhihu_seconds"] = round(time.time() - t1, 1)
    out["targets_met"] = bool(out["trend_precision"] >= 0.9 and out["trend_recall"] >= 0.8
                              and set(out["zhihu_seasonal_found"]) == set(ZHIHU_SEASONAL)
                              and out["zhihu_not_seasonal_ok"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    out = run(quick=args.quick)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS, json.dumps(out, ensure_ascii=False, indent=2, default=str) + "\n")
    summary = {k: v for k, v in out.items() if k != "zhihu_calls"}
    print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
