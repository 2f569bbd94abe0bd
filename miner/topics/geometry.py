"""Vector geometry under the clusterer: unit rows, FAISS thread control, neighbour smoothing,
spherical k-means and the whitening projection. Pure functions of arrays; no fitted state."""
from __future__ import annotations

import os
from contextlib import contextmanager

import faiss
import numpy as np
from scipy import sparse

from miner.topics.blocks import row_blocks


def as_float32_normalized(X) -> np.ndarray:
    """Coerce to C-contiguous float32 rows of unit L2 norm (zero rows stay zero)."""
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array of embeddings, got shape {X.shape}")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.ascontiguousarray(X / np.maximum(norms, 1e-12), dtype=np.float32)


def add_rows_by_group(sums: np.ndarray, groups, rows: np.ndarray) -> np.ndarray:
    """``sums[groups[i]] += rows[i]`` for every i, in place (float64 ``sums``); returns ``sums``.

    ``np.add.at`` does the same one element at a time (~0.1 s for a few thousand 384-d rows); a
    one-hot sparse matrix times the rows is one BLAS-like pass."""
    groups = np.asarray(groups, dtype=np.int64)
    if len(groups):
        onehot = sparse.csr_matrix((np.ones(len(groups)), (groups, np.arange(len(groups)))),
                                   shape=(len(sums), len(groups)))
        sums += onehot @ np.asarray(rows, dtype=np.float64)
    return sums


@contextmanager
def faiss_threads(n_jobs: int | None):
    """Run FAISS with ``n_jobs`` OpenMP threads inside the block (None = leave FAISS's setting)."""
    if n_jobs is None:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(max(1, int(n_jobs)))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


RESTART_SAMPLE = 20_000   # above this many notes, k-means restarts run on a sample of this size
EXACT_KNN_MAX = 20_000    # above this many notes, neighbours come from an IVF index (approximate)


def neighbour_index(Z: np.ndarray, seed: int) -> faiss.Index:
    """Inner-product index over ``Z``: exact up to ``EXACT_KNN_MAX`` rows, IVF (4√n lists) above."""
    n, d = Z.shape
    if n <= EXACT_KNN_MAX:
        index = faiss.IndexFlatIP(d)
    else:                                    # recall@15 ≈ 0.98 at 100k notes, 3–5 s on 2 cores
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, int(4 * np.sqrt(n)), faiss.METRIC_INNER_PRODUCT)
        index.cp.seed, index.cp.niter, index.cp.max_points_per_centroid = seed, 10, 8
        index.cp.min_points_per_centroid = 1     # a coarse partition only: no small-sample warning
        index.train(Z)
        index.nprobe = 8
    index.add(Z)
    return index


def smooth_with_neighbours(Z: np.ndarray, index: faiss.Index, reference: np.ndarray, k: int,
                           weight: float) -> np.ndarray:
    """``normalise(z + weight · mean of z's k nearest rows of reference)`` for every row of Z."""
    k = min(k, len(reference))
    with faiss_threads(os.cpu_count()):      # queries are independent: searching scales with cores
        _, idx = index.search(Z, k)
    rows, cols = np.nonzero(idx >= 0)         # IVF may return fewer than k (padded with -1)
    neighbours = idx[rows, cols]
    counts = np.bincount(rows, minlength=len(Z)).astype(np.float32)
    weights = (weight / np.maximum(counts, 1))[rows]
    averaging = sparse.csr_matrix((weights, (rows, neighbours)), shape=(len(Z), len(reference)))
    return as_float32_normalized(Z + averaging @ reference)


def spherical_kmeans(X: np.ndarray, k: int, seed: int, niter: int = 25, nredo: int = 1,
                     init_centroids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """FAISS spherical k-means (best of ``nredo`` k-means++ runs, or from ``init_centroids``);
    returns (unit centroids, labels)."""
    km = faiss.Kmeans(
        X.shape[1], k, niter=niter, seed=seed, spherical=True, verbose=False, nredo=nredo,
        min_points_per_centroid=1,               # we choose k ourselves; silence the 39-points warning
        max_points_per_centroid=max(256, X.shape[0]),   # no subsampling: keeps runs deterministic
        init_method=faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS,
    )
    km.train(X, init_centroids=init_centroids)
    _, idx = km.index.search(X, 1)
    return km.centroids.copy(), idx[:, 0].astype(np.int64)


def whitening_projection(X: np.ndarray, dims: int, power: float,
                         chunk_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components): ``(X - mean) @ components`` = top-``dims`` PCA scores / sqrt(eig)**power.

    ``chunk_rows`` accumulates the covariance block by block (no float64 copy of ``X``)."""
    mean = X.mean(axis=0)
    if chunk_rows is None:
        Xc = (X - mean).astype(np.float64)
        cov = Xc.T @ Xc / max(len(X) - 1, 1)
    else:
        cov = np.zeros((X.shape[1], X.shape[1]), np.float64)
        for lo, hi in row_blocks(len(X), chunk_rows):
            block = (X[lo:hi] - mean).astype(np.float64)
            cov += block.T @ block
        cov /= max(len(X) - 1, 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1][:min(dims, X.shape[1])]
    evals = np.maximum(evals[order], 1e-12)
    components = evecs[:, order] / evals ** (power / 2)
    components /= np.abs(components).max()   # scale is irrelevant after normalising; keep it tame
    return mean.astype(np.float32), np.ascontiguousarray(components, dtype=np.float32)
