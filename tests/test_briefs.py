"""Content briefs on a demo-like snapshot: every number checked against a direct pandas computation,
every evidence note checked to belong to the topic; the title-pattern miner on real titles."""
from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import re
import socket
import sys
import threading
import types
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from miner.insights.briefs import (ContentBrief, TITLE_PATTERNS, build_brief, build_briefs, hook_features, mine_title_patterns,
                                  title_features, topic_table_excel)
from miner.config import MinerConfig
from miner.topics.embed import HashingEmbedder
from miner.topics.snapshot import load_snapshot
from miner.topics.pipeline import build_topics
from miner.schema import TZ

DEMO_NOTES = Path(__file__).resolve().parent.parent / "data" / "demo" / "notes.parquet"
ENG = ["likes", "collects", "comments", "shares"]


@pytest.fixture(scope="module")
def demo_notes() -> pd.DataFrame:
    """1,200 demo notes: real Bilibili videos (titles, times, engagement) and real shop reviews."""
    if not DEMO_NOTES.exists():
        pytest.skip(f"demo corpus missing: {DEMO_NOTES} (python data/build_demo.py)")
    notes = pd.read_parquet(DEMO_NOTES).sample(1200, random_state=0).sort_values("note_id")
    notes["tags"] = notes["tags"].map(lambda v: [] if v is None else list(v))
    return notes.reset_index(drop=True)


@pytest.fixture(scope="module")
def config(demo_notes, tmp_path_factory) -> MinerConfig:
    """A workspace whose latest snapshot holds 8 topics of the demo notes (hashing embedder)."""
    root = tmp_path_factory.mktemp("brief-snap")
    config = MinerConfig(models_dir=root / "models", workspace_dir=root / "ws", embedding_model="hashing",
                         n_topics=8)
    build_topics(config, demo_notes, embedder=HashingEmbedder(), show_progress=False)
    return config


@pytest.fixture(scope="module")
def snapshot(config):
    return load_snapshot(config)


@pytest.fixture(scope="module")
def topic_id(snapshot) -> int:
    """The largest topic."""
    return int(snapshot.topics.sort_values("size", ascending=False)[["topic_id"]].iloc[0, 0])


@pytest.fixture(scope="module")
def members(snapshot, topic_id) -> pd.DataFrame:
    """The topic's notes, computed directly from the snapshot tables."""
    ids = snapshot.assignments.loc[snapshot.assignments["topic_id"] == topic_id, "note_id"]
    out = snapshot.notes[snapshot.notes["note_id"].isin(ids)].copy()
    out["eng"] = out[ENG].sum(axis=1)
    return out


@pytest.fixture(scope="module")
def brief(snapshot, topic_id) -> ContentBrief:
    return build_brief(snapshot, topic_id, segment="gender=F,age_band=18-24", node="双11",
                       today=pd.Timestamp("2023-10-01").date())


@pytest.fixture(scope="module")
def adjusted(snapshot) -> pd.Series:
    """Age-adjusted index computed independently: residual of log1p(engagement) on log1p(age)."""
    notes = snapshot.notes
    ts = pd.to_datetime(notes["published_at"])
    age = (ts.max() - ts).dt.total_seconds() / 86400
    y = np.log1p(notes[ENG].sum(axis=1).to_numpy(dtype=float))
    slope, intercept = np.polyfit(np.log1p(age.to_numpy()), y, 1)
    return pd.Series(np.exp(y - (intercept + slope * np.log1p(age.to_numpy()))), index=notes["note_id"].to_numpy())


def _all_evidence_ids(b: ContentBrief) -> list[str]:
    ids = list(b.positioning_evidence) + [n.note_id for n in b.evidence_notes]
    for a in b.angles:
        ids += a.note_ids
    for p in list(b.title_patterns) + list(b.hooks):
        ids += p.example_note_ids
    for h in b.hashtags:
        ids += h["note_ids"]
    ids += b.format.get("evidence_note_ids", []) + b.posting.get("evidence_note_ids", [])
    return ids


