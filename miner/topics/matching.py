"""Match a rebuild's clusters to the previous topics and name what happened to each: lineage.

Inputs are the previous topics (permanent ids, centroids, member note ids) and the new clusters
(centroids, member note ids). Similarity of previous topic ``i`` and new cluster ``j`` is

    S[i, j] = centroid_weight · cos(c_i, c_j) + (1 − centroid_weight) · Jaccard(notes_i, notes_j)

and an optimal one-to-one assignment (Hungarian, ``scipy.optimize.linear_sum_assignment``) on S
pairs them; pairs below ``min_similarity`` stay unpaired. Shared notes then settle splits and
merges, which a one-to-one assignment cannot express:

* **merged** – two or more previous topics send most of their notes (≥ ``flow_share``) to one new
  cluster: the cluster keeps the *oldest* of their ids, the others retire as merged into it;
* **split** – a previous topic's notes make up most (≥ ``flow_share``) of two or more new clusters,
  each holding ≥ ``split_share`` of its notes: the *largest* child keeps the id, the others get
  new ids with the previous topic as parent;
* **continued** – a remaining Hungarian pair keeps its id;
* **born** – a new cluster with no previous topic gets a new id;
* **retired** – a previous topic left without a cluster.

Ids are never reused: new ones count up from ``next_id``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

CONTINUED, SPLIT, MERGED, BORN, RETIRED = "continued", "split", "merged", "born", "retired"
EVENTS = (CONTINUED, SPLIT, MERGED, BORN, RETIRED)


@dataclass(frozen=True)
class LineageEvent:
    """One lineage fact: ``topic_id`` (the id after the rebuild, or the retired id) and the
    related id (the parent of a split child, the id a merged topic went into)."""

    event: str
    topic_id: int
    related_id: int | None = None
    similarity: float | None = None


@dataclass
class MatchResult:
    """``ids[j]``: permanent id of new cluster j; ``events``: what happened, one row per fact."""

    ids: np.ndarray
    events: list[LineageEvent] = field(default_factory=list)
    similarity: np.ndarray | None = None

    def by_event(self, event: str) -> list[LineageEvent]:
        return [e for e in self.events if e.event == event]


def _unit(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"centroids must be 2-D, got shape {X.shape}")
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def overlap_matrix(prev_members: list, new_members: list) -> np.ndarray:
    """``O[i, j]`` = number of note ids shared by previous topic i and new cluster j."""
    where = {}
    for j, members in enumerate(new_members):
        for note in members:
            where[note] = j
    O = np.zeros((len(prev_members), len(new_members)), dtype=np.int64)
    for i, members in enumerate(prev_members):
        for note in members:
            j = where.get(note)
            if j is not None:
                O[i, j] += 1
    return O


def similarity_matrix(prev_centroids, new_centroids, prev_members, new_members,
                      centroid_weight: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(S, O): combined centroid-cosine / shared-note Jaccard similarity and the overlap counts."""
    P, N = _unit(prev_centroids), _unit(new_centroids)
    if P.shape[1] != N.shape[1]:
        raise ValueError(f"previous centroids have {P.shape[1]} dims, new ones {N.shape[1]}")
    O = overlap_matrix(prev_members, new_members)
    sizes_p = np.array([len(set(m)) for m in prev_members], dtype=np.float64)
    sizes_n = np.array([len(set(m)) for m in new_members], dtype=np.float64)
    union = sizes_p[:, None] + sizes_n[None, :] - O
    jaccard = np.where(union > 0, O / np.maximum(union, 1), 0.0)
    S = centroid_weight * np.clip(P @ N.T, -1, 1) + (1 - centroid_weight) * jaccard
    return S, O


