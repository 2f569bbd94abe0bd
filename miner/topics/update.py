"""Daily runs without a rebuild, and rebuilds that keep topic ids.

* :func:`update_topics` — add new notes to the serving snapshot: embed only them (cache), assign
  them with the fitted clusterer (``−1`` when no topic claims them), look for emerging topics in
  the recent unassigned pool (:mod:`miner.topics.emerging`), write a new snapshot (``latest``
  moves only when it is complete), then apply the registry delta.
* :func:`warm_start_labels` and :func:`rebuild_ids` — used by
  :func:`miner.topics.pipeline.build_topics`: seed the clusterer with the previous topics and
  match its clusters to them (:func:`miner.topics.matching.match_topics`), so ids survive.
* :func:`write_snapshot` — the one path every run takes to disk: curation overlay
  (:mod:`miner.topics.curation`), snapshot, ``latest``, registry.
"""
from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from miner import schema
from miner.config import MinerConfig
from miner.topics import registry as reg_db
from miner.topics.cluster import as_float32_normalized
from miner.topics.geometry import add_rows_by_group
from miner.topics.curation import pending_registry, topic_tables
from miner.topics.emerging import (EmergingParams, assign_emerging, find_groups, new_groups, persistent_days,
                                   pool_rows, recent_rows, thresholds, track_candidates, union_groups)
from miner.topics.index import VectorIndex
from miner.topics.matching import BORN, SPLIT, match_topics
from miner.topics.snapshot import Snapshot, load_snapshot, save_snapshot


@dataclass
class UpdateReport:
    run_id: str
    path: str
    n_new: int                      # notes added (ids not in the snapshot)
    n_updated: int                  # notes already there: counts refreshed, topic kept
    n_assigned: int                 # new notes that joined a topic
    n_unassigned: int               # new notes left at −1
    embedded_new: int               # cache misses
    emerging_ids: list[int] = field(default_factory=list)
    n_candidates: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"完成 updated {self.run_id}: 新增 {self.n_new} 篇 new notes ({self.n_assigned} 归入话题 assigned, "
                f"{self.n_unassigned} 未归类 unassigned), 更新 {self.n_updated} 篇 refreshed, 新话题 emerging "
                f"{self.emerging_ids or '无 none'}, 候选 candidates {self.n_candidates}, {self.seconds:.1f}s → {self.path}")


def new_run_id(config: MinerConfig, kind: str) -> str:
    now = datetime.now(ZoneInfo(config.timezone))
    return f"{now:%Y%m%d-%H%M%S}-{kind}{uuid.uuid4().hex[:6]}"


def cluster_topic_ids(snapshot: Snapshot) -> np.ndarray:
    """Permanent (raw) topic id of each of the snapshot clusterer's clusters."""
    ids = snapshot.meta.get("registry", {}).get("cluster_topic_ids")
    return np.asarray(ids if ids is not None else np.arange(snapshot.clusterer.n_topics_), dtype=np.int64)


def raw_topic_ids(snapshot: Snapshot) -> np.ndarray:
    """The model's own topic of each snapshot note (before curation), row i ↔ notes row i."""
    asg = snapshot.assignments.set_index(schema.NOTE_ID)
    column = schema.RAW_TOPIC_ID if schema.RAW_TOPIC_ID in asg else schema.TOPIC_ID
    return snapshot.notes[schema.NOTE_ID].astype(str).map(asg[column]).fillna(-1).astype("int64").to_numpy()


def predict_topic_ids(snapshot: Snapshot, vectors) -> tuple[np.ndarray, np.ndarray]:
    """(raw permanent topic id or −1, score) of embedded notes under ``snapshot``: the clusterer's
    topic, unless an emerging topic is closer (or the clusterer leaves the note unassigned)."""
    clusterer = snapshot.clusterer
    labels, scores = clusterer.predict_with_scores(vectors)
    ids = np.where(labels >= 0, cluster_topic_ids(snapshot)[np.maximum(labels, 0)], -1)
    emerging = snapshot.meta.get("registry", {}).get("emerging", [])
    if emerging and len(ids):
        Zc = clusterer.transform(vectors, smooth=False)
        e_ids, e_sims = assign_emerging(Zc, emerging)
        own = np.einsum("ij,ij->i", Zc, clusterer.cluster_centers_[np.maximum(labels, 0)])
        take = (e_ids >= 0) & ((labels < 0) | (e_sims > own))
        ids[take], scores[take] = e_ids[take], e_sims[take]
    return ids.astype(np.int64), scores.astype(np.float32)