def test_evidence_notes_belong_to_the_topic(brief, members, adjusted):
    ids = _all_evidence_ids(brief)
    assert len(ids) >= 10
    assert set(ids) <= set(members["note_id"])
    by_id = members.set_index("note_id")
    for ref in brief.evidence_notes:   # engagement shown with the evidence is the note's own
        assert ref.engagement == by_id.loc[ref.note_id, "eng"]
        assert ref.likes == by_id.loc[ref.note_id, "likes"]
    top = [r for r in brief.evidence_notes if r.role == "top"]
    assert top and top[0].engagement_index == pytest.approx(adjusted[members["note_id"]].max())


def test_engagement_is_normalised_by_note_age(brief, members, adjusted):
    assert brief.normalisation["by_age"] and not brief.normalisation["by_author_size"]
    assert brief.normalisation["model"] == "log1p(engagement) ~ 1 + log1p(age_days)"
    for ref in brief.evidence_notes:
        assert ref.engagement_index == pytest.approx(adjusted[ref.note_id], rel=1e-6)
    # title-length advice rests on the adjusted top quartile, not on raw counts
    idx = adjusted[members["note_id"]].to_numpy()
    assert brief.title_length["n_top"] == int((idx >= np.quantile(idx, 0.75)).sum())


def test_author_size_enters_the_model_when_followers_exist():
    from miner.insights.briefs.stats import adjusted_engagement
    rng = np.random.default_rng(0)
    followers = rng.integers(10, 100_000, 300)
    age = rng.uniform(1, 60, 300)
    ts = pd.Timestamp("2024-01-01", tz="Asia/Shanghai") - pd.to_timedelta(age, unit="D")
    eng = np.round(np.expm1(0.5 + 0.8 * np.log1p(followers) + 0.3 * np.log1p(age))).astype(int)
    notes = pd.DataFrame({"published_at": ts, "likes": eng, "collects": 0, "comments": 0, "shares": 0,
                          "author_followers": followers})
    frame, info = adjusted_engagement(notes)
    assert info["by_author_size"] and info["follower_column"] == "author_followers"
    assert info["coefficients"]["log1p(author_followers)"] == pytest.approx(0.8, abs=0.02)
    # a big account's raw lead disappears once its size is accounted for
    assert np.corrcoef(np.log1p(followers), frame["log_residual"])[0, 1] == pytest.approx(0.0, abs=0.05)


def test_numbers_match_pandas(brief, members, adjusted):
    assert brief.n_notes == len(members)
    r = brief.engagement_range
    for q, key in ((0.25, "p25"), (0.5, "p50"), (0.75, "p75")):
        assert r[key] == pytest.approx(members["eng"].quantile(q))
    assert brief.kpis[0]["baseline"] == pytest.approx(r["p50"]) and brief.kpis[0]["target"] == pytest.approx(r["p75"])
    liked = members[members["likes"] > 0]
    ratio = next(k for k in brief.kpis if k["name"] == "收藏/点赞比")
    assert ratio["baseline"] == pytest.approx((liked["collects"] / liked["likes"]).median())

    idx = members["note_id"].map(adjusted)
    counts = members["note_type"].value_counts()
    for t, stats in brief.format["by_type"].items():
        assert stats["n_notes"] == counts[t]
        assert stats["median_index"] == pytest.approx(idx[members["note_type"] == t].median())

    local = pd.to_datetime(members["published_at"]).dt.tz_convert(TZ)
    for day, stats in brief.posting["by_weekday"].items():
        wd = ("周一", "周二", "周三", "周四", "周五", "周六", "周日").index(day)
        assert stats["n_notes"] == (local.dt.dayofweek == wd).sum()
        assert stats["median_index"] == pytest.approx(idx[(local.dt.dayofweek == wd).to_numpy()].median())
    lengths = members["title"].str.len()
    assert brief.title_length["median_all"] == pytest.approx(lengths.median())

    tags = members[["note_id", "tags"]].explode("tags").dropna()
    tags = tags.assign(tags=tags["tags"].astype(str).str.strip()).drop_duplicates()
    for h in brief.hashtags:
        if h["source"] == "notes":
            assert h["n_notes"] == (tags["tags"] == h["tag"].lstrip("#")).sum()


