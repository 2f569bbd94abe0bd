"""Audience metrics on hand-computable fixtures: every expected number is worked out in comments.

The toy world here is shared with tests/test_audience_*.py (attribution, lift, privacy, render).
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from miner.insights.audience import (UNATTRIBUTED, AudienceFilter, default_brand, interaction_metrics, order_value,
                                     penetration_growth, topic_engagement, topic_metrics_table,
                                     topic_reach_penetration)
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

    both = topic_reach_penetration(con, ASSIGNMENTS, segment=AudienceFilter(gender="F", age_band=("18-24",)), k=1)
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
    assert out.index.tolist() == [0, 1] and set(out["brand"]) == {"B1"}      # one brand: one row per topic
    assert out.loc[0, "label"] == "美妆·平价"
    assert out.loc[0, "penetration"] == pytest.approx(0.4)
    assert np.isnan(out.loc[0, "penetration_prev"])          # nobody reached before 09-01: 0 < k, hidden
    assert out.loc[0, "engagement_rate"] == pytest.approx(2 / 3)
    # attributed GMV (test_audience_attribution): topic 0 = o1 + o4 + o5 = 200, topic 1 = o6 = 200.
    # ROI counts only credit whose latest touch was a paid note: n1 (topic 0, spend 40) carries u1's like
    # (o1, 100) and u3's read (o4 + o5, 100); topic 1's paid n3 carries u4's share (o6, 200); spend 30.
    assert out.loc[0, "attributed_gmv"] == 200.0 and out.loc[0, "paid_gmv"] == 200.0
    assert out.loc[0, "roi"] == pytest.approx(200 / 40) and out.loc[1, "roi"] == pytest.approx(200 / 30)
    assert out.loc[0, "brand_gmv"] == 710.0
    # flow A→I of topic 0: touched u1 (A→TI) and u2 (A→A): 1 of 2; matched control u6 (A→I): 1 of 1
    assert out.loc[0, "flow_A_I"] == 1 and out.loc[0, "flow_rate_A_I"] == 0.5 and out.loc[0, "flow_lift_A_I"] == 0.5
    assert out.loc[0, "assoc_lift"] == pytest.approx(1.5) and out.loc[0, "n_matched_control"] == 3
    assert out.loc[0, "cpe"] == pytest.approx(2.0)


def test_default_brand_is_the_one_with_most_gmv(con):
    assert default_brand(con) == "B1"                        # B1 ¥750 of orders, B2 ¥500
    assert default_brand(make_con(orders=None)) is None


def test_topic_metrics_table_one_row_set_per_brand(con):
    out = topic_metrics_table(con, ASSIGNMENTS, k=1, include_unattributed=True)
    assert sorted(zip(out["brand"], out["topic_id"])) == [("B1", UNATTRIBUTED), ("B1", 0), ("B1", 1),
                                                           ("B2", UNATTRIBUTED), ("B2", 0), ("B2", 1)]
    b2 = out[(out["brand"] == "B2") & (out["topic_id"] == 0)].iloc[0]
    assert b2["attributed_gmv"] == 500.0 and b2["reach"] == 4      # brand-free reach repeated on each brand's row
    # never pooled: the B1 rows carry B1 money only
    assert out.loc[out["brand"] == "B1", "attributed_gmv"].sum() == pytest.approx(710.0)


def test_brand_with_orders_but_no_snapshots():
    c = make_con(aips=AIPS[AIPS["brand"] == "B2"])
    out = topic_metrics_table(c, ASSIGNMENTS, k=1).set_index(["brand", "topic_id"])
    assert np.isnan(out.loc[("B1", 0), "flow_A_I"]) and out.loc[("B1", 0), "attributed_gmv"] == 200.0


def test_topic_metrics_table_without_optional_tables():
    c = make_con(orders=None, aips=None)
    out = topic_metrics_table(c, ASSIGNMENTS, k=1)
    assert out["reach"].tolist() == [4, 3]
    assert "gmv" not in out and "flow_A_I" not in out


# ---- input checks ----------------------------------------------------------------------------------
def test_segment_spec_parsing_and_errors():
    seg = AudienceFilter.from_spec("gender=F,age_band=18-24|25-34")
    assert seg.filters() == {"gender": ("F",), "age_band": ("18-24", "25-34")}
    assert seg.label == "女性·18-24岁/25-34岁"
    assert AudienceFilter().label == "全部用户"
    with pytest.raises(ValueError, match="allowed"):
        AudienceFilter.from_spec("gender=X")
    with pytest.raises(ValueError, match="unknown segment key"):
        AudienceFilter.from_spec("height=180")
    with pytest.raises(ValueError, match="key=value"):
        AudienceFilter.from_spec("gender")


def test_missing_tables_and_bad_window(con):
    with pytest.raises(ValueError, match="missing tables"):
        order_value(make_con(orders=None), ASSIGNMENTS, brand="B1")
    with pytest.raises(ValueError, match="touch_actions"):
        order_value(con, ASSIGNMENTS, touch_actions=("purchase",))
    with pytest.raises(ValueError, match="unknown attribution rule"):
        order_value(con, ASSIGNMENTS, rule="first_touch")
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
    from miner.ingest import hash_ids, resolve_id_salt
    config = MinerConfig(workspace_dir=tmp_path / "ws")
    paths = _write_inputs(tmp_path)
    bad = pd.read_csv(paths["engagements"])
    bad.loc[0, "action"] = "purchase"                       # a rejected row still carries a user id
    bad.to_csv(paths["engagements"], index=False)
    reports = Workspace(config).ingest_tables(paths)
    assert [r.rows_rejected for r in reports] == [1, 0, 0, 0]

    with duckdb.connect(str(config.db_path), read_only=True) as c:
        stored = {r[0] for r in c.execute("SELECT user_id FROM audience").fetchall()}
        assert stored == set(hash_ids(pd.Series(RAW_IDS), resolve_id_salt(config)))
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
