"""Topic clustering on note embeddings with FAISS, in the scikit-learn estimator style.

Method (all heavy work in FAISS):

1. Centre the L2-normalised embeddings and partially whiten them: keep the top ``whiten_dims``
   principal directions, each divided by ``sqrt(eigenvalue) ** whiten_power``, then re-normalise.
   Sentence encoders are anisotropic (all cosines ~0.8) and a few shared directions dominate;
   evening them out separates topics and makes the silhouette peak near a useful k
   (bench/RESULTS.md: NMI +0.02 to +0.10 on three labelled datasets).
2. Neighbourhood smoothing: each note's vector is averaged with its ``n_neighbors`` nearest notes
   (FAISS kNN; ``smoothing`` weighs the neighbourhood mean against the note) and re-normalised.
   Topics are found on these vectors: like HDBSCAN's density view, a note is judged by the company
   it keeps, which pulls short, noisy notes to their topic (NMI +0.01 to +0.02, bench/RESULTS.md).
   New notes are smoothed with their neighbours among the training notes, the same way.
3. Choose the number of topics (unless given): spherical k-means for each candidate k on a sample,
   scored by the cosine silhouette of the sample; the smallest k whose silhouette, averaged with
   its neighbouring candidates, is within ``k_tolerance`` of the best (parsimony over noise).
4. Spherical k-means (best of ``n_init`` k-means++ runs, fixed seed) on all notes.
5. Topics smaller than ``min_topic_size`` are dissolved into their nearest surviving topic.
6. Outliers: a note whose cosine to its centroid falls below the ``outlier_share`` quantile is
   marked ``-1`` instead of being forced into a topic; raise ``outlier_share`` for purer topics.
   A topic left with fewer than ``min_topic_size`` notes after that is dissolved too.

A warm start (``init_labels``, a rebuild) replaces 3–4 with hysteresis k-means from the previous
partition, so a rebuild moves only the notes that really moved (see ``hysteresis``).

Topic ids are renumbered by size (0 = largest), so a seed always gives the same ids.

Large corpora (more than ``max_train_size`` notes): steps 1–5 run on a seeded sample of that many
notes (the smoothing neighbours are sample notes too), then every note is transformed and
assigned to its nearest centroid ``blocks.CHUNK_ROWS`` at a time, and the outlier threshold is the
quantile of all notes' scores. Memory then grows with the sample and the chunk, not the corpus
(per-note labels and scores aside), and the input may be a read-only memory-mapped array.
"""
from __future__ import annotations

import faiss
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import silhouette_score

from miner.schema import OUTLIER
from miner.topics import blocks
from miner.topics.blocks import CHUNK_ROWS, as_rows, mean_rows, normalize_rows_inplace, row_blocks  # noqa: F401
from miner.topics.geometry import (  # noqa: F401  (re-exported: the stages import them from here)
    EXACT_KNN_MAX, RESTART_SAMPLE, add_rows_by_group, as_float32_normalized, faiss_threads, neighbour_index,
    smooth_with_neighbours, spherical_kmeans, whitening_projection)

MAX_TRAIN_SIZE = 200_000  # default sample size of the clusterer's fit on larger corpora


