"""Opportunity score: hand-computed toy cases, monotonicity in every component and raw signal."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miner.insights.node_timing import node_lift_table
from miner.insights.opportunity import (COMPONENTS, OPPORTUNITY_COLUMNS, OpportunityWeights, combine,
                                        commercial_flags, momentum_signals, node_lift, opportunity_scores,
                                        percentile_rank, resolve_node_key)
from miner.schema import TZ

N_TOPICS = 6


def test_percentile_rank_hand_computed():
    assert np.allclose(percentile_rank([3.0, 1.0, 2.0]), [1.0, 0.0, 0.5])
    assert np.allclose(percentile_rank([1.0, 1.0, 2.0]), [0.25, 0.25, 1.0])   # ties share the average rank
    out = percentile_rank([np.nan, 5.0, 7.0])
    assert np.isnan(out[0]) and np.allclose(out[1:], [0.0, 1.0])
    assert np.allclose(percentile_rank([np.nan, 4.0]), [np.nan, 0.5], equal_nan=True)


def test_combine_is_the_weighted_mean():
    comp = pd.DataFrame({"momentum": [1.0, 0.0], "headroom": [0.5, np.nan], "value": [0.0, 1.0],
                         "openness": [1.0, 1.0]})
    w = OpportunityWeights(momentum=2, headroom=1, value=1, openness=0, timing=5)
    # timing absent from the frame → not used; NaN headroom → 0.5
    assert np.allclose(combine(comp, w), [(2 * 1 + 0.5 + 0) / 4, (0 + 0.5 + 1) / 4])


def test_weights_are_validated():
    with pytest.raises(ValueError):
        OpportunityWeights(momentum=-1)
    with pytest.raises(ValueError):
        combine(pd.DataFrame({"momentum": [0.5]}), OpportunityWeights(momentum=0))


@pytest.mark.parametrize("component", COMPONENTS)
def test_score_is_monotonic_in_each_component(component):
    rng = np.random.default_rng(0)
    comp = pd.DataFrame(rng.uniform(size=(50, len(COMPONENTS))), columns=list(COMPONENTS))
    w = OpportunityWeights()
    base = combine(comp, w)
    for delta in (0.01, 0.2):
        up = comp.copy()
        up[component] = np.minimum(up[component] + delta, 1.0)
        gain = combine(up, w) - base
        assert (gain >= -1e-12).all()
        expected = (up[component] - comp[component]) * getattr(w, component) / sum(
            getattr(w, c) for c in COMPONENTS)
        assert np.allclose(gain, expected)


# ---- raw signals -----------------------------------------------------------------------------------
def _world(commercial=None):
    """6 topics × 10 notes; engagement, commercial share and every audience number differ by topic."""
    rows = []
    for t in range(N_TOPICS):
        for i in range(10):
            rows.append({"note_id": f"t{t}n{i}", "topic_id": t, "likes": 10 * (t + 1), "collects": 5, "comments": 1,
                         "shares": 0, "is_commercial": i < (commercial[t] if commercial else t)})
    notes = pd.DataFrame(rows)
    assignments = notes[["note_id", "topic_id"]].assign(score=1.0)
    trends = pd.DataFrame({"topic_id": range(N_TOPICS), "stage": "evergreen", "stage_zh": "常青",
                           "growth_z": [0.5, -1.0, 2.0, 0.0, 1.0, -0.5], "burst_z": [1.0, 0.0, -1.0, 2.0, 0.5, 0.3],
                           "growth_q": 0.01, "decline_q": 0.01, "burst_q": 0.01})   # every call survives
    metrics = pd.DataFrame({"topic_id": range(N_TOPICS), "penetration": [0.1, 0.3, 0.2, 0.05, 0.4, 0.25],
                            "engagement_rate": [0.2, 0.1, 0.3, 0.15, 0.25, 0.05],
                            "assoc_lift": [1.2, 0.9, 1.5, 1.1, 2.0, 1.0],
                            "aov_lift": [1.0, 1.1, 0.8, 1.3, 1.0, np.nan],
                            "engaged_users": [100.0, 200.0, 50.0, 400.0, 150.0, 300.0], "suppressed": False})
    return notes.drop(columns="topic_id"), assignments, trends, metrics


def _row(notes, assignments, trends, metrics, topic):
    return opportunity_scores(notes, assignments, trends=trends, metrics=metrics).set_index("topic_id").loc[topic]


COMPONENT_OF = {"growth_z": "momentum", "burst_z": "momentum", "penetration": "headroom",
                "engagement_rate": "headroom", "assoc_lift": "value", "engaged_users": "openness"}


@pytest.mark.parametrize("column,table,sign", [
    ("growth_z", "trends", +1), ("burst_z", "trends", +1),
    ("penetration", "metrics", -1), ("engagement_rate", "metrics", +1),
    ("assoc_lift", "metrics", +1), ("engaged_users", "metrics", +1),   # more engaged users → less saturated
])
def test_score_never_falls_when_a_raw_signal_improves(column, table, sign):
    notes, asg, trends, metrics = _world()
    frames = {"trends": trends, "metrics": metrics}
    w = OpportunityWeights()
    share = getattr(w, COMPONENT_OF[column]) / (w.momentum + w.headroom + w.value + w.openness)
    rose = 0
    for topic in range(N_TOPICS):
        before = _row(notes, asg, trends, metrics, topic)
        for step in (0.1, 10.0, 1000.0):
            bumped = {k: v.copy() for k, v in frames.items()}
            bumped[table].loc[topic, column] = frames[table].loc[topic, column] + sign * step
            after = _row(notes, asg, bumped["trends"], bumped["metrics"], topic)
            gain = after[COMPONENT_OF[column]] - before[COMPONENT_OF[column]]
            assert gain >= 0, (column, topic, step)
            # only that component moved for this topic: the score moves by its weight share
            assert after["score"] - before["score"] == pytest.approx(share * gain)
            rose += gain > 0
    assert rose > 0


def test_fewer_commercial_notes_never_lower_the_score():
    notes, asg, trends, metrics = _world()
    base = opportunity_scores(notes, asg, trends=trends, metrics=metrics).set_index("topic_id")
    for topic in range(1, N_TOPICS):
        fewer = list(range(N_TOPICS))
        fewer[topic] = 0                               # no commercial notes in this topic
        n2, a2, _, _ = _world(commercial=fewer)
        after = opportunity_scores(n2, a2, trends=trends, metrics=metrics).set_index("topic_id")
        assert after.loc[topic, "openness"] > base.loc[topic, "openness"]
        assert after.loc[topic, "score"] > base.loc[topic, "score"]


def test_components_are_visible_and_hand_checkable():
    notes, asg, trends, metrics = _world()
    out = opportunity_scores(notes, asg, trends=trends, metrics=metrics)
    assert list(out.columns) == list(OPPORTUNITY_COLUMNS)
    assert list(out["rank"]) == list(range(1, N_TOPICS + 1))
    assert out["score"].is_monotonic_decreasing
    t = out.set_index("topic_id")
    # topic 2 has the highest growth_z (rank 1.0) and the lowest burst_z (rank 0.0)
    assert t.loc[2, "momentum"] == pytest.approx(0.5)
    # topic 3: headroom raw (1 - 0.05) * 0.15 = 0.1425; raws of all topics:
    raw = (1 - metrics["penetration"]) * metrics["engagement_rate"]
    assert t.loc[3, "headroom"] == pytest.approx(percentile_rank(raw)[3])
    # topic 5 has no aov_lift → value uses assoc_lift alone (1.0)
    assert t.loc[5, "value_lift"] == pytest.approx(1.0)
    assert t.loc[4, "value_lift"] == pytest.approx(2.0 * 1.0)
    # saturation = mean of pct(notes per engaged user) and pct(commercial share)
    npu = 10 / metrics["engaged_users"]
    share = np.arange(N_TOPICS) / 10
    expected = (percentile_rank(npu) + percentile_rank(share)) / 2
    assert np.allclose(t.sort_index()["saturation"], expected)
    assert np.allclose(t["openness"], 1 - t["saturation"])
    w = OpportunityWeights()
    manual = (w.momentum * t["momentum"] + w.headroom * t["headroom"] + w.value * t["value"]
              + w.openness * t["openness"]) / (w.momentum + w.headroom + w.value + w.openness)
    assert np.allclose(t["score"], manual)
    assert t["flags"].map(len).eq(0).all()


def test_missing_audience_and_orders_are_neutral_and_flagged():
    notes, asg, trends, _ = _world()
    out = opportunity_scores(notes, asg, trends=trends).set_index("topic_id")
    assert (out["headroom"] == 0.5).all() and (out["value"] == 0.5).all()
    for flags in out["flags"]:
        assert {"no_audience", "no_orders", "saturation_proxy"} <= set(flags)
    # the proxy: notes per 1,000 public interactions; more likes → less saturated
    assert out.loc[5, "saturation"] < out.loc[0, "saturation"] or out.loc[5, "commercial_share"] > 0
    suppressed = pd.DataFrame({"topic_id": [0], "penetration": [np.nan], "suppressed": [True]})
    flags = opportunity_scores(notes, asg, trends=trends, metrics=suppressed).set_index("topic_id")["flags"]
    assert "audience_suppressed" in flags[0] and "no_audience" in flags[1]


def _daily(counts_in, counts_out):
    """A daily series with one topic-0 count inside 国庆 2023 windows and one outside."""
    days = pd.date_range("2023-09-01", "2023-10-31", freq="D", tz=TZ)
    rows = []
    for d in days:
        inside = pd.Timestamp("2023-09-10", tz=TZ) <= d <= pd.Timestamp("2023-10-14", tz=TZ)
        n0 = counts_in if inside else counts_out
        rows += [{"topic_id": 0, "period_start": d, "note_count": n0, "period_notes": 10},
                 {"topic_id": 1, "period_start": d, "note_count": 10 - n0, "period_notes": 10}]
    return pd.DataFrame(rows)


def test_node_lift_hand_computed():
    # 国庆 2023: 蓄水 09-10 … 返场 10-14 → 35 days inside, 26 outside (of 61)
    series = _daily(counts_in=4, counts_out=2)
    table = node_lift_table(series, "national_day", prior_strength=5.0).set_index("topic_id")
    pi = 350 / 610                                       # share of all notes inside the windows
    e_in, e_out = 192 * pi, 192 * (1 - pi)               # topic 0: 140 in + 52 out
    assert table.loc[0, "expected_in"] == pytest.approx(e_in)
    assert table.loc[0, "raw_lift"] == pytest.approx((140 / e_in) / (52 / e_out))
    assert table.loc[0, "node_lift"] == pytest.approx(((140 + 5) / (e_in + 5)) / ((52 + 5) / (e_out + 5)))
    lift = node_lift(series, "national_day")             # prior estimated from the topics
    assert lift[0] > 1 > lift[1]
    assert node_lift(series, "double12").isna().all()   # no 双12 window in Sep–Oct
    assert node_lift(series.iloc[0:0], "national_day").empty   # e.g. a filter that left no notes
    assert resolve_node_key("国庆") == resolve_node_key("十一黄金周") == "national_day"
    with pytest.raises(ValueError):
        resolve_node_key("不存在的节日")


def test_node_lift_is_shrunk_for_one_note_in_one_out():
    """The issue's case: 1 note inside 七夕's windows and 1 outside must not read as a big lift.
    七夕 2025 (08-29): 蓄水 08-08 … 返场 09-01 = 25 of the 92 days Jul–Sep."""
    days = pd.date_range("2025-07-01", "2025-09-30", freq="D", tz=TZ)
    rows = []
    for i, d in enumerate(days):
        n0 = 1 if d.strftime("%m-%d") in ("08-20", "07-05") else 0
        rows += [{"topic_id": 0, "period_start": d, "note_count": n0, "period_notes": 100},
                 {"topic_id": 1, "period_start": d, "note_count": 100 - n0, "period_notes": 100}]
    series = pd.DataFrame(rows)
    t = node_lift_table(series, "qixi", prior_strength=2.0).set_index("topic_id")
    e_in, e_out = 2 * 25 / 92, 2 * 67 / 92
    assert (t.loc[0, "n_in"], t.loc[0, "n_out"]) == (1, 1)
    assert t.loc[0, "raw_lift"] == pytest.approx(67 / 25)           # 2.68 unshrunk
    assert t.loc[0, "node_lift"] == pytest.approx((3 / (e_in + 2)) / (3 / (e_out + 2)))   # ≈ 1.36
    assert t.loc[0, "node_lift"] < 1.4
    assert t.loc[1, "node_lift"] == pytest.approx(t.loc[1, "raw_lift"], rel=0.01)  # big topic: unchanged
    # estimated prior: with no real effect anywhere the prior is strong and the lift ≈ 1
    assert abs(node_lift(series, "qixi")[0] - 1) < 0.5


def test_momentum_counts_only_calls_that_survive_bh():
    trends = pd.DataFrame({"growth_z": [3.0, 2.5, -2.8, 2.0], "burst_z": [4.0, 1.0, 0.0, 2.2],
                           "growth_q": [0.01, 0.20, 0.9, np.nan], "decline_q": [0.9, 0.9, 0.02, np.nan],
                           "burst_q": [0.001, 0.5, 0.9, 0.08]})
    g, b = momentum_signals(trends, fdr=0.10)
    assert g.tolist() == [3.0, 0.0, -2.8, 0.0]     # 2.5 is not a call (q .20); NaN q: below volume
    assert b.tolist() == [4.0, 0.0, 0.0, 2.2]
    # a table without q columns: BH over its rows (one-sided p of z)
    g2, _ = momentum_signals(trends[["growth_z", "burst_z"]], fdr=0.05)
    # p = .00135 .0062 .9974 .0228 → q of z=2.0 (rank 3 of 4) = .0228·4/3 = .030 ≤ .05: a call;
    # at fdr .025 it is not
    assert g2.tolist() == [3.0, 2.5, -2.8, 2.0]                 # −2.8: a significant decline (q .010)
    assert momentum_signals(trends[["growth_z", "burst_z"]], fdr=0.025)[0].tolist() == [3.0, 2.5, -2.8, 0.0]
    # opportunity: the noisy topic 1 gets the same momentum as a topic with no movement at all
    notes, asg, _, metrics = _world()
    tr = pd.DataFrame({"topic_id": range(N_TOPICS), "stage": "evergreen", "stage_zh": "常青",
                       "growth_z": [0.0, 2.5, 0.0, 0.0, 0.0, 0.0], "burst_z": 0.0,
                       "growth_q": [np.nan, 0.2, np.nan, np.nan, np.nan, np.nan], "decline_q": np.nan,
                       "burst_q": np.nan})
    m = opportunity_scores(notes, asg, trends=tr, metrics=metrics).set_index("topic_id")["momentum"]
    assert m.nunique() == 1


def test_unknown_commercial_status_is_unknown_not_zero():
    assert commercial_flags(pd.Series([True, False, None, np.nan, "是", "否", "unknown", 1, 0, ""])
                            ).tolist()[:2] == [1.0, 0.0]
    flags = commercial_flags(pd.Series([True, False, None, np.nan, "是", "否", "unknown", 1, 0, ""]))
    assert np.isnan(flags[[2, 3, 6, 9]]).all() and flags[[4, 5, 7, 8]].tolist() == [1.0, 0.0, 1.0, 0.0]
    notes, asg, trends, metrics = _world()
    topic = asg.set_index("note_id")["topic_id"].reindex(notes["note_id"]).to_numpy()
    known0 = notes.assign(is_commercial=np.where(topic == 0, False, notes["is_commercial"]))
    unknown = notes.assign(is_commercial=np.where(topic == 0, None, notes["is_commercial"]))
    a = opportunity_scores(known0, asg, trends=trends, metrics=metrics).set_index("topic_id")
    b = opportunity_scores(unknown, asg, trends=trends, metrics=metrics).set_index("topic_id")
    assert a.loc[0, "commercial_share"] == 0.0 and a.loc[0, "commercial_known"] == 10
    assert np.isnan(b.loc[0, "commercial_share"]) and b.loc[0, "commercial_known"] == 0
    assert "commercial_unknown" in b.loc[0, "flags"] and "commercial_unknown" not in a.loc[0, "flags"]
    # unknown: saturation is the density part alone (not averaged with a known-0 share rank)
    npu = 10 / metrics["engaged_users"]
    assert b.loc[0, "saturation"] == pytest.approx(percentile_rank(npu)[0])
    assert a.loc[0, "saturation"] == pytest.approx((percentile_rank(npu)[0] + 0.0) / 2)
    # a topic with 2 known notes of 10 (below min_commercial_known = 3) has no share either
    two = notes.astype({"is_commercial": object})
    two.loc[topic == 5, "is_commercial"] = [True, True] + [None] * 8
    c = opportunity_scores(two, asg, trends=trends, metrics=metrics).set_index("topic_id")
    assert np.isnan(c.loc[5, "commercial_share"]) and c.loc[5, "commercial_known"] == 2


def test_season_component_for_seasonal_topics():
    notes, asg, trends, metrics = _world()
    tr = trends.assign(is_seasonal=[True, True, False, False, False, False],
                       days_to_season=[-5.0, 90.0, np.nan, np.nan, np.nan, np.nan])
    out = opportunity_scores(notes, asg, trends=tr, metrics=metrics).set_index("topic_id")
    assert out.loc[0, "season"] == 1.0 and out.loc[1, "season"] == pytest.approx(0.5 * 1)  # 1 − 90/180
    assert (out.loc[2:, "season"] == 0.5).all()
    w = OpportunityWeights()
    parts = ["momentum", "headroom", "value", "openness", "season"]
    manual = sum(getattr(w, c) * out[c] for c in parts) / sum(getattr(w, c) for c in parts)
    assert np.allclose(out["score"], manual)
    assert opportunity_scores(notes, asg, trends=trends, metrics=metrics)["season"].isna().all()


def test_node_adds_timing_only_when_asked():
    rng = np.random.default_rng(1)
    days = pd.date_range("2023-09-01", "2023-10-31", freq="h", tz=TZ)
    notes = pd.DataFrame({"note_id": [f"n{i}" for i in range(600)],
                          "published_at": rng.choice(days, 600), "likes": 1, "collects": 0, "comments": 0,
                          "shares": 0})
    inside = notes["published_at"].between(pd.Timestamp("2023-09-10", tz=TZ), pd.Timestamp("2023-10-15", tz=TZ))
    # topic 0 is mostly published in the 国庆 windows, topic 1 mostly outside
    topic = np.where(inside, rng.choice([0, 1], 600, p=[0.8, 0.2]), rng.choice([0, 1], 600, p=[0.2, 0.8]))
    asg = pd.DataFrame({"note_id": notes["note_id"], "topic_id": topic})
    plain = opportunity_scores(notes, asg)
    assert plain["timing"].isna().all()
    with_node = opportunity_scores(notes, asg, node="国庆").set_index("topic_id")
    assert with_node.loc[0, "timing"] == 1.0 and with_node.loc[1, "timing"] == 0.0
    assert with_node.loc[0, "node_lift"] > 1 > with_node.loc[1, "node_lift"]


def test_value_ignores_lifts_whose_interval_contains_one():
    from miner.insights.opportunity import opportunity_scores
    notes = pd.DataFrame({"note_id": ["a", "b", "c", "d"], "title": "", "body": "x",
                          "published_at": pd.Timestamp("2024-01-01", tz="Asia/Shanghai"),
                          "likes": 1, "collects": 0, "comments": 0, "shares": 0})
    asg = pd.DataFrame({"note_id": ["a", "b", "c", "d"], "topic_id": [0, 0, 1, 1], "score": 1.0})
    metrics = pd.DataFrame({"topic_id": [0, 1], "penetration": [0.1, 0.1], "engagement_rate": [0.1, 0.1],
                            "assoc_lift": [3.0, 1.4], "aov_lift": [np.nan, np.nan],
                            "lift_significant": [False, True]})
    out = opportunity_scores(notes, asg, metrics=metrics).set_index("topic_id")
    assert out.loc[0, "value_lift"] == 1.0          # 3.0× with an interval containing 1 counts as no lift
    assert out.loc[1, "value_lift"] == 1.4
