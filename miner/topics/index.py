"""FAISS vector index over notes or topic centroids: build, search, save and load.

Vectors are L2-normalised float32, so inner product = cosine. The index type is chosen by size:
exact ``Flat`` below ``flat_threshold`` vectors, ``IVF<nlist>,Flat`` above (probing ``nprobe``
lists). Row ``i`` of the index is row ``i`` of the table it was built from.

An IVF index fitted with ``lists_dir`` keeps its inverted lists (a copy of every vector: 1.5 GB per
1M notes) in a file, ``<index>.ivfdata`` once saved, built block by block and memory-mapped: the
process's private memory does not grow with the corpus. Saved IVF indexes are memory-mapped on load.
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np
from sklearn.base import BaseEstimator

from miner.atomic import atomic_path, write_json_atomic
from miner.topics.blocks import as_rows, normalize_rows_inplace, row_blocks
from miner.topics.cluster import as_float32_normalized

FLAT_THRESHOLD = 100_000
LISTS_SUFFIX = ".ivfdata"
MAX_NLIST = 8_192            # 10M notes: ~1,200 per list, 128 probed lists scan ~1.5% of the corpus
MAX_TRAIN_ROWS = 262_144     # the training sample (0.4 GB at 384 dims) stops growing with the corpus


def choose_factory(n: int, flat_threshold: int = FLAT_THRESHOLD) -> str:
    """Exact search for small corpora; an inverted file (≈4·√n lists, at most ``MAX_NLIST``) for
    large ones."""
    if n < flat_threshold:
        return "Flat"
    nlist = min(2 ** int(round(math.log2(4 * math.sqrt(n)))), MAX_NLIST)
    return f"IVF{nlist},Flat"


def training_rows(n: int, nlist: int, seed: int) -> np.ndarray | slice:
    """Rows an IVF quantizer is trained on: all of them, or a sorted sample of at most
    ``min(64·nlist, MAX_TRAIN_ROWS)`` (more points add time and memory, not accuracy)."""
    cap = min(nlist * 64, MAX_TRAIN_ROWS)
    if n <= cap:
        return slice(None)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


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

    def fit(self, vectors, lists_dir: str | Path | None = None) -> "VectorIndex":
        """Build the index; rows are normalised and added block by block, so a large (memory-mapped)
        ``vectors`` is never copied whole. With ``lists_dir`` an IVF index's inverted lists are
        written to a file there and memory-mapped instead of held in RAM."""
        X = as_rows(vectors)
        self.factory_ = self.factory or choose_factory(len(X), self.flat_threshold)
        index = faiss.index_factory(X.shape[1], self.factory_, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            ivf = faiss.extract_index_ivf(index)
            ivf.cp.seed = self.seed
            rows = training_rows(len(X), ivf.nlist, self.seed)
            # the one copy training makes (a sample is a fresh array already; all rows are copied)
            sample = X[rows].astype(np.float32, order="C", copy=isinstance(rows, slice))
            # 8,192 lists get 32 points each from the capped sample: enough, so no faiss warning
            ivf.cp.min_points_per_centroid = max(1, min(ivf.cp.min_points_per_centroid, len(sample) // ivf.nlist))
            index.train(normalize_rows_inplace(sample))
            del sample
        if lists_dir is not None and _is_ivf(index):
            index = _with_lists_on_disk(index, [], X, 0, Path(lists_dir))
        else:
            for lo, hi in row_blocks(len(X)):
                index.add(as_float32_normalized(X[lo:hi]))
        self.index_ = index
        self._apply_nprobe()
        return self

    def extended(self, vectors, lists_dir: str | Path | None = None) -> "VectorIndex":
        """A new index holding this one's rows followed by ``vectors`` (this one is unchanged).
        With ``lists_dir`` an IVF index's lists, old and new, are merged into a new file there."""
        X = as_rows(vectors)
        out = VectorIndex(**self.get_params())
        out.factory_ = self.factory_
        if self.lists_file is not None and lists_dir is None:
            raise ValueError("this index keeps its inverted lists on disk: pass lists_dir")
        if lists_dir is not None and _is_ivf(self.index_):
            out.index_ = _with_lists_on_disk(_trained_empty(self.index_), [faiss.extract_index_ivf(self.index_).invlists],
                                             X, self.ntotal, Path(lists_dir))
        else:
            out.index_ = faiss.clone_index(self.index_)
            for lo, hi in row_blocks(len(X)):
                out.index_.add(as_float32_normalized(X[lo:hi]))
        out._apply_nprobe()
        return out

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

    def _lists_on_disk(self):
        """The index's ``OnDiskInvertedLists`` when its inverted lists live in a file, else None."""
        if not _is_ivf(self.index_):
            return None
        lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(self.index_).invlists)
        return lists if isinstance(lists, faiss.OnDiskInvertedLists) and lists.filename else None

    @property
    def lists_file(self) -> Path | None:
        """The file holding the inverted lists when they live on disk, else None."""
        on_disk = self._lists_on_disk()
        return Path(on_disk.filename) if on_disk is not None else None

    def save(self, path: str | Path) -> None:
        """Write ``<path>`` (FAISS binary) and ``<path>.json`` (constructor arguments, fitted factory)
        atomically; inverted lists on disk go to ``<path>.ivfdata`` (hard-linked when on the same
        disk, else copied)."""
        path = Path(path)
        on_disk = self._lists_on_disk()
        if on_disk is None:
            with atomic_path(path) as tmp:
                faiss.write_index(self.index_, str(tmp))
        else:
            lists, target = Path(on_disk.filename), path.with_name(path.name + LISTS_SUFFIX)
            if lists.resolve() != target.resolve():
                _link_or_copy(lists, target)
            on_disk.filename = str(target)     # found beside the index file on load (ONDISK_SAME_DIR)
            try:
                with atomic_path(path) as tmp:
                    faiss.write_index(self.index_, str(tmp))
            finally:
                on_disk.filename = str(lists)
        write_json_atomic(path.with_suffix(path.suffix + ".json"),
                          {"params": self.get_params(), "factory": self.factory_, "nprobe": self.nprobe,
                           "ntotal": self.ntotal, "metric": "inner_product", "faiss_version": faiss.__version__})

    @classmethod
    def load(cls, path: str | Path) -> "VectorIndex":
        path = Path(path)
        meta = json.loads(path.with_suffix(path.suffix + ".json").read_text(encoding="utf-8"))
        # Older index files stored only the factory and nprobe.
        obj = cls(**meta.get("params", {"factory": meta["factory"], "nprobe": meta["nprobe"]}))
        if path.with_name(path.name + LISTS_SUFFIX).exists():     # inverted lists on disk: memory-mapped
            with _c_stdout_silenced():                            # faiss printf()s the file it maps
                obj.index_ = faiss.read_index(str(path), faiss.IO_FLAG_ONDISK_SAME_DIR)
        else:
            obj.index_ = faiss.read_index(str(path))
        obj.factory_ = meta["factory"]
        obj._apply_nprobe()
        return obj


