"""Tests for miner.insights.calendar: any-year node dates vs a known table, IPs, phases, holidays, the
user file, the next node (with a topic season) and YoY."""
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
    holiday_span,
    holidays,
    load_calendar,
    next_node,
    node_yoy,
    nodes_between,
    phase_of,
    resolve_node_key,
    seeding_start,
)

D = dt.date.fromisoformat


YEARS = range(2023, 2028)


@pytest.fixture(scope="module")
def cal() -> dict[tuple[str, int], MarketingNode]:
    return {(n.key, n.year): n for n in load_calendar(years=YEARS)}


# ---- dates ------------------------------------------------------------------------------------------

# Known dates (government holiday notices / almanacs), far outside the old tabulated 2023–2027 too
KNOWN = {
    ("spring_festival", 2023): "2023-01-22", ("spring_festival", 2024): "2024-02-10",
    ("spring_festival", 2025): "2025-01-29", ("spring_festival", 2026): "2026-02-17",
    ("spring_festival", 2030): "2030-02-03", ("spring_festival", 2035): "2035-02-08",
    ("spring_festival", 1990): "1990-01-27",
    ("mid_autumn", 2023): "2023-09-29", ("mid_autumn", 2024): "2024-09-17",
    ("mid_autumn", 2025): "2025-10-06", ("mid_autumn", 2026): "2026-09-25",
    ("mid_autumn", 2030): "2030-09-12",
    ("duanwu", 2024): "2024-06-10", ("duanwu", 2025): "2025-05-31", ("duanwu", 2026): "2026-06-19",
    ("qixi", 2024): "2024-08-10", ("qixi", 2025): "2025-08-29", ("qixi", 2026): "2026-08-19",
    ("lantern", 2025): "2025-02-12", ("nianhuo", 2025): "2025-01-09",       # 元宵, 春节 − 20
    ("nianhuo", 2023): "2023-01-02",
    ("mothers_day", 2024): "2024-05-12", ("mothers_day", 2025): "2025-05-11",
    ("mothers_day", 2031): "2031-05-11",
    ("fathers_day", 2024): "2024-06-16", ("fathers_day", 2025): "2025-06-15",
    ("childrens_day", 2040): "2040-06-01", ("day818", 2025): "2025-08-18", ("day99", 2025): "2025-09-09",
    ("back_to_school", 2025): "2025-09-01", ("new_year_day", 2032): "2032-01-01",
    ("double11", 2045): "2045-11-11", ("womens_day", 2025): "2025-03-08",
}


@pytest.mark.parametrize("key, year", sorted(KNOWN))
def test_any_year_dates_match_known_table(key, year):
    (node,) = [n for n in load_calendar(years=[year]) if n.key == key]
    assert str(node.date) == KNOWN[(key, year)]


def test_lunar_outside_supported_years_is_a_clear_error():
    with pytest.raises(CalendarError, match=r"node '[a-z_]+': lunar dates.*1900–2100; add 2150 under \"dates\""):
        load_calendar(years=[2150])


def test_platform_ips_and_aliases(cal):
    ips = {k: cal[(k, 2025)].ip_zh for k in ("spring_festival", "valentines", "womens_day", "day520",
                                             "mothers_day", "childrens_day", "fathers_day", "mid_year_618",
                                             "double11", "qixi", "mid_autumn", "christmas_new_year")}
    assert ips == {"spring_festival": "小红书过大年 / 过年就来小红书", "valentines": "214满分情人节",
                   "womens_day": "我就是这样的女孩", "day520": "520满分好礼大作战", "mothers_day": "妈妈的留白",
                   "childrens_day": "宝贝童乐会", "fathers_day": "我爸有一套", "mid_year_618": "薯你会买",
                   "double11": "薯你会买", "qixi": "爱的N重形态", "mid_autumn": "圆在一起乐在一起",
                   "christmas_new_year": "双旦心愿派对"}
    nodes = list(cal.values())
    assert resolve_node_key("过年就来小红书", nodes) == "spring_festival"
    assert resolve_node_key("双十一", nodes) == "double11"
    assert resolve_node_key("818发烧节", nodes) == "day818"
    with pytest.raises(ValueError, match="unknown marketing node '薯你会买'"):   # shared by 618 and 双11
        resolve_node_key("薯你会买", nodes)


def test_every_node_every_year_present(cal):
    keys = {n["key"] for n in BUILTIN_NODES}
    assert {"duanwu", "mothers_day", "fathers_day", "childrens_day", "day818", "day99",
            "back_to_school", "nianhuo", "new_year_day", "womens_day", "day520"} <= keys
    assert len(keys) == 22
    assert set(cal) == {(k, y) for k in keys for y in YEARS}


