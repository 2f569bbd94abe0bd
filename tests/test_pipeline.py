"""The core job end to end: notes → build_topics → snapshot on disk → load → predict; and its CLI.

Real text: 240 online-shopping reviews (洗发水/水果/手机/酒店) as notes. The hashing embedder keeps
most tests fast (it is lexical: it checks the plumbing, not topic quality); the slow test runs the
real e5 model and checks that the topics are the review categories.
"""
import json

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from miner.topics import snapshot as persist
from miner.cli import main
from miner.config import MinerConfig
from miner.topics.embed import HashingEmbedder
from miner.topics.snapshot import latest_run_id, list_snapshots, load_snapshot
from miner.topics.pipeline import build_topics, notes_texts, predict_texts


@pytest.fixture(autouse=True)
def no_ambient_config(monkeypatch):
    """MINER_* variables override config files (and test_app's session workspace sets some)."""
    import os
    for key in [k for k in os.environ if k.startswith("MINER_")]:
        monkeypatch.delenv(key)


def test_build_writes_a_complete_snapshot_and_moves_latest(config, review_notes):
    stages = []
    result = build_topics(config, review_notes, embedder=HashingEmbedder(), show_progress=False,
                          on_progress=lambda stage, frac: stages.append((stage, frac)))
    snap = load_snapshot(config)
    assert snap.run_id == result.run_id == latest_run_id(config)
    assert len(snap.notes) == len(snap.assignments) == len(snap.embeddings) == len(review_notes)
    assert sorted(snap.topics["topic_id"]) == list(range(result.n_topics))
    assigned = snap.assignments["topic_id"]
    sizes = assigned[assigned >= 0].value_counts().sort_index()
    assert sizes.tolist() == snap.topics.sort_values("topic_id")["size"].tolist()
    assert snap.meta["data_hash"] and snap.meta["embedding"]["model_id"] == HashingEmbedder().model_id
    assert snap.meta["clusterer"]["params"]["n_neighbors"] == 15
    assert not [p for p in config.snapshots_dir.iterdir() if p.name.startswith(".tmp")]   # scratch removed too
    # embeddings are read from disk on use: a read-only memory map, unit rows as built
    assert isinstance(snap.embeddings, np.memmap) and not snap.embeddings.flags.writeable
    np.testing.assert_allclose(np.linalg.norm(snap.embeddings, axis=1), 1.0, atol=1e-5)
    assert snap.clusterer.reference_.shape[0] == len(review_notes)   # below max_train_size: every note
    # progress only moves forward, and embedding reports its own count
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert "向量化 embedding 240/240" in [s for s, _ in stages]


def test_predict_returns_the_built_topics_for_the_built_notes(config, review_notes):
    build_topics(config, review_notes, embedder=HashingEmbedder(), show_progress=False)
    snap = load_snapshot(config)
    pred = predict_texts(snap, notes_texts(snap.notes), embedder=HashingEmbedder())
    np.testing.assert_array_equal(pred["topic_id"].to_numpy(), snap.assignments["topic_id"].to_numpy())
    with pytest.raises(ValueError, match="same embedding model"):
        predict_texts(snap, ["换个模型"], embedder=HashingEmbedder(dim=64))


def test_a_failed_write_keeps_the_previous_snapshot_serving(config, review_notes, monkeypatch):
    first = build_topics(config, review_notes, embedder=HashingEmbedder(), show_progress=False, run_id="first")

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(persist.VectorIndex, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        build_topics(config, review_notes, embedder=HashingEmbedder(), show_progress=False, run_id="second")
    assert latest_run_id(config) == first.run_id == "first"
    assert list_snapshots(config) == ["first"]
    assert not [p for p in config.snapshots_dir.iterdir() if p.name.startswith(".tmp")]
    assert len(load_snapshot(config).assignments) == len(review_notes)


def test_loading_refuses_pickle(config, review_notes):
    result = build_topics(config, review_notes, embedder=HashingEmbedder(), show_progress=False)
    (config.snapshots_dir / result.run_id / "model.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(ValueError, match="pickle"):
        load_snapshot(config)


def test_no_snapshot_is_a_clear_error(config):
    with pytest.raises(FileNotFoundError, match="python -m miner build"):
        load_snapshot(config)


def test_cli_ingest_build_topics_predict(config, review_notes, tmp_path, capsys):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"models_dir": str(config.models_dir), "workspace_dir": str(config.workspace_dir),
                               "embedding_model": "hashing", "min_topic_size": 10}), encoding="utf-8")
    notes_csv = tmp_path / "notes.csv"
    review_notes.assign(tags="").to_csv(notes_csv, index=False)
    run = lambda *argv: main(["--config", str(cfg), *argv])        # noqa: E731

    assert run("ingest", str(notes_csv)) == 0
    assert "240" in capsys.readouterr().out
    assert run("build", "--n-topics", "4") == 0
    out = capsys.readouterr().out
    assert "240 篇笔记 notes → 4 个话题 topics" in out
    assert run("topics") == 0
    out = capsys.readouterr().out
    assert out.count("关键词") == 4
    assert run("predict", "酒店前台服务很好，房间干净", "这款手机电池不耐用") == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 2
    assert run("predict") == 2                                     # no texts: clear error, no traceback
    assert "give texts" in capsys.readouterr().err


