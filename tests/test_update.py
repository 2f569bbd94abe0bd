"""Incremental updates: only new notes are embedded, they join existing topics or stay −1, a new
category arriving day by day becomes an emerging topic after it persists, and a kill -9 during an
update leaves the previous snapshot serving and the registry consistent."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miner.topics import registry
from miner.topics.embed import HashingEmbedder
from miner.topics.pipeline import build_topics, predict_texts
from miner.topics.snapshot import TMP_PREFIX, latest_run_id, load_snapshot
from miner.topics.update import update_topics

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_ambient_config(monkeypatch):
    for key in [k for k in os.environ if k.startswith("MINER_")]:
        monkeypatch.delenv(key)


@pytest.fixture
def review_notes(review_notes) -> pd.DataFrame:
    """Published over five days, 48 a day."""
    days = pd.to_timedelta(np.arange(len(review_notes)) % 5, unit="D")
    return review_notes.assign(published_at=pd.Timestamp("2023-09-01", tz="Asia/Shanghai") + days)


def test_update_embeds_only_new_notes_and_extends_the_snapshot(config, review_notes):
    base, new = review_notes[review_notes.index % 10 != 0], review_notes[review_notes.index % 10 == 0]
    build_topics(config, base, embedder=HashingEmbedder(), show_progress=False)
    before = load_snapshot(config)
    refreshed = base.head(3).assign(likes=99)
    report = update_topics(config, pd.concat([new, refreshed]), embedder=HashingEmbedder())
    after = load_snapshot(config)
    assert report.run_id == after.run_id == latest_run_id(config) != before.run_id
    assert report.n_new == len(new) and report.n_updated == 3 and report.embedded_new == len(new)
    assert len(after.notes) == len(after.embeddings) == len(after.assignments) == len(review_notes)
    assert report.n_assigned + report.n_unassigned == len(new) and report.n_assigned >= 0.7 * len(new)
    old = before.assignments.set_index("note_id")["topic_id"]
    assert (after.assignments.set_index("note_id")["topic_id"].loc[old.index] == old).all()   # old notes keep topics
    assert after.notes.set_index("note_id").loc[refreshed["note_id"], "likes"].eq(99).all()
    # new notes get what predict gives them
    got = after.assignments.set_index("note_id")["topic_id"].loc[new["note_id"]].to_numpy()
    pred = predict_texts(after, new["body"].tolist(), embedder=HashingEmbedder())["topic_id"].to_numpy()
    assert (got == pred).mean() >= 0.95
    assert registry.verify_registry(config) == []
    assert update_topics(config, new, embedder=HashingEmbedder()).embedded_new == 0   # nothing new twice


def test_an_update_keeps_the_labels_of_topics_it_barely_changes(config, review_notes):
    base, new = review_notes.iloc[:-4], review_notes.iloc[-4:]
    build_topics(config, base, embedder=HashingEmbedder(), show_progress=False)
    before = load_snapshot(config).topics.set_index("topic_id")
    update_topics(config, new, embedder=HashingEmbedder())
    after = load_snapshot(config).topics.set_index("topic_id")
    grown = (after["size"] - before["size"].reindex(after.index)).abs() / before["size"].reindex(after.index)
    barely = grown[grown <= 0.1].index
    assert len(barely) == len(before)                       # 4 new notes: no topic moves by a tenth
    for column in ("auto_label", "label", "coherence"):
        assert after.loc[barely, column].tolist() == before.loc[barely, column].tolist()
    for column in ("keywords", "representative_note_ids"):
        assert [list(v) for v in after.loc[barely, column]] == [list(v) for v in before.loc[barely, column]]
    assert (after["size"].sum() - before["size"].sum()) <= len(new)


def test_update_refuses_another_embedding_model(config, review_notes):
    build_topics(config, review_notes, embedder=HashingEmbedder(), show_progress=False)
    with pytest.raises(ValueError, match="same embedding model"):
        update_topics(config, review_notes.head(2), embedder=HashingEmbedder(dim=128))


def test_a_new_category_becomes_an_emerging_topic_once_it_persists(config, review_notes):
    hotels = review_notes[review_notes["category"] == "酒店"].reset_index(drop=True)
    rest = review_notes[review_notes["category"] != "酒店"]
    build_topics(config, rest, embedder=HashingEmbedder(), show_progress=False)
    reports = []
    for day in range(3):                                  # 20 hotel reviews a day, published that day
        batch = hotels.iloc[day * 20:(day + 1) * 20].assign(
            published_at=pd.Timestamp("2023-09-06", tz="Asia/Shanghai") + pd.Timedelta(days=day))
        reports.append(update_topics(config, batch, embedder=HashingEmbedder()))
    born = [r.emerging_ids for r in reports]
    assert born[0] == []                                  # seen once: a candidate only
    assert reports[0].n_candidates >= 1
    new_ids = [t for ids in born for t in ids]
    assert len(new_ids) >= 1 and born[1]                  # promoted the next day
    snap = load_snapshot(config)
    hotel_topics = snap.assignments.set_index("note_id")["topic_id"].loc[hotels["note_id"]]
    emerged = hotel_topics[hotel_topics.isin(new_ids)]
    assert len(emerged) >= 20                             # lexical toy embedder: others join old topics
    members = snap.assignments[snap.assignments["topic_id"].isin(new_ids)]["note_id"]
    assert members.isin(hotels["note_id"]).mean() >= 0.8   # the emerging topic is the hotel reviews
    flags = registry.topic_flags(config, new_within_days=1).set_index("topic_id")
    assert flags.loc[new_ids, "is_new"].all()
    assert (registry.registry_frame(config).set_index("topic_id").loc[new_ids, "born_event"] == "emerging").all()
    assert registry.verify_registry(config) == []


# --------------------------------------------------------------------------- crash safety

CHILD = textwrap.dedent("""
    import sys, time, pandas as pd
    from pathlib import Path
    from miner.config import MinerConfig
    from miner.topics.embed import HashingEmbedder
    import miner.topics.registry as registry, miner.topics.snapshot as snapshot
    from miner.topics.update import update_topics
    models, ws, notes_path, point, marker = sys.argv[1:6]
    def hang(*args, **kwargs):
        Path(marker).write_text("here")
        time.sleep(120)
    if point == "before_latest":
        snapshot.write_text_atomic = hang
    elif point == "before_registry":                 # the update's own delta, not the start-up sync
        original = registry.apply_delta
        registry.apply_delta = lambda config, delta: hang() if delta["kind"] == "update" else original(config, delta)
    elif point == "inside_registry_transaction":
        registry.now_at = hang                      # called inside apply_delta's transaction, after the inserts
    config = MinerConfig(models_dir=Path(models), workspace_dir=Path(ws), embedding_model="hashing", min_topic_size=10)
    update_topics(config, pd.read_parquet(notes_path), embedder=HashingEmbedder())
