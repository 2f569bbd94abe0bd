"""Topic-model snapshots: one folder per build under ``models/topic-model/<run_id>/``.

Folder contents (no pickle anywhere; loading refuses pickled arrays):

===========================  ==========================================================
``config.json``              miner version, run id, model id, data hash, seed, parameters,
                             index factory strings, library versions, clusterer state
``notes.parquet``            the notes used (notes schema + ``tokens`` list column)
``topics.parquet``           one row per topic (see ``miner.schema.TOPICS_COLUMNS``)
``assignments.parquet``      note_id → topic_id (−1 outlier), score
``embeddings.npy``           float32 (n_notes, d), L2-normalised, row i ↔ notes row i; loaded
                             memory-mapped read-only (pages are read on use, not held in RAM)
``centroids.npy``            float32 (n_topics, d): normalised mean embedding per topic
``topic_daily.parquet``      topic × local day × category counts and engagement
                             (``miner.topics.aggregates``; computed on load when absent)
``cluster_*.npy``            the clusterer's arrays: centroids (whitened space), centring vector,
                             whitening projection, training notes for neighbourhood smoothing
                             (at most the clusterer's ``max_train_size`` rows)
``notes.faiss``/``.json``    note index (row i ↔ notes row i)
``notes.faiss.ivfdata``      the note index's inverted lists when the index is IVF: kept on
                             disk and memory-mapped on load (absent for a flat index)
``topics.faiss``/``.json``   topic-centroid index (row i ↔ topic_id i)
===========================  ==========================================================

The folder is written under a temporary name and renamed into place; ``latest`` (a one-line text
file holding the run id) is then replaced atomically, so readers never see a half-written
snapshot and a failed build keeps the previous one serving.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pandas as pd

from miner.atomic import write_json_atomic, write_text_atomic
from miner.topics.aggregates import AGGREGATES_FILE, daily_aggregates
from miner.topics.cluster import TopicClusterer
from miner.config import MinerConfig
from miner.parquet import write_parquet
from miner.topics.index import VectorIndex

LATEST = "latest"
FORBIDDEN_SUFFIXES = (".pkl", ".pickle", ".joblib")
TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 6 * 3600      # a build folder untouched this long belongs to a dead build
RUN_ID_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,127}$")


@dataclass
class Snapshot:
    run_id: str
    path: Path
    meta: dict
    notes: pd.DataFrame
    topics: pd.DataFrame
    assignments: pd.DataFrame
    embeddings: np.ndarray          # read-only memory map of embeddings.npy
    centroids: np.ndarray
    clusterer: TopicClusterer
    note_index: VectorIndex
    topic_index: VectorIndex

    @property
    def model_id(self) -> str:
        return self.meta["embedding"]["model_id"]

    def notes_with_topics(self) -> pd.DataFrame:
        """Notes joined with their topic assignment and label."""
        out = self.notes.merge(self.assignments, on="note_id", how="left")
        return out.merge(self.topics[["topic_id", "label"]], on="topic_id", how="left")


def _snapshots_dir(config_or_dir) -> Path:
    if isinstance(config_or_dir, MinerConfig):
        return config_or_dir.snapshots_dir
    return Path(config_or_dir)


def save_snapshot(snapshots_dir: Path, run_id: str, meta: dict, notes: pd.DataFrame, topics: pd.DataFrame,
                  assignments: pd.DataFrame, embeddings: np.ndarray, centroids: np.ndarray,
                  clusterer: TopicClusterer, note_index: VectorIndex, topic_index: VectorIndex,
                  tokens=None) -> Path:
    """Write a complete snapshot folder, then point ``latest`` at it. ``tokens`` (a build's
    :class:`~miner.topics.tokens.TokenTable`) becomes the notes' ``tokens`` column."""
    snapshots_dir = Path(snapshots_dir)
    final = snapshots_dir / run_id
    if final.exists():
        raise FileExistsError(f"snapshot {final} already exists")
    snapshots_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(snapshots_dir)
    # A private temp folder per build: two builds never share (or delete) each other's folder.
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{run_id}-", dir=snapshots_dir))
    try:
        cluster_meta, cluster_arrays = clusterer.get_state()
        meta = {**meta, "run_id": run_id, "clusterer": cluster_meta,
                "indexes": {"notes": None, "topics": None}}
        extra = {"tokens": (tokens, pa.list_(pa.string()))} if tokens is not None else None
        write_parquet(notes, tmp / "notes.parquet", extra_columns=extra)   # row groups: one slice's Arrow copy at a time
        topics.to_parquet(tmp / "topics.parquet", index=False)
        write_parquet(assignments, tmp / "assignments.parquet")
        daily_aggregates(notes, assignments).to_parquet(tmp / AGGREGATES_FILE, index=False)
        np.save(tmp / "embeddings.npy", np.ascontiguousarray(embeddings, dtype=np.float32))
        np.save(tmp / "centroids.npy", np.ascontiguousarray(centroids, dtype=np.float32))
        for name, arr in cluster_arrays.items():
            np.save(tmp / f"cluster_{name}.npy", arr)
        note_index.save(tmp / "notes.faiss")
        topic_index.save(tmp / "topics.faiss")
        meta["indexes"] = {"notes": note_index.factory_, "topics": topic_index.factory_}
        write_json_atomic(tmp / "config.json", meta)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_text_atomic(snapshots_dir / LATEST, run_id + "\n")
    return final


