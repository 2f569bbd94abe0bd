"""Topic quality against human labels: our clusterer vs BERTopic 0.17.4 vs a TF-IDF + KMeans floor.

For each labelled dataset (online-shopping ``cat``, NLPCC ``label``, Bilibili ``main_zone``) a
fixed-seed sample is embedded once (disk-cached) and every method runs on the same notes and the
same embeddings:

* ``ours``      ``miner.cluster.TopicClusterer()`` with its defaults (auto k, 8 % outliers).
* ``proposed``  ``bench.tune_cluster.ProposedClusterer`` (the change proposed for miner/cluster.py).
* ``bertopic``  BERTopic 0.17.4 with its default UMAP + HDBSCAN and a jieba ``CountVectorizer``;
  the UMAP is BERTopic's default one plus ``random_state`` so the table is reproducible.
* ``floor``     jieba + merged stopwords → TF-IDF → SVD(200) → KMeans(k = number of labels),
  the baseline of each dataset's PROVENANCE.md, recomputed in this run on this sample.

How outliers count: ``NMI`` / ``ARI`` keep outliers as one extra predicted label ``-1`` (so a
method cannot gain by discarding hard notes); ``NMI in`` is NMI on the non-outlier notes only.

    python bench/quality.py                      # 6,000 notes per dataset, seed 42
    python bench/quality.py --n 2000 --methods ours,floor
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from bench.common import (DATASETS, MERGED_STOPWORDS, embed_texts, load_sample, markdown_table,
                          print_header, run_info)

OUTLIER = -1
METHODS = ("ours", "proposed", "bertopic", "floor")
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
def run_ours(texts, tokens, embeddings, n_labels, seed):
    from miner.cluster import TopicClusterer
    return TopicClusterer(seed=seed).fit(embeddings).labels_


def run_proposed(texts, tokens, embeddings, n_labels, seed):
    from bench.tune_cluster import ProposedClusterer
    return ProposedClusterer(seed=seed).fit(embeddings, tokens=tokens).labels_


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
    from miner.segment import JiebaSegmenter
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
    from miner.segment import JiebaSegmenter
    seg = JiebaSegmenter(stopword_paths=[MERGED_STOPWORDS])
    floor_tokens = [seg.segment(t) for t in texts]
    tfidf = TfidfVectorizer(analyzer=lambda toks: toks).fit_transform(floor_tokens)
    svd = TruncatedSVD(n_components=min(200, tfidf.shape[1] - 1), random_state=seed).fit_transform(tfidf)
    return KMeans(n_clusters=n_labels, n_init=10, random_state=seed).fit_predict(svd)


RUNNERS = {"ours": run_ours, "proposed": run_proposed, "bertopic": run_bertopic, "floor": run_floor}


def evaluate(name: str, n: int, seed: int, methods: list[str]) -> tuple[list[dict], dict]:
    from miner.segment import JiebaSegmenter
    df = load_sample(name, n, seed)
    texts = df["text"].tolist()
    t0 = time.perf_counter()
    embeddings, stats = embed_texts(texts, show_progress=False)
    embed_s = time.perf_counter() - t0
    tokens = JiebaSegmenter(n_jobs=-1).segment_many(texts)
    n_labels = df["label"].nunique()
    rows = []
    for method in methods:
        started = time.perf_counter()
        labels = RUNNERS[method](texts, tokens, embeddings, n_labels, seed)
        row = {"dataset": name, "method": method, **scores(df["label"].to_numpy(), labels),
               "seconds": time.perf_counter() - started}
        rows.append(row)
        print(f"  {name:16s} {method:9s} topics={row['topics']:4d} outliers={row['outliers']:.1%} "
              f"NMI={row['NMI']:.3f} NMI_in={row['NMI in']:.3f} ARI={row['ARI']:.3f} {row['seconds']:.1f}s",
              flush=True)
    meta = {"dataset": name, "notes": len(df), "labels": n_labels, "embedded": int(stats.get("misses", 0)),
            "embed_s": embed_s}
    by = {r["method"]: r for r in rows}
    for r in rows:
        if "bertopic" in by:
            r["NMI / BERTopic"] = r["NMI"] / max(by["bertopic"]["NMI"], 1e-9)
        if "floor" in by:
            r["NMI / floor"] = r["NMI"] / max(by["floor"]["NMI"], 1e-9)
    return rows, meta


def verdicts(rows: list[dict]) -> list[str]:
    out = []
    for name in dict.fromkeys(r["dataset"] for r in rows):
        by = {r["method"]: r for r in rows if r["dataset"] == name}
        for method in ("ours", "proposed"):
            if method not in by:
                continue
            r = by[method]
            checks = [f"outliers {r['outliers']:.1%} ≤ {MAX_OUTLIER_SHARE:.0%}: "
                      f"{'yes' if r['outliers'] <= MAX_OUTLIER_SHARE else 'NO'}"]
            if "bertopic" in by:
                ok = r["NMI"] >= by["bertopic"]["NMI"]
                checks.append(f"NMI ≥ BERTopic ({by['bertopic']['NMI']:.3f}): {'yes' if ok else 'NO'}")
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
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    info = run_info(argv if argv is not None else sys.argv)
    started = time.perf_counter()
    print_header("Topic quality vs labels", info)
    print(f"sample: {args.n} notes per dataset (uniform, seed {args.seed}, non-empty, de-duplicated); "
          f"NMI/ARI count outliers as label -1; 'NMI in' = non-outlier notes only\n", flush=True)
    all_rows, metas = [], []
    for name in args.datasets.split(","):
        rows, meta = evaluate(name, args.n, args.seed, methods)
        all_rows += rows
        metas.append(meta)
    print()
    print(markdown_table(metas, ["dataset", "notes", "labels", "embedded", "embed_s"]))
    print()
    cols = ["dataset", "method", "topics", "outliers", "NMI", "NMI in", "ARI", "NMI / BERTopic",
            "NMI / floor", "seconds"]
    print(markdown_table(all_rows, [c for c in cols if any(c in r for r in all_rows)]))
    print()
    print("\n".join(verdicts(all_rows)))
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