@pytest.mark.slow
def test_real_model_end_to_end(review_notes, tmp_path):
    from miner.topics.embed import get_embedder
    config = MinerConfig(models_dir=tmp_path / "models", workspace_dir=tmp_path / "ws", min_topic_size=10)
    embedder = get_embedder(config)
    result = build_topics(config, review_notes, embedder=embedder, show_progress=False)
    snap = load_snapshot(config)
    by_note = snap.assignments.set_index("note_id")["topic_id"]
    cats = review_notes.set_index("note_id")["category"]
    assert normalized_mutual_info_score(cats[by_note.index], by_note) > 0.5, result
    pred = predict_texts(snap, ["酒店房间很干净，前台服务热情", "手机屏幕很清晰，电池耐用"], embedder=embedder)
    hotel, phone = pred["topic_id"].tolist()
    members = snap.assignments.merge(review_notes[["note_id", "category"]], on="note_id")
    share = lambda topic, cat: (members.loc[members.topic_id == topic, "category"] == cat).mean()   # noqa: E731
    assert share(hotel, "酒店") > 0.5 and share(phone, "手机") > 0.5


def test_notes_are_sorted_by_id_once_and_a_sorted_frame_is_not_copied(review_notes):
    from miner.topics.pipeline import sorted_by_note_id
    shuffled = review_notes.sample(frac=1.0, random_state=0)
    ordered = sorted_by_note_id(shuffled)
    assert ordered["note_id"].is_monotonic_increasing and list(ordered.index) == list(range(len(ordered)))
    assert sorted(shuffled["note_id"]) == list(ordered["note_id"])
    assert sorted_by_note_id(ordered) is ordered                   # already in order: no second copy
    assert sorted_by_note_id(ordered.set_index(ordered.index + 1)) is not ordered   # not a 0…n−1 index


def test_segmenting_and_embedding_in_text_chunks_gives_the_same_snapshot(tmp_path, review_notes, monkeypatch):
    """Texts are made a chunk at a time (memory): tokens, vectors, data hash and topics equal the
    one-chunk build, and a text repeated in a later chunk is embedded once (a cache hit)."""
    from miner.config import MinerConfig
    from miner.topics import pipeline

    class CountingEmbedder(HashingEmbedder):
        def encode(self, texts, kind="passage", show_progress=None):
            if kind == "passage":                                           # notes, not label words
                self.seen = getattr(self, "seen", 0) + len(texts)
            return super().encode(texts, kind=kind, show_progress=show_progress)

    notes = review_notes.copy()
    notes.loc[notes.index[-1], ["title", "body"]] = notes.loc[notes.index[0], ["title", "body"]].to_numpy()
    snaps = []
    for name, chunk in (("one", pipeline.TEXT_CHUNK_ROWS), ("many", 37)):
        monkeypatch.setattr(pipeline, "TEXT_CHUNK_ROWS", chunk)
        config = MinerConfig(models_dir=tmp_path / name / "models", workspace_dir=tmp_path / name / "ws",
                             embedding_model="hashing", min_topic_size=10)
        embedder = CountingEmbedder()
        stages = []
        result = build_topics(config, notes, embedder=embedder, show_progress=False,
                              on_progress=lambda stage, frac: stages.append((stage, frac)))
        snaps.append(load_snapshot(config))
        assert embedder.seen == len(set(notes_texts(notes)))                # every distinct text once
        assert 0 < result.embedded_new <= len(notes)
        assert [f for _, f in stages] == sorted(f for _, f in stages)
    one, many = snaps
    assert one.meta["data_hash"] == many.meta["data_hash"] == persist_hash(notes)
    assert [list(t) for t in one.notes["tokens"]] == [list(t) for t in many.notes["tokens"]]
    np.testing.assert_allclose(one.embeddings, many.embeddings, atol=1e-6)
    assert one.assignments["topic_id"].tolist() == many.assignments["topic_id"].tolist()


def persist_hash(notes):
    from miner.topics.pipeline import data_hash, sorted_by_note_id
    ordered = sorted_by_note_id(notes)
    return data_hash(ordered, notes_texts(ordered))
