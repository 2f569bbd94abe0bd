"""Topic quality against human labels: our clusterer vs BERTopic 0.17.4 vs a TF-IDF + KMeans floor.

For each labelled dataset (online-shopping ``cat``, NLPCC ``label``, Bilibili ``main_zone``) a
fixed-seed sample is embedded once (disk-cached) and every method runs on the same notes and the
same embeddings:

* ``ours-v0``   the clusterer before partial whitening (centring only; commit 1a8a99d).
* ``ours-v1``   partial whitening, plain silhouette argmax k, one k-means run (commit f8ad739).
* ``ours``      ``miner.topics.cluster.TopicClusterer()`` with its defaults (partial whitening, kNN
  neighbourhood smoothing, parsimonious smoothed-silhouette k, best of 3 k-means runs, 8 % outliers).
* ``bertopic``  BERTopic 0.17.4 with its default UMAP + HDBSCAN and a jieba ``CountVectorizer``;
  the UMAP is BERTopic's default one plus ``random_state`` so the table is reproducible.
* ``floor``     jieba + merged stopwords → TF-IDF → SVD(200) → KMeans(k = number of labels),
  the baseline of each dataset's PROVENANCE.md, recomputed in this run on this sample.

Each method runs with several seeds (``--seeds``, default 42,43,44: k-means init and k-choice
sample for ours, UMAP for BERTopic, SVD + KMeans for the floor) and the table shows the mean and
range: BERTopic in particular swings with tiny input changes (one seed of Bilibili collapses to 4
topics). NMI is sklearn's (arithmetic normalisation).

How outliers count: ``NMI`` / ``ARI`` keep outliers as one extra predicted label ``-1`` (so a
method cannot gain by discarding hard notes); ``NMI in`` is NMI on the non-outlier notes only.

    python bench/quality.py                      # 6,000 notes per dataset (sample seed 42)
    python bench/quality.py --n 2000 --methods ours,floor
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from bench.common import (DATASETS, MERGED_STOPWORDS, embed_texts, load_average, load_sample,
                          markdown_table, print_header, run_info)

OUTLIER = -1
METHODS = ("ours-v0", "ours-v1", "ours", "bertopic", "floor")
MAX_OUTLIER_SHARE = 0.15


def scores(labels_true, labels_pred) -> dict:
    labels_true = np.asarray(labels_true)
    labels_pred = np.asarray(labels_pred)
    inlier = labels_pred != OUTLIER
    return {
        "topics": int(len(np.unique(labels_pred[inlier]))),
        "outliers": float(np.mean(~inlier)),
        "NMI": float(normalized_mutual_info_score(labels_true, labels_pred)),
        "NMI in": float(normalized_mutual_info_score(labels_true[inlier], labels_pred[inlier])) if inlier.any() else 0.0,
        "ARI": float(adjusted_rand_score(labels_true, labels_pred)),
    }


# -- methods: (texts, tokens, embeddings, n_labels, seed) -> labels -------------------------------
def run_ours_v0(texts, tokens, embeddings, n_labels, seed):
    """The clusterer before partial whitening (commit 1a8a99d): centring only.

    A full-rank PCA rotation (``whiten_power=0``, all dimensions) leaves cosines unchanged.
    """
    from miner.topics.cluster import TopicClusterer
    return TopicClusterer(seed=seed, whiten_dims=embeddings.shape[1], whiten_power=0.0,
                          k_tolerance=None, n_init=1, n_neighbors=0).fit(embeddings).labels_


def run_ours_v1(texts, tokens, embeddings, n_labels, seed):
    """Partial whitening with the plain silhouette argmax and a single k-means run (commit f8ad739)."""
    from miner.topics.cluster import TopicClusterer
    return TopicClusterer(seed=seed, k_tolerance=None, n_init=1, n_neighbors=0).fit(embeddings).labels_


def run_ours(texts, tokens, embeddings, n_labels, seed):
    from miner.topics.cluster import TopicClusterer
    return TopicClusterer(seed=seed).fit(embeddings).labels_


def bertopic_model(seed: int | None, vectorizer):
    """BERTopic with its defaults; ``seed`` pins UMAP (otherwise UMAP runs unseeded and parallel)."""
    from bertopic import BERTopic
    from umap import UMAP
    # BERTopic 0.17.4's default UMAP, spelled out only to add random_state
    umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine",
                      low_memory=False, random_state=seed) if seed is not None else None
    return BERTopic(umap_model=umap_model, vectorizer_model=vectorizer)


def jieba_vectorizer():
    from sklearn.feature_extraction.text import CountVectorizer
    from miner.topics.segment import JiebaSegmenter
    return CountVectorizer(tokenizer=JiebaSegmenter().segment, token_pattern=None, lowercase=False)


def run_bertopic(texts, tokens, embeddings, n_labels, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        topics, _ = bertopic_model(seed, jieba_vectorizer()).fit_transform(list(texts), embeddings=embeddings)
    return np.asarray(topics)


def run_floor(texts, tokens, embeddings, n_labels, seed):
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    tfidf = TfidfVectorizer(analyzer=_identity).fit_transform(_floor_tokens(tuple(texts)))
    svd = TruncatedSVD(n_components=min(200, tfidf.shape[1] - 1), random_state=seed).fit_transform(tfidf)
    return KMeans(n_clusters=n_labels, n_init=10, random_state=seed).fit_predict(svd)


def _identity(tokens):
    return tokens


@functools.lru_cache(maxsize=1)
def _floor_tokens(texts: tuple[str, ...]) -> list[list[str]]:
    """jieba + the shared merged stopword list only (no platform add-on list), as in PROVENANCE.md."""
    from miner.topics.segment import JiebaSegmenter
    return JiebaSegmenter(stopword_paths=[MERGED_STOPWORDS], n_jobs=-1).segment_many(list(texts))


RUNNERS = {"ours-v0": run_ours_v0, "ours-v1": run_ours_v1, "ours": run_ours, "bertopic": run_bertopic, "floor": run_floor}


def evaluate(name: str, n: int, sample_seed: int, seeds: list[int], methods: list[str]) -> tuple[list[dict], dict]:
    """Every method on one dataset sample, once per method seed; one summary row per method."""
    from miner.topics.segment import JiebaSegmenter
    df = load_sample(name, n, sample_seed)
    texts = df["text"].tolist()
    y = df["label"].to_numpy()
    embeddings, stats = embed_texts(texts, show_progress=False)
    tokens = JiebaSegmenter(n_jobs=-1).segment_many(texts)
    n_labels = df["label"].nunique()
    rows = []
    for method in methods:
        runs = []
        for seed in seeds:
            started = time.perf_counter()
            labels = RUNNERS[method](texts, tokens, embeddings, n_labels, seed)
            runs.append({**scores(y, labels), "seconds": time.perf_counter() - started})
            r = runs[-1]
            print(f"  {name:16s} {method:9s} seed={seed:<4d} topics={r['topics']:4d} outliers={r['outliers']:.1%} "
                  f"NMI={r['NMI']:.3f} NMI_in={r['NMI in']:.3f} ARI={r['ARI']:.3f} {r['seconds']:.1f}s", flush=True)
        nmis = np.array([r["NMI"] for r in runs])
        rows.append({"dataset": name, "method": method,
                     "topics": "/".join(str(r["topics"]) for r in runs),
                     "outliers": float(np.mean([r["outliers"] for r in runs])),
                     "NMI": float(nmis.mean()), "NMI min–max": f"{nmis.min():.3f}–{nmis.max():.3f}",
                     "NMI in": float(np.mean([r["NMI in"] for r in runs])),
                     "ARI": float(np.mean([r["ARI"] for r in runs])),
                     "seconds": float(np.mean([r["seconds"] for r in runs])), "_nmis": nmis})
    meta = {"dataset": name, "notes": len(df), "labels": n_labels, "newly embedded": int(stats.get("misses", 0)),
            "embed s": stats["seconds"]}
    by = {r["method"]: r for r in rows}
    for r in rows:
        if "bertopic" in by:
            r["NMI / BERTopic"] = r["NMI"] / max(by["bertopic"]["NMI"], 1e-9)
            if r["method"] != "bertopic":         # paired by seed
                r["seeds ≥ BERTopic"] = f"{int(np.sum(r['_nmis'] >= by['bertopic']['_nmis']))}/{len(seeds)}"
        if "floor" in by:
            r["NMI / floor"] = r["NMI"] / max(by["floor"]["NMI"], 1e-9)
    return rows, meta


def verdicts(rows: list[dict]) -> list[str]:
    out = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        by = {r["method"]: r for r in rows if r["dataset"] == name}
        for method in ("ours-v0", "ours-v1", "ours"):
            if method not in by:
                continue
            r = by[method]
            checks = [f"mean NMI {r['NMI']:.3f}", f"outliers {r['outliers']:.1%} ≤ {MAX_OUTLIER_SHARE:.0%}: "
                      f"{'yes' if r['outliers'] <= MAX_OUTLIER_SHARE else 'NO'}"]
            if "bertopic" in by:
                ok = r["NMI"] >= by["bertopic"]["NMI"]
                checks.append(f"NMI ≥ BERTopic ({by['bertopic']['NMI']:.3f}, seeds {r['seeds ≥ BERTopic']}): {'yes' if ok else 'NO'}")
            if "floor" in by:
                ok = r["NMI"] >= by["floor"]["NMI"]
                checks.append(f"NMI ≥ floor in run ({by['floor']['NMI']:.3f}): {'yes' if ok else 'NO'}")
            ok = r["NMI"] >= DATASETS[name].floor_nmi
            checks.append(f"NMI ≥ PROVENANCE floor ({DATASETS[name].floor_nmi:.3f}): {'yes' if ok else 'NO'}")
            out.append(f"- {name} / {method}: " + "; ".join(checks))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=6000, help="notes sampled per dataset (fixed seed)")
    parser.add_argument("--sample-seed", type=int, default=42, help="seed of the dataset samples")
    parser.add_argument("--seeds", default="42,43,44", help="method seeds (k-means / UMAP / KMeans)")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    info = run_info(argv if argv is not None else sys.argv)
    seeds = [int(x) for x in args.seeds.split(",")]
    started = time.perf_counter()
    print_header("Topic quality vs labels", info)
    print(f"sample: {args.n} notes per dataset (uniform, seed {args.sample_seed}, non-empty, de-duplicated); "
          f"every method runs with seeds {seeds} on the same sample and embeddings; NMI/ARI count "
          f"outliers as label -1, 'NMI in' = non-outlier notes only; table = mean over seeds\n", flush=True)
    all_rows, metas = [], []
    for name in args.datasets.split(","):
        rows, meta = evaluate(name, args.n, args.sample_seed, seeds, methods)
        all_rows += rows
        metas.append(meta)
    print()
    print(markdown_table(metas, ["dataset", "notes", "labels", "newly embedded", "embed s"]))
    print()
    cols = ["dataset", "method", "topics", "outliers", "NMI", "NMI min–max", "NMI in", "ARI",
            "NMI / BERTopic", "seeds ≥ BERTopic", "NMI / floor", "seconds"]
    print(markdown_table(all_rows, [c for c in cols if any(c in r for r in all_rows)]))
    print()
    print("\n".join(verdicts(all_rows)))
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s; load average at end: {load_average()}")


if __name__ == "__main__":
    main()
