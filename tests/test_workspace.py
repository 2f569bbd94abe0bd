"""miner.workspace: the one service the CLI and the app call, and the rules it keeps for both.

Real text: the 240 online-shopping reviews as notes; the hashing embedder keeps it fast.
"""
from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from miner.cli import main
from miner.config import MinerConfig
from miner.topics.embed import HashingEmbedder
from miner.topics.snapshot import TMP_PREFIX, latest_run_id, remove_stale_builds
from miner.uploads import remove_stale_uploads, safe_filename, uploads_root
from miner.workspace import MissingTablesError, Workspace


@pytest.fixture(autouse=True)
def no_ambient_config(monkeypatch):
    for key in [k for k in os.environ if k.startswith("MINER_")]:
        monkeypatch.delenv(key)


@pytest.fixture
def config(tmp_path) -> MinerConfig:
    return MinerConfig(models_dir=tmp_path / "models", workspace_dir=tmp_path / "ws",
                       embedding_model="hashing", min_topic_size=10)


@pytest.fixture
def reviews_file(reviews_4cats, tmp_path) -> Path:
    n = len(reviews_4cats)
    frame = pd.DataFrame({
        "note_id": [f"r{i:03d}" for i in range(n)], "title": "", "body": reviews_4cats["review"],
        "author_id": [f"a{i % 7}" for i in range(n)],
        "published_at": pd.date_range("2023-09-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M"),
        "likes": 1, "collects": 0, "comments": 0, "shares": 0})
    path = tmp_path / "reviews.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def built(config, reviews_file) -> Workspace:
    workspace = Workspace(config)
    workspace.build(input_path=reviews_file, embedder=HashingEmbedder())
    return workspace


# ---- divergence 1: simulated audiences never enter a user's workspace ---------------------------
def test_metrics_on_user_workspace_never_loads_simulated_tables(built, config, capsys):
    assert not built.is_demo()
    with pytest.raises(MissingTablesError) as err:
        built.topic_metrics(built.snapshot())
    assert "engagements" in str(err.value)
    assert built.missing_tables() == ["audience", "engagements", "aips_stages", "orders"]

    config_file = config.models_dir.parent / "config.json"
    config_file.write_text(pd.Series(config.to_json_dict()).to_json(force_ascii=False), encoding="utf-8")
    assert main(["--config", str(config_file), "metrics"]) == 2
    assert "工作区缺少数据表" in capsys.readouterr().err
    assert len(built.missing_tables()) == 4            # the CLI did not load anything either
    with pytest.raises(ValueError, match="simulated"):
        built.ingest_simulated_audience()
    assert built.segment_metrics(built.snapshot(), "gender=F") is None


# ---- divergence 2: the app's search segments with the configured dictionaries and stopwords ------
def test_app_search_uses_configured_dictionaries_and_stopwords(built, config, tmp_path, monkeypatch):
    user_dict = tmp_path / "brand.txt"
    user_dict.write_text("柚光精华水\n", encoding="utf-8")
    stop = tmp_path / "stop.txt"
    stop.write_text("酒店\n", encoding="utf-8")
    configured = config.with_overrides(user_dict_paths=(str(user_dict),), extra_stopword_paths=(str(stop),))
    query = "柚光精华水 酒店 推荐"
    plain_terms = Workspace(config).segmenter().segment(query)
    assert "柚光精华水" not in plain_terms and "酒店" in plain_terms

    for key, value in {"MINER_MODELS_DIR": config.models_dir, "MINER_WORKSPACE_DIR": config.workspace_dir,
                       "MINER_EMBEDDING_MODEL": "hashing", "MINER_USER_DICT_PATHS": user_dict,
                       "MINER_EXTRA_STOPWORD_PATHS": stop}.items():
        monkeypatch.setenv(key, str(value))
    from miner.ui import loaders
    searcher = loaders.searcher(str(configured.snapshots_dir), latest_run_id(configured))
    terms = searcher.segmenter.segment(query)
    assert "柚光精华水" in terms and "酒店" not in terms
    assert terms == Workspace(configured).segmenter().segment(query)   # the CLI's segmenter, same words


