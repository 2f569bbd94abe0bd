"""TopicMiner orchestration: notes → tokens → embeddings → topics → labels → snapshot."""
from __future__ import annotations

import hashlib
import platform
import shutil
import tempfile
import time
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

import miner
from miner import schema
from miner.topics.blocks import normalize_rows_inplace, row_blocks
from miner.topics.cluster import TopicClusterer, as_float32_normalized
from miner.topics.geometry import add_rows_by_group
from miner.topics.executor import make_executor
from miner.config import MinerConfig
from miner.topics.index import VectorIndex
from miner.topics.snapshot import Snapshot
from miner.topics.tokens import TokenTable, TokenTableWriter
from miner.topics.segment import make_segmenter, note_text  # noqa: F401  (make_segmenter: re-exported)

ProgressFn = Callable[[str, float], None]
TEXT_CHUNK_ROWS = 262_144     # notes whose texts (and cache keys) are in memory at once while segmenting and embedding


@dataclass
class BuildResult:
    run_id: str
    path: str
    n_notes: int
    n_topics: int
    outlier_share: float
    embedded_new: int
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"完成 built {self.run_id}: {self.n_notes} 篇笔记 notes → {self.n_topics} 个话题 topics, "
                f"离群 outliers {self.outlier_share:.1%}, 新嵌入 newly embedded {self.embedded_new}, "
                f"{self.seconds:.1f}s → {self.path}")
        return "\n".join([text, *(f"注意 warning: {w}" for w in self.warnings)])


def has_meaningful_text(text: str) -> bool:
    """True when the text holds at least one letter or digit (emoji, punctuation and blanks do not
    carry a topic)."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in str(text or ""))


def notes_texts(notes: pd.DataFrame) -> list[str]:
    tags = notes[schema.TAGS].tolist() if schema.TAGS in notes else [None] * len(notes)
    return [note_text(t, b, g if g is not None else ()) for t, b, g in
            zip(notes[schema.TITLE].fillna("").tolist(), notes[schema.BODY].fillna("").tolist(), tags)]


def sorted_by_note_id(notes: pd.DataFrame) -> pd.DataFrame:
    """``notes`` in ``note_id`` order with a 0…n−1 index; the frame itself when it is so already
    (the stored notes are: a sorted copy would hold every column twice)."""
    ids = notes[schema.NOTE_ID]
    if isinstance(notes.index, pd.RangeIndex) and notes.index.start == 0 and notes.index.step == 1 \
            and ids.is_monotonic_increasing:
        return notes
    return notes.sort_values(schema.NOTE_ID, kind="stable").reset_index(drop=True)


def data_hash(notes: pd.DataFrame, texts: list[str]) -> str:
    h = hashlib.sha1()
    _hash_notes(h, sorted(zip(schema.note_id_column(notes).tolist(), texts)))
    return h.hexdigest()[:12]


def _hash_notes(hasher, pairs) -> None:
    """Feed (note id, text) pairs to ``hasher``, in the given order."""
    for nid, text in pairs:
        hasher.update(nid.encode())
        hasher.update(text.encode())


def topic_centroids(embeddings: np.ndarray, labels: np.ndarray, n_topics: int) -> np.ndarray:
    """Normalised mean embedding of each topic's members (in the original embedding space),
    summed block by block (a memory-mapped ``embeddings`` is read once, never copied whole)."""
    sums = np.zeros((n_topics, embeddings.shape[1]), np.float64)
    for lo, hi in row_blocks(len(embeddings)):
        block = labels[lo:hi]
        valid = block >= 0
        add_rows_by_group(sums, block[valid], embeddings[lo:hi][valid])
    return as_float32_normalized(sums)


def scratch_dir(config: MinerConfig) -> Path:
    """A private folder for a build's memory-mapped arrays, beside the snapshots (same disk);
    named like a snapshot's temporary folder, so one left by a killed build is cleaned up."""
    from miner.topics.snapshot import TMP_PREFIX
    config.snapshots_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}build-", dir=config.snapshots_dir))


