"""Emerging topics: dense, persistent groups among recently unassigned notes.

Each update looks at the *pool*: notes published in the last ``window_days`` (before the newest
note) that no topic claims, or that their topic claims only weakly (score below the
``weak_quantile`` of all assigned notes' scores: with a small outlier share, a new subject's
notes are mostly absorbed by the nearest old topic). In the clusterer's centred, whitened space (no neighbourhood
smoothing: the pool's neighbours among the training notes belong to other topics), a small
spherical k-means (``k = pool size // min_size``) proposes groups; a group counts when at least
``min_size`` of its notes lie within ``cohesion`` (cosine) of its centre, where ``cohesion`` is a
quantile of how close existing topics' own notes are to their centres — "as tight as a real topic" —
and its centre is no closer to an existing topic's centre than that topic's typical note is
(``distinct_quantile`` of the same cosines) — "not a corner of an old topic".

A group becomes a *candidate* (``emerging_candidates``). When a candidate is seen again at the
next update (its centre within ``persist_similarity``, or at least ``persist_overlap`` of the
candidate's notes still in the group) and its notes span at least ``min_days`` publish days, it
is promoted: a new permanent id, its notes assigned, and its centre kept with the
snapshot so later notes can join it (:func:`assign_emerging`). Candidates are dropped when not
seen again. A rebuild folds emerging topics into the model (warm start) and clears candidates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from miner import schema
from miner.topics.cluster import as_float32_normalized, spherical_kmeans


@dataclass(frozen=True)
class EmergingParams:
    """Settings of emerging-topic detection."""

    min_size: int = 15
    window_days: float = 3.0
    cohesion_quantile: float = 0.25
    weak_quantile: float = 0.25
    distinct_quantile: float = 0.5
    persist_similarity: float = 0.5
    persist_overlap: float = 0.3
    min_days: int = 2
    seed: int = 42

    @classmethod
    def from_config(cls, config) -> "EmergingParams":
        """Minimum size = the config's ``min_topic_size``; window = ``emerging_window_days``."""
        return cls(min_size=config.min_topic_size, window_days=config.emerging_window_days, seed=config.seed)


@dataclass
class Group:
    rows: np.ndarray            # rows into the pool's source table
    centre: np.ndarray          # unit vector in the centred space
    note_ids: tuple = ()        # filled in by the caller


def member_similarities(Zc: np.ndarray, raw_ids: np.ndarray) -> np.ndarray:
    """Cosine of each topic note to its topic's centre (centred space); empty when none."""
    valid = raw_ids >= 0
    if valid.sum() == 0:
        return np.empty(0, np.float32)
    ids, inverse = np.unique(raw_ids[valid], return_inverse=True)
    sums = np.zeros((len(ids), Zc.shape[1]), np.float64)
    np.add.at(sums, inverse, Zc[valid])
    centres = as_float32_normalized(sums)
    return np.einsum("ij,ij->i", Zc[valid], centres[inverse])


def thresholds(Zc: np.ndarray, raw_ids: np.ndarray, params: "EmergingParams") -> tuple[float, float]:
    """(cohesion, distinct): quantiles ``cohesion_quantile`` and ``distinct_quantile`` of how close
    topic notes are to their own centre. A group is cohesive when its notes are at least
    ``cohesion`` from its centre, and distinct when its centre is no closer than ``distinct`` to any
    existing topic's centre (closer, and it sits inside that topic like one of its notes)."""
    sims = member_similarities(Zc, raw_ids)
    if len(sims) == 0:
        return 0.5, 0.5
    return float(np.quantile(sims, params.cohesion_quantile)), float(np.quantile(sims, params.distinct_quantile))


def find_groups(Zc_pool: np.ndarray, min_size: int, cohesion: float, seed: int,
                centres: np.ndarray | None = None, max_similarity: float = 1.0) -> list[Group]:
    """Dense groups in the pool (row indices into ``Zc_pool``), largest first; a group whose centre
    is closer than ``max_similarity`` to one of ``centres`` (existing topics) is left out."""
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
        if centres is not None and len(centres) and float((centres @ centre).max()) > max_similarity:
            continue
        groups.append(Group(rows=tight, centre=centre))
    return sorted(groups, key=lambda g: -len(g.rows))


def pool_rows(notes: pd.DataFrame, topic_ids: np.ndarray, scores: np.ndarray, weak: float,
              window_days: float) -> np.ndarray:
    """Rows of notes published within ``window_days`` before the newest note that are unassigned
    or assigned with a score below ``weak``."""
    published = pd.to_datetime(notes[schema.PUBLISHED_AT], utc=True)
    recent = published >= published.max() - pd.Timedelta(days=window_days)
    loose = (np.asarray(topic_ids) < 0) | (np.asarray(scores) < weak)
    return np.flatnonzero(recent.to_numpy() & loose)


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
    distinct publish days among group g's notes.
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