def shown_topic_ids(snapshot: Snapshot, raw_ids) -> np.ndarray:
    """Raw ids → the ids the snapshot shows (hand merges/splits), by where each raw topic's notes went."""
    asg = snapshot.assignments
    if schema.RAW_TOPIC_ID not in asg:
        return np.asarray(raw_ids, dtype=np.int64)
    mode = asg.groupby(schema.RAW_TOPIC_ID)[schema.TOPIC_ID].agg(lambda s: s.value_counts().index[0])
    return np.array([int(mode.get(int(t), t)) if t >= 0 else -1 for t in raw_ids], dtype=np.int64)


# --------------------------------------------------------------------------- writing a run

def write_snapshot(config: MinerConfig, run_id: str, meta: dict, notes: pd.DataFrame, embeddings: np.ndarray,
                   raw_ids, scores, clusterer, cluster_ids, note_index: VectorIndex, kind: str,
                   events: list[dict] | None = None, new_topics: list[dict] | None = None,
                   candidates: list[dict] | None = None, emerging: list[dict] | None = None,
                   thresholds: tuple[float, float] | None = None, embedder=None,
                   keep_labels: pd.DataFrame | None = None, tokens=None):
    """Curation overlay → snapshot (``latest`` moves) → registry delta. Returns (path, topics, assignments).

    ``embedder`` (the snapshot's model) lets the labeller re-rank label words by similarity to the
    topic centre; every caller passes it so labels do not change with the path that wrote them.
    ``keep_labels`` (updates): the serving topics, whose labels stay when a topic barely changed
    (:func:`miner.topics.curation.topic_tables`). ``tokens`` (a build): the notes' token lists as a
    :class:`~miner.topics.tokens.TokenTable` on disk, written as the snapshot's ``tokens`` column.
    """
    at = datetime.now(ZoneInfo(config.timezone))
    new_topics = new_topics or []
    stored, splits = reg_db.read_tables(config, "topic_registry", "topic_splits")
    registry = pending_registry(stored, new_topics, born_at=at)
    topics, assignments, centroids = topic_tables(config, notes, embeddings, raw_ids, scores, registry, splits,
                                                  embedder=embedder, keep_labels=keep_labels, tokens=tokens)
    raw = np.asarray(raw_ids, dtype=np.int64)
    auto = dict(zip(topics[schema.TOPIC_ID], topics["auto_label"]))
    shown = assignments[schema.TOPIC_ID].to_numpy()
    born = {int(t["topic_id"]): t for t in new_topics}
    rows = []
    for tid, size in zip(*np.unique(raw[raw >= 0], return_counts=True)):
        label = auto.get(int(pd.Series(shown[raw == tid]).mode().iloc[0]), "")
        row = {"topic_id": int(tid), "size": int(size), "auto_label": label}
        if int(tid) in born:
            row.update(born_event=born[int(tid)]["born_event"], parent_id=born[int(tid)].get("parent_id"))
        rows.append(row)
    delta = {"run_id": run_id, "kind": kind, "at": at.isoformat(), "events": events or [], "topics": rows}
    if candidates is not None:
        delta["candidates"] = candidates
    meta = {k: v for k, v in meta.items() if k not in ("run_id", "registry", "clusterer", "indexes")}
    meta["created_at"] = at.isoformat()
    meta["n_notes"] = len(notes)
    meta["registry"] = {"kind": kind, "cluster_topic_ids": [int(i) for i in cluster_ids],
                        "emerging": emerging or [], "thresholds": thresholds, "delta": delta}
    topic_index = VectorIndex(factory="Flat").fit(centroids)
    path = save_snapshot(config.snapshots_dir, run_id, meta, notes, topics, assignments, embeddings,
                         centroids, clusterer, note_index, topic_index, tokens=tokens)
    reg_db.apply_delta(config, delta)
    return path, topics, assignments


def rewrite_snapshot(config: MinerConfig) -> str:
    """A new snapshot of the serving one with the registry's current curation applied."""
    from miner.topics.embed import snapshot_embedder
    snap = load_snapshot(config)
    reg_db.sync_registry(config, snap)
    run_id = new_run_id(config, "c")
    embedder = snapshot_embedder(snap.meta["embedding"])
    write_snapshot(config, run_id, snap.meta, snap.notes, snap.embeddings, raw_topic_ids(snap),
                   snap.assignments.set_index(schema.NOTE_ID).loc[snap.notes[schema.NOTE_ID].astype(str), schema.SCORE],
                   snap.clusterer, cluster_topic_ids(snap), snap.note_index, "curate",
                   emerging=snap.meta.get("registry", {}).get("emerging", []),
                   thresholds=snap.meta.get("registry", {}).get("thresholds"), embedder=embedder)
    return run_id