def _is_ivf(index) -> bool:
    try:
        faiss.extract_index_ivf(index)
        return True
    except RuntimeError:
        return False


def _trained_empty(index):
    """A copy of a trained IVF index with no rows (``clone_index`` refuses lists on disk)."""
    empty = faiss.deserialize_index(faiss.serialize_index(index), faiss.IO_FLAG_SKIP_IVF_DATA)
    ivf = faiss.extract_index_ivf(empty)
    lists = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
    ivf.replace_invlists(lists, True)
    lists.this.disown()                          # owned by the index from now on
    empty.ntotal = ivf.ntotal = 0
    return empty


def _with_lists_on_disk(index, existing: list, X, first_id: int, lists_dir: Path):
    """``index`` (trained, empty) with inverted lists in a new file under ``lists_dir``: the
    ``existing`` lists, then the rows of ``X`` numbered from ``first_id``. Each block of rows is
    indexed in RAM, written as a shard and merged from disk, so memory stays at one block."""
    lists_dir.mkdir(parents=True, exist_ok=True)
    ivf = faiss.extract_index_ivf(index)
    shards_dir = Path(tempfile.mkdtemp(prefix="shards-", dir=lists_dir))
    try:
        shards = []
        for lo, hi in row_blocks(len(X)):
            shard = faiss.clone_index(index)
            shard.add_with_ids(as_float32_normalized(X[lo:hi]), np.arange(first_id + lo, first_id + hi))
            shards.append(shards_dir / f"{lo}.faiss")
            faiss.write_index(shard, str(shards[-1]))
            del shard
        parts = list(existing)
        readers = [faiss.read_index(str(p), faiss.IO_FLAG_MMAP) for p in shards]
        parts += [faiss.extract_index_ivf(r).invlists for r in readers]
        fd, name = tempfile.mkstemp(prefix="lists-", suffix=LISTS_SUFFIX, dir=lists_dir)
        os.close(fd)
        os.unlink(name)                         # OnDiskInvertedLists creates the file itself
        lists = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, name)
        vector = faiss.InvertedListsPtrVector()
        for part in parts:
            vector.push_back(part)
        with _c_stdout_silenced():                  # faiss printf()s each resize of the file
            ntotal = lists.merge_from_multiple(vector.data(), vector.size(), False, False)
        del readers
    finally:
        shutil.rmtree(shards_dir, ignore_errors=True)
    ivf.replace_invlists(lists, True)
    lists.this.disown()                          # the index owns (and frees) the lists now
    index.ntotal = ivf.ntotal = ntotal
    return index


def _link_or_copy(source: Path, target: Path) -> None:
    """Put ``source``'s bytes at ``target`` atomically: a hard link on the same disk, else a copy."""
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


@contextmanager
def _c_stdout_silenced():
    """Drop what C code prints to stdout meanwhile (faiss's on-disk lists report every file they
    map or resize); Python's own ``sys.stdout`` is flushed first, so nothing of ours is lost."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
