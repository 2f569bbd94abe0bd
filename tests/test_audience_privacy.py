"""k-anonymity on distinct people, for every kind of cell: reach, segment cells, engagement, buyers,
orders, GMV, conversion, lift, unattributed, AIPS flow and stage counts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miner.insights.audience import (UNATTRIBUTED, aips_flow, aips_stage_counts, order_value, suppressed_text,
                                     topic_engagement, topic_metrics_table, topic_reach_penetration)
from test_audience import ENGAGEMENTS, ORDERS, make_con, row


def _crowd(n_a: int, n_b: int, buyers_b: int, aips=None, brands=("B1",)):
    """200 F users; note a read by n_a users, note b by n_b users (users 100..), buyers_b of whom buy
    (one order per brand each)."""
    users = [f"c{i:03d}" for i in range(200)]
    audience = pd.DataFrame({"user_id": users, "gender": "F", "age_band": "25-34", "city_tier": "1",
                             "interests": [["美妆"]] * 200})
    eng = [(u, "na", "read", "2023-09-01 10:00") for u in users[:n_a]]
    eng += [(u, "nb", "read", "2023-09-01 10:00") for u in users[100:100 + n_b]]
    orders = [(f"x{b}{i}", u, b, 100.0, "2023-09-02 10:00") for b in brands
              for i, u in enumerate(users[100:100 + buyers_b])]
    con = make_con(pd.DataFrame(eng, columns=ENGAGEMENTS.columns), audience,
                   pd.DataFrame(orders, columns=ORDERS.columns), aips=aips)
    asg = pd.DataFrame({"note_id": ["na", "nb"], "topic_id": [0, 1]})
    return con, asg, users


def test_reach_49_suppressed_50_shown():
    con, asg, _ = _crowd(49, 50, 50)
    out = topic_reach_penetration(con, asg, k=50)
    assert out["suppressed"].tolist() == [True, False]
    assert np.isnan(out.loc[0, "reach"]) and np.isnan(out.loc[0, "penetration"])   # never a small number
    assert out.loc[1, "reach"] == 50 and out.loc[1, "penetration"] == pytest.approx(0.25)
    assert not topic_reach_penetration(con, asg, k=49)["suppressed"].any()          # k is configurable
    assert topic_reach_penetration(con, asg, k=51)["suppressed"].all()


def test_engagement_rate_cell():
    con, asg, _ = _crowd(49, 50, 50)
    eng = topic_engagement(con, asg, k=50)
    assert eng["suppressed"].tolist() == [True, False] and np.isnan(eng.loc[0, "engagement_rate"])


def test_segment_cells_and_segment_size():
    con, asg, _ = _crowd(49, 50, 50)
    cells = topic_reach_penetration(con, asg, k=50, by=["age_band"])
    assert cells["suppressed"].tolist() == [True, False]
    small_segment = topic_reach_penetration(con, asg, segment="gender=M", k=50)      # 0 users in segment
    assert small_segment["suppressed"].all() and small_segment["segment_size"].isna().all()


def test_buyers_orders_gmv_and_conversion_hidden_under_k_buyers():
    con, asg, _ = _crowd(60, 50, 49)          # topic 1: 50 touched, 49 buyers
    t1 = row(order_value(con, asg, k=50), topic_id=1)
    assert not t1["suppressed"] and t1["orders_suppressed"] and t1["n_reached"] == 50
    # the old table showed a 0.98 conversion from 49 buyers; now every order cell is hidden
    for col in ("buyers", "attributed_orders", "attributed_gmv", "aov", "conversion_rate", "gmv_share"):
        assert np.isnan(t1[col]), col
    shown = row(order_value(con, asg, k=49), topic_id=1)
    assert (shown["buyers"], shown["attributed_gmv"], shown["aov"]) == (49, 4900.0, 100.0)
    assert shown["conversion_rate"] == pytest.approx(0.98)


def test_reach_under_k_hides_the_whole_order_row():
    con, asg, _ = _crowd(49, 50, 50)
    t0 = row(order_value(con, asg, k=50), topic_id=0)
    assert t0["suppressed"] and t0["orders_suppressed"] and t0["lift_suppressed"]
    assert np.isnan(t0["n_reached"]) and np.isnan(t0["conversion_rate"]) and pd.isna(t0["lift_significant"])


def test_lift_hidden_when_controls_or_their_buyers_are_few():
    con, asg, _ = _crowd(60, 50, 50)
    # topic 1: 50 touched (all buy); untouched = 150 users, of whom 0 buy → control buyers 0 < k
    t1 = row(order_value(con, asg, k=50), topic_id=1)
    assert t1["lift_suppressed"] and np.isnan(t1["assoc_lift"]) and np.isnan(t1["assoc_lift_lo"])
    assert np.isnan(t1["n_matched_control"])


def test_unattributed_row_and_brand_gmv():
    con, asg, users = _crowd(60, 50, 50)
    extra = pd.DataFrame([(f"z{i}", u, "B1", 10.0, "2023-09-02 11:00") for i, u in enumerate(users[150:160])],
                         columns=ORDERS.columns)       # 10 untouched buyers → unattributed
    con.register("_z", extra.assign(ts=pd.to_datetime(extra["ts"]).dt.tz_localize("Asia/Shanghai"), channel="天猫"))
    con.execute("INSERT INTO orders SELECT * FROM _z")
    out = order_value(con, asg, k=10)
    un = row(out, topic_id=UNATTRIBUTED)
    assert (un["buyers"], un["attributed_gmv"]) == (10, 100.0)
    hidden = row(order_value(con, asg, k=11), topic_id=UNATTRIBUTED)
    assert hidden["orders_suppressed"] and np.isnan(hidden["attributed_gmv"]) and np.isnan(hidden["buyers"])
    assert row(out, topic_id=1)["brand_gmv"] == 5100.0           # 60 brand buyers: 50 × 100 + 10 × 10
    assert np.isnan(row(order_value(con, asg, k=61), topic_id=UNATTRIBUTED)["brand_gmv"])


def test_flow_cells_count_distinct_people_per_brand():
    # 9 touched users at A for each of 6 brands: 54 user × brand pairs, but 9 people per cell
    users = [f"c{i:03d}" for i in range(100, 109)]
    brands = [f"B{b}" for b in range(6)]
    aips = pd.DataFrame([(u, b, "A", "2023-08-20") for u in users for b in brands] +
                        [(u, b, "I", "2023-09-05") for u in users[:5] for b in brands],
                        columns=["user_id", "brand", "stage", "date"])
    con, asg, _ = _crowd(60, 9, 0, aips=aips, brands=())
    flow = aips_flow(con, asg, k=10)
    a = flow[(flow["topic_id"] == 1) & (flow["from_stage"] == "A")]
    assert len(a) == 6 and a["suppressed"].all() and a["reached"].isna().all()
    shown = aips_flow(con, asg, k=5, brand="B3")
    a = row(shown, topic_id=1, from_stage="A")
    assert (a["reached"], a["moved"]) == (9, 5)
    # movers under k: the count and the rate are hidden, the group size still shows
    hidden = row(aips_flow(con, asg, k=6, brand="B3"), topic_id=1, from_stage="A")
    assert hidden["reached"] == 9 and hidden["moved_suppressed"] and np.isnan(hidden["moved"])
    assert np.isnan(hidden["rate"]) and hidden["lift_suppressed"]
    counts = aips_stage_counts(con, asg, k=6, brand="B3")
    t1 = counts[counts["topic_id"] == 1].set_index("stage")
    assert t1.loc["A", "suppressed"] and np.isnan(t1.loc["A", "users"])          # 4 stayed at A < 6
    assert t1.loc["I", "suppressed"] and np.isnan(t1.loc["I", "users"])          # 5 moved to I < 6


def test_metrics_table_flags_and_text():
    con, asg, _ = _crowd(60, 50, 49)
    out = topic_metrics_table(con, asg, k=50, brand="B1").set_index("topic_id")
    assert out.loc[1, "orders_suppressed"] and out.loc[1, "reach"] == 50
    assert np.isnan(out.loc[1, "attributed_gmv"]) and np.isnan(out.loc[1, "conversion_rate"])
    assert suppressed_text(50) == "<50"
