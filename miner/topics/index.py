"""FAISS vector index over notes or topic centroids: build, search, save and load.

Vectors are L2-normalised float32, so inner product = cosine. The index type is chosen by size:
exact ``Flat`` below ``flat_threshold`` vectors, ``IVF<nlist>,Flat`` above (probing ``nprobe``
lists). Row ``i`` of the index is row ``i`` of the table it was built from.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import faiss
import numpy as np
from sklearn.base import BaseEstimator

from miner.atomic import atomic_path, write_json_atomic
from miner.topics.blocks import as_rows, row_blocks
from miner.topics.cluster import as_float32_normalized

FLAT_THRESHOLD = 100_000


def choose_factory(n: int, flat_threshold: int = FLAT_THRESHOLD) -> str:
    """Exact search for small corpora; an inverted file (≈4·√n lists) for large ones."""
    if n < flat_threshold:
        return "Flat"
    nlist = 2 ** int(round(math.log2(4 * math.sqrt(n))))
    return f"IVF{nlist},Flat"


class VectorIndex(BaseEstimator):
    """Cosine-similarity index.

    Parameters
    ----------
    factory : FAISS index-factory string, or ``None`` to choose by size
    nprobe : inverted lists visited per query (IVF only); trades speed for recall
    flat_threshold : size from which an IVF index is used when ``factory`` is ``None``
    seed : seed for IVF training

    Attributes
    ----------
    index_ : the FAISS index
    factory_ : the factory string used
    """

    def __init__(self, factory: str | None = None, nprobe: int = 128, flat_threshold: int = FLAT_THRESHOLD,
                 seed: int = 42):
        self.factory = factory
        self.nprobe = nprobe
        self.flat_threshold = flat_threshold
        self.seed = seed

    def fit(self, vectors) -> "VectorIndex":
        """Build the index; rows are normalised and added block by block, so a large (memory-mapped)
        ``vectors`` is never copied whole."""
        X = as_rows(vectors)
        self.factory_ = self.factory or choose_factory(len(X), self.flat_threshold)
        index = faiss.index_factory(X.shape[1], self.factory_, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            ivf = faiss.extract_index_ivf(index)
            ivf.cp.seed = self.seed
            rows = slice(None)
            cap = ivf.nlist * 64   # more training points add time, not accuracy
            if len(X) > cap:
                rng = np.random.default_rng(self.seed)
                rows = np.sort(rng.choice(len(X), cap, replace=False))
            index.train(as_float32_normalized(X[rows]))
        for lo, hi in row_blocks(len(X)):
            index.add(as_float32_normalized(X[lo:hi]))
        self.index_ = index
        self._apply_nprobe()
        return self

    def _apply_nprobe(self) -> None:
        try:
            faiss.extract_index_ivf(self.index_).nprobe = self.nprobe
        except RuntimeError:   # not an IVF index
            pass

    @property
    def ntotal(self) -> int:
        return int(self.index_.ntotal)

    def search(self, queries, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Return (cosine scores, row ids), each (n_queries, k); ids are -1 where fewer exist."""
        Q = as_float32_normalized(np.atleast_2d(queries))
        k = max(1, min(k, self.ntotal))
        return self.index_.search(Q, k)

    def save(self, path: str | Path) -> None:
        """Write ``<path>`` (FAISS binary) and ``<path>.json`` (constructor arguments, fitted factory)
        atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            faiss.write_index(self.index_, str(tmp))
        write_json_atomic(path.with_suffix(path.suffix + ".json"),
                          {"params": self.get_params(), "factory": self.factory_, "nprobe": self.nprobe,
                           "ntotal": self.ntotal, "metric": "inner_product", "faiss_version": faiss.__version__})

    @classmethod
    def load(cls, path: str | Path) -> "VectorIndex":
        path = Path(path)
        meta = json.loads(path.with_suffix(path.suffix + ".json").read_text(encoding="utf-8"))
        # Older index files stored only the factory and nprobe.
        obj = cls(**meta.get("params", {"factory": meta["factory"], "nprobe": meta["nprobe"]}))
        obj.index_ = faiss.read_index(str(path))
        obj.factory_ = meta["factory"]
        obj._apply_nprobe()
        return obj