def test_phases_ordered_and_burst_holds_the_node(cal):
    for node in cal.values():
        assert list(node.phases) == list(PHASES)
        (s0, s1), (b0, b1), (a0, a1) = (node.phases[p] for p in PHASES)
        assert s0 <= s1 < b0 <= b1 < a0 <= a1, node
        assert b0 <= node.date <= b1, node
        assert node.start == s0 == seeding_start(node) and node.end == a1


def test_presale_aligned_phases(cal):
    d11 = cal[("double11", 2025)]
    assert d11.phases["burst"] == (D("2025-10-20"), D("2025-11-11"))       # presales open ~10-20
    assert seeding_start(d11) == D("2025-09-30")
    assert cal[("mid_year_618", 2025)].phases["burst"] == (D("2025-05-20"), D("2025-06-18"))
    cny = cal[("spring_festival", 2026)]
    assert cny.phases["after"][1] == D("2026-03-03")            # 元宵 (正月十五)
    xmas = cal[("christmas_new_year", 2025)]
    assert xmas.phases["burst"] == (D("2025-12-20"), D("2026-01-01"))   # 圣诞 → 元旦


def test_shipped_file_equals_builtins():
    with open(DEFAULT_CALENDAR_PATH, encoding="utf-8") as fh:
        shipped = json.load(fh)["nodes"]
    assert shipped == list(BUILTIN_NODES)
    assert load_calendar(DEFAULT_CALENDAR_PATH) == load_calendar()


def test_public_holidays_and_in_lieu_workdays():
    days = holidays("2025-09-27", "2025-10-09").set_index("date")
    assert days.loc[D("2025-09-28"), "in_lieu"] and days.loc[D("2025-09-28"), "is_workday"]   # 调休
    assert days.loc[D("2025-10-06"), "holiday_zh"] == "中秋"
    assert days.loc[D("2025-10-08"), "is_holiday"] and not days.loc[D("2025-10-09"), "is_holiday"]
    nodes = {n.key: n for n in load_calendar(years=[2025])}
    assert holiday_span(nodes["national_day"]) == (D("2025-10-01"), D("2025-10-08"))
    assert holiday_span(nodes["spring_festival"]) == (D("2025-01-28"), D("2025-02-04"))
    assert holiday_span(nodes["double11"]) is None
    with pytest.raises(ValueError, match="no holiday schedule"):
        holidays("2099-01-01", "2099-01-02")


# ---- queries ------------------------------------------------------------------------------------------

def test_phase_of_next_node_nodes_between(cal):
    nodes = list(cal.values())
    hits = [(n.key, p) for n, p in phase_of("2025-10-03", nodes)]
    assert hits == [("national_day", "burst"), ("mid_autumn", "burst"), ("double11", "seeding")]
    assert [(n.key, p) for n, p in phase_of(D("2025-10-25"), nodes)] == [("double11", "burst")]
    assert phase_of("2025-07-15", nodes) == []
    ts = pd.Timestamp("2025-11-10 20:00", tz="UTC")                       # 11-11 04:00 in Shanghai
    assert [(n.key, p) for n, p in phase_of(ts, nodes)] == [("double11", "burst")]
    assert next_node("2025-11-12", nodes).key == "double12"
    assert next_node("2025-11-11", nodes).key == "double11"                # the day itself counts
    assert next_node("2027-12-26", nodes) is None                          # nothing left in the list
    assert [n.name_zh for n in nodes_between("2026-02-01", "2026-03-31", nodes)] == \
        ["情人节", "春节", "元宵", "女神节"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert next_node("2026-08-01").key == "day818"                      # 七夕 2026 is 08-19
        assert next_node("2031-12-26").key == "new_year_day"               # default calendar: any year
        assert next_node("2031-12-26", key="中秋").date == D("2032-09-19")   # never in the past
        assert [(n.key, n.year, p) for n, p in phase_of("2027-01-01")] == \
            [("christmas_new_year", 2026, "burst"), ("new_year_day", 2027, "burst")]


def test_next_node_follows_the_topic_season():
    from miner.insights.seasons import SeasonCall
    gaokao = SeasonCall(is_seasonal=True, peak_month=6, peak_window_zh="每年6月上旬", lunar=False,
                        next_start=D("2026-06-01"), next_end=D("2026-06-10"), strength=0.6, years=4)
    assert next_node("2025-12-20").key == "christmas_new_year"
    assert next_node("2025-12-20", topic_season=gaokao).key == "childrens_day"        # 06-01 in window
    off = SeasonCall(False, None, None, False, None, 0.0, 0)
    assert next_node("2025-12-20", topic_season=off).key == "christmas_new_year"
    far = SeasonCall(True, 3, "每年3月下旬", False, D("2026-03-21"), 0.5, 3, next_end=D("2026-03-31"))
    assert next_node("2025-12-20", topic_season=far).key == "womens_day"             # 13 days off


# ---- user file -------------------------------------------------------------------------------------------

def write(tmp_path, payload, name="nodes.json"):
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False),
                    encoding="utf-8")
    return path


