"""miner.ingest: readers, encodings, per-row validation into a rejects file, dedupe, upsert, hashing.

Bad inputs are generated here in ``tmp_path`` from a few real demo notes (data/demo/notes.parquet),
so every case states its input next to the expected error or rejects-file entry.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from miner.config import MinerConfig
from miner.ingest import (
    MAX_TEXT_CHARS,
    IngestReport,
    ingest_file,
    load_notes,
    load_table,
    read_table_file,
    rejects_path_for,
    resolve_id_salt,
)
from miner.schema import ENGAGEMENTS, INPUT_SCHEMAS, NOTES, ORDERS

DEMO_NOTES = Path(__file__).resolve().parent.parent / "data" / "demo" / "notes.parquet"


# ---- fixtures & helpers ----------------------------------------------------------------------------
def _gbk_ok(text: str) -> bool:
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


@pytest.fixture(scope="session")
def _real_notes() -> pd.DataFrame:
    """Eight real Bilibili demo notes with a body, as the strings a CSV export would hold.

    Picked so their text is GBK-encodable (some real notes hold characters GBK lacks, e.g. ♠).
    """
    notes = pd.read_parquet(DEMO_NOTES)
    usable = notes["note_id"].str.startswith("bili_") & notes["body"].ne("")
    usable &= (notes["title"] + notes["body"] + notes["category"]).map(_gbk_ok)
    notes = notes[usable].head(8).reset_index(drop=True)
    out = notes.astype({c: str for c in ("likes", "collects", "comments", "shares")})
    out["published_at"] = notes["published_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    out["tags"] = notes["tags"].map("|".join)
    out["is_commercial"] = "false"
    return out


@pytest.fixture
def real_notes(_real_notes) -> pd.DataFrame:
    return _real_notes.copy()


@pytest.fixture
def config(tmp_path) -> MinerConfig:
    return MinerConfig(workspace_dir=tmp_path / "ws")


def write_csv(frame: pd.DataFrame, path: Path, encoding: str = "utf-8") -> Path:
    frame.to_csv(path, index=False, encoding=encoding)
    return path


def rejects_of(report: IngestReport) -> pd.DataFrame:
    assert report.rejects_path is not None, "expected a rejects file"
    return pd.read_csv(report.rejects_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def assert_accounted(report: IngestReport) -> None:
    assert report.rows_read == report.rows_accepted + report.rows_rejected + report.duplicates_resolved


# ---- readers and encodings -------------------------------------------------------------------------
def test_gbk_csv_ingests_with_chinese_intact(real_notes, config, tmp_path):
    path = write_csv(real_notes, tmp_path / "notes_gbk.csv", encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")          # really not UTF-8
    report = ingest_file(path, NOTES, config)
    assert report.encoding == "gb18030"
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (8, 8, 0)
    stored = load_notes(config).set_index("note_id")
    for _, row in real_notes.iterrows():
        assert stored.loc[row["note_id"], "title"] == row["title"].strip()
        assert stored.loc[row["note_id"], "body"] == row["body"].strip()


def test_utf8_bom_csv_header_is_clean(real_notes, config, tmp_path):
    path = write_csv(real_notes, tmp_path / "notes_bom.csv", encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    frame = read_table_file(path)
    assert list(frame.columns)[0] == "note_id"
    report = ingest_file(path, NOTES, config)
    assert report.encoding == "utf-8-sig" and report.rows_accepted == 8
    assert sorted(load_notes(config)["note_id"]) == sorted(real_notes["note_id"])


def test_csv_values_are_read_as_raw_strings(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_text("note_id,likes,title\n00123,1.2万,NA\n", encoding="utf-8")
    frame = read_table_file(path)
    assert frame.to_dict("records") == [{"note_id": "00123", "likes": "1.2万", "title": "NA"}]


def test_unsupported_extension_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(ValueError, match=r"unsupported file type '\.xls'"):
        read_table_file(path)


# ---- header problems: raise before anything is written --------------------------------------------
def test_missing_required_column_names_file_and_column(config, tmp_path):
    frame = pd.DataFrame({"user_id": ["u1"], "note_id": ["n1"], "action": ["like"]})   # no ts
    path = write_csv(frame, tmp_path / "no_time.csv")
    with pytest.raises(ValueError) as err:
        ingest_file(path, ENGAGEMENTS, config)
    message = str(err.value)
    assert "no_time.csv" in message and "['ts']" in message
    assert "Expected columns" in message and "user_id" in message     # lists what it wanted
    assert not config.db_path.exists() and not config.rejects_dir.exists()


def test_notes_without_any_text_column_are_refused(real_notes, config, tmp_path):
    path = write_csv(real_notes.drop(columns=["title", "body"]), tmp_path / "no_text.csv")
    with pytest.raises(ValueError, match=r"no_text\.csv: .*missing required column\(s\) \['title or body'\]"):
        ingest_file(path, NOTES, config)
    assert not config.db_path.exists() and not config.rejects_dir.exists()


# ---- per-row rejects ---------------------------------------------------------------------------------
def test_bad_date_goes_to_rejects_with_row_and_column(real_notes, config, tmp_path):
    real_notes.loc[2, "published_at"] = "2023-13-45 25:00"
    report = ingest_file(write_csv(real_notes, tmp_path / "notes.csv"), NOTES, config)
    assert (report.rows_accepted, report.rows_rejected) == (7, 1)
    rejects = rejects_of(report)
    assert report.rejects_path == rejects_path_for(tmp_path / "notes.csv", "notes", config.rejects_dir)
    assert report.rejects_path.name.startswith("notes-notes-")
    assert rejects.loc[0, ["row", "column"]].tolist() == ["3", "published_at"]   # 3rd data row
    assert "bad date" in rejects.loc[0, "reason"] and "2023-13-45 25:00" in rejects.loc[0, "reason"]
    assert rejects.loc[0, "note_id"] == real_notes.loc[2, "note_id"]            # original values kept
    assert rejects.loc[0, "published_at"] == "2023-13-45 25:00"
    assert report.errors[0].row == 3 and report.errors[0].column == "published_at"
    assert real_notes.loc[2, "note_id"] not in set(load_notes(config)["note_id"])


def test_empty_title_and_body_is_rejected(real_notes, config, tmp_path):
    real_notes.loc[0, ["title", "body"]] = ["", "  "]
    real_notes.loc[1, "title"] = ""                       # body alone is fine
    report = ingest_file(write_csv(real_notes, tmp_path / "notes.csv"), NOTES, config)
    rejects = rejects_of(report)
    assert rejects["row"].tolist() == ["1"]
    assert rejects.loc[0, "column"] == "title+body" and "all empty" in rejects.loc[0, "reason"]
    assert load_notes(config).set_index("note_id").loc[real_notes.loc[1, "note_id"], "title"] == ""


def test_emoji_only_note_is_rejected(real_notes, config, tmp_path):
    real_notes.loc[4, ["title", "body"]] = ["😂😂👍", "！！！✨✨ ~~"]
    real_notes.loc[5, ["title", "body"]] = ["🔥", "露营装备🔥"]   # emoji plus text is kept
    report = ingest_file(write_csv(real_notes, tmp_path / "notes.csv"), NOTES, config)
    rejects = rejects_of(report)
    assert rejects["row"].tolist() == ["5"]
    assert "no text left after removing emoji/punctuation" in rejects.loc[0, "reason"]
    assert report.rows_accepted == 7


def test_one_megabyte_note_is_rejected_and_cut_in_rejects(real_notes, config, tmp_path):
    real_notes.loc[6, "body"] = "露营" * 500_000             # 1,000,000 characters
    report = ingest_file(write_csv(real_notes, tmp_path / "notes.csv"), NOTES, config)
    rejects = rejects_of(report)
    assert rejects["row"].tolist() == ["7"] and rejects.loc[0, "column"] == "body"
    assert f"1000000 characters > limit {MAX_TEXT_CHARS}" in rejects.loc[0, "reason"]
    assert len(rejects.loc[0, "body"]) < 3_000 and "1000000 chars in total" in rejects.loc[0, "body"]
    assert report.rows_accepted == 7


def test_counts_negative_fractional_and_wan(real_notes, config, tmp_path):
    real_notes.loc[0, "likes"] = "-5"
    real_notes.loc[1, "collects"] = "12.5"
    real_notes.loc[2, "comments"] = ""
    real_notes.loc[3, "shares"] = "10w"
    real_notes.loc[4, "likes"] = "1.2万"
    real_notes.loc[5, "likes"] = "3,456"
    report = ingest_file(write_csv(real_notes, tmp_path / "notes.csv"), NOTES, config)
    rejects = rejects_of(report).set_index("row")
    assert "negative" in rejects.loc["1", "reason"] and rejects.loc["1", "column"] == "likes"
    assert "not an integer" in rejects.loc["2", "reason"] and rejects.loc["2", "column"] == "collects"
    assert "empty required" in rejects.loc["3", "reason"] and rejects.loc["3", "column"] == "comments"
    assert "4" not in rejects.index                                    # '10w' = 100,000 now
    stored = load_notes(config).set_index("note_id")
    assert stored.loc[real_notes.loc[3, "note_id"], "shares"] == 100_000
    assert stored.loc[real_notes.loc[4, "note_id"], "likes"] == 12_000
    assert stored.loc[real_notes.loc[5, "note_id"], "likes"] == 3_456
    assert stored["likes"].dtype == "int64"


def test_several_problems_in_one_row_are_all_listed(real_notes, config, tmp_path):
    real_notes.loc[0, ["likes", "published_at", "note_id"]] = ["-1", "yesterday", ""]
    report = ingest_file(write_csv(real_notes, tmp_path / "notes.csv"), NOTES, config)
    rejects = rejects_of(report)
    assert rejects.loc[0, "column"] == "note_id; published_at; likes"
    assert len(rejects.loc[0, "reason"].split("; ")) >= 3
    assert [e.column for e in report.errors] == ["note_id", "published_at", "likes"]
    assert report.rows_rejected == 1


def test_bool_and_optional_columns(real_notes, config, tmp_path):
    real_notes["is_commercial"] = ["true", "1", "是", "no", "", "0", "False", "maybe"]
    real_notes.loc[1, "category"] = ""
    report = ingest_file(write_csv(real_notes, tmp_path / "notes.csv"), NOTES, config)
    rejects = rejects_of(report)
    assert rejects["row"].tolist() == ["8"] and "not true/false" in rejects.loc[0, "reason"]
    stored = load_notes(config).set_index("note_id").loc[real_notes["note_id"][:7]]
    assert stored["is_commercial"].tolist() == [True, True, True, False, pd.NA, False, False]
    assert stored["category"].iloc[1] is None


# ---- dates, tags --------------------------------------------------------------------------------------
def test_date_formats_and_timezones(real_notes, config, tmp_path):
    real_notes = real_notes.head(6).copy()
    real_notes["published_at"] = [
        "2023-09-01 10:00",             # naive → Asia/Shanghai
        "2023-09-01 10:00:30",
        "2023-09-01T02:00:00Z",         # UTC → 10:00 Shanghai
        "2023-09-01T10:00:00+08:00",
        "1693533600",                   # unix seconds = 2023-09-01T02:00:00Z
        "2023/9/1 10:00",
    ]
    report = ingest_file(write_csv(real_notes, tmp_path / "notes.csv"), NOTES, config)
    assert report.rows_accepted == 6
    stored = load_notes(config).set_index("note_id").loc[real_notes["note_id"], "published_at"]
    assert str(stored.dt.tz) == "Asia/Shanghai"
    ten = pd.Timestamp("2023-09-01 10:00", tz="Asia/Shanghai")
    assert stored.tolist() == [ten, ten + pd.Timedelta(seconds=30), ten, ten, ten, ten]


def test_tag_formats_become_lists(real_notes, config, tmp_path):
    real_notes = real_notes.head(6).copy()
    real_notes["tags"] = ["露营|装备", "露营,装备", "露营 装备", "#露营# #装备#", "#露营[话题]##装备[话题]#", ""]
    ingest_file(write_csv(real_notes, tmp_path / "notes.csv"), NOTES, config)
    tags = load_notes(config).set_index("note_id").loc[real_notes["note_id"], "tags"].tolist()
    assert tags == [["露营", "装备"]] * 5 + [[]]


# ---- duplicates, accounting, modes -------------------------------------------------------------------
def test_duplicate_ids_latest_published_wins(real_notes, config, tmp_path):
    dup = real_notes.loc[[0, 0, 1, 1]].copy()
    dup["published_at"] = ["2023-09-02 08:00", "2023-09-01 08:00", "2023-09-05 08:00", "2023-09-05 08:00"]
    dup["likes"] = ["100", "50", "7", "8"]                      # note 1: same time → last row wins
    frame = pd.concat([real_notes.iloc[2:], dup], ignore_index=True)
    report = ingest_file(write_csv(frame, tmp_path / "notes.csv"), NOTES, config)
    assert (report.rows_read, report.rows_accepted, report.duplicates_resolved) == (10, 8, 2)
    assert_accounted(report)
    stored = load_notes(config).set_index("note_id")
    assert stored.loc[real_notes.loc[0, "note_id"], "likes"] == 100
    assert stored.loc[real_notes.loc[1, "note_id"], "likes"] == 8


def test_rows_read_accounting_mixed_file(real_notes, config, tmp_path):
    frame = pd.concat([real_notes, real_notes.loc[[3]]], ignore_index=True)   # 1 duplicate
    frame.loc[0, "likes"] = "-1"
    frame.loc[1, "published_at"] = "soon"
    frame.loc[2, ["title", "body"]] = ["", ""]
    report = ingest_file(write_csv(frame, tmp_path / "notes.csv"), NOTES, config)
    assert (report.rows_read, report.rows_accepted, report.rows_rejected, report.duplicates_resolved) == (9, 5, 3, 1)
    assert_accounted(report)
    assert report.table_rows == 5 and len(rejects_of(report)) == 3
    assert "拒绝 3 rejected" in report.summary() and "重复合并 1 duplicates" in report.summary()


def test_chunked_reading_matches_single_chunk(real_notes, config, tmp_path):
    frame = pd.concat([real_notes, real_notes.loc[[0]]], ignore_index=True)
    frame.loc[8, "likes"] = "999999"                       # duplicate of row 1, in a later chunk
    frame.loc[5, "published_at"] = "bad"
    path = write_csv(frame, tmp_path / "notes.csv")
    small = ingest_file(path, NOTES, config, chunk_rows=2)
    rejects_small = rejects_of(small)
    other = MinerConfig(workspace_dir=tmp_path / "ws2")
    whole = ingest_file(path, NOTES, other)
    assert (small.rows_read, small.rows_accepted, small.rows_rejected, small.duplicates_resolved) == \
        (whole.rows_read, whole.rows_accepted, whole.rows_rejected, whole.duplicates_resolved) == (9, 7, 1, 1)
    assert rejects_small["row"].tolist() == rejects_of(whole)["row"].tolist() == ["6"]
    pd.testing.assert_frame_equal(load_notes(config), load_notes(other))
    assert load_notes(config).set_index("note_id").loc[real_notes.loc[0, "note_id"], "likes"] == 999_999


def test_reingest_is_idempotent(real_notes, config, tmp_path):
    real_notes.loc[0, "published_at"] = "not a date"
    path = write_csv(real_notes, tmp_path / "notes.csv")
    first = ingest_file(path, NOTES, config)
    table_1, rejects_1 = load_notes(config), rejects_of(first)
    second = ingest_file(path, NOTES, config)
    assert (first.rows_read, first.rows_accepted, first.rows_rejected, first.duplicates_resolved, first.table_rows) == \
        (second.rows_read, second.rows_accepted, second.rows_rejected, second.duplicates_resolved, second.table_rows)
    pd.testing.assert_frame_equal(table_1, load_notes(config))
    pd.testing.assert_frame_equal(rejects_1, rejects_of(second))
    assert [p.name for p in config.rejects_dir.iterdir()] == [first.rejects_path.name]   # no leftovers

    real_notes.loc[0, "published_at"] = "2023-09-01 12:00"          # fixed: stale rejects file removed
    fixed = ingest_file(write_csv(real_notes, path), NOTES, config)
    assert fixed.rejects_path is None and not first.rejects_path.exists()


def test_upsert_keeps_other_rows_replace_does_not(real_notes, config, tmp_path):
    ingest_file(write_csv(real_notes.head(5), tmp_path / "a.csv"), NOTES, config)
    update = real_notes.iloc[3:8].copy()
    update["likes"] = "1"
    report = ingest_file(write_csv(update, tmp_path / "b.csv"), NOTES, config)
    stored = load_notes(config).set_index("note_id")
    assert report.table_rows == len(stored) == 8
    assert (stored.loc[update["note_id"], "likes"] == 1).all()
    assert (stored.loc[real_notes["note_id"][:3], "likes"] != 1).all()
    report = ingest_file(tmp_path / "b.csv", NOTES, config, mode="replace")
    assert report.table_rows == 5 and sorted(load_notes(config)["note_id"]) == sorted(update["note_id"])


# ---- other formats ------------------------------------------------------------------------------------
def test_jsonl_input_keeps_lists_and_rejects_bad_lines(real_notes, config, tmp_path):
    path = tmp_path / "notes.jsonl"
    lines = []
    for i, row in real_notes.head(4).iterrows():
        record = row.to_dict()
        record["tags"] = ["露营", "装备"] if i == 0 else record["tags"]
        record["likes"] = int(record["likes"])                    # JSON numbers are fine
        record["is_commercial"] = False
        lines.append(json.dumps(record, ensure_ascii=False))
    lines.insert(2, '{"note_id": "broken", "title": ')            # 3rd record: not JSON
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    report = ingest_file(path, NOTES, config)
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (5, 4, 1)
    rejects = rejects_of(report)
    assert rejects["row"].tolist() == ["3"] and "invalid JSON on line 3" in rejects.loc[0, "reason"]
    stored = load_notes(config).set_index("note_id")
    assert stored.loc[real_notes.loc[0, "note_id"], "tags"] == ["露营", "装备"]
    assert stored.loc[real_notes.loc[1, "note_id"], "likes"] == int(real_notes.loc[1, "likes"])


def test_parquet_input_real_demo_slice(config, tmp_path):
    demo = pd.read_parquet(DEMO_NOTES).iloc[::500].reset_index(drop=True)   # 10 real notes, typed columns
    demo.loc[3, "likes"] = -3
    path = tmp_path / "slice.parquet"
    demo.to_parquet(path, index=False)
    report = ingest_file(path, NOTES, config)
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (10, 9, 1)
    assert rejects_of(report).loc[0, "row"] == "4"
    stored = load_notes(config).set_index("note_id")
    expected = demo.drop(index=3).set_index("note_id").sort_index()
    assert stored.index.tolist() == expected.index.tolist()
    assert (stored["published_at"] == expected["published_at"]).all()
    assert stored["tags"].tolist() == [list(t) for t in expected["tags"]]
    assert (stored["likes"] == expected["likes"]).all()


def test_excel_input(real_notes, config, tmp_path):
    path = tmp_path / "notes.xlsx"
    frame = real_notes.copy()
    frame["likes"] = frame["likes"].astype(int)                     # numeric cells
    frame["published_at"] = pd.to_datetime(frame["published_at"])   # real Excel date cells
    frame.loc[7, "likes"] = -1
    frame.to_excel(path, index=False)
    report = ingest_file(path, NOTES, config)
    assert (report.rows_accepted, report.rows_rejected) == (7, 1)
    assert rejects_of(report).loc[0, "row"] == "8"                  # spreadsheet line 9
    stored = load_notes(config).set_index("note_id")
    first = real_notes.loc[0]
    assert stored.loc[first["note_id"], "published_at"] == pd.Timestamp(first["published_at"], tz="Asia/Shanghai")


def test_whole_demo_corpus_ingests_cleanly(config):
    report = ingest_file(DEMO_NOTES, NOTES, config)
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (5000, 5000, 0)


# ---- hashed user ids ------------------------------------------------------------------------------
def test_user_ids_are_hashed_everywhere(config, tmp_path):
    raw_ids = ["raw-user-alpha-93751", "raw-user-bravo-28466", "raw-user-charlie-55120"]
    frame = pd.DataFrame({
        "user_id": [raw_ids[0], raw_ids[1], raw_ids[2], raw_ids[0], raw_ids[1]],
        "note_id": ["bili_BV1114y1y7Tf"] * 5,
        "action": ["like", "read", "collect", "fly", "share"],          # 'fly' is not an action
        "ts": ["2023-09-01 10:00", "2023-09-01 10:05", "2023-09-01 10:06", "2023-09-01 10:07", "bad"],
    })
    report = ingest_file(write_csv(frame, tmp_path / "engagements.csv"), ENGAGEMENTS, config)
    assert (report.rows_accepted, report.rows_rejected) == (3, 2)
    salt = resolve_id_salt(config)
    expected = {r: hashlib.sha256((salt + r).encode()).hexdigest()[:16] for r in raw_ids}

    stored = load_table(config, "engagements")
    assert set(stored["user_id"]) == set(expected.values())
    rejects_text = report.rejects_path.read_text(encoding="utf-8-sig")
    assert "not one of" in rejects_text and "bad date" in rejects_text
    assert expected[raw_ids[0]] in rejects_text and expected[raw_ids[1]] in rejects_text

    db_bytes = b"".join(p.read_bytes() for p in config.db_path.parent.glob("miner.duckdb*"))
    assert expected[raw_ids[2]].encode() in db_bytes                # control: stored strings are visible
    for raw in raw_ids:
        assert raw.encode() not in db_bytes
        assert raw not in rejects_text
    assert all(raw not in e.reason for e in report.errors for raw in raw_ids)


# ---- contract over every input schema --------------------------------------------------------------
_VALID = {"text": "露营装备推荐", "int": "3", "float": "12.5", "datetime": "2023-09-01 10:00",
          "date": "2023-09-01", "bool": "true", "list": "露营|装备"}


def _valid_row(schema, i: int) -> dict:
    row = {}
    for col in schema.columns:
        if col.dtype == "str":
            row[col.name] = col.allowed[i % len(col.allowed)] if col.allowed else f"{col.name}-{i}"
        else:
            row[col.name] = _VALID[col.dtype]
    return row


@pytest.mark.parametrize("name", sorted(INPUT_SCHEMAS))
def test_every_input_schema_round_trips(name, config, tmp_path):
    schema = INPUT_SCHEMAS[name]
    rows = [_valid_row(schema, i) for i in range(3)]
    blank = next(c.name for c in schema.columns if c.required)   # a required column present but empty
    rows.append({**_valid_row(schema, 3), blank: ""})
    report = ingest_file(write_csv(pd.DataFrame(rows), tmp_path / f"{name}.csv"), schema, config)
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (4, 3, 1)
    assert rejects_of(report).loc[0, "column"] == blank
    stored = load_table(config, name)
    assert list(stored.columns) == schema.names and len(stored) == 3
    for col in schema.columns:
        value = stored[col.name].iloc[0]
        if col.dtype == "datetime":
            assert value == pd.Timestamp("2023-09-01 10:00", tz="Asia/Shanghai")
        elif col.dtype == "date":
            assert value == dt.date(2023, 9, 1)
        elif col.dtype == "int":
            assert stored[col.name].dtype == "int64" and value == 3
        elif col.dtype == "float":
            assert value == 12.5
        elif col.dtype == "bool":
            assert stored[col.name].dtype == "boolean" and bool(value)
        elif col.dtype == "list":
            assert value == ["露营", "装备"]
        elif col.name in schema.hashed_ids:
            salt = resolve_id_salt(config)
            hashed = {hashlib.sha256((salt + f"{col.name}-{i}").encode()).hexdigest()[:16] for i in range(3)}
            assert set(stored[col.name]) == hashed


def test_orders_latest_ts_wins(config, tmp_path):
    frame = pd.DataFrame({
        "order_id": ["o1", "o1", "o2"], "user_id": ["u1", "u1", "u2"], "brand": ["b", "b", "b"],
        "amount": ["¥10.5", "20", "-3"], "ts": ["2023-09-02 10:00", "2023-09-01 10:00", "2023-09-01"],
    })
    report = ingest_file(write_csv(frame, tmp_path / "orders.csv"), ORDERS, config)
    assert (report.rows_accepted, report.rows_rejected, report.duplicates_resolved) == (1, 1, 1)
    assert load_table(config, "orders")["amount"].tolist() == [10.5]
    assert "negative" in rejects_of(report).loc[0, "reason"]


def test_ragged_csv_line_goes_to_rejects_and_the_rest_is_ingested(real_notes, config, tmp_path):
    path = write_csv(real_notes.head(3), tmp_path / "broken.csv")
    with path.open("a", encoding="utf-8") as fh:
        fh.write("x,y,z,1,2,3,4,5,6,7,8,9,10,11,12,13\n")          # 16 fields under a 13-column header
    ragged_line = path.read_text(encoding="utf-8").count("\n")   # physical line just written (1-based)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(real_notes.iloc[[3]].to_csv(index=False, header=False))
    report = ingest_file(path, NOTES, config)
    assert (report.rows_read, report.rows_accepted, report.rows_rejected, report.ragged_lines) == (5, 4, 1, 1)
    rejects = rejects_of(report)
    assert rejects.loc[0, ["row", "column"]].tolist() == ["4", "(line)"]      # 4th record; only the line reason
    assert rejects.loc[0, "reason"] == (f"CSV 列数不符 ragged line {ragged_line}: 16 fields, the header has 13; "
                                        "extra fields dropped")
    assert "ragged CSV lines: 1" in report.summary()
    assert rejects.loc[0, "note_id"] == "x"                           # fields kept by position
    assert sorted(load_notes(config)["note_id"]) == sorted(real_notes["note_id"][:4])


def _stored_tables(config) -> set[str]:
    import duckdb
    if not config.db_path.exists():
        return set()
    with duckdb.connect(str(config.db_path), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_ragged_line_after_arrow_delivered_chunks(real_notes, config, tmp_path, monkeypatch):
    """Arrow streams a few blocks, then meets the ragged line: the Python reader resumes after them."""
    import miner.ingest.read as read
    monkeypatch.setattr(read, "_BLOCK_BYTES", 4096)                   # several Arrow blocks
    resumed = []
    python_reader = read._iter_csv_py
    monkeypatch.setattr(read, "_iter_csv_py", lambda *a, **k: resumed.append(k["skip_records"]) or python_reader(*a, **k))
    frame = pd.concat([real_notes] * 5, ignore_index=True)
    frame["note_id"] = [f"n{i}" for i in range(len(frame))]
    path = write_csv(frame, tmp_path / "big.csv")
    with path.open("a", encoding="utf-8") as fh:
        fh.write("only,three,fields\n")
        fh.write(frame.iloc[[0]].assign(note_id="last").to_csv(index=False, header=False))
    report = ingest_file(path, NOTES, config, chunk_rows=3)
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (42, 41, 1)
    assert rejects_of(report)["row"].tolist() == ["41"]
    assert resumed and 0 < resumed[0] < 40                          # Arrow had delivered some rows
    assert sorted(load_notes(config)["note_id"]) == sorted([*frame["note_id"], "last"])
