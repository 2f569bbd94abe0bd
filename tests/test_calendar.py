"""Tests for miner.insights.calendar: node dates (lunar ones included), phases, the user file, and YoY."""
from __future__ import annotations

import datetime as dt
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from miner.insights.calendar import (
    BUILTIN_NODES,
    DEFAULT_CALENDAR_PATH,
    PHASES,
    CalendarError,
    MarketingNode,
    load_calendar,
    next_node,
    node_yoy,
    nodes_between,
    phase_of,
    seeding_start,
)

D = dt.date.fromisoformat


@pytest.fixture(scope="module")
def cal() -> dict[tuple[str, int], MarketingNode]:
    return {(n.key, n.year): n for n in load_calendar()}


# ---- dates ------------------------------------------------------------------------------------------

# 正月初一 / 七月初七 / 八月十五, cross-checked against the lunardate and lunar-python libraries
LUNAR = {
    "spring_festival": ["2023-01-22", "2024-02-10", "2025-01-29", "2026-02-17", "2027-02-06"],
    "qixi": ["2023-08-22", "2024-08-10", "2025-08-29", "2026-08-19", "2027-08-08"],
    "mid_autumn": ["2023-09-29", "2024-09-17", "2025-10-06", "2026-09-25", "2027-09-15"],
}


@pytest.mark.parametrize("key", sorted(LUNAR))
def test_lunar_node_dates(cal, key):
    assert [str(cal[(key, y)].date) for y in range(2023, 2028)] == LUNAR[key]


def test_dates_2025_2026(cal):
    want = {
        ("spring_festival", 2025): "2025-01-29", ("spring_festival", 2026): "2026-02-17",
        ("qixi", 2025): "2025-08-29", ("qixi", 2026): "2026-08-19",
        ("mid_autumn", 2025): "2025-10-06", ("mid_autumn", 2026): "2026-09-25",
        ("valentines", 2026): "2026-02-14", ("womens_day", 2025): "2025-03-08",
        ("day520", 2026): "2026-05-20", ("mid_year_618", 2025): "2025-06-18",
        ("national_day", 2026): "2026-10-01", ("double11", 2025): "2025-11-11",
        ("double12", 2026): "2026-12-12", ("christmas_new_year", 2025): "2025-12-25",
    }
    assert {k: str(cal[k].date) for k in want} == want
    assert cal[("spring_festival", 2025)].name_zh == "春节"
    assert "双十一" in cal[("double11", 2025)].aliases


def test_every_node_every_year_present(cal):
    keys = {n["key"] for n in BUILTIN_NODES}
    assert len(keys) == 11
    assert set(cal) == {(k, y) for k in keys for y in range(2023, 2028)}


def test_phases_ordered_and_burst_holds_the_node(cal):
    for node in cal.values():
        assert list(node.phases) == list(PHASES)
        (s0, s1), (b0, b1), (a0, a1) = (node.phases[p] for p in PHASES)
        assert s0 <= s1 < b0 <= b1 < a0 <= a1, node
        assert b0 <= node.date <= b1, node
        assert node.start == s0 == seeding_start(node) and node.end == a1


def test_node_specific_phases(cal):
    d11 = cal[("double11", 2025)]
    assert seeding_start(d11) == D("2025-10-20")
    assert d11.phases["burst"] == (D("2025-11-01"), D("2025-11-11"))
    cny = cal[("spring_festival", 2026)]
    assert cny.phases["after"][1] == D("2026-03-03")            # 元宵 (正月十五)
    xmas = cal[("christmas_new_year", 2025)]
    assert xmas.phases["burst"] == (D("2025-12-20"), D("2026-01-01"))   # 圣诞 → 元旦


def test_shipped_file_equals_builtins():
    with open(DEFAULT_CALENDAR_PATH, encoding="utf-8") as fh:
        shipped = json.load(fh)["nodes"]
    assert shipped == list(BUILTIN_NODES)
    from_file = load_calendar(DEFAULT_CALENDAR_PATH)
    assert from_file == load_calendar()


# ---- queries ------------------------------------------------------------------------------------------