def test_user_file_overrides_builtins(tmp_path):
    path = write(tmp_path, {"nodes": [
        {"key": "double11", "overrides": {"2025": {"seeding": ["2025-09-25", "2025-10-14"]}}},
        {"key": "double12", "phases": {"after": [1, 10]}},                       # partial merge
        {"key": "valentines", "enabled": False},
        {"key": "brand_day", "name_zh": "品牌日", "month_day": "08-08",
         "phases": {"seeding": [-14, -3], "burst": [-2, 0], "after": [1, 2]}},
        {"key": "spring_festival", "dates": {"2028": "2028-01-27"}},           # exact date wins
        {"key": "mothers_day", "month_day": "05-10"},                            # rule replaced
        {"key": "launch", "name_zh": "新品日", "dates": {"2025": "2025-04-02"},
         "phases": {"seeding": [-7, -1], "burst": [0, 0], "after": [1, 2]}},
    ]})
    with pytest.warns(UserWarning) as caught:                 # 新品日 has no 2028 date
        nodes = load_calendar(path, years=[2025, 2028])
    assert [str(w.message).split("'")[1] for w in caught] == ["launch"]
    by = {(n.key, n.year): n for n in nodes}
    assert seeding_start(by[("double11", 2025)]) == D("2025-09-25")
    assert seeding_start(by[("double11", 2028)]) == D("2028-09-30")        # override is per year
    assert by[("double12", 2025)].phases["after"] == (D("2025-12-13"), D("2025-12-22"))
    assert by[("double12", 2025)].phases["burst"] == (D("2025-12-09"), D("2025-12-12"))
    assert not any(n.key == "valentines" for n in nodes)
    assert by[("brand_day", 2025)].name_zh == "品牌日" and by[("brand_day", 2025)].date == D("2025-08-08")
    assert by[("spring_festival", 2028)].date == D("2028-01-27")
    assert by[("spring_festival", 2025)].date == D("2025-01-29")           # the rule for other years
    assert by[("mothers_day", 2028)].date == D("2028-05-10")


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
     r"nodes\[0\] \('new_node'\): a new node needs \['phases', 'month_day, lunar_month_day, "
     r"nth_weekday or dates'\]"),
    ({"nodes": [{"key": "qixi", "lunar_month_day": "7-7"}]}, r"'lunar_month_day' must look like"),
    ({"nodes": [{"key": "mothers_day", "nth_weekday": "05-SUNDAY-2"}]}, r"nth_weekday must look like"),
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
    in_d11 = lambda y: (days.date >= D(f"{y}-09-30")) & (days.date <= D(f"{y}-11-18"))
    t0 = np.full(n, 10)
    t0[in_d11(2024)] = 20
    t0[in_d11(2025)] = 40                       # twice last year's 双11 volume
    t1 = np.full(n, 10)                          # no 双11 effect
    yoy = node_yoy(daily_series(days, {0: t0, 1: t1}), "double11").set_index(["topic_id", "year"])

    assert sorted(yoy.index) == [(0, 2024), (0, 2025), (1, 2024), (1, 2025)]
    first = yoy.loc[(0, 2024)]
    assert not first.has_history and first.history_zh == "无历史" and np.isnan(first.yoy_share_pct)
    assert first.window_start == D("2024-09-30") and first.days == 50
    cur = yoy.loc[(0, 2025)]
    # series ends 11-15, inside 返场: compared to-date, 47 days against the same 47 days of 2024
    assert cur.window_end == D("2025-11-15") and cur.days == 47
    assert (cur.prev_window_start, cur.prev_window_end) == (D("2024-09-30"), D("2024-11-15"))
    assert cur.note_count == 40 * 47 and cur.prev_note_count == 20 * 47
    assert cur.has_history and cur.history_zh == "有历史"
    assert cur.yoy_share_pct == pytest.approx(100.0) and cur.yoy_note_pct == pytest.approx(100.0)
    assert cur.share_of_volume == pytest.approx(0.04)
    assert yoy.loc[(1, 2025), "yoy_share_pct"] == pytest.approx(0.0)

    burst = node_yoy(daily_series(days, {0: t0}), "double11", phase="burst").set_index("year")
    assert burst.loc[2025, "days"] == 23 and burst.loc[2025, "yoy_share_pct"] == pytest.approx(100.0)


def test_node_yoy_without_history_and_bad_key():
    days = pd.date_range("2025-09-01", "2025-12-31", freq="D", tz="Asia/Shanghai")
    series = daily_series(days, {3: np.ones(len(days), dtype=int)})
    out = node_yoy(series, "double12")
    assert len(out) == 1 and out.loc[0, "history_zh"] == "无历史" and np.isnan(out.loc[0, "yoy_note_pct"])
    assert node_yoy(series, "qixi").empty                 # 2025 七夕 is before the series starts
    with pytest.raises(ValueError, match="no marketing node 'double13'.*double11"):
        node_yoy(series, "double13")