def remove_stale_builds(snapshots_dir: Path, older_than_s: float = STALE_TMP_SECONDS) -> list[str]:
    """Delete ``.tmp-*`` folders left by killed builds (untouched for ``older_than_s``); a build
    still writing keeps touching its folder, so it is never removed."""
    removed = []
    cutoff = time.time() - older_than_s
    for path in Path(snapshots_dir).glob(f"{TMP_PREFIX}*"):
        try:
            newest = max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.iterdir())])
        except OSError:
            continue
        if newest < cutoff:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def check_run_id(run_id: str) -> str:
    """A run id names a folder directly under the snapshots folder, never a path."""
    if not RUN_ID_PATTERN.match(str(run_id)) or ".." in str(run_id):
        raise ValueError(f"--run takes a snapshot run id such as 20260101-120000-abc123, not a path: {run_id!r}")
    return str(run_id)


def latest_run_id(config_or_dir) -> str | None:
    pointer = _snapshots_dir(config_or_dir) / LATEST
    if not pointer.exists():
        return None
    return pointer.read_text(encoding="utf-8").strip() or None


def list_snapshots(config_or_dir) -> list[str]:
    root = _snapshots_dir(config_or_dir)
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_meta(config_or_dir, run_id: str) -> dict:
    """A snapshot's ``config.json`` alone (model, sizes, stamp): cheap, no table is read."""
    path = _snapshots_dir(config_or_dir) / run_id / "config.json"
    return json.loads(path.read_text(encoding="utf-8"))


def snapshot_catalog(config_or_dir) -> pd.DataFrame:
    """Every snapshot folder with its stamp (read from config.json only), newest first."""
    root = _snapshots_dir(config_or_dir)
    serving = latest_run_id(root)
    rows = []
    for run_id in list_snapshots(root):
        try:
            meta = read_meta(root, run_id)
        except (OSError, ValueError):
            continue
        rows.append({"serving": run_id == serving, "run_id": run_id, "created_at": meta.get("created_at", ""),
                     "n_notes": meta.get("n_notes"), "model": meta.get("embedding", {}).get("model_id", ""),
                     "data_hash": meta.get("data_hash", "")})
    frame = pd.DataFrame(rows, columns=["serving", "run_id", "created_at", "n_notes", "model", "data_hash"])
    return frame.sort_values("created_at", ascending=False).reset_index(drop=True)


def _load_npy(path: Path, mmap_mode: str | None = None) -> np.ndarray:
    return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)


def load_snapshot(config_or_dir, run_id: str | None = None, note_columns: list[str] | None = None) -> Snapshot:
    """Load a snapshot (the ``latest`` one by default). Refuses folders holding pickle files.

    ``note_columns``: read only these columns of ``notes.parquet`` (a rebuild's warm start and
    lineage need the note ids alone, not every text and token list of a large corpus)."""
    root = _snapshots_dir(config_or_dir)
    run_id = check_run_id(run_id) if run_id else latest_run_id(root)
    if run_id is None:
        raise FileNotFoundError(f"no topic snapshot under {root}; run `python -m miner build` first")
    path = root / run_id
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"snapshot {path} is missing or incomplete (no config.json)")
    pickled = [p.name for p in path.iterdir() if p.suffix in FORBIDDEN_SUFFIXES]
    if pickled:
        raise ValueError(f"refusing to load {path}: pickle files are not allowed ({', '.join(pickled)})")
    meta = read_meta(root, run_id)
    clusterer = TopicClusterer.from_state(meta["clusterer"], {
        f.name[len("cluster_"):-len(".npy")]: _load_npy(f) for f in sorted(path.glob("cluster_*.npy"))})
    return Snapshot(
        run_id=run_id, path=path, meta=meta,
        notes=pd.read_parquet(path / "notes.parquet", columns=note_columns),
        topics=pd.read_parquet(path / "topics.parquet"),
        assignments=pd.read_parquet(path / "assignments.parquet"),
        embeddings=_load_npy(path / "embeddings.npy", mmap_mode="r"),
        centroids=_load_npy(path / "centroids.npy"),
        clusterer=clusterer,
        note_index=VectorIndex.load(path / "notes.faiss"),
        topic_index=VectorIndex.load(path / "topics.faiss"),
    )
