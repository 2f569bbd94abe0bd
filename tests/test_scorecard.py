"""极光 scorecard on a hand-computed 3-topic table: raw values, percentiles among topics, quadrant
scores, the event-based rows with k-anonymity, and the radar figure."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import pytest

from miner.insights.scorecard import QUADRANTS, SCORECARD_COLUMNS, quadrant_scores, topic_scorecard

TZ = "Asia/Shanghai"


@pytest.fixture()
def snap():
    """Topic 0: 2 notes (one commercial), topic 1: 1 note, topic 2: 1 old note; one outlier note."""
    end = pd.Timestamp("2023-10-31 12:00", tz=TZ)
    notes = pd.DataFrame({
        "note_id": ["a", "b", "c", "d", "x"],
        "author_id": ["p", "q", "p", "r", "s"],
        "published_at": [end - pd.Timedelta(days=1), end - pd.Timedelta(days=10), end, end - pd.Timedelta(days=30),
                         end],
        "likes": [10, 30, 50, 5, 100], "collects": [4, 6, 10, 1, 0], "comments": [2, 0, 3, 1, 0],
        "shares": [0, 2, 1, 0, 0], "is_commercial": [False, True, False, False, False]})
    assignments = pd.DataFrame({"note_id": ["a", "b", "c", "d", "x"], "topic_id": [0, 0, 1, 2, -1]})
    topics = pd.DataFrame({"topic_id": [0, 1, 2], "label": ["零", "一", "二"]})
    return SimpleNamespace(notes=notes, assignments=assignments, topics=topics)


def _value(card, topic, metric, col="value"):
    row = card[(card["topic_id"] == topic) & (card["metric"] == metric)]
    assert len(row) == 1, (topic, metric)
    return row[col].iloc[0]


def test_notes_only_scorecard_by_hand(snap):
    card = topic_scorecard(snap, today=dt.date(2023, 10, 31), window_days=7, k=1)
    assert list(card.columns) == list(SCORECARD_COLUMNS)
    assert set(card["quadrant"]) == set(QUADRANTS) and set(card["topic_id"]) == {0, 1, 2}
    # 认知 without exposure data: share of all public engagement (the outlier note counts in the total)
    total = 16 + 38 + 64 + 7 + 100
    assert _value(card, 0, "engagement_share") == pytest.approx((16 + 38) / total)
    assert _value(card, 1, "engagement_share") == pytest.approx(64 / total)
    # 内容积累
    assert _value(card, 0, "note_count") == 2 and _value(card, 0, "author_count") == 2
    assert _value(card, 0, "note_growth") == pytest.approx((1 + 1) / (1 + 1) - 1)     # 1 recent, 1 before
    assert _value(card, 1, "note_growth") == pytest.approx((1 + 1) / (0 + 1) - 1)
    assert _value(card, 2, "note_growth") == pytest.approx(0.0)                        # 30 days old: neither
    # 口碑激发
    assert _value(card, 0, "collects_per_note") == pytest.approx(5.0)
    assert _value(card, 1, "collects_per_note") == pytest.approx(10.0)
    assert _value(card, 0, "organic_note_share") == pytest.approx(0.5)
    assert _value(card, 0, "organic_engagement_share") == pytest.approx(16 / 54)
    # percentiles among topics: (rank − 1) / (n − 1) × 100
    assert [_value(card, t, "collects_per_note", "percentile") for t in (0, 1, 2)] == [50.0, 100.0, 0.0]
    assert [_value(card, t, "note_growth", "percentile") for t in (0, 1, 2)] == [25.0, 100.0, 25.0]   # ties averaged
    # 人群渗透 without audience data: the row exists with no value
    assert np.isnan(_value(card, 0, "penetration")) and np.isnan(_value(card, 0, "penetration", "percentile"))
    # quadrant score = mean percentile of the quadrant's metrics
    acc = card[(card["topic_id"] == 1) & (card["quadrant"] == "accumulation")]
    assert (acc["quadrant_score"] == acc["percentile"].mean()).all()
    wide = quadrant_scores(card)
    assert list(wide.columns) == ["topic_id", *QUADRANTS] and np.isnan(wide.loc[0, "penetration"])


def test_event_rows_penetration_and_k_anonymity(snap):
    audience = pd.DataFrame({"user_id": [f"u{i}" for i in range(10)], "gender": ["F"] * 6 + ["M"] * 4,
                             "age_band": "25-34", "city_tier": "1"})
    ts = pd.Timestamp("2023-10-30 10:00", tz=TZ)
    rows = ([(f"u{i}", "a", "impression") for i in range(6)] + [(f"u{i}", "a", "collect") for i in range(3)]
            + [("u0", "b", "comment"), ("u6", "c", "impression"), ("u7", "c", "share"), ("u8", "x", "impression")])
    engagements = pd.DataFrame([(u, n, a, ts) for u, n, a in rows], columns=["user_id", "note_id", "action", "ts"])
    con = duckdb.connect()
    for name, frame in (("audience", audience), ("engagements", engagements)):
        con.register("_t", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _t")
        con.unregister("_t")
    card = topic_scorecard(snap, con=con, k=2)
    assert _value(card, 0, "impression_share") == pytest.approx(6 / 8)              # 8 impression events in all
    assert _value(card, 1, "impression_share") == pytest.approx(1 / 8)
    assert _value(card, 0, "reach_share") == pytest.approx(6 / 9)                   # 9 users did anything
    assert _value(card, 1, "reach_share") == pytest.approx(2 / 9)
    assert _value(card, 0, "collects_per_reach") == pytest.approx(3 / 6)
    assert _value(card, 0, "comments_per_reach") == pytest.approx(1 / 6)
    assert _value(card, 0, "penetration") == pytest.approx(6 / 10)
    assert _value(card, 1, "penetration") == pytest.approx(2 / 10)
    assert "engagement_share" not in set(card["metric"])                           # exposure data replaces the proxy
    # topic 2 has no reached users; with k = 3 topic 1 (2 users) is hidden, never a small number
    card3 = topic_scorecard(snap, con=con, k=3)
    assert np.isnan(_value(card3, 1, "reach_share")) and np.isnan(_value(card3, 1, "penetration"))
    assert _value(card3, 0, "reach_share") == pytest.approx(6 / 9)
    women = topic_scorecard(snap, con=con, k=2, audience_filter={"gender": "F"})
    assert _value(women, 0, "penetration") == pytest.approx(6 / 6)
    assert np.isnan(_value(women, 1, "penetration"))                                # u6, u7 are men
    # the chosen filter's metrics table wins, and its suppressed rows stay hidden
    metrics = pd.DataFrame({"topic_id": [0, 1, 2], "penetration": [0.3, 0.2, 0.1], "suppressed": [False, True, False]})
    given = topic_scorecard(snap, metrics=metrics, con=con, k=2)
    assert _value(given, 0, "penetration") == pytest.approx(0.3) and np.isnan(_value(given, 1, "penetration"))
    assert _value(given, 0, "penetration", "percentile") == 100.0


def test_radar_figure(snap):
    from miner.ui.charts import scorecard_radar
    card = topic_scorecard(snap, today=dt.date(2023, 10, 31), window_days=7, k=1)
    fig = scorecard_radar(card, 1)
    mine = fig.data[1]
    assert list(mine.theta[:4]) == list(QUADRANTS.values())
    wide = quadrant_scores(card).set_index("topic_id")
    expected = [0.0 if np.isnan(v) else v for v in wide.loc[1, list(QUADRANTS)]]
    assert list(mine.r[:4]) == pytest.approx(expected)
    assert "无数据" in mine.customdata[2]                                           # 人群渗透 has no data