# ---- brief rules ----------------------------------------------------------------------------------
def test_angles_only_from_big_enough_sub_groups(snapshot, topic_id, members):
    for size in (10, 40):
        b = build_brief(snapshot, topic_id, today=pd.Timestamp("2023-10-01").date(), min_angle_size=size)
        assert all(a.n_notes >= size for a in b.angles)
        assert sum(a.n_notes for a in b.angles) <= len(members)
        for a in b.angles:
            assert a.share == pytest.approx(a.n_notes / len(members))
            assert a.index_low <= a.engagement_index <= a.index_high
        assert [a.engagement_index for a in b.angles] == sorted((a.engagement_index for a in b.angles), reverse=True)
        if sum(a.n_notes for a in b.angles) < len(members):
            assert any("未列为切入角度" in n for n in b.notes)
    huge = build_brief(snapshot, topic_id, today=pd.Timestamp("2023-10-01").date(), min_angle_size=len(members))
    assert huge.angles == [] and "没有达到最小规模的子群" in huge.to_markdown()


def test_median_ratio_interval_by_hand():
    from miner.insights.briefs.stats import median_ratio_interval
    values = np.arange(1.0, 101.0)
    group = values > 50                                    # median 75.5 vs topic median 50.5
    ratio, lo, hi = median_ratio_interval(values, group, n_boot=2000, seed=1)
    assert ratio == pytest.approx(75.5 / 50.5)
    assert 1.0 < lo < ratio < hi                           # the top half is clearly above the topic
    small = median_ratio_interval(values[::10], group[::10], n_boot=2000, seed=1)
    assert small[1] <= 1.0 < small[0]                      # 10 notes: the interval reaches 1
    same = median_ratio_interval(np.ones(50), np.arange(50) < 20)
    assert same == (1.0, 1.0, 1.0)
    assert median_ratio_interval(values, values == 1)[1:] == (None, None)   # one note: no interval


def _timed(idx: np.ndarray, hours: np.ndarray) -> pd.DataFrame:
    ts = pd.Timestamp("2023-10-02", tz=TZ) + pd.to_timedelta(hours, unit="h")
    return pd.DataFrame({"note_id": [f"n{i}" for i in range(len(idx))], "published_at": ts, "_idx": idx})


def test_posting_time_only_when_significant():
    from miner.insights.briefs.parts import posting
    rng = np.random.default_rng(3)
    hours = np.tile([1.0, 10.0, 19.0], 40)                          # 40 notes each in 00-03, 09-12, 18-21
    boosted = rng.lognormal(0, 0.3, 120) * np.where(hours == 19.0, 3.0, 1.0)
    caveats = []
    sig = posting(_timed(boosted, hours), 10, caveats)
    assert sig["hour_block"] == [18, 21] and sig["hour_block_p_value"] < 0.05
    assert sig["evidence_note_ids"]
    flat = posting(_timed(rng.lognormal(0, 0.3, 120), hours), 10, caveats)
    assert flat["hour_block"] is None and flat["hour_block_p_value"] >= 0.05
    assert any("无显著差异" in v for v in flat["verdicts_zh"])
    few = posting(_timed(boosted[:18], hours[:18]), 10, caveats)    # 6 notes a block < 10: not tested
    assert few["hour_block"] is None and few["hour_block_p_value"] is None
    assert any("不足两个" in v for v in few["verdicts_zh"])