def build_topics(config: MinerConfig, notes: pd.DataFrame, embedder=None, show_progress: bool = True,
                 on_progress: ProgressFn | None = None, run_id: str | None = None) -> BuildResult:
    """Mine topics from ``notes`` (notes schema) and write a snapshot; return a summary."""
    from miner.topics.embed import EmbeddingCache, embedding_meta, get_embedder

    started = time.perf_counter()
    report = on_progress or (lambda stage, frac: None)
    if len(notes) == 0:
        raise ValueError("no notes to build topics from; ingest notes first (python -m miner ingest FILE)")
    notes = sorted_by_note_id(notes)
    ids = schema.note_id_column(notes)

    embedder = embedder or get_embedder(config)
    cache = EmbeddingCache(config.embedding_cache_dir)
    scratch = scratch_dir(config)
    try:
        # Embeddings live in a memory-mapped file: the build never holds them in RAM twice.
        embeddings = np.lib.format.open_memmap(scratch / "embeddings.npy", mode="w+", dtype=np.float32,
                                               shape=(len(notes), int(embedder.dim)))
        with make_executor(config) as executor:          # local (default) or a Ray cluster, started once
            tokens, digest, embedded_new = _segment_and_embed(executor, embedder, notes, ids, cache, embeddings,
                                                              scratch, show_progress, report)
        normalize_rows_inplace(embeddings)              # the values as_float32_normalized gives
        embeddings.flush()

        report("聚类 clustering", 0.75)
        previous = _previous_topics(config, embedder.model_id)
        init = _warm_start(config, previous, ids)
        clusterer = TopicClusterer(n_topics=config.n_topics, outlier_share=config.outlier_share,
                                   min_topic_size=config.min_topic_size, seed=config.seed,
                                   init_labels=init).fit(embeddings)
        labels = clusterer.labels_

        report("标注 labelling", 0.85)

        report("索引 indexing", 0.92)
        note_index = VectorIndex(seed=config.seed).fit(embeddings, lists_dir=scratch)   # IVF lists: on disk

        now = datetime.now(ZoneInfo(config.timezone))
        # The random part keeps run ids unique for builds started in the same second.
        run_id = run_id or f"{now:%Y%m%d-%H%M%S}-{digest[:6]}-{uuid.uuid4().hex[:4]}"
        meta = {
            "miner_version": miner.__version__,
            "created_at": now.isoformat(),
            "data_hash": digest,
            "n_notes": len(notes),
            "model_notes": len(notes),     # the first rows, the notes the clusterer was fitted on (updates append)
            "seed": config.seed,
            "embedding": embedding_meta(config, embedder, embeddings.shape[1]),
            "params": {"n_topics": config.n_topics, "outlier_share": config.outlier_share,
                       "min_topic_size": config.min_topic_size, "n_keywords": config.n_keywords,
                       "warm_start": init is not None},
            "versions": _library_versions(),
        }
        report("写入 writing", 0.95)
        path = _write_with_registry(config, run_id, meta, notes, ids, tokens, embeddings, clusterer, note_index,
                                    previous, embedder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report("完成 done", 1.0)
    warnings = []
    if config.n_topics is not None and clusterer.n_topics_ < config.n_topics:
        warnings.append(f"要求 {config.n_topics} 个话题, 实际 {clusterer.n_topics_} 个: 每个话题至少需要 "
                        f"min_topic_size={config.min_topic_size} 篇笔记, {len(notes)} 篇笔记容纳不下更多 "
                        f"(requested n_topics={config.n_topics}; smaller clusters were merged or marked outliers)")
    return BuildResult(run_id=run_id, path=str(path), n_notes=len(notes), n_topics=clusterer.n_topics_,
                       outlier_share=float(np.mean(labels < 0)), embedded_new=embedded_new,
                       seconds=time.perf_counter() - started, warnings=warnings)


def _segment_and_embed(executor, embedder, notes: pd.DataFrame, ids: pd.Series, cache, embeddings: np.ndarray,
                       scratch: Path, show_progress: bool, report: ProgressFn) -> tuple[TokenTable, str, int]:
    """Tokens of every note (a :class:`TokenTable` in ``scratch``), the data hash, and how many
    notes were newly embedded; vectors go to ``embeddings``. Texts are made ``TEXT_CHUNK_ROWS``
    notes at a time, once for segmentation and once for embedding, so neither they, the cache's
    per-note keys nor the token lists are held for the whole corpus."""
    from miner.topics.embed import cached_encode
    chunks = row_blocks(len(notes), TEXT_CHUNK_ROWS)
    streamed = schema.strictly_increasing(ids)     # then data_hash's order is row order
    hasher, embedded_new, writer = hashlib.sha1(), 0, TokenTableWriter(scratch / "tokens")

    report("分词 segmenting", 0.05)
    for lo, hi in chunks:
        writer.append(executor.segment(notes_texts(notes.iloc[lo:hi]), n_jobs=-1, show_progress=show_progress))
    tokens = writer.close()

    report("向量化 embedding", 0.15)
    remote = executor.embedder(embedder)
    for i, (lo, hi) in enumerate(chunks):
        texts = notes_texts(notes.iloc[lo:hi])
        batch = f" (第 {i + 1}/{len(chunks)} 批 batch)" if len(chunks) > 1 else ""

        def progress(done, total, lo=lo, hi=hi, batch=batch):
            report(f"向量化 embedding {done}/{total}{batch}", 0.15 + 0.6 * (lo + (hi - lo) * done / total) / len(notes))
        cached_encode(remote, texts, cache, show_progress=show_progress, on_progress=progress, out=embeddings[lo:hi])
        embedded_new += int(cache.last_stats.misses)
        if streamed:
            _hash_notes(hasher, zip(ids.iloc[lo:hi].tolist(), texts))
    digest = hasher.hexdigest()[:12] if streamed else data_hash(notes, notes_texts(notes))
    return tokens, digest, embedded_new


def _previous_topics(config: MinerConfig, model_id: str):
    """The serving snapshot a rebuild continues from (ids, warm start), or None."""
    from miner.topics.update import previous_snapshot
    return previous_snapshot(config, model_id)


def _warm_start(config: MinerConfig, previous, note_ids):
    """Previous topics of the current notes (a warm start), unless ``config.warm_start`` is off."""
    from miner.topics.update import warm_start_labels
    if previous is None or not config.warm_start or config.n_topics is not None:
        return None
    return warm_start_labels(previous, note_ids)


def _write_with_registry(config, run_id, meta, notes, ids, tokens, embeddings, clusterer, note_index, previous,
                         embedder):
    """Permanent ids by lineage, curation replayed, snapshot written (``tokens`` as its notes'
    ``tokens`` column), registry updated."""
    from miner.topics.update import rebuild_ids, write_snapshot
    labels = clusterer.labels_
    topic_ids, events, new_topics = rebuild_ids(config, previous, ids, labels, embeddings, clusterer.n_topics_)
    raw = np.where(labels >= 0, topic_ids[np.maximum(labels, 0)], -1)
    path, _, _ = write_snapshot(config, run_id, meta, notes, embeddings, raw, clusterer.scores_, clusterer,
                                topic_ids, note_index, "build", events, new_topics, candidates=[], embedder=embedder,
                                tokens=tokens)
    return path


def predict_texts(snapshot: Snapshot, texts: list[str], embedder=None) -> pd.DataFrame:
    """Topic of new texts under a snapshot: topic_id (−1 = outlier), score, label and a reason.

    Texts without a letter or digit (empty, emoji-only, punctuation-only) get −1 with the reason
    ``empty`` and are never embedded; other outliers get ``outlier``.
    """
    texts = [str(t or "") for t in texts]
    meaningful = np.array([has_meaningful_text(t) for t in texts], dtype=bool)
    labels = np.full(len(texts), schema.OUTLIER, dtype=np.int64)
    scores = np.zeros(len(texts), dtype=np.float32)
    if meaningful.any():
        found, found_scores = _predict_vectors(snapshot, [t for t, m in zip(texts, meaningful) if m], embedder)
        labels[meaningful] = found
        scores[meaningful] = found_scores
    label_by_id = dict(zip(snapshot.topics[schema.TOPIC_ID], snapshot.topics["label"]))
    reasons = np.where(~meaningful, "empty", np.where(labels < 0, "outlier", "assigned"))
    return pd.DataFrame({"text": texts, schema.TOPIC_ID: labels, schema.SCORE: scores,
                         "label": [label_by_id.get(int(t), "离群 outlier") if m else "无有效文字 no text"
                                   for t, m in zip(labels, meaningful)],
                         "reason": reasons})


def _predict_vectors(snapshot: Snapshot, texts: list[str], embedder=None):
    from miner.topics.embed import snapshot_embedder

    embedder = embedder or snapshot_embedder(snapshot.meta["embedding"])
    if embedder.model_id != snapshot.model_id:
        raise ValueError(f"snapshot {snapshot.run_id} was built with {snapshot.model_id}, "
                         f"not {embedder.model_id}; use the same embedding model")
    vectors = embedder.encode(list(texts), kind="passage")
    from miner.topics.update import predict_topic_ids, shown_topic_ids
    raw, scores = predict_topic_ids(snapshot, vectors)
    return shown_topic_ids(snapshot, raw), scores


def _library_versions() -> dict:
    import faiss
    import jieba
    import sklearn
    versions = {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
                "faiss": faiss.__version__, "scikit-learn": sklearn.__version__, "jieba": jieba.__version__}
    from importlib.metadata import PackageNotFoundError, version
    for dist in ("sentence-transformers", "torch"):   # metadata only: importing torch costs seconds
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return versions
