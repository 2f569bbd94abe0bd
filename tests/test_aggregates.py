"""Daily aggregates written at build time: a hand-counted toy case, the trends series they replace,
the file a build writes, and the fallback for snapshots written before the file existed."""
from __future__ import annotations

import pandas as pd
import pytest

from miner.config import MinerConfig
from miner.insights.trends import topic_time_series
from miner.topics.aggregates import (AGGREGATES_FILE, daily_aggregates, daily_series, filter_aggregates,
                                     snapshot_aggregates)


@pytest.fixture
def toy():
    """Five notes (UTC publish times): two topics and an outlier over two Shanghai days, two
    categories and one note without a category."""
    notes = pd.DataFrame({
        "note_id": ["a", "b", "c", "d", "e"],
        # Shanghai: 03-01 17:00, 03-02 04:00, 03-02 07:30, 03-02 18:00, 03-02 19:00
        "published_at": pd.to_datetime(["2024-03-01 09:00", "2024-03-01 20:00", "2024-03-01 23:30",
                                        "2024-03-02 10:00", "2024-03-02 11:00"]).tz_localize("UTC"),
        "likes": [1, 2, 3, 4, 5], "collects": [0, 1, 0, 0, 0], "comments": [0, 0, 0, 1, 0],
        "shares": [0, 0, 0, 0, 10],
        "category": ["美妆", "美妆", "美食", "美妆", None],
        "is_commercial": [True, False, True, None, False],
    })
    assignments = pd.DataFrame({"note_id": ["a", "b", "c", "d", "e"], "topic_id": [0, 0, 1, -1, 1],
                                "score": 1.0})
    return notes, assignments


def test_daily_aggregates_hand_counted(toy):
    notes, asg = toy
    agg = daily_aggregates(notes, asg)
    got = {(r.topic_id, r.day.strftime("%m-%d"), r.category): (r.notes, r.engagement, r.commercial_notes)
           for r in agg.itertuples()}
    assert got == {
        (0, "03-01", "美妆"): (1, 1.0, 1),
        (0, "03-02", "美妆"): (1, 3.0, 0),
        (1, "03-02", "美食"): (1, 3.0, 1),
        (1, "03-02", ""): (1, 15.0, 0),
        (-1, "03-02", "美妆"): (1, 5.0, 0),
    }
    assert int(filter_aggregates(agg, start=pd.Timestamp("2024-03-02").date())["notes"].sum()) == 4
    assert int(filter_aggregates(agg, category="美妆")["notes"].sum()) == 3


@pytest.mark.parametrize("start, end, category", [
    (None, None, None), ("2024-03-02", "2024-03-04", None), (None, None, "美妆"), ("2024-02-28", None, "美食")])
def test_daily_series_equals_topic_time_series(toy, start, end, category):
    notes, asg = toy
    start = pd.Timestamp(start).date() if start else None
    end = pd.Timestamp(end).date() if end else None
    kept = notes if category is None else notes[notes["category"] == category]
    expected = topic_time_series(kept, asg, freq="D", start=start, end=end)
    got = daily_series(daily_aggregates(notes, asg), start, end, category)
    # the aggregates know every topic of the snapshot, like assignments do
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True),
                                  check_dtype=False)


def test_build_writes_aggregates_equal_to_recomputed(tmp_path, reviews_4cats, monkeypatch):
    from miner.topics.embed import HashingEmbedder
    from miner.topics.pipeline import build_topics
    from miner.topics.snapshot import load_snapshot
    for key in [k for k in __import__("os").environ if k.startswith("MINER_")]:
        monkeypatch.delenv(key)
    n = len(reviews_4cats)
    notes = pd.DataFrame({
        "note_id": [f"r{i:03d}" for i in range(n)], "title": "", "body": reviews_4cats["review"],
        "tags": [[] for _ in range(n)], "author_id": "a",
        "published_at": pd.date_range("2023-09-01", periods=n, freq="3h", tz="Asia/Shanghai"),
        "likes": range(n), "collects": 1, "comments": 0, "shares": 0, "category": reviews_4cats["cat"]})
    config = MinerConfig(models_dir=tmp_path / "models", workspace_dir=tmp_path / "ws",
                         embedding_model="hashing", min_topic_size=10)
    build_topics(config, notes, embedder=HashingEmbedder(), show_progress=False)
    snap = load_snapshot(config)
    stored = pd.read_parquet(snap.path / AGGREGATES_FILE)
    recomputed = daily_aggregates(snap.notes, snap.assignments)
    pd.testing.assert_frame_equal(stored, recomputed)
    assert int(stored["notes"].sum()) == n
    assert stored["engagement"].sum() == sum(range(n)) + n
    # an older snapshot without the file: computed on load, same table
    (snap.path / AGGREGATES_FILE).unlink()
    pd.testing.assert_frame_equal(snapshot_aggregates(snap), stored)