# --------------------------------------------------------------------------- rebuilds

def previous_snapshot(config: MinerConfig, model_id: str) -> Snapshot | None:
    """The serving snapshot if a rebuild can continue from it (same embedding model), else None.
    Its ``notes`` hold ``note_id`` only: all that warm starts and lineage read."""
    from miner.topics.snapshot import latest_run_id
    if latest_run_id(config) is None:
        return None
    try:
        snap = load_snapshot(config, note_columns=[schema.NOTE_ID])
    except (FileNotFoundError, ValueError):
        return None
    if snap.model_id != model_id:
        return None
    reg_db.sync_registry(config, snap)
    return snap


def _members(note_ids: np.ndarray, labels: np.ndarray, ids) -> list[list[str]]:
    order = np.argsort(labels, kind="stable")
    lo = np.searchsorted(labels[order], ids, side="left")
    hi = np.searchsorted(labels[order], ids, side="right")
    return [note_ids[order[a:b]].tolist() for a, b in zip(lo, hi)]


def _means(embeddings: np.ndarray, labels: np.ndarray, ids) -> np.ndarray:
    pos = {int(t): i for i, t in enumerate(ids)}
    sums = np.zeros((len(ids), embeddings.shape[1]), np.float64)
    rows = np.flatnonzero(np.isin(labels, list(pos)))
    add_rows_by_group(sums, [pos[int(t)] for t in labels[rows]], embeddings[rows])
    return sums


def warm_start_labels(prev: Snapshot, note_ids) -> np.ndarray | None:
    """Each current note's previous raw topic (−1 when new or an outlier), for ``init_labels``;
    None when fewer than two previous topics have 2 or more notes left."""
    raw = pd.Series(raw_topic_ids(prev), index=prev.notes[schema.NOTE_ID].astype(str))
    labels = pd.Series(np.asarray(note_ids, dtype=str)).map(raw).fillna(-1).astype("int64").to_numpy()
    _, counts = np.unique(labels[labels >= 0], return_counts=True)
    return labels if (counts >= 2).sum() >= 2 else None


def rebuild_ids(config: MinerConfig, prev: Snapshot | None, note_ids, labels, embeddings: np.ndarray,
                n_clusters: int) -> tuple[np.ndarray, list[dict], list[dict]]:
    """Permanent id per new cluster, lineage events and new-topic rows (see :func:`match_topics`)."""
    labels = np.asarray(labels, dtype=np.int64)
    next_id = reg_db.next_free_id(config)
    clusters = np.arange(n_clusters)
    if prev is None:
        ids = next_id + clusters
        return ids, [{"event": BORN, "topic_id": int(t)} for t in ids], [
            {"topic_id": int(t), "born_event": BORN} for t in ids]
    note_ids = np.asarray(note_ids, dtype=str)
    prev_raw = raw_topic_ids(prev)
    prev_notes = prev.notes[schema.NOTE_ID].astype(str).to_numpy()
    prev_ids = np.unique(prev_raw[prev_raw >= 0])
    next_id = max(next_id, int(prev_ids.max()) + 1 if len(prev_ids) else 0)
    mu = embeddings.mean(axis=0)
    prev_c = _means(prev.embeddings, prev_raw, prev_ids)
    new_c = _means(embeddings, labels, clusters)
    counts_p = np.maximum(np.bincount(np.searchsorted(prev_ids, prev_raw[prev_raw >= 0]), minlength=len(prev_ids)), 1)
    counts_n = np.maximum(np.bincount(labels[labels >= 0], minlength=n_clusters), 1)
    registry = reg_db.registry_frame(config).set_index("topic_id")
    born = pd.to_datetime(registry["born_at"], utc=True) if len(registry) else pd.Series(dtype="datetime64[ns, UTC]")
    age = [(born.get(int(t)).value if int(t) in born.index and pd.notna(born.get(int(t))) else 0, int(t))
           for t in prev_ids]
    result = match_topics(prev_ids, prev_c / counts_p[:, None] - mu, _members(prev_notes, prev_raw, prev_ids),
                          new_c / counts_n[:, None] - mu, _members(note_ids, labels, clusters), next_id,
                          prev_age=age)
    events = [{"event": e.event, "topic_id": e.topic_id, "related_id": e.related_id, "similarity": e.similarity}
              for e in result.events]
    new_topics = [{"topic_id": e.topic_id, "born_event": e.event, "parent_id": e.related_id}
                  for e in result.events if e.event in (BORN, SPLIT)]
    return result.ids, events, new_topics


