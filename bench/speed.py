"""Speed: our clustering + labelling vs BERTopic 0.17.4 on the same embeddings and tokens.

Notes: the three labelled benchmark samples (see ``bench/quality.py``; cached embeddings). The
10k run uses 10,000 of them (fixed seed). The 100k run is synthetic: real notes resampled with
replacement, each embedding jittered with Gaussian noise (``--noise``, per dimension) and
re-normalised; a copy keeps its source note's tokens.

Timed, per size, after a small warm-up of each library (numba JIT, FAISS). Ours: the fastest of
``--repeats`` runs (default 3; all are printed); BERTopic: one run (so its figure is an upper
bound — fair only as long as the machine is otherwise idle; the load average is printed).

* ``ours``      ``TopicClusterer().fit`` (kNN smoothing, auto k, best of 3 k-means runs) + topic centroids +
  ``TopicLabeler().fit`` (c-TF-IDF keywords, labels, representative notes).
* ``ours-v1``   the same with the v1 clusterer (``k_tolerance=None, n_init=1, n_neighbors=0``).
* ``bertopic``  ``BERTopic(vectorizer_model=CountVectorizer(...)).fit_transform(docs, embeddings)``
  with BERTopic's default UMAP + HDBSCAN (unseeded, i.e. parallel). To time clustering and
  labelling only, both sides get the same jieba tokens: BERTopic's docs are the tokens joined
  by spaces and its vectorizer splits on spaces. It runs in a child process killed after
  ``--bertopic-timeout`` seconds (reported as ``>X s``).

Also reported: embedding throughput (``--embed-n`` notes not in the cache, this machine's
torch threads) and jieba throughput on ``--jieba-n`` notes (serial, and ``segment_many`` over all
cores incl. the process-pool start-up).

    python bench/speed.py
    python bench/speed.py --sizes 10000 --bertopic-timeout 300
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.common import (DATASETS, embed_texts, get_bench_embedder, load_average, load_sample,
                          markdown_table, print_header, run_info)


def pool_notes(n_per_dataset: int, seed: int) -> tuple[list[str], np.ndarray]:
    texts = []
    for name in DATASETS:
        texts += load_sample(name, n_per_dataset, seed)["text"].tolist()
    embeddings, _ = embed_texts(texts, show_progress=True)
    return texts, embeddings


def synthetic(embeddings: np.ndarray, tokens: list[list[str]], n: int, noise: float, seed: int):
    """``n`` notes resampled from the real ones, embeddings jittered and re-normalised."""
    from miner.topics.cluster import as_float32_normalized
    rng = np.random.default_rng(seed)
    if n <= len(embeddings):
        idx = np.sort(rng.choice(len(embeddings), n, replace=False))
        return np.ascontiguousarray(embeddings[idx]), [tokens[i] for i in idx]
    idx = rng.integers(0, len(embeddings), n)
    jitter = rng.normal(0.0, noise, size=(n, embeddings.shape[1])).astype(np.float32)
    return as_float32_normalized(embeddings[idx] + jitter), [tokens[i] for i in idx]


# -- timed methods -------------------------------------------------------------------------------
def cluster_and_label(clusterer, embeddings, tokens) -> dict:
    from miner.topics.label import TopicLabeler
    from miner.topics.pipeline import topic_centroids
    t0 = time.perf_counter()
    clusterer.fit(embeddings)
    t1 = time.perf_counter()
    labels = clusterer.labels_
    centroids = topic_centroids(embeddings, labels, clusterer.n_topics_)
    TopicLabeler().fit(tokens, labels, embeddings, centroids)
    t2 = time.perf_counter()
    return {"cluster_s": t1 - t0, "label_s": t2 - t1, "total_s": t2 - t0,
            "topics": int(clusterer.n_topics_), "outliers": float(np.mean(labels < 0))}


def time_ours(embeddings, tokens, seed) -> dict:
    from miner.topics.cluster import TopicClusterer
    return cluster_and_label(TopicClusterer(seed=seed), embeddings, tokens)


def time_ours_v1(embeddings, tokens, seed) -> dict:
    from miner.topics.cluster import TopicClusterer
    return cluster_and_label(TopicClusterer(seed=seed, k_tolerance=None, n_init=1, n_neighbors=0),
                             embeddings, tokens)


def best_of(repeats: int, fn, *args) -> dict:
    """The fastest of ``repeats`` runs (contention from other jobs only ever adds time)."""
    runs = [fn(*args) for _ in range(max(1, repeats))]
    best = min(runs, key=lambda r: r["total_s"])
    return {**best, "all_s": [r["total_s"] for r in runs]}


def _bertopic_child(emb_path: str, docs_path: str, queue) -> None:
    """Child process: warm up numba, then time one BERTopic fit on the given embeddings."""
    warnings.simplefilter("ignore")
    from bertopic import BERTopic
    from sklearn.feature_extraction.text import CountVectorizer

    def model():
        return BERTopic(vectorizer_model=CountVectorizer(tokenizer=str.split, token_pattern=None,
                                                         lowercase=False))
    embeddings = np.load(emb_path)
    with open(docs_path, encoding="utf-8") as fh:
        docs = fh.read().split("\n")
    rng = np.random.default_rng(0)
    warm = rng.choice(len(docs), min(1000, len(docs)), replace=False)
    model().fit_transform([docs[i] for i in warm], embeddings=embeddings[warm])   # numba JIT warm-up
    queue.put(("warm", None))
    t0 = time.perf_counter()
    topics, _ = model().fit_transform(docs, embeddings=embeddings)
    topics = np.asarray(topics)
    queue.put(("done", {"total_s": time.perf_counter() - t0, "topics": int(len(np.unique(topics[topics >= 0]))),
                        "outliers": float(np.mean(topics < 0))}))


def time_bertopic(embeddings, tokens, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        emb_path, docs_path = os.path.join(tmp, "emb.npy"), os.path.join(tmp, "docs.txt")
        np.save(emb_path, embeddings)
        with open(docs_path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(" ".join(t) if t else "_" for t in tokens))
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_bertopic_child, args=(emb_path, docs_path, queue))
        proc.start()
        result = None
        try:
            kind, _ = queue.get(timeout=600)            # warm-up; not counted
            kind, result = queue.get(timeout=timeout)
        except Exception:                                # queue.Empty: over the time limit
            result = {"total_s": float("inf"), "timeout_s": timeout}
        finally:
            if proc.is_alive():
                proc.terminate()
            proc.join(30)
    return result


def embedding_throughput(n: int, seed: int) -> dict:
    """Notes/s of ``SentenceEmbedder.encode`` on ``n`` real notes, no cache."""
    texts = []
    for name in DATASETS:
        texts += load_sample(name, 0, seed)["text"].tolist()
    rng = np.random.default_rng(seed + 1)
    sample = [texts[i] for i in rng.choice(len(texts), n, replace=False)]
    embedder = get_bench_embedder()
    embedder.show_progress = False
    embedder.encode(sample[:16])                        # load the model outside the timing
    t0 = time.perf_counter()
    embedder.encode(sample)
    seconds = time.perf_counter() - t0
    import torch
    return {"notes": n, "seconds": seconds, "notes_per_s": n / seconds, "torch_threads": torch.get_num_threads(),
            "mean_chars": float(np.mean([len(t) for t in sample]))}


def jieba_throughput(texts: list[str]) -> list[dict]:
    from miner.topics.segment import JiebaSegmenter
    serial = JiebaSegmenter(n_jobs=1)
    serial.segment("预热 warm up")                      # dictionary load outside the timing
    t0 = time.perf_counter()
    serial.segment_many(texts)
    s_serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    JiebaSegmenter(n_jobs=-1).segment_many(texts)
    s_par = time.perf_counter() - t0
    return [{"mode": "serial (1 process, dictionary loaded)", "notes": len(texts), "seconds": s_serial,
             "notes_per_s": len(texts) / s_serial},
            {"mode": f"parallel ({os.cpu_count()} processes, incl. pool start + dictionary loads)",
             "notes": len(texts), "seconds": s_par, "notes_per_s": len(texts) / s_par}]


def fmt_seconds(r: dict) -> str:
    if r.get("timeout_s") is not None:
        return f">{r['timeout_s']:.0f}"
    return f"{r['total_s']:.1f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--per-dataset", type=int, default=6000, help="real notes taken from each dataset")
    parser.add_argument("--noise", type=float, default=0.01, help="per-dimension jitter for resampled notes")
    parser.add_argument("--bertopic-timeout", type=float, default=900)
    parser.add_argument("--embed-n", type=int, default=1000)
    parser.add_argument("--jieba-n", type=int, default=50000, help="notes for the jieba timing (real notes, cycled)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours per size (best kept)")
    parser.add_argument("--methods", default="ours,bertopic", help="comma-separated: ours, ours-v1, bertopic")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    info = run_info(argv if argv is not None else sys.argv)
    print_header("Speed: clustering + labelling, embedding, segmentation", info)
    methods = args.methods.split(",")
    started = time.perf_counter()

    from miner.topics.segment import JiebaSegmenter
    texts, embeddings = pool_notes(args.per_dataset, args.seed)
    tokens = JiebaSegmenter(n_jobs=-1).segment_many(texts)
    print(f"real notes: {len(texts)} ({args.per_dataset} per dataset × {len(DATASETS)}), "
          f"dim {embeddings.shape[1]}; synthetic sizes resample them with N(0, {args.noise}²) jitter\n",
          flush=True)

    # warm-ups outside the timing
    w_emb, w_tok = synthetic(embeddings, tokens, 1000, args.noise, args.seed)
    time_ours(w_emb, w_tok, args.seed)

    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        emb, tok = synthetic(embeddings, tokens, size, args.noise, args.seed)
        kind = "real" if size <= len(embeddings) else "resampled + jitter"
        res = {}
        if "ours" in methods:
            res["ours"] = best_of(args.repeats, time_ours, emb, tok, args.seed)
        if "ours-v1" in methods:
            res["ours-v1"] = best_of(args.repeats, time_ours_v1, emb, tok, args.seed)
        if "bertopic" in methods:
            res["bertopic"] = time_bertopic(emb, tok, args.bertopic_timeout)
        for method, r in res.items():
            row = {"notes": size, "data": kind, "method": method, "seconds": fmt_seconds(r),
                   "runs (s)": " / ".join(f"{x:.1f}" for x in r["all_s"]) if "all_s" in r else fmt_seconds(r),
                   "cluster s": r.get("cluster_s", ""), "label s": r.get("label_s", ""),
                   "topics": r.get("topics", ""), "outliers": r.get("outliers", "")}
            if "bertopic" in res and method != "bertopic":
                b = res["bertopic"]
                ratio = b["total_s"] / r["total_s"]
                row["BERTopic / this"] = (f">{b['timeout_s'] / r['total_s']:.0f}×" if b.get("timeout_s")
                                          else f"{ratio:.1f}×")
            rows.append(row)
            print(f"  {size:>7d} {method:9s} {row['seconds']} s  topics={row['topics']}", flush=True)
    print()
    print(markdown_table(rows, ["notes", "data", "method", "seconds", "runs (s)", "cluster s", "label s",
                                "topics", "outliers", "BERTopic / this"]))

    print()
    emb_row = embedding_throughput(args.embed_n, args.seed)
    print(markdown_table([emb_row], ["notes", "mean_chars", "torch_threads", "seconds", "notes_per_s"]))
    print()
    jieba_texts = [texts[i % len(texts)] for i in range(args.jieba_n)]    # cycles the real notes
    print(markdown_table(jieba_throughput(jieba_texts),
                         ["mode", "notes", "seconds", "notes_per_s"]))
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s; load average at end: {load_average()}")


if __name__ == "__main__":
    main()