class TopicClusterer(BaseEstimator):
    """Find topics in note embeddings and mark outliers.

    Parameters
    ----------
    n_topics : int or None
        Fixed number of topics; ``None`` chooses it from ``k_candidates``.
    outlier_share : float in [0, 0.5)
        Share of notes marked as outliers (``-1``): the trade-off between coverage and purity.
    min_topic_size : int
        Topics with fewer notes are dissolved into their nearest neighbour topic.
    k_candidates : sequence of int or None
        Candidate topic counts for the automatic choice; default a geometric grid up to
        ``n / min_topic_size`` (at most 120).
    sample_size : int
        Notes used to score candidates (silhouette is quadratic).
    center : bool
        Centre and partially whiten embeddings before clustering (recommended for transformers).
    whiten_dims : int, principal directions kept by the whitening projection
    whiten_power : float in [0, 1], 0 = plain PCA, 1 = full whitening
    n_neighbors : int, neighbours averaged into each note before clustering (0 = no smoothing)
    smoothing : float, weight of the neighbourhood mean against the note itself
    k_tolerance : float or None, choose the smallest candidate k whose silhouette (averaged with
        its grid neighbours) is within this fraction of the best; None = plain silhouette argmax
    n_init : int, k-means++ restarts of the final fit (lowest objective wins)
    n_jobs : int or None, FAISS threads for k-means during ``fit``. 1 (default) was fastest up to
        100k notes on 2 cores, and far less hurt by other busy processes (bench/RESULTS.md);
        None = all cores. Neighbour searches always use all cores.
    seed : int
        Random seed for FAISS k-means and sampling.
    init_centroids : ndarray (k, d) or None
        Warm start (a rebuild that keeps the previous topics): topic centroids in the input
        embedding space, e.g. the previous snapshot's ``centroids``. They are mapped into the
        clustering space and seed one k-means run with ``k = len(init_centroids)`` (no choice of
        k, no restarts); ``n_topics`` is ignored.
    init_labels : array of int (n_samples,) or None
        Warm start from a previous partition of these notes (``-1`` = none): the centroids of
        each previous topic's notes are taken *in the clustering space* (after whitening and
        smoothing), so a rebuild of an unchanged corpus starts at its own fixed point. Topics
        with fewer than 2 notes are left out. Takes precedence over ``init_centroids``.
    hysteresis : float, with ``init_labels`` only: k-means from the previous partition in which a
        note keeps its previous topic unless another centroid is closer by more than this cosine
        margin, a previously assigned note is not made an outlier unless it falls this far below
        the threshold, and centroids leave outliers out. A rebuild then moves only notes that
        really moved, and a rebuild of its own output is a fixed point (ids survive; the seed
        plays no part). 0 = plain k-means from the previous centroids.
    max_train_size : int or None, default 200,000
        Above this many notes, whitening, the choice of k, k-means, small-topic dissolving and the
        smoothing neighbours (``reference_``) are fitted on a seeded sample of this size; every
        note is then assigned to its nearest centroid in blocks of ``blocks.CHUNK_ROWS`` notes (memory
        grows with the sample, not the corpus; the input may be memory-mapped). ``None`` = always all notes.
        At or below it the fit is exactly the all-notes one.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,), topic id per note, ``-1`` = outlier
    scores_ : ndarray, cosine of each (smoothed) note to its topic centroid (in the centred space)
    cluster_centers_ : ndarray (n_topics_, d), unit centroids in the centred space
    mean_ : ndarray (d,), the centring vector
    components_ : ndarray (d, whiten_dims), the whitening projection (identity when not centring)
    reference_ : ndarray (n_train, whiten_dims), the training notes (all notes, or the sample above
        ``max_train_size``) in the centred space: the neighbours of every note (empty when
        ``n_neighbors=0``)
    threshold_ : float, cosine below which a note is an outlier
    n_topics_ : int
    k_scores_ : dict[int, float], silhouette per candidate k (empty when ``n_topics`` is fixed)
    k_chosen_ : int, the k given to the final k-means (``n_topics_`` can be smaller after small
        topics are dissolved)
    """

    def __init__(self, n_topics=None, outlier_share=0.08, min_topic_size=15, k_candidates=None,
                 sample_size=4000, center=True, seed=42, whiten_dims=100, whiten_power=0.5,
                 n_neighbors=15, smoothing=1.0, k_tolerance=0.03, n_init=3, n_jobs=1,
                 init_centroids=None, init_labels=None, hysteresis=0.05, max_train_size=MAX_TRAIN_SIZE):
        self.n_topics = n_topics
        self.outlier_share = outlier_share
        self.min_topic_size = min_topic_size
        self.k_candidates = k_candidates
        self.sample_size = sample_size
        self.center = center
        self.seed = seed
        self.whiten_dims = whiten_dims
        self.whiten_power = whiten_power
        self.n_neighbors = n_neighbors
        self.smoothing = smoothing
        self.k_tolerance = k_tolerance
        self.n_init = n_init
        self.n_jobs = n_jobs
        self.init_centroids = init_centroids
        self.init_labels = init_labels
        self.hysteresis = hysteresis
        self.max_train_size = max_train_size

    # -- public API --------------------------------------------------------------------------
    def fit(self, X, y=None):
        X = as_rows(X)
        self._check_params(len(X))
        with faiss_threads(self.n_jobs):
            if self.max_train_size is None or len(X) <= self.max_train_size:
                return self._fit(as_float32_normalized(X))
            return self._fit_sampled(X)

    def _check_params(self, n: int) -> None:
        if not 0 <= self.outlier_share < 0.5:
            raise ValueError(f"outlier_share must be in [0, 0.5), got {self.outlier_share}")
        if n < 2 * max(2, self.min_topic_size):
            raise ValueError(f"need at least {2 * max(2, self.min_topic_size)} notes to find topics, got {n}")
        if self.n_neighbors < 0 or self.smoothing < 0:
            raise ValueError(f"n_neighbors and smoothing must be ≥ 0, got {self.n_neighbors}, {self.smoothing}")
        if self.max_train_size is not None and self.max_train_size < 2 * max(2, self.min_topic_size):
            raise ValueError(f"max_train_size must be None or ≥ {2 * max(2, self.min_topic_size)}, "
                             f"got {self.max_train_size}")

    def _fit(self, X: np.ndarray):
        n = X.shape[0]
        if self.center:
            self.mean_, self.components_ = whitening_projection(X, self.whiten_dims, self.whiten_power)
        else:
            self.mean_ = np.zeros(X.shape[1], np.float32)
            self.components_ = np.eye(X.shape[1], dtype=np.float32)
        self.reference_ = self._centred(X) if self.n_neighbors > 0 else np.empty((0, self.components_.shape[1]), np.float32)
        self._neighbour_index = None
        Z = self._transform(X)

        self.k_scores_ = {}
        init = prior = None
        if self.init_labels is not None:
            init, prior = self._centroids_of(Z, np.asarray(self.init_labels, dtype=np.int64))
            k = len(init)
        elif self.init_centroids is not None:
            init = self._warm_start(as_float32_normalized(self.init_centroids), n)
            k = len(init)
        elif self.n_topics is not None:
            k = int(self.n_topics)
            if not 1 <= k <= n:
                raise ValueError(f"n_topics must be in [1, {n}], got {k}")
        else:
            k = self._choose_k(Z)

        self.k_chosen_ = k
        sticky = np.zeros(n, dtype=bool)
        if prior is not None and self.hysteresis > 0:
            centers, labels, sticky = self._keep_prior(Z, init, prior)
        else:
            centers, labels = (spherical_kmeans(Z, k, self.seed, init_centroids=init) if init is not None
                               else self._final_kmeans(Z, k))
        centers, labels, _ = self._dissolve_small(Z, centers, labels)
        scores, marked = self._mark_outliers(Z, centers, labels, sticky)
        # A topic must keep min_topic_size notes *after* outliers are marked, or the next warm-started
        # rebuild (which starts from the assigned notes) dissolves it: no fit would be a fixed point.
        for _ in range(3):
            sizes = np.bincount(marked[marked >= 0], minlength=len(centers))
            big = np.flatnonzero(sizes >= self.min_topic_size)
            if len(big) == 0 or len(big) == (sizes > 0).sum():
                break
            centers, labels, _ = self._dissolve_small(Z, centers, labels, keep=big)
            scores, marked = self._mark_outliers(Z, centers, labels, sticky)
        labels = marked

        self.cluster_centers_, self.labels_ = self._renumber_by_size(centers, labels)
        self.scores_ = scores.astype(np.float32)
        self.n_topics_ = len(self.cluster_centers_)
        return self

    def _fit_sampled(self, X: np.ndarray):
        """Fit on a seeded sample of ``max_train_size`` notes, then assign all notes in blocks."""
        n = X.shape[0]
        rows = np.sort(np.random.default_rng(self.seed).choice(n, self.max_train_size, replace=False))
        Xs = np.array(X[rows], dtype=np.float32, order="C")     # reads only the sampled rows of a memmap
        normalize_rows_inplace(Xs)
        if self.center:
            self.mean_, self.components_ = whitening_projection(Xs, self.whiten_dims, self.whiten_power,
                                                                chunk_rows=blocks.CHUNK_ROWS)
        else:
            self.mean_ = np.zeros(X.shape[1], np.float32)
            self.components_ = np.eye(X.shape[1], dtype=np.float32)
        self._neighbour_index = None
        self.reference_ = np.empty((0, self.components_.shape[1]), np.float32)
        if self.n_neighbors > 0:
            self.reference_ = self._map_blocks(Xs, smooth=False, normalized=True)
        Z = self._map_blocks(Xs, smooth=True, normalized=True)
        del Xs

        self.k_scores_ = {}
        init = prior = prior_all = None
        if self.init_labels is not None:
            init, prior_all = self._prior_centroids(X, np.asarray(self.init_labels, dtype=np.int64))
            prior, k = prior_all[rows], len(init)
        elif self.init_centroids is not None:
            init = self._warm_start(as_float32_normalized(self.init_centroids), n)
            k = len(init)
        elif self.n_topics is not None:
            k = int(self.n_topics)
            if not 1 <= k <= len(Z):
                raise ValueError(f"n_topics must be in [1, {len(Z)}] (the training sample), got {k}")
        else:
            k = self._choose_k(Z)
        self.k_chosen_ = k
        if prior is not None and self.hysteresis > 0:
            centers, labels, _ = self._keep_prior(Z, init, prior)
        else:
            centers, labels = (spherical_kmeans(Z, k, self.seed, init_centroids=init) if init is not None
                               else self._final_kmeans(Z, k))
        # min_topic_size counts notes of the corpus: a sample of m of n notes holds about m/n of each topic
        min_size = max(2, int(np.ceil(self.min_topic_size * len(Z) / n)))
        centers, labels, kept = self._dissolve_small(Z, centers, labels, min_size=min_size)
        del Z

        sticky = None
        if prior_all is not None and self.hysteresis > 0:
            remap = np.full(k, -1, dtype=np.int64)        # k-means' clusters → the surviving ones
            remap[kept] = np.arange(len(kept))
            sticky = prior_all >= 0
            prior_all = np.where(sticky, remap[np.maximum(prior_all, 0)], -1)
        labels, scores = self._assign(X, centers, prior_all if sticky is not None else None)
        self.threshold_ = float(np.quantile(scores, self.outlier_share)) if self.outlier_share > 0 else -np.inf
        floor = self.threshold_ if sticky is None else np.where(sticky, self.threshold_ - self.hysteresis,
                                                                 self.threshold_)
        labels = np.where(scores < floor, OUTLIER, labels)
        self.cluster_centers_, self.labels_ = self._renumber_by_size(centers, labels)
        self.scores_ = scores
        self.n_topics_ = len(self.cluster_centers_)
        return self

    def _blocks(self, X: np.ndarray, smooth: bool = True, normalized: bool = False):
        """``(lo, hi, Z)`` over ``X`` in blocks of ``blocks.CHUNK_ROWS`` notes, Z in the clustering space
        (centred only when ``smooth=False``); one block, computed as before chunking, when small.
        ``normalized``: X's rows are unit float32 already (not normalised twice)."""
        for lo, hi in row_blocks(len(X)) or [(0, 0)]:
            block = X[lo:hi] if len(X) > blocks.CHUNK_ROWS else X
            block = block if normalized else as_float32_normalized(block)
            yield lo, hi, self._transform(block) if smooth else self._centred(block)

    def _map_blocks(self, X: np.ndarray, smooth: bool, normalized: bool = False) -> np.ndarray:
        """All of ``X`` in the clustering space, one block of temporaries at a time."""
        if len(X) <= blocks.CHUNK_ROWS:
            return next(self._blocks(X, smooth, normalized))[2]
        out = np.empty((len(X), self.components_.shape[1]), np.float32)
        for lo, hi, Z in self._blocks(X, smooth, normalized):
            out[lo:hi] = Z
        return out

    def _assign(self, X: np.ndarray, centers: np.ndarray, prior: np.ndarray | None = None):
        """(nearest centroid, cosine) of every note, block by block; with ``prior`` (a previous
        cluster per note, −1 = none) a note keeps it when within ``hysteresis`` of the best."""
        index = faiss.IndexFlatIP(centers.shape[1])
        index.add(np.ascontiguousarray(centers, dtype=np.float32))
        labels = np.empty(len(X), np.int64)
        scores = np.empty(len(X), np.float32)
        for lo, hi, Z in self._blocks(X):
            sims, idx = index.search(Z, 1)
            best, sim = idx[:, 0].astype(np.int64), sims[:, 0]
            if prior is not None:
                own_id = prior[lo:hi]
                own = np.where(own_id >= 0, np.einsum("ij,ij->i", Z, centers[np.maximum(own_id, 0)]), -np.inf)
                keep = own >= sim - self.hysteresis
                best, sim = np.where(keep, own_id, best), np.where(keep, own, sim)
            labels[lo:hi], scores[lo:hi] = best, sim
        return labels, scores.astype(np.float32)

    def _prior_centroids(self, X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``_centroids_of`` over all notes, summed block by block in the clustering space."""
        n_topics, prior = _prior_positions(labels, len(X))
        sums = np.zeros((n_topics, self.components_.shape[1]), np.float64)
        for lo, hi, Z in self._blocks(X):
            p = prior[lo:hi]
            add_rows_by_group(sums, p[p >= 0], Z[p >= 0])
        return as_float32_normalized(sums), prior

    def transform(self, X, smooth: bool = True) -> np.ndarray:
        """Notes in the clustering space (``cluster_centers_`` live there); ``smooth=False`` skips
        the neighbourhood smoothing (centred and whitened only). Large inputs go in blocks."""
        self._check_fitted()
        return self._map_blocks(as_rows(X), smooth)

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_

    def predict(self, X) -> np.ndarray:
        """Topic of new notes (``-1`` when below the outlier threshold)."""
        labels, _ = self.predict_with_scores(X)
        return labels

    def predict_with_scores(self, X) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        labels, scores = self._assign(as_rows(X), self.cluster_centers_)
        return np.where(scores < self.threshold_, OUTLIER, labels).astype(np.int64), scores

    # -- persistence without pickle: arrays + plain JSON ---------------------------------------
    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        self._check_fitted()
        params = self.get_params()           # every constructor argument, so a load round-trips
        params["k_candidates"] = list(self.k_candidates) if self.k_candidates else None
        params["init_centroids"] = params["init_labels"] = None   # inputs of that fit, not the model
        fitted = {"threshold_": self.threshold_, "n_topics_": self.n_topics_, "k_chosen_": self.k_chosen_,
                  "k_scores_": {str(k): v for k, v in self.k_scores_.items()}}
        arrays = {"cluster_centers": self.cluster_centers_, "mean": self.mean_,
                  "components": self.components_, "reference": self.reference_}
        return {"params": params, "fitted": fitted}, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "TopicClusterer":
        model = cls(**meta["params"])
        model.threshold_ = float(meta["fitted"]["threshold_"])
        model.n_topics_ = int(meta["fitted"]["n_topics_"])
        model.k_chosen_ = int(meta["fitted"].get("k_chosen_", model.n_topics_))   # older snapshots lack it
        model.k_scores_ = {int(k): v for k, v in meta["fitted"]["k_scores_"].items()}
        model.cluster_centers_ = np.ascontiguousarray(arrays["cluster_centers"], dtype=np.float32)
        model.mean_ = np.asarray(arrays["mean"], dtype=np.float32)
        model.components_ = np.ascontiguousarray(arrays["components"], dtype=np.float32)
        if "reference" in arrays:
            model.reference_ = np.ascontiguousarray(arrays["reference"], dtype=np.float32)
        else:                                     # snapshots from before smoothing: none was used
            model.n_neighbors = 0
            model.reference_ = np.empty((0, model.components_.shape[1]), np.float32)
        model._neighbour_index = None
        return model

    # -- internals ---------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "cluster_centers_"):
            raise RuntimeError("TopicClusterer is not fitted yet; call fit(X) first")

    def _centred(self, X: np.ndarray) -> np.ndarray:
        return as_float32_normalized((X - self.mean_) @ self.components_) if self.center else X

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """Centred, whitened and neighbourhood-smoothed vectors: the space topics live in."""
        Z = self._centred(X)
        if self.n_neighbors == 0 or len(self.reference_) == 0:
            return Z
        if getattr(self, "_neighbour_index", None) is None:     # built once, reused by predict
            self._neighbour_index = neighbour_index(self.reference_, self.seed)
        return smooth_with_neighbours(Z, self._neighbour_index, self.reference_, self.n_neighbors, self.smoothing)

    def _warm_start(self, init: np.ndarray, n: int) -> np.ndarray:
        if init.ndim != 2 or init.shape[1] != self.mean_.shape[0] or not 1 <= len(init) <= n:
            raise ValueError(f"init_centroids must have shape (k, {self.mean_.shape[0]}) with 1 ≤ k ≤ {n}, "
                             f"got {init.shape}")
        return self._centred(init)

    @staticmethod
    def _centroids_of(Z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(one centroid per previous topic of ≥ 2 notes, each note's row in it or −1)."""
        n_topics, prior = _prior_positions(labels, len(Z))
        sums = np.zeros((n_topics, Z.shape[1]), np.float64)
        has = prior >= 0
        add_rows_by_group(sums, prior[has], Z[has])
        return as_float32_normalized(sums), prior

    def _keep_prior(self, Z, centers, prior, niter=50):
        """Hysteresis k-means from the previous partition (``prior``, rows of ``centers``): a
        previously assigned note stays in its topic unless another centroid is closer by more than
        ``hysteresis``; other notes take the nearest. Centroids are the means of the notes that are
        not outliers (as in k-means--, Chawla & Gionis 2013), so the next warm start, which only
        sees assigned notes, begins where this one ended. Repeated until nothing moves: a rebuild
        of its own output is a fixed point (plain k-means from the prior moved ~3 % of notes per
        rebuild). Returns (centers, labels, sticky = previously assigned notes)."""
        has = prior >= 0
        labels = inlier = None
        for _ in range(niter):
            best_idx = self._nearest(Z, centers)
            best = np.einsum("ij,ij->i", Z, centers[best_idx])
            own = np.where(has, np.einsum("ij,ij->i", Z, centers[np.maximum(prior, 0)]), -np.inf)
            moved = np.where(has & (own >= best - self.hysteresis), prior, best_idx)
            kept = self._mark_outliers(Z, centers, moved, has)[1] >= 0
            if labels is not None and np.array_equal(moved, labels) and np.array_equal(kept, inlier):
                break
            labels, inlier = moved, kept
            sums = np.zeros(centers.shape, np.float64)
            add_rows_by_group(sums, labels[inlier], Z[inlier])
            filled = np.bincount(labels[inlier], minlength=len(centers)) > 0
            centers = np.ascontiguousarray(np.where(filled[:, None], as_float32_normalized(sums), centers),
                                           dtype=np.float32)
        return centers, labels, has

    def _mark_outliers(self, Z, centers, labels, sticky):
        """(scores, labels with ``-1`` below the threshold); sets ``threshold_``. A previously
        assigned (``sticky``) note becomes an outlier only ``hysteresis`` below the threshold."""
        scores = np.einsum("ij,ij->i", Z, centers[labels])
        self.threshold_ = float(np.quantile(scores, self.outlier_share)) if self.outlier_share > 0 else -np.inf
        floor = np.where(sticky, self.threshold_ - self.hysteresis, self.threshold_)
        return scores, np.where(scores < floor, OUTLIER, labels)

    @staticmethod
    def _nearest(Z, centers) -> np.ndarray:
        index = faiss.IndexFlatIP(Z.shape[1])
        index.add(np.ascontiguousarray(centers, dtype=np.float32))
        return index.search(Z, 1)[1][:, 0].astype(np.int64)

    def candidate_ks(self, n: int) -> list[int]:
        if self.k_candidates:
            return sorted({int(k) for k in self.k_candidates if 2 <= k < n})
        k_max = int(min(120, max(4, n // max(self.min_topic_size, 1))))
        grid = np.unique(np.round(np.geomspace(4, k_max, num=12)).astype(int))
        return [int(k) for k in grid if k < n]

    def _choose_k(self, Z: np.ndarray) -> int:
        rng = np.random.default_rng(self.seed)
        n = Z.shape[0]
        sample = Z if n <= self.sample_size else Z[np.sort(rng.choice(n, self.sample_size, replace=False))]
        for k in self.candidate_ks(n):
            _, labels = spherical_kmeans(sample, k, self.seed, niter=15)
            if len(np.unique(labels)) < 2:
                continue
            score = float(silhouette_score(sample, labels, metric="cosine",
                                           sample_size=min(len(sample), 3000), random_state=self.seed))
            self.k_scores_[k] = score
        if not self.k_scores_:
            return 2
        # One k-means run per candidate makes the silhouette noisy (the argmax jumped between 14 and
        # 65 on one data set across seeds): smooth it over neighbouring candidates and take the
        # smallest k within k_tolerance of the best (bench/tune_cluster.py).
        ks = sorted(self.k_scores_)
        raw = np.array([self.k_scores_[k] for k in ks])
        if self.k_tolerance is None:
            return int(ks[int(np.argmax(raw))])
        padded = np.concatenate([raw[:1], raw, raw[-1:]])
        smooth = (padded[:-2] + padded[1:-1] + padded[2:]) / 3
        top = smooth.max()
        return int(ks[int(np.flatnonzero(smooth >= top - abs(top) * self.k_tolerance)[0])])

    def _final_kmeans(self, Z: np.ndarray, k: int):
        """Best of ``n_init`` k-means++ runs; on large inputs the restarts run on a sample and the
        winner's centroids seed one k-means on all notes."""
        n = Z.shape[0]
        if self.n_init <= 1 or n <= RESTART_SAMPLE:
            return spherical_kmeans(Z, k, self.seed, nredo=self.n_init)
        rng = np.random.default_rng(self.seed)
        sample = Z[np.sort(rng.choice(n, RESTART_SAMPLE, replace=False))]
        init, _ = spherical_kmeans(sample, k, self.seed, nredo=self.n_init)
        return spherical_kmeans(Z, k, self.seed, init_centroids=init)

    def _dissolve_small(self, Z, centers, labels, min_size=None, keep=None):
        """Topics with fewer than ``min_size`` (default ``min_topic_size``) notes, or not in ``keep``,
        go to their notes' nearest surviving topic. Returns (centers, labels, kept cluster rows)."""
        sizes = np.bincount(labels, minlength=len(centers))
        min_size = self.min_topic_size if min_size is None else min_size
        keep = np.flatnonzero(sizes >= min_size) if keep is None else np.asarray(keep)
        if len(keep) == 0:
            keep = np.array([int(np.argmax(sizes))])
        if len(keep) == len(centers):
            return centers, labels, keep
        kept = np.ascontiguousarray(centers[keep])
        position = np.full(len(centers), -1, dtype=np.int64)
        position[keep] = np.arange(len(keep))
        new_labels = position[labels]
        moving = new_labels < 0             # only the dissolved topics' notes move (others may be sticky)
        if moving.any():
            new_labels[moving] = self._nearest(Z[moving], kept)
        # recompute centroids of the merged topics so they sit at their members' mean
        new_centers = np.stack([Z[new_labels == j].mean(axis=0) for j in range(len(keep))])
        return as_float32_normalized(new_centers), new_labels, keep

    @staticmethod
    def _renumber_by_size(centers, labels):
        valid = labels[labels >= 0]
        sizes = np.bincount(valid, minlength=len(centers))
        order = np.argsort(-sizes, kind="stable")
        order = order[sizes[order] > 0]
        remap = np.full(len(centers), OUTLIER, dtype=np.int64)
        remap[order] = np.arange(len(order))
        new_labels = np.where(labels >= 0, remap[np.maximum(labels, 0)], OUTLIER)
        return np.ascontiguousarray(centers[order]), new_labels


def _prior_positions(labels: np.ndarray, n: int) -> tuple[int, np.ndarray]:
    """Previous topics with 2 or more notes, numbered 0..m−1: (m, each note's number or −1)."""
    if labels.shape != (n,):
        raise ValueError(f"init_labels must have one label per note ({n}), got shape {labels.shape}")
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    ids = ids[counts >= 2]
    if len(ids) < 1:
        raise ValueError("init_labels name no topic with 2 or more notes")
    position = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
    position[ids] = np.arange(len(ids))
    inside = (labels >= 0) & (labels <= ids.max())
    return len(ids), np.where(inside, position[np.clip(labels, 0, ids.max())], -1).astype(np.int64)