def test_recommendations_follow_their_tests(brief):
    f = brief.format
    if f["recommended"] is not None:
        big = {k: v for k, v in f["by_type"].items() if v["n_notes"] >= f["min_group_size"]}
        assert f["p_value"] < 0.05 and f["recommended"] == max(big, key=lambda k: big[k]["median_index"])
    p = brief.posting
    if p["weekday_zh"] is not None:
        days = {k: v for k, v in p["by_weekday"].items() if v["n_notes"] >= p["min_group_size"]}
        assert p["weekday_p_value"] < 0.05 and p["weekday_zh"] == max(days, key=lambda k: days[k]["median_index"])
    else:
        assert any("星期几" in v for v in p["verdicts_zh"]) and "星期几" in brief.to_markdown()


def test_timing_and_audience(brief):
    assert brief.timing["node_zh"] == "双11" and brief.timing["source"] == "calendar"
    assert brief.timing["seeding_start"] == "2023-09-30"          # presale-aligned 蓄水 (calendar)
    assert brief.timing["seeding_started"] and brief.timing["days_until_seeding"] == 0   # never negative
    assert brief.timing["days_until_node"] == 41
    assert any("蓄水期已于 2023-09-30 开始" in n for n in brief.notes)
    assert brief.timing["node_lift"] is not None                    # the demo covers 2023-10-20 … 10-27
    assert brief.audience["segment_zh"] == "女性·18-24岁"
    assert any("人群指标" in n for n in brief.notes)                  # no metrics given: said so
    assert brief.trend["stage"] in {"emerging", "rising", "burst", "seasonal", "one_off", "declining", "evergreen"}
    assert 0 <= brief.opportunity["score"] <= 1 and "timing" in brief.opportunity


def test_days_until_seeding_is_never_negative(snapshot, topic_id):
    # 2026-12-02: 双12's 蓄水 began 2026-11-28 (the issue's "距今 -4 天"): the node is still ahead, so the
    # brief plans it with 0 days until 蓄水 (it is running) and says so; never a negative count
    b = build_brief(snapshot, topic_id, node="双12", today=dt.date(2026, 12, 2))
    assert b.timing["date"] == "2026-12-12" and b.timing["seeding_start"] == "2026-11-28"
    assert b.timing["seeding_started"] and b.timing["days_until_seeding"] == 0
    assert b.timing["days_until_node"] == 10
    assert any("蓄水期已于 2026-11-28 开始 (4 天前)" in n for n in b.notes)
    late = build_brief(snapshot, topic_id, node="双12", today=dt.date(2026, 12, 13))   # the day after 双12
    assert late.timing["date"] == "2027-12-12" and late.timing["days_until_seeding"] > 0
    auto = build_brief(snapshot, topic_id, today=dt.date(2026, 12, 2))
    assert auto.timing["days_until_seeding"] >= 0 and auto.timing["date"] >= "2026-12-02"
    assert "距规划日 -" not in auto.to_markdown() and "距今 -" not in auto.to_markdown()


class _Season:
    def __init__(self, seasonal):
        self.is_seasonal, self.peak_month, self.peak_window_zh = seasonal, 7, "7月上旬"
        self.lunar, self.next_start, self.strength, self.years = False, dt.date(2023, 7, 1), 0.8, 3


