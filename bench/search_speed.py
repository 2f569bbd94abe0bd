"""Search latency and recall at 100k and 1M notes (synthetic clustered vectors, dim 384).

    python bench/search_speed.py [--sizes 100000 1000000] [--queries 300] [--nprobes 16 32 48 64 96]

For each corpus size:

1. Synthetic notes: ``--topics`` topics × 8 sub-topics in a 64-d subspace rotated into 384-d
   (:class:`SyntheticCorpus`, calibrated against the demo's real embeddings), each note with 12
   synthetic tokens drawn from its topic's vocabulary (for the BM25 leg). Queries are fresh draws
   from the same generator.
2. Exact search (``IndexFlatIP``) gives the ground-truth top-10 of every query.
3. The index type is chosen by size (:func:`miner.topics.index.choose_factory`: Flat below 100k, IVF from
   there) and swept over ``nprobe``: p50/p95 single-query latency, recall@10 vs exact, and the
   latency ratio vs Flat measured in the same run.
4. End to end: :class:`miner.insights.search.TopicSearcher` (centroid + note search + BM25 + fusion) over the
   same notes, with a stub embedder returning the query vector, once on the size-chosen index at
   the default nprobe and once on Flat.

Latency is wall time per query, one query at a time (interactive use), with FAISS using all cores.
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import faiss  # noqa: E402

from miner.topics.index import VectorIndex, choose_factory  # noqa: E402

DIM = 384
SUBTOPICS = 8
TOKENS_PER_NOTE = 12
VOCAB_PER_TOPIC = 40


class SyntheticCorpus:
    """Clustered unit vectors with a low intrinsic dimension, like sentence embeddings (fixed seed).

    Topic centres → 8 sub-topic centres → notes in an ``intrinsic``-dimensional subspace, rotated
    into ``dim`` dimensions plus a little isotropic noise. Calibration: on 5,000 vectors the mean
    cosine to the 10th nearest neighbour sits (nn10 − median) / (p99 − median) ≈ 1.25 of the way
    from the median random pair to the 99th percentile; the real e5 embeddings of the 5,000 demo
    notes give ≈ 1.0 (even less separated), isotropic clusters give 3.6 (far too easy for IVF).
    """

    def __init__(self, n_topics: int, dim: int = DIM, intrinsic: int = 64, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.n_topics, self.dim, self.intrinsic = n_topics, dim, intrinsic
        self.basis = np.linalg.qr(rng.standard_normal((dim, intrinsic)))[0].T.astype(np.float32)
        centres = _unit(rng.standard_normal((n_topics, intrinsic), dtype=np.float32))
        subs = centres[:, None, :] + _unit(rng.standard_normal((n_topics, SUBTOPICS, intrinsic), dtype=np.float32))
        self.subs = _unit(subs.reshape(-1, intrinsic))                                # (topics·8, intrinsic)

    def draw(self, n: int, rng: np.random.Generator, chunk: int = 100_000):
        topics = rng.integers(0, self.n_topics, n)
        sub = topics * SUBTOPICS + rng.integers(0, SUBTOPICS, n)
        out = np.empty((n, self.dim), dtype=np.float32)
        for lo in range(0, n, chunk):
            hi = min(lo + chunk, n)
            local = _unit(self.subs[sub[lo:hi]] + 1.2 * _unit(rng.standard_normal((hi - lo, self.intrinsic),
                                                                                 dtype=np.float32)))
            ambient = _unit(rng.standard_normal((hi - lo, self.dim), dtype=np.float32))
            out[lo:hi] = _unit(local @ self.basis + 0.3 * ambient)
        return out, topics


def _unit(X):
    return (X / np.linalg.norm(X, axis=-1, keepdims=True)).astype(np.float32)


def _token_lists(topics: np.ndarray, rng: np.random.Generator) -> list[list[str]]:
    """12 tokens per note: 9 from its topic's vocabulary (Zipf-ish), 3 from a shared pool."""
    vocab = np.array([f"kw{t}x{j}" for t in range(topics.max() + 1) for j in range(VOCAB_PER_TOPIC)])
    shared = np.array([f"common{j}" for j in range(200)])
    p = 1.0 / np.arange(1, VOCAB_PER_TOPIC + 1)
    p /= p.sum()
    own = topics[:, None] * VOCAB_PER_TOPIC + rng.choice(VOCAB_PER_TOPIC, (len(topics), 9), p=p)
    common = rng.integers(0, len(shared), (len(topics), 3))
    return [list(a) + list(b) for a, b in zip(vocab[own], shared[common])]