def test_phase_of_next_node_nodes_between(cal):
    nodes = list(cal.values())
    hits = [(n.key, p) for n, p in phase_of("2025-10-03", nodes)]
    assert hits == [("national_day", "burst"), ("mid_autumn", "burst")]   # 中秋 inside 国庆 in 2025
    assert [(n.key, p) for n, p in phase_of(D("2025-10-25"), nodes)] == [("double11", "seeding")]
    assert phase_of("2025-07-15", nodes) == []
    ts = pd.Timestamp("2025-11-10 20:00", tz="UTC")                       # 11-11 04:00 in Shanghai
    assert [(n.key, p) for n, p in phase_of(ts, nodes)] == [("double11", "burst")]
    assert next_node("2025-11-12", nodes).key == "double12"
    assert next_node("2025-11-11", nodes).key == "double11"                # the day itself counts
    assert next_node("2027-12-26", nodes) is None
    assert [n.name_zh for n in nodes_between("2026-02-01", "2026-03-31", nodes)] == \
        ["情人节", "春节", "女神节"]
    # default calendar when nodes are not given; neighbour years are consulted without warnings
    assert next_node("2026-08-01").key == "qixi"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [(n.key, n.year, p) for n, p in phase_of("2027-01-01")] == \
            [("christmas_new_year", 2026, "burst")]
        assert [(n.key, p) for n, p in phase_of("2026-12-31")] == [("christmas_new_year", "burst")]


# ---- user file -------------------------------------------------------------------------------------------

def write(tmp_path, payload, name="nodes.json"):
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False),
                    encoding="utf-8")
    return path


def test_user_file_overrides_builtins(tmp_path):
    path = write(tmp_path, {"nodes": [
        {"key": "double11", "overrides": {"2025": {"seeding": ["2025-10-14", "2025-10-31"]}}},
        {"key": "double12", "phases": {"after": [1, 10]}},                       # partial merge
        {"key": "valentines", "enabled": False},
        {"key": "brand_day", "name_zh": "品牌日", "month_day": "08-08",
         "phases": {"seeding": [-14, -3], "burst": [-2, 0], "after": [1, 2]}},
        {"key": "spring_festival", "dates": {"2028": "2028-01-26"}},
    ]})
    with pytest.warns(UserWarning) as caught:                 # 七夕 and 中秋 have no 2028 date
        nodes = load_calendar(path, years=[2025, 2028])
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["mid_autumn", "qixi"]
    by = {(n.key, n.year): n for n in nodes}
    assert seeding_start(by[("double11", 2025)]) == D("2025-10-14")
    assert seeding_start(by[("double11", 2028)]) == D("2028-10-20")        # override is per year
    assert by[("double12", 2025)].phases["after"] == (D("2025-12-13"), D("2025-12-22"))
    assert by[("double12", 2025)].phases["burst"] == (D("2025-12-09"), D("2025-12-12"))
    assert not any(n.key == "valentines" for n in nodes)
    assert by[("brand_day", 2025)].name_zh == "品牌日" and by[("brand_day", 2025)].date == D("2025-08-08")
    assert by[("spring_festival", 2028)].date == D("2028-01-26")
    assert by[("spring_festival", 2025)].date == D("2025-01-29")           # built-in years kept


def test_missing_lunar_year_warns():
    with pytest.warns(UserWarning) as caught:
        nodes = load_calendar(years=[2030])
    assert any("'qixi' has no date for 2030; add it under \"dates\"" in str(w.message) for w in caught)
    assert len(caught) == 3                                   # 春节, 七夕, 中秋
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_calendar(years=[2030], warn_missing=False)) == len(nodes)
    assert {n.key for n in nodes} == {"valentines", "womens_day", "day520", "mid_year_618",
                                      "national_day", "double11", "double12", "christmas_new_year"}


@pytest.mark.parametrize("payload, message", [
    ("{not json", r"not valid JSON"),
    ({"node": []}, r'expected an object \{"nodes"'),
    ({"nodes": [{"key": "double11", "phase": {}}]}, r"nodes\[0\] \('double11'\): unknown fields \['phase'\]"),
    ({"nodes": [{"key": "qixi", "dates": {"2028": "2028-02-30"}}]},
     r"nodes\[0\] \('qixi'\): dates\['2028'\] = '2028-02-30' is not a valid"),
    ({"nodes": [{"key": "qixi", "dates": {"2028": "2027-08-08"}}]}, r"is not in 2028"),
    ({"nodes": [{}, {"key": "double11", "phases": {"burst": [-10, 3]}}]},
     r"nodes\[0\]: 'key' must be"),
    ({"nodes": [{"key": "double11", "phases": {"burst": [-10, 3]}}]},
     r"nodes\[0\] \('double11'\): phases.burst must end before phases.after starts"),
    ({"nodes": [{"key": "double11", "phases": {"after": [5, 1]}}]}, r"phases.after starts after it ends"),
    ({"nodes": [{"key": "double11", "phases": {"burst": ["a", 0]}}]}, r"phases.burst must be \[start_offset"),
    ({"nodes": [{"key": "new_node", "name_zh": "新节点"}]},
     r"nodes\[0\] \('new_node'\): a new node needs \['phases', 'month_day or dates'\]"),
    ({"nodes": [{"key": "double11", "month_day": "11/11"}]}, r"'month_day' must look like"),
    ({"nodes": [{"key": "double11", "overrides": {"2025": {"seeding": ["2025-10-14"]}}}]},
     r"overrides\['2025'\].seeding must be two dates"),
])
def test_bad_file_gives_clear_error(tmp_path, payload, message):
    path = write(tmp_path, payload, name="my_calendar.json")
    with pytest.raises(CalendarError, match=message) as info:
        load_calendar(path)
    assert "my_calendar.json" in str(info.value)


