"""miner.ingest.notes_file: the stored notes memory-mapped from an Arrow file, as a build reads them.

Real text: the demo corpus's notes (titles, bodies, hashtags, categories) and the 240 online-
shopping reviews; the hashing embedder keeps builds fast.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from miner import schema
from miner.config import MinerConfig
from miner.ingest import load_notes
from miner.ingest.notes_file import export_notes_file, open_notes_file, write_notes_file
from miner.parquet import write_parquet
from miner.topics.aggregates import AGGREGATES_FILE, daily_aggregates
from miner.topics.snapshot import load_snapshot
from miner.workspace import Workspace

ARROW_COLUMNS = (schema.NOTE_ID, schema.TITLE, schema.BODY, schema.TAGS, schema.AUTHOR_ID, schema.CATEGORY)


def _demo_workspace(root: Path) -> tuple[Workspace, MinerConfig]:
    config = MinerConfig(models_dir=root / "models", workspace_dir=root / "ws", embedding_model="hashing",
                         min_topic_size=10)
    workspace = Workspace(config)
    workspace.ingest_demo_notes()
    return workspace, config


@pytest.fixture
def demo(tmp_path):
    return _demo_workspace(tmp_path / "a")


def test_mapped_notes_hold_the_stored_values_without_copying_texts(demo, tmp_path):
    _, config = demo
    stored = load_notes(config)
    path = export_notes_file(config, tmp_path / "notes.arrow")
    allocated = pa.total_allocated_bytes()
    mapped = open_notes_file(path, config)

    # texts come from the mapped file: Arrow allocates nothing close to their size
    assert pa.total_allocated_bytes() - allocated < path.stat().st_size / 20
    assert list(mapped.columns) == list(stored.columns) and len(mapped) == len(stored)
    for name in ARROW_COLUMNS:
        assert isinstance(mapped[name].dtype, pd.ArrowDtype), name
    for name in stored.columns:
        expected = [None if v is None else v for v in stored[name].tolist()]
        got = [None if v is pd.NA else v for v in mapped[name].tolist()]
        assert got == expected, name
        if not isinstance(mapped[name].dtype, pd.ArrowDtype):
            assert mapped[name].dtype == stored[name].dtype, name
    assert schema.strictly_increasing(mapped[schema.NOTE_ID])


def test_missing_text_and_lists_read_as_load_notes_gives_them(tmp_path):
    frame = pd.DataFrame({name: [None, None] for name in schema.NOTES.names})
    frame[schema.NOTE_ID] = ["a", "b"]
    frame[schema.TAGS] = [None, ["露营"]]
    frame[schema.PUBLISHED_AT] = pd.Timestamp("2024-05-20 08:00", tz="Asia/Shanghai")
    for name in schema.ENGAGEMENT_COLS:
        frame[name] = 0
    path = write_notes_file([pa.RecordBatch.from_pandas(frame, preserve_index=False)], tmp_path / "n.arrow")
    notes = open_notes_file(path, MinerConfig(workspace_dir=tmp_path))
    assert notes[schema.TITLE].tolist() == ["", ""] and notes[schema.BODY].tolist() == ["", ""]
    assert notes[schema.TAGS].tolist() == [[], ["露营"]]
    assert notes[schema.AUTHOR_ID].isna().all()
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_empty_table_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no notes"):
        write_notes_file([], tmp_path / "n.arrow")
    assert not (tmp_path / "n.arrow").exists()


def test_strictly_increasing_sees_duplicates_and_disorder_in_both_backings():
    for values, expected in ((["a", "b", "c"], True), (["a", "a", "b"], False), (["b", "a"], False),
                             (["笔记1", "笔记2"], True), (["z"], True)):
        assert schema.strictly_increasing(pd.Series(values, dtype=object)) is expected
        assert schema.strictly_increasing(pd.Series(values, dtype=pd.ArrowDtype(pa.string()))) is expected


def _rows_frame(mapped: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({c: mapped[c].tolist() for c in mapped.columns})


def test_parquet_row_groups_of_mapped_notes_read_back_as_the_plain_frame(demo, tmp_path):
    _, config = demo
    mapped = open_notes_file(export_notes_file(config, tmp_path / "notes.arrow"), config).head(700)
    plain = load_notes(config).head(700)
    write_parquet(mapped, tmp_path / "mapped.parquet", rows_per_group=100)
    write_parquet(plain, tmp_path / "plain.parquet", rows_per_group=100)
    back = pd.read_parquet(tmp_path / "mapped.parquet")
    assert not any(isinstance(t, pd.ArrowDtype) for t in back.dtypes)      # plain dtypes, like any snapshot
    pd.testing.assert_frame_equal(back, pd.read_parquet(tmp_path / "plain.parquet"))


def test_daily_aggregates_of_mapped_notes_equal_the_plain_ones_aligned_or_not(demo, tmp_path):
    _, config = demo
    mapped = open_notes_file(export_notes_file(config, tmp_path / "notes.arrow"), config)
    plain = load_notes(config)
    plain.loc[::7, schema.CATEGORY] = None                  # some notes without a category
    mapped[schema.CATEGORY] = pd.Series(plain[schema.CATEGORY].tolist(), dtype=mapped[schema.CATEGORY].dtype)
    topics = np.random.default_rng(0).integers(-1, 6, len(plain))
    aligned = pd.DataFrame({schema.NOTE_ID: mapped[schema.NOTE_ID].array, schema.TOPIC_ID: topics})
    result = daily_aggregates(mapped, aligned)

    days = plain[schema.PUBLISHED_AT].dt.tz_convert("Asia/Shanghai").dt.tz_localize(None).dt.normalize()
    oracle = pd.DataFrame({schema.TOPIC_ID: topics, "day": days, schema.CATEGORY: plain[schema.CATEGORY].fillna(""),
                           "engagement": schema.engagement(plain)}).groupby(
        [schema.TOPIC_ID, "day", schema.CATEGORY]).agg(notes=("engagement", "size"),
                                                       engagement=("engagement", "sum")).reset_index()
    pd.testing.assert_frame_equal(result[oracle.columns], oracle, check_dtype=False)
    pd.testing.assert_frame_equal(daily_aggregates(plain, aligned.assign(**{schema.NOTE_ID: plain[schema.NOTE_ID]})),
                                  result)
    # by note id when the rows differ: shuffled, 50 notes without a topic (they count as outliers)
    shuffled = aligned.assign(**{schema.NOTE_ID: plain[schema.NOTE_ID]}).sample(frac=1.0, random_state=0)
    outliers = aligned.assign(**{schema.TOPIC_ID: np.where(plain[schema.NOTE_ID].isin(shuffled[schema.NOTE_ID].iloc[-50:]),
                                                           -1, topics)})
    pd.testing.assert_frame_equal(daily_aggregates(mapped, shuffled.iloc[:-50]), daily_aggregates(mapped, outliers))


def test_a_build_from_mapped_notes_writes_the_snapshot_a_build_from_the_frame_writes(tmp_path):
    """Two workspaces on the demo notes: one builds from load_notes' frame, one from the mapped
    file (Workspace.build's default). First build, a keyword split, then a rebuild (warm start,
    lineage, the split replayed): every table of both snapshots is the same."""
    from miner.topics.embed import HashingEmbedder
    snapshots = {}
    for mode in ("frame", "mapped"):
        workspace, config = _demo_workspace(tmp_path / mode)

        def build():
            notes = load_notes(config).head(1500) if mode == "frame" else None
            return workspace.build(notes=notes, limit=1500, embedder=HashingEmbedder())
        build()
        first = load_snapshot(config)
        biggest = int(first.topics.sort_values("size").iloc[-1][schema.TOPIC_ID])
        keyword = first.topics.set_index(schema.TOPIC_ID).loc[biggest, "keywords"][0]
        workspace.split_topic(biggest, "tester", keyword=keyword)
        build()
        snapshots[mode] = load_snapshot(config)
    frame, mapped = snapshots["frame"], snapshots["mapped"]
    assert mapped.meta["data_hash"] == frame.meta["data_hash"]
    pd.testing.assert_frame_equal(mapped.notes, frame.notes)
    pd.testing.assert_frame_equal(mapped.assignments, frame.assignments)
    pd.testing.assert_frame_equal(mapped.topics.drop(columns="born_at"), frame.topics.drop(columns="born_at"))
    pd.testing.assert_frame_equal(pd.read_parquet(mapped.path / AGGREGATES_FILE),
                                  pd.read_parquet(frame.path / AGGREGATES_FILE))
    assert mapped.meta["registry"]["delta"]["events"] == frame.meta["registry"]["delta"]["events"]
    assert len(mapped.topics) > 3 and mapped.meta["params"]["warm_start"]
