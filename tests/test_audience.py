"""Audience metrics on hand-computable fixtures: every expected number is worked out in comments."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from miner.insights.audience import (Segment, aips_flow, aips_stage_counts, interaction_metrics, order_value,
                            penetration_growth, topic_engagement, topic_metrics_table, topic_reach_penetration)
from miner.config import MinerConfig
from miner.schema import TZ


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


# ---- the toy world ---------------------------------------------------------------------------------
# 10 users. Topic 0 = notes n1, n2; topic 1 = n3; n4 is an outlier (−1). "ghost" engages but has no
# profile, so it is outside every population.
AUDIENCE = pd.DataFrame({
    "user_id": [f"u{i}" for i in range(1, 11)],
    "gender": ["F", "F", "F", "M", "M", "F", "M", "F", "F", "M"],
    "age_band": ["18-24", "18-24", "25-34", "18-24", "25-34", "18-24", "25-34", "25-34", "18-24", "18-24"],
    "city_tier": ["1", "1", "2", "1", "2", "1", "2", "2", "1", "1"],
    "interests": [["美妆"], ["美妆", "美食"], ["美食"], ["汽车"], ["游戏"], ["美妆"], ["汽车"], ["美食"], ["美妆"],
                  ["游戏"]],
})
ASSIGNMENTS = pd.DataFrame({"note_id": ["n1", "n2", "n3", "n4"], "topic_id": [0, 0, 1, -1],
                            "score": [0.9, 0.8, 0.7, 0.1]})
ENGAGEMENTS = pd.DataFrame([
    ("u1", "n1", "impression", "2023-09-01 10:00"),
    ("u1", "n1", "like", "2023-09-01 10:05"),          # u1's last topic-0 touch
    ("u2", "n2", "impression", "2023-09-02 12:00"),
    ("u2", "n2", "collect", "2023-09-02 12:01"),       # u2's last topic-0 touch
    ("u3", "n1", "read", "2023-09-03 09:00"),
    ("u4", "n3", "impression", "2023-09-01 08:00"),    # earliest engagement
    ("u4", "n3", "share", "2023-09-01 08:10"),
    ("u5", "n1", "impression", "2023-09-10 00:00"),    # latest engagement
    ("u6", "n4", "impression", "2023-09-01 12:00"),    # outlier note: reaches no topic
    ("u7", "n3", "impression", "2023-09-05 00:00"),
    ("u1", "n3", "impression", "2023-09-02 09:00"),
    ("ghost", "n1", "impression", "2023-09-01 11:00"),
], columns=["user_id", "note_id", "action", "ts"])
ORDERS = pd.DataFrame([
    ("o1", "u1", "B1", 100.0, "2023-09-16 10:05:00"),   # exactly u1's last topic-0 touch + 15 days: IN
    ("o2", "u2", "B1", 60.0, "2023-09-17 12:01:01"),    # u2's last touch + 15 days + 1 s: OUT
    ("o3", "u3", "B1", 50.0, "2023-09-02 08:00:00"),    # before u3's first engagement: OUT
    ("o4", "u3", "B1", 70.0, "2023-09-03 09:00:00"),    # same instant as the engagement: IN
    ("o5", "u3", "B1", 30.0, "2023-09-10 00:00:00"),
    ("o6", "u4", "B1", 200.0, "2023-09-03 00:00:00"),
    ("o7", "u8", "B1", 80.0, "2023-09-05 00:00:00"),    # unreached buyer
    ("o8", "u9", "B1", 120.0, "2023-09-06 00:00:00"),   # unreached buyer
    ("o9", "u10", "B1", 40.0, "2023-09-30 00:00:00"),   # after the comparison period ends (09-25)
    ("o10", "u1", "B2", 500.0, "2023-09-05 00:00:00"),  # another brand
], columns=["order_id", "user_id", "brand", "amount", "ts"])
AIPS = pd.DataFrame([
    ("u1", "B1", "A", "2023-08-28"), ("u1", "B1", "I", "2023-09-08"), ("u1", "B1", "TI", "2023-09-20"),
    ("u2", "B1", "A", "2023-09-01"), ("u2", "B1", "A", "2023-09-20"),
    ("u3", "B1", "I", "2023-08-30"), ("u3", "B1", "TI", "2023-09-30"),   # after the 'after' date
    ("u4", "B1", "TI", "2023-08-20"), ("u4", "B1", "P", "2023-09-04"),
    ("u7", "B1", "P", "2023-08-20"), ("u7", "B1", "S", "2023-09-25"),    # on the 'after' date
    ("u6", "B1", "A", "2023-08-25"), ("u6", "B1", "I", "2023-09-15"),
    ("u8", "B1", "A", "2023-08-25"),
    ("u9", "B1", "A", "2023-09-10"),
    ("u10", "B1", "I", "2023-08-25"), ("u10", "B1", "TI", "2023-09-12"),
    ("u1", "B2", "A", "2023-08-28"),
], columns=["user_id", "brand", "stage", "date"])
# Without a window, stage "before" = latest snapshot on/before 2023-09-01 (first engagement's date);
# "after" = on/before 2023-09-25 (last engagement 09-10 00:00 + 15 days).


def make_con(engagements=ENGAGEMENTS, audience=AUDIENCE, orders=ORDERS, aips=AIPS, spend=None):
    """In-memory DuckDB with the ingest column types (TIMESTAMPTZ, DATE, VARCHAR[])."""
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{TZ}'")
    frames = {"engagements": engagements.assign(ts=pd.to_datetime(engagements["ts"]).dt.tz_localize(TZ)),
              "audience": audience}
    if orders is not None:
        frames["orders"] = orders.assign(ts=pd.to_datetime(orders["ts"]).dt.tz_localize(TZ), channel="天猫")
    if aips is not None:
        frames["aips_stages"] = aips.assign(date=pd.to_datetime(aips["date"]).dt.date)
    if spend is not None:
        frames["spend"] = spend
    for name, frame in frames.items():
        con.register("_f", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _f")
        con.unregister("_f")
    return con


@pytest.fixture
def con():
    c = make_con()
    yield c
    c.close()


def row(frame: pd.DataFrame, **keys) -> pd.Series:
    mask = np.ones(len(frame), bool)
    for k, v in keys.items():
        mask &= (frame[k] == v).to_numpy()
    assert mask.sum() == 1, (keys, frame)
    return frame[mask].iloc[0]


# ---- reach & penetration ---------------------------------------------------------------------------
def test_reach_and_penetration_everyone(con):
    out = topic_reach_penetration(con, ASSIGNMENTS, k=1)
    assert out["topic_id"].tolist() == [0, 1]               # outlier topic −1 left out
    # topic 0: u1, u2, u3, u5 (ghost has no profile) of 10; topic 1: u4, u7, u1
    assert out["reach"].tolist() == [4, 3]
    assert out["segment_size"].tolist() == [10, 10]
    assert out["penetration"].tolist() == pytest.approx([0.4, 0.3])
    assert not out["suppressed"].any()


def test_penetration_in_segment_and_by_cells(con):
    out = topic_reach_penetration(con, ASSIGNMENTS, segment="gender=F", k=1)
    # F = u1 u2 u3 u6 u8 u9 (6); topic 0 reaches u1 u2 u3, topic 1 reaches u1
    assert out["reach"].tolist() == [3, 1]
    assert out["penetration"].tolist() == pytest.approx([0.5, 1 / 6])

    cells = topic_reach_penetration(con, ASSIGNMENTS, k=1, by=["gender"])
    assert row(cells, topic_id=0, gender="M")["penetration"] == pytest.approx(1 / 4)   # u5 of u4 u5 u7 u10
    assert row(cells, topic_id=1, gender="M")["reach"] == 2                            # u4, u7
    assert row(cells, topic_id=1, gender="F")["segment_size"] == 6

    both = topic_reach_penetration(con, ASSIGNMENTS, segment=Segment(gender="F", age_band=("18-24",)), k=1)
    assert both["segment_size"].tolist() == [4, 4]          # u1 u2 u6 u9
    assert both["reach"].tolist() == [2, 1]                 # topic 0: u1 u2; topic 1: u1


def test_interest_segment(con):
    out = topic_reach_penetration(con, ASSIGNMENTS, segment="interests=美食", k=1)
    # 美食 = u2 u3 u8; topic 0 reaches u2 u3
    assert out["segment_size"].tolist() == [3, 3]
    assert out.loc[0, "reach"] == 2 and out.loc[0, "penetration"] == pytest.approx(2 / 3)
    assert out.loc[1, "suppressed"] and np.isnan(out.loc[1, "reach"])   # 0 users < k = 1


def test_window_is_start_inclusive_end_exclusive(con):
    out = topic_reach_penetration(con, ASSIGNMENTS, window=("2023-09-01", "2023-09-05"), k=1)
    assert out["reach"].tolist() == [3, 2]                  # u5 (09-10) out; u7 at exactly 09-05 00:00 out
    out = topic_reach_penetration(con, ASSIGNMENTS, window=("2023-09-05", "2023-09-11"), k=1)
    assert out["reach"].tolist() == [1, 1]                  # u5; u7


def test_penetration_growth(con):
    out = penetration_growth(con, ASSIGNMENTS, window=("2023-09-05", "2023-09-11"),
                             previous_window=("2023-09-01", "2023-09-05"), k=1)
    assert out["penetration"].tolist() == pytest.approx([0.1, 0.1])
    assert out["penetration_prev"].tolist() == pytest.approx([0.3, 0.2])
    assert out["penetration_change"].tolist() == pytest.approx([-0.2, -0.1])
    assert out["penetration_growth"].tolist() == pytest.approx([-2 / 3, -0.5])


def test_engagement_rate(con):
    out = topic_engagement(con, ASSIGNMENTS, k=1)
    # topic 0: impressions u1 u2 u5 (ghost excluded) = 3, interactions like + collect = 2
    # topic 1: impressions u4 u7 u1 = 3, interactions share = 1
    assert out["n_impression"].tolist() == [3, 3]
    assert out["engagement_rate"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert out["users"].tolist() == [4, 3]


# ---- order value -----------------------------------------------------------------------------------
def test_order_value_exact(con):
    out = order_value(con, ASSIGNMENTS, k=1, strata=("gender",), brand="B1")
    t0, t1 = row(out, topic_id=0), row(out, topic_id=1)
    # topic 0: o1 (u1, exactly +15 d), o4 (same instant), o5 → 2 buyers, 3 orders, 200
    assert (t0["buyers"], t0["orders"], t0["gmv"]) == (2, 3, 200.0)
    assert t0["aov"] == pytest.approx(100.0)
    assert t0["conversion_rate"] == pytest.approx(0.5)
    # topic 1: o6 (u4), o1 (u1 touched n3 on 09-02) → 2 buyers, 300
    assert (t1["buyers"], t1["orders"], t1["gmv"]) == (2, 2, 300.0)
    assert t1["aov"] == pytest.approx(150.0)
    assert t1["conversion_rate"] == pytest.approx(2 / 3)


def test_order_value_all_brands_and_lift(con):
    out = order_value(con, ASSIGNMENTS, k=1, strata=("gender",))
    t0, t1 = row(out, topic_id=0), row(out, topic_id=1)
    assert (t0["buyers"], t0["orders"], t0["gmv"], t0["aov"]) == (2, 4, 700.0, 350.0)   # + o10 (B2, 500)
    assert (t1["buyers"], t1["orders"], t1["gmv"], t1["aov"]) == (2, 3, 800.0, 400.0)
    # Period P = [09-01 08:00, 09-25 00:00]: orders per user u1 600, u2 60, u3 150, u4 200, u8 80, u9 120
    # (o9 on 09-30 is outside). Topic 0 reached u1 u2 u3 (F) u5 (M): 3 buyers of 4, GMV 810.
    assert t0["period_conversion"] == pytest.approx(0.75)
    assert t0["period_aov"] == pytest.approx(270.0)
    # unreached F = u6 u8 u9: conv 2/3, GMV/user 200/3; unreached M = u4 u7 u10: conv 1/3, GMV/user 200/3
    # weights F 3, M 1 → conv (3·2/3 + 1/3)/4 = 7/12; GMV/user 200/3; AOV = (200/3)/(7/12) = 800/7
    assert t0["baseline_users"] == 6
    assert t0["baseline_conversion"] == pytest.approx(7 / 12)
    assert t0["baseline_aov"] == pytest.approx(800 / 7)
    assert t0["conversion_lift"] == pytest.approx(0.75 / (7 / 12))
    assert t0["aov_lift"] == pytest.approx(270 / (800 / 7))
    # topic 1 reached u4 u7 (M) u1 (F): period buyers u4 u1 → 2/3, GMV 800 → AOV 400
    # unreached F = u2 u3 u6 u8 u9: conv 4/5, GMV/user 82; unreached M = u5 u10: 0, 0; weights F 1, M 2
    assert t1["baseline_conversion"] == pytest.approx(0.8 / 3)
    assert t1["baseline_aov"] == pytest.approx(102.5)
    assert t1["conversion_lift"] == pytest.approx(2.5)
    assert t1["aov_lift"] == pytest.approx(400 / 102.5)


@pytest.mark.parametrize("days, buyers, orders, gmv", [
    (7, 1, 2, 100.0),     # o1 is 15 d after u1's touch: out; o4, o5 (09-10 00:00 ≤ 09-03 09:00 + 7 d) in
    (14, 1, 2, 100.0),
    (15, 2, 3, 200.0),    # o1 exactly at +15 d: in (inclusive); o2 at +15 d + 1 s: out
    (16, 3, 4, 260.0),    # o2 now in
    (30, 3, 4, 260.0),    # o3 (before the engagement) never counts
])
def test_attribution_window_edges(con, days, buyers, orders, gmv):
    t0 = row(order_value(con, ASSIGNMENTS, attribution_days=days, k=1, brand="B1"), topic_id=0)
    assert (t0["buyers"], t0["orders"], t0["gmv"]) == (buyers, orders, gmv)


def test_attribution_uses_latest_touch_not_first(con):
    # u1 touched topic 0 at 10:00 and 10:05; o1 is at 10:05 + 15 d, i.e. 15 d 5 min after the first touch
    out = order_value(con, ASSIGNMENTS, attribution_days=15, k=1, brand="B1")
    assert row(out, topic_id=0)["buyers"] == 2


def test_attribution_gap_between_touches():
    # touches on 09-01 and 09-21; with T+15 an order on 09-18 is 17 d after the latest earlier touch: out.
    # 09-10 (≤ 15 d after 09-01) and 09-30 (9 d after 09-21) are in.
    eng = pd.DataFrame([("u1", "n1", "read", "2023-09-01 00:00"), ("u1", "n2", "read", "2023-09-21 00:00")],
                       columns=ENGAGEMENTS.columns)
    orders = pd.DataFrame([("a", "u1", "B1", 1.0, "2023-09-10 00:00"), ("b", "u1", "B1", 2.0, "2023-09-18 00:00"),
                           ("c", "u1", "B1", 4.0, "2023-09-30 00:00")], columns=ORDERS.columns)
    c = make_con(eng, AUDIENCE, orders, aips=None)
    t0 = row(order_value(c, ASSIGNMENTS, attribution_days=15, k=1), topic_id=0)
    assert (t0["orders"], t0["gmv"]) == (2, 5.0)
    t0 = row(order_value(c, ASSIGNMENTS, attribution_days=17, k=1), topic_id=0)
    assert (t0["orders"], t0["gmv"]) == (3, 7.0)


def test_attribution_window_limits_engagements_not_orders(con):
    # engagements in [09-01, 09-03): topic 0 = u1, u2; o1 (09-16) still attributed to u1's 09-01 touch
    out = order_value(con, ASSIGNMENTS, window=("2023-09-01", "2023-09-03"), k=1, brand="B1")
    t0 = row(out, topic_id=0)
    assert (t0["reach"], t0["buyers"], t0["gmv"]) == (2, 1, 100.0)


# ---- AIPS flow -------------------------------------------------------------------------------------
def test_aips_flow_counts_and_baseline(con):
    out = aips_flow(con, ASSIGNMENTS, brand="B1", k=1)
    assert set(out["brand"]) == {"B1"}
    assert out[out["topic_id"] == 0]["from_stage"].tolist() == ["O", "A", "I", "TI", "P"]
    a = row(out, topic_id=0, from_stage="A")
    # topic 0 at A before: u1 (→ TI) and u2 (A on 09-01 counts as before; still A) → 1 of 2 moved
    assert (a["to_stage"], a["reached"], a["moved"], a["rate"]) == ("I", 2, 1, 0.5)
    # unreached at A: u6 (→ I), u8 (stays) → 1 of 2
    assert (a["baseline_users"], a["baseline_moved"], a["baseline_rate"], a["lift"]) == (2, 1, 0.5, 1.0)
    i = row(out, topic_id=0, from_stage="I")
    # u3's TI snapshot (09-30) is after the 'after' date: stays I; unreached u10 I → TI
    assert (i["reached"], i["moved"], i["baseline_users"], i["baseline_moved"], i["lift"]) == (1, 0, 1, 1, 0.0)
    o = row(out, topic_id=0, from_stage="O")
    # u5 has no snapshot at all (O → O); unreached u9 enters the pool (A on 09-10)
    assert (o["reached"], o["moved"], o["baseline_users"], o["baseline_moved"]) == (1, 0, 1, 1)

    a1 = row(out, topic_id=1, from_stage="A")
    # topic 1 reached u1 (A → TI); unreached at A: u2 (stays), u6 (moves), u8 (stays)
    assert (a1["reached"], a1["moved"], a1["baseline_users"], a1["baseline_moved"]) == (1, 1, 3, 1)
    assert a1["lift"] == pytest.approx(3.0)
    p1 = row(out, topic_id=1, from_stage="P")
    # u7 P → S (S dated exactly on the 'after' date); nobody unreached at P → baseline suppressed
    assert (p1["reached"], p1["moved"], p1["rate"]) == (1, 1, 1.0)
    assert p1["baseline_suppressed"] and np.isnan(p1["baseline_rate"]) and np.isnan(p1["lift"])
    ti0 = row(out, topic_id=0, from_stage="TI")
    assert ti0["suppressed"] and np.isnan(ti0["reached"]) and np.isnan(ti0["rate"])   # 0 users < k=1


def test_aips_flow_brand_filter_and_all_brands(con):
    both = aips_flow(con, ASSIGNMENTS, k=1)
    assert set(both["brand"]) == {"B1", "B2"}
    b2 = row(both, topic_id=0, brand="B2", from_stage="O")
    assert (b2["reached"], b2["moved"]) == (3, 0)           # u2 u3 u5 never in B2's pool


def test_aips_stage_counts(con):
    out = aips_stage_counts(con, ASSIGNMENTS, brand="B1", k=1)
    t0 = out[out["topic_id"] == 0].set_index("stage")
    # after: u1 TI, u2 A, u3 I, u5 O
    assert t0.loc[["O", "A", "I", "TI"], "users"].tolist() == [1, 1, 1, 1]
    assert t0.loc[["O", "A", "I", "TI"], "share"].tolist() == pytest.approx([0.25] * 4)
    assert t0.loc[["P", "S"], "suppressed"].all()            # 0 users
    t1 = out[out["topic_id"] == 1].set_index("stage")
    assert t1.loc[["TI", "P", "S"], "users"].tolist() == [1, 1, 1]   # u1 TI, u4 P, u7 S


def test_aips_flow_window_uses_window_dates(con):
    # window [09-05, 09-11): topic 1 = u7 only. before = snapshot ≤ 09-05 (P), after ≤ 09-11 + 15 d = 09-26 (S)
    out = aips_flow(con, ASSIGNMENTS, brand="B1", window=("2023-09-05", "2023-09-11"), k=1)
    p = row(out, topic_id=1, from_stage="P")
    assert (p["reached"], p["moved"]) == (1, 1)
    # u4 reached P on 09-04 ≤ 09-05, so u4 (unreached in this window) is at P too and does not move
    assert (p["baseline_users"], p["baseline_moved"]) == (1, 0)


# ---- k-anonymity -----------------------------------------------------------------------------------
def _crowd(n_a: int, n_b: int, buyers_b: int):
    """200 F users; note a reached by n_a users, note b by n_b users, buyers_b of whom buy."""
    users = [f"c{i:03d}" for i in range(200)]
    audience = pd.DataFrame({"user_id": users, "gender": "F", "age_band": "25-34", "city_tier": "1",
                             "interests": [["美妆"]] * 200})
    eng = [(u, "na", "impression", "2023-09-01 10:00") for u in users[:n_a]]
    eng += [(u, "nb", "impression", "2023-09-01 10:00") for u in users[100:100 + n_b]]
    orders = [(f"x{i}", u, "B1", 100.0, "2023-09-02 10:00") for i, u in enumerate(users[100:100 + buyers_b])]
    con = make_con(pd.DataFrame(eng, columns=ENGAGEMENTS.columns), audience,
                   pd.DataFrame(orders, columns=ORDERS.columns), aips=None)
    asg = pd.DataFrame({"note_id": ["na", "nb"], "topic_id": [0, 1]})
    return con, asg


def test_k_anonymity_49_suppressed_50_shown():
    con, asg = _crowd(49, 50, 50)
    out = topic_reach_penetration(con, asg, k=50)
    assert out["suppressed"].tolist() == [True, False]
    assert np.isnan(out.loc[0, "reach"]) and np.isnan(out.loc[0, "penetration"])   # never a small number
    assert out.loc[1, "reach"] == 50 and out.loc[1, "penetration"] == pytest.approx(0.25)
    # k is configurable
    assert not topic_reach_penetration(con, asg, k=49)["suppressed"].any()
    assert topic_reach_penetration(con, asg, k=51)["suppressed"].all()
    eng = topic_engagement(con, asg, k=50)
    assert eng["suppressed"].tolist() == [True, False] and np.isnan(eng.loc[0, "engagement_rate"])


def test_k_anonymity_segment_cells():
    con, asg = _crowd(49, 50, 50)
    cells = topic_reach_penetration(con, asg, k=50, by=["age_band"])
    assert cells["suppressed"].tolist() == [True, False]
    small_segment = topic_reach_penetration(con, asg, segment="gender=M", k=50)   # 0 users in segment
    assert small_segment["suppressed"].all() and small_segment["segment_size"].isna().all()


def test_k_anonymity_order_amounts():
    con, asg = _crowd(49, 50, 49)          # topic 1: 50 reached, 49 buyers
    out = order_value(con, asg, k=50)
    t1 = row(out, topic_id=1)
    assert not t1["suppressed"] and t1["amounts_suppressed"]
    assert np.isnan(t1["gmv"]) and np.isnan(t1["aov"])
    assert t1["conversion_rate"] == pytest.approx(0.98)
    t0 = row(out, topic_id=0)
    assert t0["suppressed"] and np.isnan(t0["reach"]) and np.isnan(t0["conversion_rate"])
    shown = row(order_value(con, asg, k=49), topic_id=1)
    assert shown["gmv"] == 4900.0 and shown["aov"] == 100.0


# ---- interactions, spend, combined table -----------------------------------------------------------
NOTES = pd.DataFrame({"note_id": ["n1", "n2", "n3", "n4"], "likes": [10, 20, 5, 1], "collects": [5, 0, 5, 0],
                      "comments": [5, 0, 0, 0], "shares": [1, 1, 1, 1]})
SPEND = pd.DataFrame({"note_id": ["n1", "n3"], "amount": [40.0, 30.0]})


def test_interaction_metrics_and_cpe():
    out = interaction_metrics(NOTES, ASSIGNMENTS, SPEND).set_index("topic_id")
    assert out.loc[0, "interactions"] == 40 and out.loc[0, "n_notes"] == 2
    assert out.loc[0, "cpe"] == pytest.approx(40 / 20)       # spend only on n1: 40 ÷ (10 + 5 + 5)
    assert out.loc[1, "cpe"] == pytest.approx(3.0)            # 30 ÷ 10
    assert np.isnan(interaction_metrics(NOTES, ASSIGNMENTS).loc[0, "cpe"])


def test_topic_metrics_table(con):
    con.register("_s", SPEND)
    con.execute("CREATE TABLE spend AS SELECT * FROM _s")
    topics = pd.DataFrame({"topic_id": [0, 1], "label": ["美妆·平价", "汽车·露营"]})
    out = topic_metrics_table(con, ASSIGNMENTS, topics=topics, notes=NOTES, brand="B1", k=1,
                              previous_window=("2023-08-01", "2023-09-01")).set_index("topic_id")
    assert out.loc[0, "label"] == "美妆·平价"
    assert out.loc[0, "penetration"] == pytest.approx(0.4)
    assert np.isnan(out.loc[0, "penetration_prev"])          # nobody reached before 09-01: 0 < k, hidden
    assert out.loc[0, "engagement_rate"] == pytest.approx(2 / 3)
    assert out.loc[0, "gmv"] == 200.0 and out.loc[0, "roi"] == pytest.approx(200 / 40)
    assert out.loc[1, "roi"] == pytest.approx(300 / 30)
    assert out.loc[0, "flow_A_I"] == 1 and out.loc[0, "flow_rate_A_I"] == 0.5 and out.loc[0, "flow_lift_A_I"] == 1
    assert out.loc[1, "flow_lift_A_I"] == pytest.approx(3.0)
    assert out.loc[0, "cpe"] == pytest.approx(2.0)


def test_topic_metrics_table_without_optional_tables():
    c = make_con(orders=None, aips=None)
    out = topic_metrics_table(c, ASSIGNMENTS, k=1)
    assert out["reach"].tolist() == [4, 3]
    assert "gmv" not in out and "flow_A_I" not in out


# ---- input checks ----------------------------------------------------------------------------------
def test_segment_spec_parsing_and_errors():
    seg = Segment.from_spec("gender=F,age_band=18-24|25-34")
    assert seg.filters() == {"gender": ("F",), "age_band": ("18-24", "25-34")}
    assert seg.label == "女性·18-24岁/25-34岁"
    assert Segment().label == "全部用户"
    with pytest.raises(ValueError, match="allowed"):
        Segment.from_spec("gender=X")
    with pytest.raises(ValueError, match="unknown segment key"):
        Segment.from_spec("height=180")
    with pytest.raises(ValueError, match="key=value"):
        Segment.from_spec("gender")


def test_missing_tables_and_bad_window(con):
    with pytest.raises(ValueError, match="missing tables"):
        order_value(make_con(orders=None), ASSIGNMENTS)
    with pytest.raises(ValueError, match="not after"):
        topic_reach_penetration(con, ASSIGNMENTS, window=("2023-09-05", "2023-09-01"))


# ---- ingest: hashing and bad input -----------------------------------------------------------------
# XHS-like 24-hex user ids. High-entropy on purpose: DuckDB compresses strings sharing prefixes,
# so only such ids make "absent from the file bytes" meaningful; order ids of the same shape are the
# positive control (stored raw, so they must be found).
_rng = np.random.default_rng(7)
RAW_IDS = ["".join(_rng.choice(list("0123456789abcdef"), 24)) for _ in range(60)]
ORDER_IDS = ["".join(_rng.choice(list("0123456789abcdef"), 24)) for _ in range(60)]


def _write_inputs(tmp_path):
    eng = pd.DataFrame({"user_id": RAW_IDS, "note_id": [f"n{i % 3 + 1}" for i in range(60)],
                        "action": "impression", "ts": "2023-09-01 10:00:00"})
    aud = pd.DataFrame({"user_id": RAW_IDS, "gender": "F", "age_band": "18-24", "city_tier": "1",
                        "interests": "美妆|美食"})
    orders = pd.DataFrame({"order_id": ORDER_IDS, "user_id": RAW_IDS, "brand": "B1",
                           "amount": 99.5, "ts": "2023-09-02 10:00:00", "channel": "天猫"})
    aips = pd.DataFrame({"user_id": RAW_IDS, "brand": "B1", "stage": "A", "date": "2023-09-01"})
    paths = {}
    for name, frame in {"engagements": eng, "audience": aud, "orders": orders, "aips_stages": aips}.items():
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def test_ingest_hashes_user_ids_everywhere(tmp_path):
    from miner.workspace import Workspace
    from miner.ingest import hash_ids
    config = MinerConfig(workspace_dir=tmp_path / "ws")
    paths = _write_inputs(tmp_path)
    bad = pd.read_csv(paths["engagements"])
    bad.loc[0, "action"] = "purchase"                       # a rejected row still carries a user id
    bad.to_csv(paths["engagements"], index=False)
    reports = Workspace(config).ingest_tables(paths)
    assert [r.rows_rejected for r in reports] == [1, 0, 0, 0]

    with duckdb.connect(str(config.db_path), read_only=True) as c:
        stored = {r[0] for r in c.execute("SELECT user_id FROM audience").fetchall()}
        assert stored == set(hash_ids(pd.Series(RAW_IDS), config.id_salt))
        for table in ("engagements", "audience", "orders", "aips_stages"):
            raw_hits = c.execute(f"SELECT count(*) FROM {table} WHERE user_id IN (SELECT unnest(?))",
                                 [RAW_IDS]).fetchone()[0]
            assert raw_hits == 0
        out = topic_reach_penetration(c, ASSIGNMENTS, k=1)
        assert out["reach"].tolist() == [39, 20]            # metrics run on the hashed store (row 0 rejected)
    files = [p for p in config.workspace_dir.rglob("*") if p.is_file()]
    assert config.db_path in files and any(p.suffix == ".csv" for p in files)   # store + rejects file
    db_bytes = config.db_path.read_bytes()
    assert sum(o.encode() in db_bytes for o in ORDER_IDS) >= 50      # the byte scan does see stored ids
    for path in files:
        data = path.read_bytes()
        for raw in RAW_IDS:
            assert raw.encode() not in data, f"raw id {raw} found in {path}"
            assert raw.encode("utf-16-le") not in data


def test_ingest_bad_action_and_timestamp_go_to_rejects(tmp_path):
    from miner.ingest import ingest_file
    from miner.schema import ENGAGEMENTS
    config = MinerConfig(workspace_dir=tmp_path / "ws")
    frame = pd.DataFrame({"user_id": ["a", "b", "c"], "note_id": ["n1", "n1", "n2"],
                          "action": ["like", "purchase", "read"],
                          "ts": ["2023-09-01 10:00", "2023-09-01 11:00", "not-a-date"]})
    path = tmp_path / "eng.csv"
    frame.to_csv(path, index=False)
    report = ingest_file(path, ENGAGEMENTS, config)
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (3, 1, 2)
    rejects = pd.read_csv(report.rejects_path, encoding="utf-8-sig")
    assert rejects["column"].tolist() == ["action", "ts"]
    assert "purchase" in rejects["reason"].iloc[0] and "bad date" in rejects["reason"].iloc[1]
    assert not set(rejects["user_id"]) & {"a", "b", "c"}     # hashed in the rejects file too