def match_topics(prev_ids, prev_centroids, prev_members, new_centroids, new_members, next_id: int,
                 prev_age=None, centroid_weight: float = 0.5, min_similarity: float = 0.35,
                 flow_share: float = 0.5, split_share: float = 0.2) -> MatchResult:
    """Permanent ids for new clusters, and the lineage events (see the module docstring).

    Parameters
    ----------
    prev_ids : permanent ids of the previous topics (row i ↔ ``prev_centroids[i]``)
    prev_centroids, new_centroids : (n_prev, d), (n_new, d) topic centroids in one space
    prev_members, new_members : per topic, the note ids it holds (iterables of hashables)
    next_id : first id never used before (new ids count up from it)
    prev_age : sort key per previous topic, smaller = older (default: the id itself)
    """
    prev_ids = [int(i) for i in prev_ids]
    n_prev, n_new = len(prev_ids), len(new_members)
    if len(prev_members) != n_prev or len(new_centroids) != n_new:
        raise ValueError(f"{n_prev} previous ids for {len(prev_members)} member lists; "
                         f"{len(new_centroids)} new centroids for {n_new} member lists")
    age = list(prev_age) if prev_age is not None else prev_ids
    ids = np.full(n_new, -1, dtype=np.int64)
    events: list[LineageEvent] = []
    if n_prev == 0 or n_new == 0:
        S = np.zeros((n_prev, n_new))
        O = np.zeros((n_prev, n_new), dtype=np.int64)
    else:
        S, O = similarity_matrix(prev_centroids, new_centroids, prev_members, new_members, centroid_weight)
    prev_size = np.maximum(O.sum(axis=1), 1) if n_new else np.ones(n_prev)
    new_prev_size = np.maximum(O.sum(axis=0), 1) if n_prev else np.ones(n_new)
    # where most of a previous topic's notes went / where most of a new cluster's notes came from
    main_child = {i: int(np.argmax(O[i])) for i in range(n_prev)
                  if n_new and O[i].max() > 0 and O[i].max() >= flow_share * prev_size[i]}
    main_parent = {j: int(np.argmax(O[:, j])) for j in range(n_new)
                   if n_prev and O[:, j].max() > 0 and O[:, j].max() >= flow_share * new_prev_size[j]}
    used_prev: set[int] = set()

    # merges: several previous topics flow mainly into one new cluster → the oldest id survives
    for j in range(n_new):
        parents = [i for i, c in main_child.items() if c == j]
        if len(parents) < 2:
            continue
        keep = min(parents, key=lambda i: (age[i], prev_ids[i]))
        ids[j] = prev_ids[keep]
        used_prev.update(parents)
        events.append(LineageEvent(CONTINUED, prev_ids[keep], prev_ids[keep], float(S[keep, j])))
        events += [LineageEvent(MERGED, prev_ids[i], prev_ids[keep], float(S[i, j]))
                   for i in sorted(parents) if i != keep]

    # splits: one previous topic is the main source of several new clusters → largest child keeps it
    split_children: dict[int, list[int]] = {}
    for i in range(n_prev):
        if i in used_prev:
            continue
        children = [j for j, p in main_parent.items()
                    if p == i and ids[j] < 0 and O[i, j] >= split_share * prev_size[i]]
        if len(children) >= 2:
            children.sort(key=lambda j: (-O[i, j], j))
            ids[children[0]] = prev_ids[i]
            used_prev.add(i)
            events.append(LineageEvent(CONTINUED, prev_ids[i], prev_ids[i], float(S[i, children[0]])))
            split_children[i] = children[1:]

    # the rest: optimal one-to-one assignment on S
    free_prev = [i for i in range(n_prev) if i not in used_prev]
    free_new = [j for j in range(n_new) if ids[j] < 0 and not any(j in c for c in split_children.values())]
    if free_prev and free_new:
        sub = S[np.ix_(free_prev, free_new)]
        rows, cols = linear_sum_assignment(-sub)
        for r, c in zip(rows, cols):
            i, j = free_prev[r], free_new[c]
            if sub[r, c] >= min_similarity:
                ids[j] = prev_ids[i]
                used_prev.add(i)
                events.append(LineageEvent(CONTINUED, prev_ids[i], prev_ids[i], float(S[i, j])))

    # new ids: split children, then clusters born from nothing known
    for i, children in split_children.items():
        for j in children:
            ids[j] = next_id
            events.append(LineageEvent(SPLIT, next_id, prev_ids[i], float(S[i, j])))
            next_id += 1
    for j in range(n_new):
        if ids[j] < 0:
            ids[j] = next_id
            parent = main_parent.get(j)
            if parent is not None and parent in used_prev:     # carved out of a continuing topic
                events.append(LineageEvent(SPLIT, next_id, prev_ids[parent], float(S[parent, j])))
            else:
                events.append(LineageEvent(BORN, next_id, None, None))
            next_id += 1

    # previous topics left over: merged into the cluster that took their notes, or retired
    for i in range(n_prev):
        if i in used_prev:
            continue
        j = main_child.get(i)
        if j is not None:
            events.append(LineageEvent(MERGED, prev_ids[i], int(ids[j]), float(S[i, j])))
        else:
            events.append(LineageEvent(RETIRED, prev_ids[i], None, None))
    return MatchResult(ids=ids, events=events, similarity=S)