class StubEmbedder:
    """Returns the precomputed vector registered for a query text."""

    model_id = "synthetic"

    def __init__(self):
        self.vectors: dict[str, np.ndarray] = {}

    def encode(self, texts, kind="query", show_progress=None):
        return np.stack([self.vectors[t] for t in texts])


class LightSnapshot:
    """The attributes :class:`TopicSearcher` reads from a snapshot."""

    model_id = "synthetic"
    run_id = "bench"

    def __init__(self, notes, topics, assignments, embeddings, centroids, note_index, topic_index):
        self.notes, self.topics, self.assignments = notes, topics, assignments
        self.embeddings, self.centroids = embeddings, centroids
        self.note_index, self.topic_index = note_index, topic_index


def _latencies(fn, queries) -> np.ndarray:
    fn(queries[0])                                   # warm-up
    out = np.empty(len(queries))
    for i, q in enumerate(queries):
        t = time.perf_counter()
        fn(q)
        out[i] = time.perf_counter() - t
    return out * 1000.0


def _pcts(ms: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def recall_at_k(gt: np.ndarray, got: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(gt, got)]))


def run_size(n: int, args, rows: list[dict], e2e_rows: list[dict]) -> None:
    rng = np.random.default_rng(args.seed + n)
    corpus = SyntheticCorpus(args.topics, seed=args.seed)
    t0 = time.perf_counter()
    X, topics = corpus.draw(n, rng)
    Q, q_topics = corpus.draw(args.queries, np.random.default_rng(args.seed + 1))
    print(f"\n## n = {n:,} ({args.topics} topics × {SUBTOPICS} sub-topics, dim {DIM}); "
          f"generated in {time.perf_counter() - t0:.1f}s", flush=True)

    t0 = time.perf_counter()
    flat = VectorIndex(factory="Flat").fit(X)
    _, gt = flat.index_.search(Q, 10)
    flat_ms = _latencies(lambda q: flat.search(q, 10), Q)
    f50, f95 = _pcts(flat_ms)
    rows.append({"n": n, "index": "Flat (exact)", "nprobe": "-", "build_s": time.perf_counter() - t0,
                 "p50_ms": f50, "p95_ms": f95, "recall@10": 1.0, "p50_vs_flat": 1.0, "p95_vs_flat": 1.0})
    print(f"Flat: p50 {f50:.2f} ms, p95 {f95:.2f} ms", flush=True)

    factory = choose_factory(n)
    chosen = flat
    if factory != "Flat":
        t0 = time.perf_counter()
        chosen = VectorIndex(seed=args.seed).fit(X)
        build_s = time.perf_counter() - t0
        ivf = faiss.extract_index_ivf(chosen.index_)
        default_nprobe = chosen.nprobe
        for nprobe in sorted(set(args.nprobes) | {default_nprobe}):
            ivf.nprobe = nprobe
            _, got = chosen.index_.search(Q, 10)
            ms = _latencies(lambda q: chosen.search(q, 10), Q)
            p50, p95 = _pcts(ms)
            rows.append({"n": n, "index": chosen.factory_, "nprobe": nprobe if nprobe != default_nprobe
                         else f"{nprobe} (default)", "build_s": build_s, "p50_ms": p50, "p95_ms": p95,
                         "recall@10": recall_at_k(gt, got), "p50_vs_flat": p50 / f50, "p95_vs_flat": p95 / f95})
            print(f"{chosen.factory_} nprobe {nprobe}: p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
                  f"recall@10 {rows[-1]['recall@10']:.3f}", flush=True)
        ivf.nprobe = default_nprobe

    # end to end: hybrid TopicSearcher over the same notes
    from miner.insights.search import TopicSearcher
    t0 = time.perf_counter()
    tokens = _token_lists(topics, rng)
    note_ids = np.char.add("n", np.arange(n).astype(str))
    notes = pd.DataFrame({"note_id": note_ids, "title": "", "tokens": tokens, "likes": 1, "collects": 0,
                          "comments": 0, "shares": 0})
    assignments = pd.DataFrame({"note_id": note_ids, "topic_id": topics.astype(np.int64), "score": 1.0})
    sums = np.zeros((args.topics, DIM), np.float64)
    np.add.at(sums, topics, X)
    centroids = _unit(sums.astype(np.float32))
    topic_table = pd.DataFrame({"topic_id": np.arange(args.topics), "label": [f"话题{t}" for t in range(args.topics)],
                                "keywords": [[f"kw{t}x{j}" for j in range(5)] for t in range(args.topics)],
                                "size": np.bincount(topics, minlength=args.topics),
                                "representative_note_ids": [[] for _ in range(args.topics)]})
    embedder = StubEmbedder()
    texts = []
    for i, (q, t) in enumerate(zip(Q, q_topics)):
        text = f"kw{t}x{i % 3} kw{t}x{3 + i % 5}"
        embedder.vectors[text] = q
        texts.append(text)
    topic_index = VectorIndex(factory="Flat").fit(centroids)
    for label, note_index in (("size-chosen", chosen), ("Flat", flat)) if chosen is not flat else (("Flat", flat),):
        snap = LightSnapshot(notes, topic_table, assignments, X, centroids, note_index, topic_index)
        t1 = time.perf_counter()
        searcher = TopicSearcher(embedder=embedder).fit(snap)
        fit_s = time.perf_counter() - t1
        ms = _latencies(lambda text: searcher.search(text, k=10), texts)
        p50, p95 = _pcts(ms)
        hit = np.mean([searcher.search(text, k=1)[0].topic_id == t for text, t in zip(texts[:100], q_topics[:100])])
        e2e_rows.append({"n": n, "note index": f"{note_index.factory_}" + (
            f" nprobe {note_index.nprobe}" if note_index.factory_ != "Flat" else ""), "fit_s": fit_s,
            "p50_ms": p50, "p95_ms": p95, "top1_topic_hit": hit})
        print(f"TopicSearcher ({label}): fit {fit_s:.1f}s, p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
              f"top-1 = query's topic {hit:.2f}", flush=True)
        del searcher
    print(f"(end-to-end setup {time.perf_counter() - t0:.1f}s)", flush=True)
    del X, flat, chosen, notes, tokens
    gc.collect()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--topics", type=int, default=300)
    parser.add_argument("--nprobes", type=int, nargs="+", default=[8, 16, 32, 64, 96])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="FAISS OpenMP threads (default: all cores)")
    args = parser.parse_args(argv)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)

    try:
        from bench.common import print_header, run_info
        print_header("Search speed (synthetic clustered vectors)", run_info(argv))
    except ImportError:
        pass
    import os
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"faiss {faiss.__version__}, omp threads {faiss.omp_get_max_threads()}, "
          f"load average at start {load[0]:.2f} (on {os.cpu_count()} cores)")
    rows: list[dict] = []
    e2e: list[dict] = []
    for n in args.sizes:
        run_size(n, args, rows, e2e)

    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"\nload average at end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    print("\n### Vector search (note index), single query, k = 10\n")
    print(_markdown(rows, ["n", "index", "nprobe", "build_s", "p50_ms", "p95_ms", "recall@10", "p50_vs_flat",
                           "p95_vs_flat"]))
    print("\n### End to end: TopicSearcher.search (centroids + notes + BM25 + RRF), k = 10\n")
    print(_markdown(e2e, ["n", "note index", "fit_s", "p50_ms", "p95_ms", "top1_topic_hit"]))
    return 0


def _markdown(rows, cols) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3f}" if v < 10 else f"{v:.1f}"
        return f"{v:,}" if isinstance(v, int) else str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