def test_node_from_the_topics_own_season(snapshot, topic_id, monkeypatch):
    seen = []

    def fake(series):
        seen.append(series)
        return _Season(True)
    monkeypatch.setitem(sys.modules, "miner.insights.seasons", types.SimpleNamespace(topic_seasonality=fake))
    b = build_brief(snapshot, topic_id, today=dt.date(2023, 10, 1))
    assert seen and set(seen[0]["topic_id"]) == {topic_id}               # the topic's own series
    assert b.timing["source"] == "seasonality" and "7月上旬" in b.timing["node_zh"]
    assert b.timing["date"] == "2024-07-01"                             # the next occurrence after today
    assert b.timing["seeding_start"] == "2024-06-17" and b.timing["days_until_seeding"] == 260
    explicit = build_brief(snapshot, topic_id, node="双11", today=dt.date(2023, 10, 1))
    assert explicit.timing["node_zh"] == "双11" and any("自身旺季" in n for n in explicit.notes)
    monkeypatch.setitem(sys.modules, "miner.insights.seasons",
                        types.SimpleNamespace(topic_seasonality=lambda series: _Season(False)))
    plain = build_brief(snapshot, topic_id, today=dt.date(2023, 10, 1))
    assert plain.timing["source"] == "calendar" and plain.timing["days_until_seeding"] >= 0


def test_recent_is_measured_to_the_planning_date(snapshot, topic_id, members):
    today = dt.date(2023, 10, 20)
    b = build_brief(snapshot, topic_id, today=today)
    days = pd.to_datetime(members["published_at"]).dt.tz_convert(TZ).dt.date
    assert b.trend["recent_notes_to_planning"] == sum(today - dt.timedelta(days=7) < d <= today for d in days)
    assert b.trend["as_of"] == "2023-10-20" and not b.data_freshness["stale"]
    late = build_brief(snapshot, topic_id, today=dt.date(2026, 12, 2))
    f = late.data_freshness
    assert f["stale"] and f["data_end"] == str(max(pd.to_datetime(snapshot.notes["published_at"]).dt.tz_convert(TZ).dt.date))
    assert f["data_age_days"] == (dt.date(2026, 12, 2) - dt.date.fromisoformat(f["data_end"])).days
    assert late.trend["recent_notes_to_planning"] == 0 and late.trend["as_of"] == f["data_end"]
    assert "数据时效" in late.to_markdown() and "数据时效" not in b.to_markdown()


def test_mixed_topic_is_never_recommended(snapshot, topic_id):
    topics = snapshot.topics.copy()
    topics["is_mixed"] = topics["topic_id"] == topic_id
    topics["coherence"] = np.where(topics["is_mixed"], -0.6, 0.1)
    mixed_snap = dataclasses.replace(snapshot, topics=topics)
    b = build_brief(mixed_snap, topic_id, today=dt.date(2023, 10, 1))
    assert not b.recommended and b.positioning.startswith("不推荐")
    assert "混合话题" in b.to_markdown() and json.loads(b.to_json())["recommended"] is False
    other = int(topics.loc[~topics["is_mixed"], "topic_id"].iloc[0])
    assert build_brief(mixed_snap, other, today=dt.date(2023, 10, 1)).recommended
    by_threshold = build_brief(mixed_snap, other, today=dt.date(2023, 10, 1), min_coherence=0.5)
    assert not by_threshold.recommended


def test_title_hooks_hand_cases():
    def on(title):
        return {k for k, v in hook_features(title).items() if v}
    assert on("救命！这个平替也太好用了") == {"hook_exclaim_word"}
    assert on("姐妹们，秋冬穿搭这样选") == {"hook_address"}
    assert on("【保姆级】新手化妆教程") == {"hook_bracket"}
    assert on("3个露营好物") == {"hook_number"}
    assert on("千万别买这款面霜") == {"hook_warning"}
    assert on("今天吃什么") == set()


def test_renderings(brief, topic_id):
    md = brief.to_markdown()
    assert f"[{topic_id}]" in md and brief.label in md
    assert "P25" in md and "蓄水" in md and "证据" in md and "极光指标" in md
    for ref in brief.evidence_notes:
        assert ref.note_id in md
    data = json.loads(brief.to_json())
    assert data["topic_id"] == topic_id and data["engagement_range"]["p50"] == brief.engagement_range["p50"]
    assert {a["label"] for a in data["angles"]} == {a.label for a in brief.angles}
    assert {r["quadrant_zh"] for r in data["scorecard"]} == {"认知", "内容积累", "人群渗透", "口碑激发"}


