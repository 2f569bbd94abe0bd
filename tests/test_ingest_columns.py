"""miner.ingest presets, column mapping, ignored columns, text-only notes, Excel sheets, rejects names."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from miner.config import MinerConfig
from miner.ingest import (
    detect_preset, ingest_file, load_notes, rejects_path_for, suggest_column_map,
)
from miner.ingest.validate import TEXT_ID_PREFIX
from miner.schema import NOTES

DATA = Path(__file__).parent / "data"
MEDIACRAWLER = DATA / "mediacrawler_xhs_notes.csv"


@pytest.fixture
def config(tmp_path) -> MinerConfig:
    return MinerConfig(workspace_dir=tmp_path / "ws")


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


# ---- presets ------------------------------------------------------------------------------------
def test_mediacrawler_export_ingests_without_renaming(config):
    report = ingest_file(MEDIACRAWLER, NOTES, config)
    assert report.preset == "mediacrawler_xhs"
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (6, 5, 1)
    assert report.errors[0].row == 5 and report.errors[0].column == "likes" and "'一万'" in report.errors[0].reason
    assert {"video_url", "avatar", "note_url", "xsec_token"} <= set(report.ignored_columns)
    stored = load_notes(config).set_index("note_id")
    a = stored.loc["64f1a2b3000000001f03a1b1"]
    assert (a["title"], a["author_id"], a["author_name"], a["ip_location"]) == \
        ("周末露营装备清单", "5f0a1b2c000000000101c3d4", "山野小鹿", "浙江")
    assert a["body"].startswith("第一次带娃露营") and a["tags"] == ["露营", "亲子", "装备"]
    assert a["published_at"] == pd.Timestamp("2023-09-01 10:00", tz="Asia/Shanghai")   # 1693533600000 ms
    assert a["note_type"] == "image"                                                    # 'normal' → image
    assert [a["likes"], a["collects"], a["comments"], a["shares"]] == [12_000, 3_456, 289, 1_024]
    b = stored.loc["64f1a2b3000000001f03a1b2"]
    assert [b["likes"], b["collects"], b["comments"], b["shares"], b["counts_capped"]] == \
        [100_000, 23_000, 999, 5_000, True]                                            # 10万+, 2.3万, 999+
    assert b["note_type"] == "video"
    f = stored.loc["64f1a2b3000000001f03a1b6"]
    assert [f["likes"], f["collects"], f["comments"], f["shares"]] == [120_000_000, 60_000, 3_456, 123]
    assert stored.loc["64f1a2b3000000001f03a1b4", "title"] == "" and not stored["counts_capped"].isna().any()


def test_zh_generic_headers(config, tmp_path):
    frame = pd.DataFrame({"标题": ["露营装备清单", "奶茶测评"], "正文": ["帐篷天幕", "秋天第一杯"],
                          "点赞数": ["1.2万", "88"], "收藏数": ["10", "2"], "评论数": ["3", "0"],
                          "分享数": ["1", "0"], "发布时间": ["2023-09-01 10:00", "2023年9月2日"], "作者": ["小鹿", "阿哲"]})
    report = ingest_file(_csv(frame, tmp_path / "zh.csv"), NOTES, config)
    assert report.preset == "zh_generic" and report.rows_accepted == 2 and not report.ignored_columns
    assert report.renamed["作者"] == "author_id" and report.renamed["标题"] == "title"
    stored = load_notes(config).sort_values("likes")
    assert stored["likes"].tolist() == [88, 12_000] and stored["author_id"].tolist() == ["阿哲", "小鹿"]
    assert stored["published_at"].dt.day.tolist() == [2, 1]


def test_detect_preset_needs_its_signature():
    assert detect_preset(["note_id", "title", "desc", "liked_count"]) == "mediacrawler_xhs"
    assert detect_preset(["note_id", "title", "desc"]) is None          # no count column: not MediaCrawler
    assert detect_preset(["标题", "点赞数"]) == "zh_generic"
    assert detect_preset(NOTES.names) is None


def test_explicit_column_map_and_its_errors(config, tmp_path):
    frame = pd.DataFrame({"headline": ["露营装备"], "text": ["帐篷"], "hearts": ["5"]})
    path = _csv(frame, tmp_path / "custom.csv")
    report = ingest_file(path, NOTES, config, column_map={"headline": "title", "text": "body", "hearts": "likes"})
    assert report.renamed == {"headline": "title", "text": "body", "hearts": "likes"} and report.preset is None
    assert load_notes(config)["likes"].tolist() == [5]
    with pytest.raises(ValueError, match="column_map target 'heart_count' is not a notes column"):
        ingest_file(path, NOTES, config, column_map={"hearts": "heart_count"})
    with pytest.raises(ValueError, match="column_map source 'missing' is not in the file"):
        ingest_file(path, NOTES, config, column_map={"missing": "title"})
    with pytest.raises(ValueError, match="duplicate column"):
        ingest_file(path, NOTES, config, column_map={"headline": "title", "text": "title"})


def test_suggest_column_map_for_the_ui():
    headers = ["Note_ID", "desc", "liked_count", "tag", "is_commerical", "avatar", "title"]
    assert suggest_column_map(headers, "notes") == {
        "Note_ID": "note_id", "title": "title",                       # exact names (case-insensitive)
        "desc": "body", "liked_count": "likes",                       # the detected preset
        "tag": "tags", "is_commerical": "is_commercial",              # near misses
    }


# ---- ignored columns -----------------------------------------------------------------------------
def test_ignored_columns_with_did_you_mean(config, tmp_path):
    frame = pd.DataFrame({"note_id": ["n1"], "title": ["露营"], "tag": ["露营|装备"], "is_commerical": ["true"],
                          "random_junk": ["x"]})
    report = ingest_file(_csv(frame, tmp_path / "typos.csv"), NOTES, config)
    assert report.ignored_columns == ["tag", "is_commerical", "random_junk"]
    assert report.suggestions == {"tag": "tags", "is_commerical": "is_commercial"}
    text = report.summary()
    assert "did you mean 'tags'" in text and "did you mean 'is_commercial'" in text and "random_junk" in text
    assert load_notes(config)["tags"].tolist() == [[]]          # ignored, as reported


# ---- text-only notes -----------------------------------------------------------------------------
def test_text_only_notes_get_defaults_and_notices(config, tmp_path):
    frame = pd.DataFrame({"title": ["露营装备清单", "", "露营装备清单", "🔥"], "body": ["", "只有正文", "", ""]})
    report = ingest_file(_csv(frame, tmp_path / "text.csv"), NOTES, config)
    # row 3 repeats row 1's text → same id → merged; row 4 has no text → rejected
    assert (report.rows_read, report.rows_accepted, report.rows_rejected, report.duplicates_resolved) == (4, 2, 1, 1)
    assert set(report.defaulted) == {"note_id", "author_id", "published_at", "likes", "collects", "comments", "shares"}
    text = report.summary()
    assert "trends, seasons and timing need publish times" in text and "note_id missing" in text
    assert "engagement counts missing" in text
    stored = load_notes(config)
    assert stored["note_id"].str.fullmatch(TEXT_ID_PREFIX + "[0-9a-f]{16}").all()
    assert stored["published_at"].isna().all() and stored["author_id"].isna().all()
    assert stored["likes"].dtype == "int64" and (stored[["likes", "collects", "comments", "shares"]] == 0).all().all()
    again = ingest_file(_csv(frame, tmp_path / "text.csv"), NOTES, config)
    assert again.table_rows == 2 and sorted(load_notes(config)["note_id"]) == sorted(stored["note_id"])   # stable


def test_body_only_file_is_enough(config, tmp_path):
    report = ingest_file(_csv(pd.DataFrame({"body": ["帐篷推荐"]}), tmp_path / "b.csv"), NOTES, config)
    assert report.rows_accepted == 1 and load_notes(config)["title"].tolist() == [""]


def test_present_but_empty_required_values_are_still_rejected(config, tmp_path):
    frame = pd.DataFrame({"note_id": ["n1", ""], "title": ["露营", "装备"], "likes": ["", "3"]})
    report = ingest_file(_csv(frame, tmp_path / "e.csv"), NOTES, config)
    assert [(e.row, e.column) for e in report.errors] == [(1, "likes"), (2, "note_id")]
    assert report.rows_accepted == 0


def test_old_notes_table_gains_new_columns(config, tmp_path):
    """A table written before author_name/ip_location/counts_capped existed keeps working."""
    config.workspace_dir.mkdir()
    old = [c for c in NOTES.columns if c.name not in ("author_name", "ip_location", "counts_capped")]
    with duckdb.connect(str(config.db_path)) as con:
        types = {"str": "VARCHAR", "text": "VARCHAR", "int": "BIGINT", "datetime": "TIMESTAMPTZ",
                 "bool": "BOOLEAN", "list": "VARCHAR[]"}
        con.execute("CREATE TABLE notes (" + ", ".join(f'"{c.name}" {types[c.dtype]}' for c in old) + ")")
        con.execute("INSERT INTO notes (note_id, title, body, likes) VALUES ('old1', '旧笔记', '', 7)")
    before = load_notes(config)
    assert list(before.columns) == NOTES.names and before["counts_capped"].tolist() == [False]
    ingest_file(_csv(pd.DataFrame({"note_id": ["n2"], "title": ["新笔记"], "likes": ["10w+"]}), tmp_path / "n.csv"),
                NOTES, config)
    stored = load_notes(config).set_index("note_id")
    assert stored.loc["old1", "likes"] == 7 and not stored.loc["old1", "counts_capped"]
    assert stored.loc["n2", "counts_capped"] and stored.loc["n2", "likes"] == 100_000


# ---- Excel sheets --------------------------------------------------------------------------------
def _workbook(path: Path) -> Path:
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"note_id": ["a1", "a2"], "title": ["露营", "装备"], "likes": ["1", "-2"]}).to_excel(
            xl, sheet_name="九月", index=False)
        pd.DataFrame({"Note_ID": ["b1"], "Title": ["奶茶"], "Likes": ["3"]}).to_excel(xl, sheet_name="十月", index=False)
        pd.DataFrame({"说明": ["导出自后台"]}).to_excel(xl, sheet_name="说明", index=False)
    return path


def test_excel_reads_every_sheet_with_the_notes_header(config, tmp_path):
    report = ingest_file(_workbook(tmp_path / "book.xlsx"), NOTES, config)
    assert report.sheets == {"九月": 2, "十月": 1}
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (3, 2, 1)
    assert any("'说明' 已跳过" in n for n in report.notices)
    rejects = pd.read_csv(report.rejects_path, dtype=str, encoding="utf-8-sig")
    assert rejects.loc[0, "source"] == "九月!3" and rejects.loc[0, "row"] == "2"   # sheet 九月, line 3
    assert sorted(load_notes(config)["note_id"]) == ["a1", "b1"]


def test_excel_sheet_argument(config, tmp_path):
    path = _workbook(tmp_path / "book.xlsx")
    report = ingest_file(path, NOTES, config, sheet="十月")
    assert report.sheets == {"十月": 1} and load_notes(config)["note_id"].tolist() == ["b1"]
    with pytest.raises(ValueError, match="no sheet '十一月'"):
        ingest_file(path, NOTES, config, sheet="十一月")


# ---- rejects files --------------------------------------------------------------
def test_rejects_files_are_unique_per_input(config, tmp_path):
    paths = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        frame = pd.DataFrame({"note_id": [f"{folder}1"], "title": ["露营"], "likes": ["-1"]})
        paths.append(_csv(frame, tmp_path / folder / "notes.csv"))
    first, second = (ingest_file(p, NOTES, config) for p in paths)
    assert first.rejects_path != second.rejects_path and first.rejects_path.exists() and second.rejects_path.exists()
    long_name = tmp_path / ("很长的文件名" * 30 + ".csv")
    target = rejects_path_for(long_name, "notes", config.rejects_dir)
    assert len(target.name.encode()) < 120 and target.suffix == ".csv"