# ---- builds: unique ids, temp folders, warnings ----------------------------------------------------
def test_builds_in_the_same_second_get_distinct_run_ids(config, reviews_file, monkeypatch):
    import miner.topics.pipeline as pipeline
    frozen = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)

    class FrozenClock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen.astimezone(tz)
    monkeypatch.setattr(pipeline, "datetime", FrozenClock)
    workspace = Workspace(config)
    first = workspace.build(input_path=reviews_file, embedder=HashingEmbedder()).result
    second = workspace.build(embedder=HashingEmbedder()).result
    assert first.run_id != second.run_id
    assert first.run_id[:15] == second.run_id[:15] == "20260101-200000"
    assert not list(config.snapshots_dir.glob(f"{TMP_PREFIX}*"))


def test_stale_build_folders_are_removed_but_live_ones_kept(tmp_path):
    dead, live = tmp_path / f"{TMP_PREFIX}dead-1", tmp_path / f"{TMP_PREFIX}live-2"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "notes.parquet").write_bytes(b"x")
    old = time.time() - 7 * 3600
    for path in (dead / "notes.parquet", dead):
        os.utime(path, (old, old))
    assert remove_stale_builds(tmp_path) == [dead.name]
    assert live.exists() and not dead.exists()


def test_n_topics_that_cannot_be_met_says_why(config, reviews_file):
    result = Workspace(config.with_overrides(n_topics=50)).build(input_path=reviews_file,
                                                                 embedder=HashingEmbedder()).result
    assert result.n_topics < 50
    assert result.warnings and "min_topic_size" in result.summary()


def test_run_takes_run_ids_only(built, capsys):
    with pytest.raises(ValueError, match="run id"):
        built.snapshot("../../etc")
    config_file = Path(built.config.models_dir).parent / "config.json"
    config_file.write_text(pd.Series(built.config.to_json_dict()).to_json(force_ascii=False), encoding="utf-8")
    assert main(["--config", str(config_file), "topics", "--run", "/tmp/x"]) == 2
    assert "run id" in capsys.readouterr().err


# ---- predict: empty and meaningless text ------------------------------------------------------------
def test_predict_gives_outlier_with_reason_for_empty_text(built):
    out = built.predict(["", "😀😀🔥", "！！？？。。", "   ", "这款洗发水去屑效果很好，头发很顺"],
                        snapshot=built.snapshot())
    assert out["topic_id"].tolist()[:4] == [-1, -1, -1, -1]
    assert out["reason"].tolist()[:4] == ["empty"] * 4
    assert out["reason"].iloc[4] in {"assigned", "outlier"}
    assert out["reason"].iloc[4] != "empty"


# ---- uploads ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a" * 126 + ".csv", "笔" * 90 + ".csv", "../../dir/" + "评" * 200 + ".csv.gz"])
def test_upload_names_are_shortened_by_bytes_keeping_the_extension(name, tmp_path):
    safe = safe_filename(name)
    assert len(safe.encode("utf-8")) <= 120
    assert safe.endswith(".csv.gz" if name.endswith(".gz") else ".csv")
    assert "/" not in safe and ".." not in safe
    (tmp_path / safe).write_bytes(b"ok")                     # the file system takes it


def test_upload_with_long_chinese_name_is_ingested_and_removed(config, reviews_file):
    workspace = Workspace(config)
    report = workspace.ingest_upload("小红书笔记导出" * 20 + ".csv", reviews_file.read_bytes(), "notes")
    assert report.rows_accepted == 240
    assert not list(uploads_root(config.workspace_dir).iterdir())


def test_stale_uploads_are_removed_at_start(config):
    root = uploads_root(config.workspace_dir)
    stale, fresh = root / "upload-dead", root / "upload-live"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
        (folder / "raw.csv").write_text("user_id\n13800000000\n", encoding="utf-8")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    Workspace.open(config)
    assert not stale.exists() and fresh.exists()
    assert remove_stale_uploads(config.workspace_dir, older_than_s=0) == ["upload-live"]


# ---- terminal output ----------------------------------------------------------------------------
def test_control_characters_never_reach_the_terminal():
    from miner.cli.render import clean, table
    assert clean("\x1b[31m红色\x1b[0m标题\x00\x07") == "红色标题"
    rendered = table(["话题", "篇数"], [["\x1b[2J清屏", "3"]])
    assert "\x1b" not in rendered and "清屏" in rendered


