"""Build the demo corpus in ``data/demo/`` from the third-party datasets (see data/demo/PROVENANCE.md).

    python data/build_demo.py [--datasets /work/shared/datasets] [--out data/demo] [--seed 42]

Writes, deterministically for a given seed:

* ``notes.parquet``: ~5,000 notes in the ``NOTES`` schema (miner/schema.py):
  ~4,000 real Bilibili popular-feed videos (title, description, hashtags, uploader, publish time and
  engagement are real) stratified over XHS-like zones, plus ~1,000 real e-commerce reviews
  (online-shopping-10cats) whose publish time, engagement and author are *simulated*.
* ``snapshots_daily.parquet``: the daily popular-feed engagement snapshots of the Bilibili demo notes.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from miner.atomic import write_parquet_atomic  # noqa: E402
from miner.schema import NOTES, TZ  # noqa: E402

BILI_DIR = "bilibili-popular"
SHOP_DIR = "online-shopping-10cats"
N_BILI = 4000
N_SHOP = 1000

# Zones closest to Xiaohongshu content get full weight; entertainment-heavy zones half weight.
# Left out: 动画, 国创, 番剧, 电影, 纪录片, 鬼畜, 资讯 (anime/remix/news — far from XHS notes).
ZONE_WEIGHTS = {
    "生活": 1.0, "美食": 1.0, "时尚": 1.0, "动物圈": 1.0, "运动": 1.0, "知识": 1.0, "科技": 1.0, "汽车": 1.0,
    "游戏": 0.5, "影视": 0.5, "音乐": 0.5, "舞蹈": 0.5, "娱乐": 0.5,
}
SHOP_CATS = ("洗发水", "衣服", "水果", "手机", "平板", "蒙牛", "酒店", "计算机", "热水器", "书籍")
SIM_START = pd.Timestamp("2023-08-19 00:00:00", tz=TZ)    # the Bilibili publish window
SIM_END = pd.Timestamp("2023-10-27 23:59:59", tz=TZ)


def _clean(text: str) -> str:
    text = str(text).replace("\ufeff", "").replace("\r\n", "\n").strip()
    return "" if text == "-" else text


def _body(title: str, desc: str, dynamic: str) -> str:
    """desc + uploader dynamic; when one contains the other keep the longer; drop a copy of the title."""
    parts: list[str] = []
    for part in (_clean(desc), _clean(dynamic)):
        if not part or any(part in p for p in parts):
            continue
        parts = [p for p in parts if p not in part] + [part]
    body = "\n".join(parts)
    return "" if body == title else body


def _caps_for(counts: pd.Series, weights: pd.Series, total: int) -> pd.Series:
    """Per-group quotas min(n, c·w) with c found by bisection so the quotas sum to ``total``."""
    lo, hi = 0.0, float(counts.max()) / weights.min() + 1
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.minimum(counts, np.floor(mid * weights)).sum() < total:
            lo = mid
        else:
            hi = mid
    caps = np.minimum(counts, np.floor(hi * weights)).astype(int)
    excess = int(caps.sum()) - total
    for name in caps.sort_values(ascending=False).index[:max(excess, 0)]:
        caps[name] -= 1           # trim the overshoot from the largest groups, one each
    return caps


def build_bilibili(datasets: Path, rng: np.random.Generator, n: int = N_BILI) -> pd.DataFrame:
    src = pd.read_csv(datasets / BILI_DIR / "bilibili_popular_videos_latest.csv", dtype=str, keep_default_na=False)
    src = src[src["main_zone"].isin(ZONE_WEIGHTS)].copy()
    src["group"] = src["main_zone"] + "/" + src["tname"]
    counts = src["group"].value_counts().sort_index()
    weights = pd.Series([ZONE_WEIGHTS[g.split("/")[0]] for g in counts.index], index=counts.index)
    caps = _caps_for(counts, weights, n)
    picked = []
    for group, frame in src.sort_values("bvid").groupby("group", sort=True):
        take = int(caps[group])
        picked.append(frame.iloc[np.sort(rng.choice(len(frame), size=take, replace=False))])
    src = pd.concat(picked)

    titles = src["title"].map(_clean)
    notes = pd.DataFrame({
        "note_id": "bili_" + src["bvid"],
        "title": titles,
        "body": [_body(t, d, y) for t, d, y in zip(titles, src["desc"], src["dynamic"])],
        "tags": [[t for t in h.split("|") if t] for h in src["hashtags"]],
        "author_id": src["owner_mid"],
        "published_at": pd.to_datetime(src["pubdate"], format="ISO8601").dt.tz_convert(TZ),
        "likes": src["like"].astype("int64"),
        "collects": src["favorite"].astype("int64"),
        "comments": src["reply"].astype("int64"),
        "shares": src["share"].astype("int64"),
        "category": src["main_zone"] + "/" + src["tname"],
        "note_type": "video",
        "is_commercial": False,
    })
    return notes


def _shop_title(review: str) -> str:
    """First clause of the review (4–20 characters), else its first 20 characters."""
    m = re.match(r"^(.{4,20}?)[，。！？!?,；;～~…\s]", review)
    return (m.group(1) if m else review[:20]).strip()


def build_shopping(datasets: Path, rng: np.random.Generator, n: int = N_SHOP) -> pd.DataFrame:
    src = pd.read_csv(datasets / SHOP_DIR / "online_shopping_10_cats.csv", dtype=str, keep_default_na=False)
    src["source_row"] = np.arange(1, len(src) + 1)          # 1-based data row in the source CSV
    src["review"] = src["review"].map(_clean).str.replace(r"\s+", " ", regex=True)
    src = src[src["review"].str.len().between(15, 400)].drop_duplicates("review")
    per_cat = n // len(SHOP_CATS)
    picked = []
    for cat in SHOP_CATS:
        frame = src[src["cat"] == cat]
        picked.append(frame.iloc[np.sort(rng.choice(len(frame), size=per_cat, replace=False))])
    src = pd.concat(picked)
    k = len(src)

    # ---- simulated fields (the source has no time, author or engagement) ----
    span = int((SIM_END - SIM_START).total_seconds())
    published = SIM_START + pd.to_timedelta(rng.integers(0, span + 1, size=k), unit="s")
    likes = np.floor(rng.lognormal(mean=3.0, sigma=1.3, size=k)).astype(np.int64)   # median ≈ 20
    collects = rng.binomial(likes, rng.beta(2, 6, size=k))
    comments = rng.binomial(likes, 0.08)
    shares = rng.binomial(likes, 0.03)

    notes = pd.DataFrame({
        "note_id": [f"shop_{r:05d}" for r in src["source_row"]],
        "title": src["review"].map(_shop_title),
        "body": src["review"],
        "tags": [[] for _ in range(k)],
        "author_id": [f"shop_anon_{r:05d}" for r in src["source_row"]],
        "published_at": published,
        "likes": likes,
        "collects": collects.astype(np.int64),
        "comments": comments.astype(np.int64),
        "shares": shares.astype(np.int64),
        "category": "电商评价/" + src["cat"],
        "note_type": "image",
        "is_commercial": False,
    })
    return notes


def build_snapshots(datasets: Path, note_ids: pd.Series) -> pd.DataFrame:
    snaps = pd.read_csv(
        datasets / BILI_DIR / "bilibili_popular_snapshots.csv.gz",
        usecols=["snapshot_date", "bvid", "view", "like", "favorite", "reply", "share"], dtype={"bvid": str},
    )
    snaps["note_id"] = "bili_" + snaps["bvid"]
    snaps = snaps[snaps["note_id"].isin(set(note_ids))]
    out = snaps[["snapshot_date", "note_id", "view", "like", "favorite", "reply", "share"]].copy()
    out["snapshot_date"] = pd.to_datetime(out["snapshot_date"]).dt.date
    for col in ("view", "like", "favorite", "reply", "share"):
        out[col] = out[col].astype("int64")
    return out.sort_values(["note_id", "snapshot_date"]).reset_index(drop=True)


def build(datasets: Path, out_dir: Path, seed: int = 42) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    bili = build_bilibili(datasets, rng)
    shop = build_shopping(datasets, rng)
    notes = pd.concat([bili, shop], ignore_index=True)
    notes["published_at"] = notes["published_at"].astype(f"datetime64[ns, {TZ}]")
    notes = notes[NOTES.names].sort_values(["published_at", "note_id"]).reset_index(drop=True)
    assert notes["note_id"].is_unique
    snapshots = build_snapshots(datasets, bili["note_id"])
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(out_dir / "notes.parquet", notes)
    write_parquet_atomic(out_dir / "snapshots_daily.parquet", snapshots)
    return {
        "notes": len(notes), "bilibili": len(bili), "shopping": len(shop),
        "snapshots": len(snapshots), "snapshot_notes": snapshots["note_id"].nunique(),
    }


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("/work/shared/datasets"))
    parser.add_argument("--out", type=Path, default=here / "demo")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    counts = build(args.datasets, args.out, args.seed)
    print(" · ".join(f"{k} {v:,}" for k, v in counts.items()), f"→ {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
