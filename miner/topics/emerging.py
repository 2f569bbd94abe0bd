"""Emerging topics: dense, new, persistent groups among recent notes.

Each update looks at notes published in the last ``window_days`` (before the newest note) that no
emerging topic holds yet, in two pools: the *loose* ones (unassigned, or assigned with a score below
the ``weak_quantile`` of all assigned notes' scores), and *all* of them (a new subject's notes are
often claimed firmly by the nearest old topic: the Mate 60 launch videos went to a phone-review
topic). In the clusterer's centred, whitened space (no neighbourhood smoothing: the pool's
neighbours among the training notes belong to other topics), a small spherical k-means (``k = pool
size // min_size``) proposes groups in each pool. Thresholds are quantiles of how close existing
topics' own notes are to their centres. A group counts when

* **cohesive** — at least ``min_size`` of its notes lie within ``cohesion`` (``cohesion_quantile``)
  of its centre, "as tight as a real topic";
* **tight** — those notes' mean cosine to the centre reaches ``tight`` (``tight_quantile``): one
  subject, not a k-means slice of a mixed pool;
* **new** — a loose group whose centre is no closer to an old topic's centre than that topic's
  typical note is (``distinct_quantile``: "not a corner of an old topic"), or a group of any recent
  notes that is a **burst**: notes near its centre (within ``cohesion``) are at least
  ``burst_lift`` times as frequent among recent notes as among older ones (an event inside an old
  topic's territory) and at least ``unseen_share`` of its notes arrived after the model was
  fitted (the model already placed the notes it was fitted on; and a centre fitted to recent
  notes makes any dense slice of them look like a burst: on the lexical test corpus, slices of
  old fruit reviews reached lift 6–30); and in both cases no corner of an emerging topic already
  born.

Such a group becomes a *candidate* (``emerging_candidates``). It is promoted when it **persists**:
seen again at the next update (its centre within ``persist_similarity``, or at least
``persist_overlap`` of the candidate's notes still in the group), with notes published on at least
``min_days`` days that each bring at least ``max(2, min_size // 5)`` of them. (Promoting at first
sight once the notes span two days, without the second sighting, promoted k-means slices of mixed
notes on the lexical test corpus: a slice does not come back the next run, a subject does.)
Promotion gives a new permanent id, moves the group's notes to it, and keeps its centre with the
snapshot so later notes can join it (:func:`assign_emerging`). Candidates are dropped when not seen
again. A rebuild folds emerging topics into the model (warm start) and clears candidates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from miner import schema
from miner.topics.cluster import as_float32_normalized, spherical_kmeans
from miner.topics.geometry import add_rows_by_group


@dataclass(frozen=True)
class EmergingParams:
    """Settings of emerging-topic detection."""

    min_size: int = 15
    window_days: float = 3.0
    cohesion_quantile: float = 0.25
    weak_quantile: float = 0.25
    tight_quantile: float = 0.8
    distinct_quantile: float = 0.5
    burst_lift: float = 5.0
    unseen_share: float = 0.5
    persist_similarity: float = 0.5
    persist_overlap: float = 0.3
    min_days: int = 2
    seed: int = 42

    @classmethod
    def from_config(cls, config) -> "EmergingParams":
        """Minimum size = the config's ``min_topic_size``; window = ``emerging_window_days``."""
        return cls(min_size=config.min_topic_size, window_days=config.emerging_window_days, seed=config.seed)

    @property
    def min_per_day(self) -> int:
        """Notes a publish day must bring to count towards ``min_days``."""
        return max(2, self.min_size // 5)


@dataclass
class Group:
    rows: np.ndarray            # rows into the pool given to find_groups (update: into its notes table)
    centre: np.ndarray          # unit vector in the centred space
    tightness: float = 0.0      # mean cosine of its notes to the centre
    note_ids: tuple = ()        # filled in by the caller


def member_similarities(Zc: np.ndarray, raw_ids: np.ndarray) -> np.ndarray:
    """Cosine of each topic note to its topic's centre (centred space); empty when none."""
    valid = raw_ids >= 0
    if valid.sum() == 0:
        return np.empty(0, np.float32)
    ids, inverse = np.unique(raw_ids[valid], return_inverse=True)
    sums = np.zeros((len(ids), Zc.shape[1]), np.float64)
    add_rows_by_group(sums, inverse, Zc[valid])
    centres = as_float32_normalized(sums)
    return np.einsum("ij,ij->i", Zc[valid], centres[inverse])


def thresholds(Zc: np.ndarray, raw_ids: np.ndarray, params: "EmergingParams") -> tuple[float, float, float]:
    """(cohesion, distinct, tight): quantiles ``cohesion_quantile``, ``distinct_quantile`` and
    ``tight_quantile`` of how close topic notes are to their own centre (see the module docstring)."""
    sims = member_similarities(Zc, raw_ids)
    if len(sims) == 0:
        return 0.5, 0.5, 0.5
    cohesion, distinct, tight = np.quantile(sims, [params.cohesion_quantile, params.distinct_quantile,
                                                   params.tight_quantile])
    return float(cohesion), float(distinct), float(tight)


def find_groups(Zc_pool: np.ndarray, min_size: int, cohesion: float, seed: int) -> list[Group]:
    """Cohesive groups in the pool (row indices into ``Zc_pool``), largest first: k-means groups with
    at least ``min_size`` notes within ``cohesion`` of their centre (those notes are the group)."""
    n = len(Zc_pool)
    if n < min_size:
        return []
    k = max(1, n // max(min_size, 1))
    centres_k, labels = spherical_kmeans(np.ascontiguousarray(Zc_pool, dtype=np.float32), k, seed, niter=20)
    groups = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if len(members) < min_size:
            continue
        centre = as_float32_normalized(Zc_pool[members].mean(axis=0, keepdims=True))[0]
        tight = members[Zc_pool[members] @ centre >= cohesion]
        if len(tight) < min_size:
            continue
        centre = as_float32_normalized(Zc_pool[tight].mean(axis=0, keepdims=True))[0]
        groups.append(Group(rows=tight, centre=centre, tightness=float((Zc_pool[tight] @ centre).mean())))
    return sorted(groups, key=lambda g: -len(g.rows))


def burst_lift(centre: np.ndarray, radius: float, Zc_recent: np.ndarray, Zc_older: np.ndarray) -> float:
    """How many times more often notes lie within ``radius`` of ``centre`` among recent notes than
    among older ones (one older note added, so a corner with no history is no burst)."""
    recent = float((Zc_recent @ centre >= radius).sum()) / max(len(Zc_recent), 1)
    older = (float((Zc_older @ centre >= radius).sum()) + 1) / (len(Zc_older) + 1)
    return recent / older


def new_groups(groups: list[Group], old_centres: np.ndarray, young_centres: np.ndarray, Zc_recent: np.ndarray,
               Zc_older: np.ndarray, cohesion: float, distinct: float, tight: float, params: EmergingParams,
               burst: bool, unseen: np.ndarray | None = None) -> list[Group]:
    """The groups that are tight and new: distinct from every old topic (``burst=False``, groups of
    loose notes) or a burst (``burst=True``, groups of any recent notes, mostly ``unseen`` rows:
    notes the model was not fitted on); see the module docstring."""
    kept = []
    for g in groups:
        if g.tightness < tight:
            continue
        if len(young_centres) and float((young_centres @ g.centre).max()) > distinct:
            continue                                    # a corner of a topic that emerged already
        if burst:
            new = ((unseen is None or unseen[g.rows].mean() >= params.unseen_share)
                   and burst_lift(g.centre, cohesion, Zc_recent, Zc_older) >= params.burst_lift)
        else:
            new = not len(old_centres) or float((old_centres @ g.centre).max()) <= distinct
        if new:
            kept.append(g)
    return kept


def union_groups(first: list[Group], second: list[Group], params: EmergingParams) -> list[Group]:
    """Both lists, largest first, without a group that repeats a larger one (shared notes beyond
    ``persist_overlap`` of the smaller, or centres within ``persist_similarity``); rows index one table."""
    out: list[Group] = []
    for g in sorted([*first, *second], key=lambda g: -len(g.rows)):
        rows = set(g.rows.tolist())
        if all(len(rows & set(f.rows.tolist())) < params.persist_overlap * len(rows)
               and float(f.centre @ g.centre) < params.persist_similarity for f in out):
            out.append(g)
    return out


def pool_rows(notes: pd.DataFrame, topic_ids: np.ndarray, scores: np.ndarray, weak: float,
              window_days: float) -> np.ndarray:
    """Rows of notes published within ``window_days`` before the newest note that are unassigned
    or assigned with a score below ``weak``."""
    recent = np.zeros(len(notes), dtype=bool)
    recent[recent_rows(notes, window_days)] = True
    loose = (np.asarray(topic_ids) < 0) | (np.asarray(scores) < weak)
    return np.flatnonzero(recent & loose)


def recent_rows(notes: pd.DataFrame, window_days: float) -> np.ndarray:
    """Rows of notes published within ``window_days`` before the newest note."""
    published = pd.to_datetime(notes[schema.PUBLISHED_AT], utc=True)
    return np.flatnonzero((published >= published.max() - pd.Timedelta(days=window_days)).to_numpy())


def persistent_days(published: pd.Series, params: EmergingParams) -> int:
    """Publish days (dates of ``published``) that bring at least ``params.min_per_day`` notes."""
    counts = pd.to_datetime(published).dt.date.value_counts()
    return int((counts >= params.min_per_day).sum())


def assign_emerging(Zc: np.ndarray, emerging: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Best emerging topic of each row (−1 when none within its threshold), and the cosine."""
    ids = np.full(len(Zc), -1, dtype=np.int64)
    best = np.full(len(Zc), -np.inf, dtype=np.float32)
    for e in emerging:
        sims = Zc @ np.asarray(e["centre"], dtype=np.float32)
        take = (sims >= e["threshold"]) & (sims > best)
        ids[take], best[take] = int(e["topic_id"]), sims[take]
    return ids, best


def track_candidates(groups: list[Group], previous: pd.DataFrame, days: list[int], run_id: str,
                     day: str, params: EmergingParams) -> tuple[list[dict], list[tuple[Group, dict]]]:
    """Match this update's groups to the stored candidates.

    Returns (the new candidate list, [(group, candidate) to promote]). ``days[g]`` is the number of
    publish days that brought at least ``params.min_per_day`` of group g's notes.
    """
    prev = previous.to_dict("records")
    prev_centres = (as_float32_normalized(np.stack([np.asarray(c["centroid"], np.float32) for c in prev]))
                    if prev else np.empty((0, 0), np.float32))
    taken: set[int] = set()
    keep, promote = [], []
    for g, group in enumerate(groups):
        match = None
        if len(prev):
            members = set(group.note_ids)
            before = [set(schema.list_cell(c.get("note_ids"))) for c in prev]
            shared = np.array([len(members & b) / max(len(b), 1) for b in before])
            sims = prev_centres @ group.centre
            for i in np.argsort(-(sims + shared)):
                ok = sims[i] >= params.persist_similarity or shared[i] >= params.persist_overlap
                if ok and int(i) not in taken:
                    match = int(i)
                    break
        if match is None:
            keep.append({"candidate_id": f"{run_id}-{g}", "centroid": group.centre.tolist(), "first_run": run_id,
                         "first_day": day, "last_run": run_id, "last_day": day, "seen": 1, "size": len(group.rows),
                         "note_ids": list(group.note_ids)})
            continue
        taken.add(match)
        cand = {**prev[match], "centroid": group.centre.tolist(), "last_run": run_id, "last_day": day,
                "seen": int(prev[match]["seen"]) + 1, "size": len(group.rows), "note_ids": list(group.note_ids)}
        if days[g] >= params.min_days:
            promote.append((group, cand))
        else:
            keep.append(cand)
    return keep, promote
