"""关联提升: the matched baseline, its interval, and the lift of AIPS flow — on hand-computed toys."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miner.insights.audience import aips_flow, matched_lift, order_value
from test_audience import ASSIGNMENTS, ENGAGEMENTS, ORDERS, con, make_con, row  # noqa: F401 (fixture)


def test_matched_lift_removes_activity_bias_exactly():
    # Two activity strata; within each, reached users convert at twice the controls' rate.
    #   low:  reached 10 (2 buy, 0.2)  controls 30 (3 buy, 0.1)
    #   high: reached 30 (18 buy, 0.6) controls 10 (3 buy, 0.3)
    # matched: p_R = 20/40 = 0.5; p_C = (10·0.1 + 30·0.3)/40 = 0.25 → 2.0 exactly
    # naive:   all controls 6/40 = 0.15 → 0.5/0.15 = 3.33 (active users are both reached and buyers)
    reached = pd.DataFrame({"topic_id": [0, 0], "activity": [0, 1], "n": [10, 30], "y": [2, 18]})
    pop = pd.DataFrame({"activity": [0, 1], "n": [40, 40], "y": [5, 21]})
    out = matched_lift(reached, pop, ["topic_id"], strata=["activity"]).iloc[0]
    assert out["assoc_lift"] == pytest.approx(2.0)
    assert out["naive_lift"] == pytest.approx(0.5 / 0.15)
    assert (out["reached_rate"], out["baseline_rate"]) == pytest.approx((0.5, 0.25))
    assert (out["n_reached"], out["n_matched_control"], out["reached_unmatched"]) == (40, 40, 0)
    assert out["assoc_lift_lo"] < 2.0 < out["assoc_lift_hi"]


def test_unmatched_stratum_is_left_out_and_counted():
    # a stratum where everyone was reached has no control: its 5 users leave the comparison
    reached = pd.DataFrame({"topic_id": [0, 0], "activity": [0, 2], "n": [10, 5], "y": [2, 5]})
    pop = pd.DataFrame({"activity": [0, 2], "n": [40, 5], "y": [5, 5]})
    out = matched_lift(reached, pop, ["topic_id"], strata=["activity"]).iloc[0]
    assert out["reached_unmatched"] == 5 and out["n_matched_control"] == 30
    assert out["assoc_lift"] == pytest.approx(0.2 / 0.1)


def test_interval_hand_computed():
    # one stratum: reached 50 of 100, controls 25 of 100 → lift 2.
    # variance rates smoothed (y + ½)/(n + 1): p̃_R = 50.5/101 = 0.5, p̃_C = 25.5/101
    # var(log p_R) = 0.5·0.5/100 / 0.5² = 0.01; var(log p_C) = p̃_C(1 − p̃_C)/100 / 0.25²
    reached = pd.DataFrame({"topic_id": [0], "s": [0], "n": [100], "y": [50]})
    pop = pd.DataFrame({"s": [0], "n": [200], "y": [75]})
    out = matched_lift(reached, pop, ["topic_id"], strata=["s"]).iloc[0]
    pc = 25.5 / 101
    se = np.sqrt(0.01 + pc * (1 - pc) / 100 / 0.0625)
    assert out["assoc_lift"] == pytest.approx(2.0)
    assert out["assoc_lift_lo"] == pytest.approx(2 * np.exp(-1.959964 * se), rel=1e-6)
    assert out["assoc_lift_hi"] == pytest.approx(2 * np.exp(1.959964 * se), rel=1e-6)
    assert out["lift_significant"]


def test_interval_is_calibrated_under_the_null():
    # 800 replicate worlds with no association (same rates in both groups, 3 strata of different rates
    # and sizes): about 5 % of the 95 % intervals may exclude 1.
    rng = np.random.default_rng(0)
    reps, rates = 800, np.array([0.05, 0.15, 0.4])
    n_r, n_c = np.array([60, 200, 300]), np.array([600, 400, 100])
    y_r, y_c = rng.binomial(n_r, rates, (reps, 3)), rng.binomial(n_c, rates, (reps, 3))
    rep = np.repeat(np.arange(reps), 3)
    reached = pd.DataFrame({"rep": rep, "s": np.tile(range(3), reps), "n": np.tile(n_r, reps), "y": y_r.ravel()})
    pop = reached.assign(n=np.tile(n_r + n_c, reps), y=(y_r + y_c).ravel())
    out = matched_lift(reached, pop, ["rep"], strata=["s"])        # pop has "rep" too: one world each
    fpr = out["lift_significant"].astype(bool).mean()
    assert 0.02 <= fpr <= 0.08, fpr


def test_lift_flag_and_suppression_of_small_groups():
    reached = pd.DataFrame({"topic_id": [0, 1], "s": [0, 0], "n": [100, 100], "y": [12, 30]})
    pop = pd.DataFrame({"s": [0], "n": [1100], "y": [112]})       # controls of topic 0: 1000, 100 buy
    out = matched_lift(reached, pop, ["topic_id"], strata=["s"], k=10).set_index("topic_id")
    # topic 0: 0.12 vs 0.10 → 1.2, the interval contains 1 → not significant (grey it out)
    assert out.loc[0, "assoc_lift"] == pytest.approx(1.2) and not out.loc[0, "lift_significant"]
    # topic 1: its controls (1000 users, 82 buyers) are enough, its 30 buyers too → shown, significant
    assert out.loc[1, "lift_significant"]
    hidden = matched_lift(reached, pop, ["topic_id"], strata=["s"], k=13).set_index("topic_id")
    assert hidden.loc[0, "lift_suppressed"] and np.isnan(hidden.loc[0, "assoc_lift"])     # 12 buyers < 13
    assert pd.isna(hidden.loc[0, "lift_significant"]) and not hidden.loc[1, "lift_suppressed"]


def _activity_world():
    """Same demographics for everyone; activity = engagement rows in the 7 days before the window.

    low (no prior activity):   reached u0–u9 (2 buy),  controls u10–u39 (3 buy)
    high (5 prior rows each):  reached u40–u69 (18 buy), controls u70–u79 (3 buy)
    """
    users = [f"u{i}" for i in range(80)]
    audience = pd.DataFrame({"user_id": users, "gender": "F", "age_band": "25-34", "city_tier": "1",
                             "interests": [["美妆"]] * 80})
    high = users[40:]
    eng = [(u, "n4", "impression", f"2023-08-2{6 + j % 3} 1{j}:00") for u in high for j in range(5)]
    eng += [(u, "n1", "read", "2023-09-02 10:00") for u in users[:10] + users[40:70]]
    buyers = users[0:2] + users[10:13] + users[40:58] + users[70:73]
    orders = [(f"o{i}", u, "B1", 100.0, "2023-09-10 12:00") for i, u in enumerate(buyers)]
    return make_con(pd.DataFrame(eng, columns=ENGAGEMENTS.columns), audience,
                    pd.DataFrame(orders, columns=ORDERS.columns), aips=None)


def test_order_lift_matches_on_prior_activity():
    c = _activity_world()
    out = order_value(c, ASSIGNMENTS, window=("2023-09-01", "2023-09-08"), prior_days=7, k=1, brand="B1")
    t0 = row(out, topic_id=0)
    assert t0["assoc_lift"] == pytest.approx(2.0)             # the toy above, now from the tables
    assert t0["naive_lift"] == pytest.approx(0.5 / 0.15)
    assert (t0["n_reached"], t0["n_matched_control"]) == (40, 40)
    # without a prior period (window at the first day of data) activity cannot be matched: biased again
    out = order_value(c, ASSIGNMENTS, window=("2023-09-01", "2023-09-08"), prior_days=1, k=1, brand="B1")
    assert row(out, topic_id=0)["assoc_lift"] == pytest.approx(0.5 / 0.15)


def test_flow_lift_on_the_toy_world(con):
    out = aips_flow(con, ASSIGNMENTS, brand="B1", k=1)
    a = row(out, topic_id=0, from_stage="A")
    # touched at A before: u1 (→ TI), u2 (stays A): 1 of 2. Untouched at A: u6 (→ I) in u1/u2's stratum
    # (F, 18-24, tier 1, no prior activity) and u8 (stays) in another stratum without touched users:
    # baseline = 1/1, lift 0.5; naive = 0.5 / (1/2) = 1
    assert (a["reached"], a["moved"], a["rate"]) == (2, 1, 0.5)
    assert (a["n_matched_control"], a["baseline_rate"], a["assoc_lift"], a["naive_lift"]) == (1, 1.0, 0.5, 1.0)
    o = row(out, topic_id=0, from_stage="O")
    assert o["suppressed"] and np.isnan(o["reached"])         # nobody touched from outside the pool (u5 only saw)
    ti = row(out, topic_id=1, from_stage="TI")
    # u4 (share) TI → P; nobody untouched was at TI: no baseline
    assert (ti["reached"], ti["moved"]) == (1, 1) and ti["lift_suppressed"] and np.isnan(ti["assoc_lift"])


def test_flow_window_uses_window_dates(con):
    # window [09-01, 09-03): topic 1 = u4 (share 09-01). before = snapshot ≤ 09-01 (TI), after ≤ 09-18 (P)
    out = aips_flow(con, ASSIGNMENTS, brand="B1", window=("2023-09-01", "2023-09-03"), k=1)
    ti = row(out, topic_id=1, from_stage="TI")
    assert (ti["reached"], ti["moved"]) == (1, 1)