def test_override_breaking_phase_order_is_caught_per_year(tmp_path):
    path = write(tmp_path, {"nodes": [
        {"key": "double11", "overrides": {"2025": {"seeding": ["2025-10-14", "2025-11-05"]}}}]})
    with pytest.raises(CalendarError, match=r"'double11' 2025: phases.seeding must end before"):
        load_calendar(path, years=[2025])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_calendar(tmp_path / "nope.json")


# ---- year over year ----------------------------------------------------------------------------------------

def daily_series(days, counts: dict[int, np.ndarray], total: int = 1000) -> pd.DataFrame:
    frames = [pd.DataFrame({"topic_id": t, "period_start": days, "note_count": c,
                            "engagement": c * 5.0, "period_notes": total}) for t, c in counts.items()]
    return pd.concat(frames, ignore_index=True)


def test_node_yoy_on_two_years():
    days = pd.date_range("2024-01-01", "2025-11-15", freq="D", tz="Asia/Shanghai")
    n = len(days)
    in_d11 = lambda y: (days.date >= D(f"{y}-10-20")) & (days.date <= D(f"{y}-11-18"))
    t0 = np.full(n, 10)
    t0[in_d11(2024)] = 20
    t0[in_d11(2025)] = 40                       # twice last year's 双11 volume
    t1 = np.full(n, 10)                          # no 双11 effect
    yoy = node_yoy(daily_series(days, {0: t0, 1: t1}), "double11").set_index(["topic_id", "year"])

    assert sorted(yoy.index) == [(0, 2024), (0, 2025), (1, 2024), (1, 2025)]
    first = yoy.loc[(0, 2024)]
    assert not first.has_history and first.history_zh == "无历史" and np.isnan(first.yoy_share_pct)
    assert first.window_start == D("2024-10-20") and first.days == 30
    cur = yoy.loc[(0, 2025)]
    # series ends 11-15, inside 返场: compared to-date, 27 days against the same 27 days of 2024
    assert cur.window_end == D("2025-11-15") and cur.days == 27
    assert (cur.prev_window_start, cur.prev_window_end) == (D("2024-10-20"), D("2024-11-15"))
    assert cur.note_count == 40 * 27 and cur.prev_note_count == 20 * 27
    assert cur.has_history and cur.history_zh == "有历史"
    assert cur.yoy_share_pct == pytest.approx(100.0) and cur.yoy_note_pct == pytest.approx(100.0)
    assert cur.share_of_volume == pytest.approx(0.04)
    assert yoy.loc[(1, 2025), "yoy_share_pct"] == pytest.approx(0.0)

    burst = node_yoy(daily_series(days, {0: t0}), "double11", phase="burst").set_index("year")
    assert burst.loc[2025, "days"] == 11 and burst.loc[2025, "yoy_share_pct"] == pytest.approx(100.0)


def test_node_yoy_without_history_and_bad_key():
    days = pd.date_range("2025-09-01", "2025-12-31", freq="D", tz="Asia/Shanghai")
    series = daily_series(days, {3: np.ones(len(days), dtype=int)})
    out = node_yoy(series, "double12")
    assert len(out) == 1 and out.loc[0, "history_zh"] == "无历史" and np.isnan(out.loc[0, "yoy_note_pct"])
    assert node_yoy(series, "qixi").empty                 # 2025 七夕 is before the series starts
    with pytest.raises(ValueError, match="no marketing node 'double13'.*double11"):
        node_yoy(series, "double13")