# ---- imports people really have ---------------------------------------------------------------------
def test_upload_columns_propose_the_mediacrawler_mapping_and_the_mapping_is_used(config):
    data = (Path(__file__).parent / "data" / "mediacrawler_xhs_notes.csv").read_bytes()
    workspace = Workspace(config)
    headers, proposed = workspace.upload_columns("xhs.csv", data, "notes")
    assert "desc" in headers and proposed["desc"] == "body" and proposed["liked_count"] == "likes"
    mapping = {h: c for h, c in proposed.items() if c != "title"}          # the user drops the title
    report = workspace.ingest_upload("xhs.csv", data, "notes", column_map=mapping)
    assert report.rows_accepted > 0
    stored = workspace.notes()
    assert stored["title"].fillna("").eq("").all() and stored["body"].str.len().gt(0).all()
    assert not list(uploads_root(config.workspace_dir).iterdir())


def test_cli_says_workspace_busy_with_its_own_exit_code(config, reviews_file, tmp_path, capsys):
    import subprocess
    import sys
    Workspace(config).ingest(reviews_file)
    holder = subprocess.Popen([sys.executable, "-c", "import sys,time,duckdb; c=duckdb.connect(sys.argv[1]); "
                               "print('locked', flush=True); time.sleep(30)", str(config.db_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        config_file = tmp_path / "config.json"
        config_file.write_text(pd.Series(config.to_json_dict()).to_json(force_ascii=False), encoding="utf-8")
        assert main(["--config", str(config_file), "ingest", str(reviews_file)]) == 75
        err = capsys.readouterr().err
        assert "工作区正忙" in err and "Traceback" not in err
    finally:
        holder.kill()
        holder.wait()


# ---- demo workspace: simulated audiences, scorecard, TGI, briefs through the service -----------------
@pytest.fixture(scope="module")
def demo_workspace(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("demo-ws")
    demo = Workspace(MinerConfig())
    slice_path = root / "demo_slice.parquet"
    pd.read_parquet(demo.demo_notes_path).groupby("category", sort=False).head(60).to_parquet(slice_path)
    config = MinerConfig(models_dir=root / "models", workspace_dir=root / "ws", embedding_model="hashing",
                         min_topic_size=10, k_anonymity=5)
    workspace = Workspace(config)
    workspace.build(input_path=slice_path, embedder=HashingEmbedder())
    assert workspace.is_demo()
    return workspace


def test_demo_workspace_gets_simulated_tables_and_planner_views(demo_workspace, capsys):
    snap = demo_workspace.snapshot()
    assert demo_workspace.audience_tables_ready()          # loaded because every note is a demo note
    assert demo_workspace.missing_tables() == []
    card = demo_workspace.scorecard(snap)
    assert set(card["quadrant"]) == {"awareness", "accumulation", "penetration", "word_of_mouth"}
    topic = int(snap.topics.sort_values("size").iloc[-1]["topic_id"])
    tgi = demo_workspace.tgi(snap, topic_ids=[topic])
    assert len(tgi) and (tgi["engaged_users"] >= 5).all()
    brief = demo_workspace.brief(snap, topic, today=dt.date(2026, 12, 2))
    assert brief.topic_id == topic

    config_file = Path(demo_workspace.config.models_dir).parent / "config.json"
    config_file.write_text(pd.Series(demo_workspace.config.to_json_dict()).to_json(force_ascii=False),
                           encoding="utf-8")
    assert main(["--config", str(config_file), "scorecard", "--top", "5"]) == 0
    assert "口碑激发" in capsys.readouterr().out
    assert main(["--config", str(config_file), "tgi", str(topic)]) == 0
    assert "TGI" in capsys.readouterr().out


def test_cli_update_adds_new_notes_without_a_rebuild(built, config, reviews_4cats, tmp_path, capsys):
    before = built.snapshot()
    extra = pd.DataFrame({"note_id": ["new1", "new2"], "title": "", "body": reviews_4cats["review"].iloc[:2],
                          "published_at": "2023-09-12 10:00", "likes": 3})
    extra_path = tmp_path / "extra.csv"
    extra.to_csv(extra_path, index=False)
    config_file = tmp_path / "config.json"
    config_file.write_text(pd.Series(config.to_json_dict()).to_json(force_ascii=False), encoding="utf-8")
    assert main(["--config", str(config_file), "update", "--input", str(extra_path)]) == 0
    after = built.snapshot()
    assert after.run_id != before.run_id and len(after.notes) == len(before.notes) + 2
    kept = after.assignments.set_index("note_id").loc[before.assignments["note_id"], "topic_id"]
    assert (kept.to_numpy() == before.assignments["topic_id"].to_numpy()).all()   # old notes keep their topic
