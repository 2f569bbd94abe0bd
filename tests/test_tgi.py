"""人群纠偏 (TGI) on a hand-computed 20-user table: shares, TGI, k-anonymity, conversion lift and
the movement between the last two periods; then on a larger table where the movement is real."""
from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from miner.insights.tgi import TGI_COLUMNS, segment_name_zh, tgi_headlines, topic_tgi

TZ = "Asia/Shanghai"


def _ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(f"{day} 10:00", tz=TZ)


def _con(audience: pd.DataFrame, engagements: pd.DataFrame, orders: pd.DataFrame | None = None):
    con = duckdb.connect()
    tables = {"audience": audience, "engagements": engagements}
    if orders is not None:
        tables["orders"] = orders
    for name, frame in tables.items():
        con.register("_t", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _t")
        con.unregister("_t")
    return con


@pytest.fixture()
def tiny():
    """20 users: A = F·25-34·new1 (u01–u10), B = F·18-24·1 (u11–u14), C = M·25-34·2 (u15–u20)."""
    users = [f"u{i:02d}" for i in range(1, 21)]
    cells = [("F", "25-34", "new1")] * 10 + [("F", "18-24", "1")] * 4 + [("M", "25-34", "2")] * 6
    audience = pd.DataFrame({"user_id": users, "gender": [c[0] for c in cells], "age_band": [c[1] for c in cells],
                             "city_tier": [c[2] for c in cells]})
    rows = ([(u, "n1", "like", "2023-10-15") for u in ("u01", "u02", "u03", "u04", "u15")]     # previous period
            + [(u, "n2", "like", "2023-10-25") for u in ("u05", "u06", "u07", "u08", "u11", "u12")]  # last period
            + [("u16", "n1", "impression", "2023-10-25"),         # not an engagement action: not counted
               ("u09", "n4", "like", "2023-10-25"),               # outlier note: no topic
               ("u16", "n3", "like", "2023-10-25"), ("u17", "n3", "comment", "2023-10-26")])
    engagements = pd.DataFrame(rows, columns=["user_id", "note_id", "action", "ts"])
    engagements["ts"] = engagements["ts"].map(_ts)
    orders = pd.DataFrame([("o1", "u01", "b", 10.0, _ts("2023-10-17")), ("o2", "u02", "b", 5.0, _ts("2023-10-16")),
                           ("o3", "u11", "b", 7.0, _ts("2023-10-26")),
                           ("o4", "u03", "b", 9.0, _ts("2023-10-14")),     # before u03's engagement
                           ("o5", "u15", "b", 9.0, _ts("2023-11-30"))],    # > 15 days after u15's last one
                          columns=["order_id", "user_id", "brand", "amount", "ts"])
    assignments = pd.DataFrame({"note_id": ["n1", "n2", "n3", "n4"], "topic_id": [0, 0, 1, -1]})
    return _con(audience, engagements, orders), assignments


def _row(table, topic, gender=None, age_band=None, city_tier=None):
    t = table[table["topic_id"] == topic]
    for col, v in (("gender", gender), ("age_band", age_band), ("city_tier", city_tier)):
        t = t[t[col].isna()] if v is None else t[t[col] == v]
    assert len(t) == 1, (topic, gender, age_band, city_tier)
    return t.iloc[0]


def test_tgi_by_hand(tiny):
    con, asg = tiny
    table = topic_tgi(con, asg, k=2, period_days=10, as_of=pd.Timestamp("2023-10-31").date(), attribution_days=15)
    assert list(table.columns) == list(TGI_COLUMNS)
    # topic 0: 11 engaged users (8 of A, 2 of B, 1 of C); audience shares A 10/20, B 4/20, F 14/20
    a = _row(table, 0, "F", "25-34", "new1")
    assert a["engaged_users"] == 8 and a["topic_share"] == pytest.approx(8 / 11)
    assert a["base_share"] == pytest.approx(0.5) and a["tgi"] == pytest.approx(100 * (8 / 11) / 0.5)   # 145.45
    assert _row(table, 0, "F", "18-24", "1")["tgi"] == pytest.approx(100 * (2 / 11) / (4 / 20))        # 90.9
    assert _row(table, 0, gender="F")["tgi"] == pytest.approx(100 * (10 / 11) / (14 / 20))             # 129.9
    assert _row(table, 0, age_band="25-34")["tgi"] == pytest.approx(100 * (9 / 11) / (16 / 20))        # 102.3
    assert _row(table, 0, city_tier="new1")["tgi"] == pytest.approx(100 * (8 / 11) / 0.5)
    # Wilson interval of the share, divided by the base share
    p, n, z = 8 / 11, 11, 1.959963984540054
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert a["tgi_lo"] == pytest.approx(100 * (centre - half) / 0.5)
    assert a["tgi_hi"] == pytest.approx(100 * (centre + half) / 0.5)
    assert a["tgi_lo"] < a["tgi"] < a["tgi_hi"] and bool(a["over_index"]) == (a["tgi_lo"] > 100)
    # topic 1: both engaged users are C (M·25-34·2, 6 of 20)
    assert _row(table, 1, "M", "25-34", "2")["tgi"] == pytest.approx(100 / 0.3)
    # ranks follow TGI within a topic
    t0 = table[table["topic_id"] == 0]
    assert t0["rank"].tolist() == list(range(1, len(t0) + 1)) and t0["tgi"].is_monotonic_decreasing


def test_k_anonymity_never_shows_a_small_cell(tiny):
    con, asg = tiny
    table = topic_tgi(con, asg, k=2, period_days=10, as_of=pd.Timestamp("2023-10-31").date())
    t0 = table[table["topic_id"] == 0]
    assert (t0["engaged_users"] >= 2).all()
    assert not ((t0["gender"] == "M") | (t0["city_tier"] == "2")).any()     # one engaged C user only
    big_k = topic_tgi(con, asg, k=9, period_days=10, as_of=pd.Timestamp("2023-10-31").date())
    assert set(big_k["segment_zh"]) == {"女性", "25-34岁"}                    # 10 and 9 users of topic 0
    assert topic_tgi(con, asg, k=12).empty                                 # no topic has 12 engaged users


def test_conversion_lift_and_interval(tiny):
    con, asg = tiny
    table = topic_tgi(con, asg, k=2, period_days=10, as_of=pd.Timestamp("2023-10-31").date(), attribution_days=15)
    a = _row(table, 0, "F", "25-34", "new1")
    # buyers: u01, u02 (A) and u11 (B); u03 ordered before engaging, u15 too late
    assert a["buyers"] == 2 and a["conversion_rate"] == pytest.approx(2 / 8)
    assert a["conversion_lift"] == pytest.approx((2 / 8) / (1 / 3))
    se = math.sqrt(1 / 2 - 1 / 8 + 1 / 1 - 1 / 3)
    assert a["lift_lo"] == pytest.approx(0.75 * math.exp(-1.959963984540054 * se))
    assert a["lift_hi"] == pytest.approx(0.75 * math.exp(1.959963984540054 * se))
    t0 = table[table["topic_id"] == 0].sort_values("lift_rank")
    assert t0["conversion_lift"].dropna().is_monotonic_decreasing and t0["lift_rank"].iloc[0] == 1
    con.execute("DROP TABLE orders")
    assert topic_tgi(con, asg, k=2)["conversion_lift"].isna().all()       # no orders: no conversion columns


def test_movement_between_the_last_two_periods(tiny):
    con, asg = tiny
    table = topic_tgi(con, asg, k=2, period_days=10, as_of=pd.Timestamp("2023-10-31").date())
    a = _row(table, 0, "F", "25-34", "new1")
    # last period (10-21, 10-31]: 6 users, 4 of A; previous (10-11, 10-21]: 5 users, 4 of A
    assert a["tgi_last"] == pytest.approx(100 * (4 / 6) / 0.5) and a["tgi_prev"] == pytest.approx(100 * (4 / 5) / 0.5)
    assert a["tgi_change"] == pytest.approx(a["tgi_last"] - a["tgi_prev"])
    assert a["trend_arrow"] == "→" and a["change_p_value"] > 0.05          # 6 vs 5 users: not significant
    b = _row(table, 0, "F", "18-24", "1")
    assert np.isnan(b["tgi_prev"]) and b["trend_arrow"] == ""              # 0 users before: no comparison
    assert a["headline"] == f"25-34岁 新一线 女性 TGI {a['tgi']:.0f} →"


def test_a_real_shift_gets_an_arrow():
    """200 users, half F; topic engaged by 40 users a period: 20 % F before, 80 % F in the last period."""
    users = [f"u{i:03d}" for i in range(200)]
    audience = pd.DataFrame({"user_id": users, "gender": ["F"] * 100 + ["M"] * 100, "age_band": "25-34",
                             "city_tier": "1"})
    prev = users[:8] + users[100:132]          # 8 F + 32 M
    last = users[8:40] + users[132:140]        # 32 F + 8 M
    rows = [(u, "n1", "like", _ts("2023-10-05")) for u in prev] + [(u, "n1", "like", _ts("2023-10-25")) for u in last]
    con = _con(audience, pd.DataFrame(rows, columns=["user_id", "note_id", "action", "ts"]))
    table = topic_tgi(con, pd.DataFrame({"note_id": ["n1"], "topic_id": [0]}), k=5, period_days=14,
                      as_of=pd.Timestamp("2023-10-31").date())
    f = _row(table, 0, gender="F")
    assert f["tgi_prev"] == pytest.approx(40.0) and f["tgi_last"] == pytest.approx(160.0)
    assert f["trend_arrow"] == "↑" and f["change_p_value"] < 0.001
    assert _row(table, 0, gender="M")["trend_arrow"] == "↓"
    assert f["tgi"] == pytest.approx(100.0)                                # 40 F of 80 overall, as in the audience
    assert f["headline"] == "女性 TGI 100 ↑"
    assert tgi_headlines(table, 0) == []                                   # nothing over-indexes overall
    assert "女性 TGI 100 ↑" in tgi_headlines(table, 0, n=10, over_only=False)


def test_segment_names():
    assert segment_name_zh("F", "25-34", "new1") == "25-34岁 新一线 女性"
    assert segment_name_zh(city_tier="4+") == "四线及以下"
    assert segment_name_zh() == "全部"