def test_topic_table_excel_round_trips():
    import io
    import openpyxl
    table = pd.DataFrame({"topic_id": [0, 1], "label": ["露营·装备", "穿搭·平价"], "keywords": [["露营", "帐篷"], []],
                          "score": [0.5, np.nan],
                          "last_at": pd.to_datetime(["2023-10-01 08:00", "2023-10-02 09:30"]).tz_localize(TZ)})
    data = topic_table_excel(table, notes=["SIMULATED 人群数据"])
    assert isinstance(data, bytes) and data[:2] == b"PK"
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["话题", "说明"]
    back = pd.read_excel(io.BytesIO(data), sheet_name="话题")
    assert back["label"].tolist() == table["label"].tolist()
    assert back.loc[0, "keywords"] == "露营·帐篷" and pd.isna(back.loc[1, "score"])
    assert str(back.loc[0, "last_at"]) == "2023-10-01 08:00:00"          # local wall-clock time


def test_unknown_topic_is_a_clear_error(snapshot):
    with pytest.raises(ValueError, match="not in snapshot"):
        build_brief(snapshot, 999)
    with pytest.raises(ValueError, match="not in snapshot"):
        build_brief(snapshot, -1)


# ---- audience metrics from simulated first-party data -------------------------------------------
def test_brief_with_segment_metrics(snapshot, topic_id):
    from miner.insights.opportunity import segment_metrics
    from miner.simulate import simulate
    sim = simulate(snapshot.notes, n_users=600, seed=5)
    con = duckdb.connect()
    for name in sim.TABLES:
        con.register("_t", getattr(sim, name))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _t")
        con.unregister("_t")
    metrics = segment_metrics(con, snapshot, "gender=F", k=5)
    b = build_brief(snapshot, topic_id, segment="gender=F", metrics=metrics, polish=False)
    row = metrics.set_index("topic_id").loc[topic_id]
    assert b.audience["penetration"] == pytest.approx(row["penetration"])
    assert b.audience["reach"] == pytest.approx(row["reach"])
    if b.audience["aips_flows"]:
        best = max(b.audience["aips_flows"], key=lambda f: f["lift"])
        assert b.audience["aips_stage"] == best["from"]
        assert best["lift"] == pytest.approx(row[f"flow_lift_{best['from']}_{best['to']}"])
    assert not any("人群指标" in n for n in b.notes)