""")


def run_and_kill(config, notes_path: Path, point: str, tmp_path: Path) -> None:
    marker = tmp_path / f"{point}.marker"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(config.models_dir), str(config.workspace_dir),
                              str(notes_path), point, str(marker)], env=env, cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while not marker.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"child never reached {point}: {child.stdout.read().decode()[-2000:]}")
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL


@pytest.mark.parametrize("point", ["before_latest", "before_registry", "inside_registry_transaction"])
def test_kill_during_update_keeps_a_consistent_state(config, review_notes, tmp_path, point):
    base, new = review_notes[review_notes.index % 10 != 0], review_notes[review_notes.index % 10 == 0]
    build_topics(config, base, embedder=HashingEmbedder(), show_progress=False)
    served = latest_run_id(config)
    registry_before = registry.registry_frame(config)
    notes_path = tmp_path / "new.parquet"
    new.to_parquet(notes_path)
    run_and_kill(config, notes_path, point, tmp_path)

    if point == "before_latest":                         # the half-done run never became visible
        assert latest_run_id(config) == served
        assert registry.verify_registry(config) == []
        pd.testing.assert_frame_equal(registry.registry_frame(config), registry_before)
    else:                                                # the snapshot is serving; the registry catches up
        snap = load_snapshot(config)
        assert snap.run_id != served and len(snap.notes) == len(review_notes)
        assert registry.lineage_events(config, snap.run_id).empty      # nothing half-written
        assert registry.verify_registry(config) != []
        assert registry.sync_registry(config) is True
        assert registry.verify_registry(config) == []
    report = update_topics(config, new, embedder=HashingEmbedder())   # and work goes on
    assert registry.verify_registry(config) == [] and latest_run_id(config) == report.run_id


def test_a_burst_inside_an_old_topic_is_a_candidate_on_its_first_day(config, review_notes):
    """Phone reviews naming a new phone arrive in a burst: the old phone topic claims them firmly
    (they never reach the unassigned pool), yet they are a candidate on the first day they number
    min_size and an emerging topic at the next update."""
    phones = review_notes[review_notes["category"] == "手机"]
    held = phones.iloc[20:].reset_index(drop=True)            # 40 phone reviews the base never sees
    build_topics(config, review_notes.drop(phones.index[20:]), embedder=HashingEmbedder(), show_progress=False)
    launch = "华为Mate60 麒麟9000s 卫星通话 遥遥领先 "
    reports, claimed = [], []
    for day in range(2):
        batch = held.iloc[day * 12:(day + 1) * 12].assign(
            body=lambda d: launch + d["body"],
            published_at=pd.Timestamp("2023-09-06", tz="Asia/Shanghai") + pd.Timedelta(days=day))
        reports.append(update_topics(config, batch, embedder=HashingEmbedder()))
        if day == 0:
            asg = load_snapshot(config).assignments.set_index("note_id").loc[batch["note_id"]]
            claimed = asg["topic_id"] >= 0
    assert claimed.mean() >= 0.5                          # an old topic holds most of them
    assert reports[0].emerging_ids == [] and reports[0].n_candidates >= 1
    assert len(reports[1].emerging_ids) == 1
    snap = load_snapshot(config)
    members = snap.assignments[snap.assignments["topic_id"] == reports[1].emerging_ids[0]]["note_id"]
    assert len(members) >= config.min_topic_size and members.isin(held["note_id"].head(24)).mean() >= 0.8
    assert registry.verify_registry(config) == []


def test_a_large_note_index_stays_on_disk_through_build_and_update(config, review_notes, monkeypatch):
    """Above the flat threshold the note index's vectors live in ``notes.faiss.ivfdata`` (memory-mapped);
    an update writes a merged lists file of its own and leaves the previous snapshot's untouched."""
    import miner.topics.index as index_module
    monkeypatch.setattr(index_module, "choose_factory", lambda n, flat_threshold=0: "IVF4,Flat")
    base, new = review_notes[review_notes.index % 10 != 0], review_notes[review_notes.index % 10 == 0]
    build_topics(config, base, embedder=HashingEmbedder(), show_progress=False)
    before = load_snapshot(config)
    assert before.note_index.lists_file == before.path / "notes.faiss.ivfdata"
    lists_before = before.note_index.lists_file.read_bytes()
    update_topics(config, new, embedder=HashingEmbedder())
    after = load_snapshot(config)
    assert after.note_index.lists_file == after.path / "notes.faiss.ivfdata"
    assert after.note_index.ntotal == len(after.notes) == len(review_notes)
    assert before.note_index.lists_file.read_bytes() == lists_before
    # every note finds itself as its nearest neighbour, old rows and new
    _, rows = after.note_index.search(after.embeddings, 1)
    sims = np.einsum("ij,ij->i", after.embeddings, after.embeddings[rows[:, 0]])
    assert np.allclose(sims, 1.0, atol=1e-5)
    leftovers = [p.name for p in config.snapshots_dir.iterdir() if p.name.startswith(TMP_PREFIX)]
    assert leftovers == [], leftovers                               # build scratch folders removed