# --------------------------------------------------------------------------- updates

def _merge_known(notes: pd.DataFrame, refreshed: pd.DataFrame) -> pd.DataFrame:
    """Known notes keep their text, tokens and topic; other columns (counts) take the new values."""
    if len(refreshed) == 0:
        return notes
    keep_text = {schema.TITLE, schema.BODY, schema.TAGS, "tokens", schema.NOTE_ID}
    cols = [c for c in refreshed.columns if c in notes.columns and c not in keep_text]
    out = notes.set_index(schema.NOTE_ID)
    out.update(refreshed.set_index(schema.NOTE_ID)[cols])
    return out.reset_index()[notes.columns]


def _thresholds(snapshot: Snapshot, raw: np.ndarray, params: EmergingParams) -> tuple[float, float, float]:
    """(cohesion, distinct, tight) of the snapshot's model: computed once after a build, then kept."""
    stored = snapshot.meta.get("registry", {}).get("thresholds")
    if stored is not None and len(stored) == 3:
        return float(stored[0]), float(stored[1]), float(stored[2])
    Zc = snapshot.clusterer.transform(snapshot.embeddings, smooth=False)
    return thresholds(Zc, raw[: len(snapshot.embeddings)], params)


def update_topics(config: MinerConfig, new_notes: pd.DataFrame, snapshot: Snapshot | None = None,
                  embedder=None, show_progress: bool = False) -> UpdateReport:
    """Add ``new_notes`` (notes schema) to the serving topics without a rebuild.

    Notes whose id the snapshot already holds refresh their counts and keep their topic; new ones
    are embedded (through the embedding cache), assigned by the fitted clusterer or an emerging
    topic, or left at −1. Dense persistent groups of recent unassigned notes become new topics
    (:mod:`miner.topics.emerging`). The new snapshot replaces ``latest`` only once complete; the
    registry is updated after, in one transaction (:func:`miner.topics.registry.sync_registry`
    repairs a crash in between). ``snapshot`` defaults to the serving one.
    """
    from miner.topics.embed import EmbeddingCache, cached_encode, get_embedder
    from miner.topics.executor import make_executor
    from miner.topics.pipeline import notes_texts, scratch_dir

    started = time.perf_counter()
    snapshot = snapshot or load_snapshot(config)
    reg_db.sync_registry(config, snapshot)
    embedder = embedder or get_embedder(config)
    if embedder.model_id != snapshot.model_id:
        raise ValueError(f"snapshot {snapshot.run_id} was built with {snapshot.model_id}, not "
                         f"{embedder.model_id}; update with the same embedding model or rebuild")
    missing = [c for c in schema.NOTES.required if c not in new_notes.columns]
    if missing:
        raise ValueError(f"new notes lack required columns {missing}; ingest them first (python -m miner ingest FILE)")
    incoming = new_notes.assign(**{schema.NOTE_ID: new_notes[schema.NOTE_ID].astype(str)})
    incoming = incoming.drop_duplicates(schema.NOTE_ID, keep="last")
    known = incoming[schema.NOTE_ID].isin(set(snapshot.notes[schema.NOTE_ID].astype(str)))
    fresh = incoming[~known].sort_values(schema.NOTE_ID, kind="stable").reset_index(drop=True)
    old_notes = _merge_known(snapshot.notes, incoming[known])

    texts = notes_texts(fresh)
    cache = EmbeddingCache(config.embedding_cache_dir)
    with make_executor(config) as executor:          # local (default) or a Ray cluster
        fresh = fresh.assign(tokens=executor.segment(texts, n_jobs=1) if texts else [])
        vectors = as_float32_normalized(cached_encode(executor.embedder(embedder), texts, cache,
                                                      show_progress=show_progress)
                                        if texts else np.empty((0, snapshot.embeddings.shape[1]), np.float32))
    new_ids, new_scores = (predict_topic_ids(snapshot, vectors) if len(vectors)
                           else (np.empty(0, np.int64), np.empty(0, np.float32)))

    notes = pd.concat([old_notes, fresh[[c for c in old_notes.columns if c in fresh.columns]]], ignore_index=True)
    embeddings = np.ascontiguousarray(np.vstack([snapshot.embeddings, vectors]), dtype=np.float32)
    old_raw = raw_topic_ids(snapshot)
    old_scores = snapshot.notes[schema.NOTE_ID].astype(str).map(
        snapshot.assignments.set_index(schema.NOTE_ID)[schema.SCORE]).fillna(0).to_numpy(np.float32)
    raw = np.concatenate([old_raw, new_ids])
    scores = np.concatenate([old_scores, new_scores])

    params = EmergingParams.from_config(config)
    cohesion, distinct, tight = _thresholds(snapshot, raw, params)
    emerging = list(snapshot.meta.get("registry", {}).get("emerging", []))
    recent = recent_rows(notes, params.window_days)
    Zc_all = snapshot.clusterer.transform(embeddings, smooth=False)
    if len(recent) and emerging:                                # unassigned recent notes may join a young topic
        e_ids, e_sims = assign_emerging(Zc_all[recent], emerging)
        e_ids[raw[recent] >= 0] = -1
        join = e_ids >= 0
        raw[recent[join]], scores[recent[join]] = e_ids[join], e_sims[join]
    young = np.asarray([e["centre"] for e in emerging], np.float32).reshape(-1, Zc_all.shape[1])
    in_young = np.isin(raw, [int(e["topic_id"]) for e in emerging])
    weak = float(np.quantile(old_scores[old_raw >= 0], params.weak_quantile)) if (old_raw >= 0).any() else 0.0
    older = np.setdiff1d(np.arange(len(notes)), recent)
    fitted_on = int(snapshot.meta.get("model_notes", len(snapshot.clusterer.reference_)))
    unseen = np.arange(len(notes)) >= fitted_on                 # rows the model was not fitted on
    groups = []
    for pool, burst in ((pool_rows(notes, raw, scores, weak, params.window_days), False), (recent, True)):
        pool = pool[~in_young[pool]]
        found = find_groups(Zc_all[pool], params.min_size, cohesion, params.seed) if len(pool) else []
        for g in found:
            g.rows = pool[g.rows]                               # rows of the whole notes table from here on
        groups = union_groups(groups, new_groups(found, snapshot.clusterer.cluster_centers_, young, Zc_all[recent],
                                                 Zc_all[older], cohesion, distinct, tight, params, burst, unseen),
                              params)
    published = pd.to_datetime(notes[schema.PUBLISHED_AT], utc=True).dt.tz_convert(config.timezone)
    day = str(published.max().date()) if len(published) else None
    days = [persistent_days(published.iloc[g.rows], params) for g in groups]
    note_ids = notes[schema.NOTE_ID].astype(str).to_numpy()
    for g in groups:
        g.note_ids = tuple(note_ids[g.rows])
    run_id = new_run_id(config, "u")
    stored, first_free = reg_db.emerging_state(config)
    candidates, promote = track_candidates(groups, stored, days, run_id, day, params)
    next_id = max(first_free, int(raw.max()) + 1 if len(raw) else 0)
    events, new_topics, emerging_ids = [], [], []
    for group, _ in promote:
        rows = group.rows
        raw[rows], scores[rows] = next_id, Zc_all[rows] @ group.centre
        emerging.append({"topic_id": next_id, "centre": group.centre.tolist(), "threshold": cohesion})
        events.append({"event": BORN, "topic_id": next_id, "related_id": None, "similarity": None})
        new_topics.append({"topic_id": next_id, "born_event": "emerging"})
        emerging_ids.append(next_id)
        next_id += 1

    meta = {**snapshot.meta, "n_new_notes": len(fresh)}
    scratch = scratch_dir(config)
    try:
        note_index = snapshot.note_index.extended(vectors, lists_dir=scratch)
        path, _, _ = write_snapshot(config, run_id, meta, notes, embeddings, raw, scores, snapshot.clusterer,
                                    cluster_topic_ids(snapshot), note_index, "update", events, new_topics,
                                    candidates, emerging, (cohesion, distinct, tight), embedder=embedder,
                                    keep_labels=snapshot.topics)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    n_assigned = int((raw[len(old_raw):] >= 0).sum())
    return UpdateReport(run_id=run_id, path=str(path), n_new=len(fresh), n_updated=int(known.sum()),
                        n_assigned=n_assigned, n_unassigned=len(fresh) - n_assigned,
                        embedded_new=int(getattr(cache, "last_stats", None).misses if texts else 0),
                        emerging_ids=emerging_ids, n_candidates=len(candidates),
                        seconds=time.perf_counter() - started)
