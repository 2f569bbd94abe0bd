"""Content briefs on a demo-like snapshot: every number checked against a direct pandas computation,
every evidence note checked to belong to the topic; the title-pattern miner on real titles."""
from __future__ import annotations

import http.server
import json
import socket
import threading
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from miner.insights.briefs import ContentBrief, TITLE_PATTERNS, build_brief, mine_title_patterns, title_features
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
                       today=pd.Timestamp("2023-10-01").date(), polish=False)


def _all_evidence_ids(b: ContentBrief) -> list[str]:
    ids = list(b.positioning_evidence) + [n.note_id for n in b.evidence_notes]
    for a in b.angles:
        ids += a.note_ids
    for p in b.title_patterns:
        ids += p.example_note_ids
    for h in b.hashtags:
        ids += h["note_ids"]
    ids += b.format.get("evidence_note_ids", []) + b.posting.get("evidence_note_ids", [])
    return ids


def test_evidence_notes_belong_to_the_topic(brief, members):
    ids = _all_evidence_ids(brief)
    assert len(ids) >= 10
    assert set(ids) <= set(members["note_id"])
    by_id = members.set_index("note_id")
    for ref in brief.evidence_notes:   # engagement shown with the evidence is the note's own
        assert ref.engagement == by_id.loc[ref.note_id, "eng"]
        assert ref.likes == by_id.loc[ref.note_id, "likes"]
    top = [r for r in brief.evidence_notes if r.role == "top"]
    assert top and top[0].engagement == members["eng"].max()


def test_numbers_match_pandas(brief, members):
    assert brief.n_notes == len(members)
    r = brief.engagement_range
    for q, key in ((0.25, "p25"), (0.5, "p50"), (0.75, "p75")):
        assert r[key] == pytest.approx(members["eng"].quantile(q))
    assert brief.kpis[0]["baseline"] == pytest.approx(r["p50"]) and brief.kpis[0]["target"] == pytest.approx(r["p75"])
    liked = members[members["likes"] > 0]
    ratio = next(k for k in brief.kpis if k["name"] == "收藏/点赞比")
    assert ratio["baseline"] == pytest.approx((liked["collects"] / liked["likes"]).median())
    best = liked[liked["eng"] >= members["eng"].quantile(0.75)]
    assert ratio["target"] == pytest.approx((best["collects"] / best["likes"]).median())

    counts = members["note_type"].value_counts()
    medians = members.groupby("note_type")["eng"].median()
    for t, stats in brief.format["by_type"].items():
        assert stats["n_notes"] == counts[t] and stats["median_engagement"] == pytest.approx(medians[t])

    local = pd.to_datetime(members["published_at"]).dt.tz_convert(TZ)
    weekday_counts = local.dt.dayofweek.value_counts()
    assert brief.posting["by_weekday"][brief.posting["weekday_zh"]]["n_notes"] == weekday_counts[brief.posting["weekday"]]
    block = local.dt.hour // 3 * 3
    lo = brief.posting["hour_block"][0]
    stats = brief.posting["by_hour_block"][f"{lo:02d}-{lo + 3:02d}"]
    assert stats["n_notes"] == (block == lo).sum()
    assert stats["median_engagement"] == pytest.approx(members.loc[block == lo, "eng"].median())

    lengths = members["title"].str.len()
    assert brief.title_length["median_all"] == pytest.approx(lengths.median())

    assert sum(a.n_notes for a in brief.angles) == len(members)
    assert [a.median_engagement for a in brief.angles] == sorted((a.median_engagement for a in brief.angles),
                                                                 reverse=True)
    for a in brief.angles:
        assert a.engagement_index == pytest.approx(a.median_engagement / members["eng"].median())

    tags = members[["note_id", "tags"]].explode("tags").dropna()
    tags = tags.assign(tags=tags["tags"].astype(str).str.strip()).drop_duplicates()
    for h in brief.hashtags:
        if h["source"] == "notes":
            assert h["n_notes"] == (tags["tags"] == h["tag"].lstrip("#")).sum()


def test_recommendations_follow_their_tables(brief):
    big = {k: v for k, v in brief.format["by_type"].items() if v["n_notes"] >= max(5, np.ceil(0.05 * brief.n_notes))}
    assert brief.format["recommended"] == max(big, key=lambda k: big[k]["median_engagement"])
    days = {k: v for k, v in brief.posting["by_weekday"].items() if v["n_notes"] >= max(5, np.ceil(0.05 * brief.n_notes))}
    assert brief.posting["weekday_zh"] == max(days, key=lambda k: days[k]["median_engagement"])


def test_timing_and_audience(brief):
    assert brief.timing["node_zh"] == "双11"
    assert brief.timing["seeding_start"] == "2023-10-20"          # 11-11 − 22 days
    assert brief.timing["days_until_seeding"] == 19
    assert brief.timing["node_lift"] is not None                    # the demo covers 2023-10-20 … 10-27
    assert brief.audience["segment_zh"] == "女性·18-24岁"
    assert any("人群指标" in n for n in brief.notes)                  # no metrics given: said so
    assert brief.trend["stage"] in {"emerging", "rising", "peak", "declining", "evergreen"}
    assert 0 <= brief.opportunity["score"] <= 1 and "timing" in brief.opportunity


def test_renderings(brief, topic_id):
    md = brief.to_markdown()
    assert f"[{topic_id}]" in md and brief.label in md
    assert "P25" in md and "蓄水" in md and "证据" in md
    for ref in brief.evidence_notes:
        assert ref.note_id in md
    data = json.loads(brief.to_json())
    assert data["topic_id"] == topic_id and data["engagement_range"]["p50"] == brief.engagement_range["p50"]
    assert {a["label"] for a in data["angles"]} == {a.label for a in brief.angles}


def test_unknown_topic_is_a_clear_error(snapshot):
    with pytest.raises(ValueError, match="not in snapshot"):
        build_brief(snapshot, 999, polish=False)
    with pytest.raises(ValueError, match="not in snapshot"):
        build_brief(snapshot, -1, polish=False)


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
        b = build_brief(snapshot, topic_id)
    finally:
        server.shutdown()
    assert b.positioning == "润色后的定位句。" and b.positioning_source == "llm:fake-model"
    assert _FakeLLM.seen == ("/v1/chat/completions", "Bearer sk-test", "fake-model")


def test_llm_failure_falls_back_with_a_note(snapshot, topic_id, monkeypatch):
    with socket.socket() as s:                      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MINER_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("MINER_LLM_MODEL", "fake-model")
    monkeypatch.setenv("MINER_LLM_TIMEOUT", "2")
    b = build_brief(snapshot, topic_id)
    plain = build_brief(snapshot, topic_id, polish=False)
    assert b.positioning_source == "rule" and b.positioning == plain.positioning
    assert any("LLM" in n for n in b.notes) and not any("LLM" in n for n in plain.notes)


def test_no_llm_configured_means_no_call_and_no_note(snapshot, topic_id, monkeypatch):
    for var in ("MINER_LLM_BASE_URL", "MINER_LLM_API_KEY", "MINER_LLM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    b = build_brief(snapshot, topic_id)
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