# ---- optional LLM polish --------------------------------------------------------------------------
class _FakeLLM(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen = (self.path, self.headers.get("Authorization"), body["model"])
        type(self).calls = getattr(type(self), "calls", 0) + 1
        reply = {"choices": [{"message": {"content": "  润色后的定位句。 "}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_llm_polish_when_configured(snapshot, topic_id, monkeypatch):
    server = http.server.HTTPServer(("127.0.0.1", 0), _FakeLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MINER_LLM_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
        monkeypatch.setenv("MINER_LLM_API_KEY", "sk-test")
        monkeypatch.setenv("MINER_LLM_MODEL", "fake-model")
        b = build_brief(snapshot, topic_id, polish=True)
        default = build_brief(snapshot, topic_id)              # the default path never calls the endpoint
    finally:
        server.shutdown()
    assert default.positioning_source == "rule" and _FakeLLM.calls == 1
    assert b.positioning == "润色后的定位句。" and b.positioning_source == "llm:fake-model"
    assert _FakeLLM.seen == ("/v1/chat/completions", "Bearer sk-test", "fake-model")


def test_llm_failure_falls_back_with_a_note(snapshot, topic_id, monkeypatch):
    with socket.socket() as s:                      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MINER_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("MINER_LLM_MODEL", "fake-model")
    monkeypatch.setenv("MINER_LLM_TIMEOUT", "2")
    b = build_brief(snapshot, topic_id, polish=True)
    plain = build_brief(snapshot, topic_id)
    assert b.positioning_source == "rule" and b.positioning == plain.positioning
    assert any("LLM" in n for n in b.notes) and not any("LLM" in n for n in plain.notes)


def test_no_llm_configured_means_no_call_and_no_note(snapshot, topic_id, monkeypatch):
    for var in ("MINER_LLM_BASE_URL", "MINER_LLM_API_KEY", "MINER_LLM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    b = build_brief(snapshot, topic_id, polish=True)
    assert b.positioning_source == "rule" and not any("LLM" in n for n in b.notes)


# ---- title patterns on real titles ----------------------------------------------------------------
def test_title_features_hand_cases():
    def on(title):
        return {k for k, v in title_features(title).items() if v}
    assert on("3个平替攻略，学生党必看！") >= {"number", "pingti", "guide", "price", "must", "exclaim"}
    assert on("露营穿搭怎么选？🏕️") == {"question", "emoji"}
    assert on("【保姆级】新手化妆教程") == {"bracket", "tutorial"}
    assert "number" not in on("我一个人去旅行")          # "一个" is filler, not a number
    assert "number" in on("五款面霜测评") and "review" in on("五款面霜测评")


def test_title_pattern_miner_on_real_titles(demo_notes):
    real = demo_notes[demo_notes["note_id"].str.startswith("bili_")]      # real Bilibili titles
    eng = real[ENG].sum(axis=1).to_numpy()
    patterns = mine_title_patterns(real["title"], eng, real["note_id"])
    assert patterns, "some pattern should be over-represented among the best real titles"
    top = eng >= np.quantile(eng, 0.75)
    feats = pd.DataFrame([title_features(t) for t in real["title"]])
    for p in patterns:
        has = feats[p.key].to_numpy()
        assert p.n_all == has.sum() and p.n_top == (has & top).sum()
        assert p.share_top == pytest.approx((has & top).sum() / top.sum())
        assert p.share_all == pytest.approx(has.mean())
        assert p.lift == pytest.approx(p.share_top / p.share_all) and p.lift > 1
        by_id = real.set_index("note_id")
        for nid, title in zip(p.example_note_ids, p.examples):
            assert by_id.loc[nid, "title"] == title and title_features(title)[p.key]
            assert by_id.loc[nid, ENG].sum() >= np.quantile(eng, 0.75)
    assert [p.lift for p in patterns] == sorted((p.lift for p in patterns), reverse=True)
    # brackets are common in real Bilibili titles; the regex agrees with a plain substring count
    bracket = real["title"].str.contains("【|】|《|》|「|」|『|』|\\[|\\]", regex=True)
    assert feats["bracket"].sum() == bracket.sum()
    assert set(TITLE_PATTERNS) == set(feats.columns)


# ---- the CLI on the same snapshot (python -m miner trends / opportunity / brief / search) ------------
@pytest.fixture(scope="module")
def cli(config, tmp_path_factory):
    from miner.cli import main
    path = tmp_path_factory.mktemp("cli") / "config.json"
    path.write_text(json.dumps({"models_dir": str(config.models_dir), "workspace_dir": str(config.workspace_dir),
                                "embedding_model": "hashing"}), encoding="utf-8")
    return lambda *argv: main(["--config", str(path), *argv])


def test_cli_trends_and_opportunity(cli, snapshot, capsys):
    assert cli("trends", "--top", "5", "--today", "2023-10-01") == 0
    out = capsys.readouterr().out
    assert "阶段" in out and "下一节点" in out and "蓄水" in out
    assert len([line for line in out.splitlines() if line[:1].isdigit()]) == 5
    assert cli("opportunity", "--node", "双11") == 0
    out = capsys.readouterr().out
    assert "机会分" in out and "节点契合" in out and "无人群数据" in out


def test_cli_brief_markdown_and_json(cli, topic_id, tmp_path, capsys):
    assert cli("brief", str(topic_id), "--node", "双11", "--no-llm") == 0
    assert "选题简报" in capsys.readouterr().out
    target = tmp_path / "brief.json"
    assert cli("brief", str(topic_id), "--json", "--out", str(target), "--no-llm") == 0
    assert json.loads(target.read_text(encoding="utf-8"))["topic_id"] == topic_id
    assert cli("brief", "999") == 2                                   # clear error, no traceback
    assert "not in snapshot" in capsys.readouterr().err


def test_cli_search(cli, capsys):
    assert cli("search", "手机 屏幕 电池", "-k", "3") == 0
    out = capsys.readouterr().out
    assert out.count("分数") >= 3 and "互动" in out


# ---- every demo brief -----------------------------------------------------------------------------
SIMULATED = DEMO_NOTES.parent / "simulated"


@pytest.fixture(scope="module")
def demo_workspace(tmp_path_factory):
    """The whole demo corpus (hashing embedder) and its simulated audience tables in DuckDB."""
    if not DEMO_NOTES.exists() or not (SIMULATED / "engagements.parquet").exists():
        pytest.skip("demo corpus or its simulated tables missing (python data/build_demo.py)")
    notes = pd.read_parquet(DEMO_NOTES)
    notes["tags"] = notes["tags"].map(lambda v: [] if v is None else list(v))
    root = tmp_path_factory.mktemp("demo-briefs")
    config = MinerConfig(models_dir=root / "models", workspace_dir=root / "ws", embedding_model="hashing")
    build_topics(config, notes, embedder=HashingEmbedder(), show_progress=False)
    con = duckdb.connect()
    for name in ("engagements", "audience", "orders"):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet(?)", [str(SIMULATED / f"{name}.parquet")])
    return load_snapshot(config), con


def _check_demo_briefs(snapshot, con, today, min_angle_size=10):
    briefs = build_briefs(snapshot, today=today, con=con, min_angle_size=min_angle_size)
    assert [b.topic_id for b in briefs] == snapshot.topics["topic_id"].astype(int).tolist()
    seen_tgi = 0
    for b in briefs:
        topic_id = b.topic_id
        assert b.timing is not None and b.timing["days_until_seeding"] >= 0, (topic_id, b.timing)
        assert b.timing["date"] >= today.isoformat()                  # the node is never in the past
        assert b.timing.get("seeding_started") or b.timing["seeding_start"] >= today.isoformat()
        assert all(a.n_notes >= min_angle_size for a in b.angles), (topic_id, [a.n_notes for a in b.angles])
        md = b.to_markdown()
        assert not re.search(r"距(?:今|规划日|节点) -\d", md), topic_id
        assert {r["quadrant_zh"] for r in b.scorecard} == {"认知", "内容积累", "人群渗透", "口碑激发"}
        assert all(r["engaged_users"] >= MinerConfig().k_anonymity for r in b.tgi)
        seen_tgi += bool(b.tgi)
        json.loads(b.to_json())
    assert seen_tgi > 0          # some demo topic over-indexes in some cell


def test_every_demo_brief_on_the_issue_date(demo_workspace):
    """2026-12-02: inside 双12's 蓄水 (the issue's "距今 -4 天"), three years after the data ends."""
    snapshot, con = demo_workspace
    _check_demo_briefs(snapshot, con, dt.date(2026, 12, 2))


@pytest.mark.slow
@pytest.mark.parametrize("today", [dt.date(2023, 10, 25), dt.date(2023, 9, 20), dt.date(2027, 6, 1)])
def test_every_demo_brief_on_more_planning_dates(demo_workspace, today):
    """Inside 双11's 蓄水 within the data, inside 中秋's, and a year with 618 in 蓄水."""
    snapshot, con = demo_workspace
    _check_demo_briefs(snapshot, con, today)
