"""Row blocks: work on (possibly memory-mapped) note matrices a fixed number of rows at a time,
so temporaries are O(block), not O(corpus)."""
from __future__ import annotations

import numpy as np

CHUNK_ROWS = 65_536       # notes per block when a large input is normalised, transformed or assigned


def normalize_rows_inplace(X: np.ndarray, chunk_rows: int | None = None) -> np.ndarray:
    """Normalise a writable float32 C-contiguous array in place, ``chunk_rows`` rows at a time.

    Row by row the same values as :func:`miner.topics.cluster.as_float32_normalized` (tested),
    without its full copy.
    """
    if X.dtype != np.float32 or X.ndim != 2 or not X.flags.c_contiguous or not X.flags.writeable:
        raise ValueError("normalize_rows_inplace needs a writable, C-contiguous 2-D float32 array")
    for lo, hi in row_blocks(len(X), chunk_rows):
        block = X[lo:hi]
        np.divide(block, np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12), out=block)
    return X


def as_rows(X) -> np.ndarray:
    """A 2-D array view of ``X`` without copying an ndarray (a memory-mapped one stays mapped)."""
    X = X if isinstance(X, np.ndarray) else np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array of embeddings, got shape {X.shape}")
    return X


def row_blocks(n: int, chunk_rows: int | None = None):
    """``(lo, hi)`` bounds of consecutive row blocks covering ``range(n)`` (``CHUNK_ROWS`` each)."""
    chunk_rows = chunk_rows or CHUNK_ROWS
    return [(lo, min(n, lo + chunk_rows)) for lo in range(0, n, chunk_rows)]


def mean_rows(X, chunk_rows: int | None = None) -> np.ndarray:
    """float64 mean of the rows of ``X``; above ``chunk_rows`` rows summed block by block instead
    of converting the whole array to float64 at once (small inputs: exactly ``X.mean(axis=0)``)."""
    X = as_rows(X)
    chunk_rows = chunk_rows or CHUNK_ROWS
    if len(X) <= chunk_rows:
        return np.asarray(X, dtype=np.float64).mean(axis=0)
    total = np.zeros(X.shape[1], np.float64)
    for lo, hi in row_blocks(len(X), chunk_rows):
        total += np.asarray(X[lo:hi], dtype=np.float64).sum(axis=0)
    return total / len(X)
