"""Clustering experiments behind miner/topics/cluster.py's defaults: a variant sweep over seeds.

History (numbers in bench/RESULTS.md):

1. *Partial PCA whitening* (now in ``miner.topics.cluster.TopicClusterer``, ``whiten_dims=100``,
   ``whiten_power=0.5``): on plain centred embeddings the cosine silhouette is nearly flat and
   peaks at too few topics (online-shopping k=5, Bilibili k=4); dividing the top principal
   directions by ``sqrt(eigenvalue) ** 0.5`` separates topics and puts the silhouette peak near
   the NMI peak. The pre-whitening method is ``TopicClusterer(whiten_dims=d, whiten_power=0)``
   (a full-rank rotation leaves cosines unchanged, so that is centring only).
2. *Parsimonious k and restarts* (now in ``TopicClusterer``, ``k_tolerance=0.03``, ``n_init=3``):
   * *parsimonious k*: the silhouette of each candidate k is noisy (one k-means run on a
     sample), so the argmax jumps between 14 and 65 on the same data with different seeds.
     Average each candidate's silhouette with its grid neighbours (3-point moving average) and
     take the *smallest* k whose smoothed score is within ``k_tolerance`` (3 %) of the best;
   * *n_init=3*: keep the best of three k-means++ restarts (FAISS ``nredo``, lowest objective)
     for the final fit; k-means++ alone varies NMI by ±0.03 at a fixed k. Above 20,000 notes the
     restarts run on a 20,000-note sample and the winner seeds one k-means on all notes.
3. *Neighbourhood smoothing* (now in ``TopicClusterer``, ``n_neighbors=15``, ``smoothing=1.0``):
   each whitened note vector plus the mean of its 15 nearest notes (itself included), re-normalised,
   before choosing k and clustering; new notes are smoothed with their neighbours among the
   training notes, so ``predict`` agrees with ``fit``. NMI +0.01 to +0.02 on all three datasets.
   Negative results (not adopted): appending a TF-IDF→SVD view of the jieba tokens, majority-vote
   relabelling over the kNN graph, norm-based outlier rules, full whitening.

    python bench/tune_cluster.py              # the sweep (cached embeddings; ~5 min on 2 cores)
    python bench/tune_cluster.py --datasets nlpcc --seeds 1,2,3
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from miner.topics.cluster import TopicClusterer


# -- the sweep ---------------------------------------------------------------------------------
SINGLE_RUN = dict(k_tolerance=None, n_init=1, n_neighbors=0)   # v1: argmax k, one k-means run, no smoothing
VARIANTS = {
    "pre-whitening (centre only)": dict(SINGLE_RUN, whiten_dims=384, whiten_power=0.0),
    "PCA 100, no whitening (p=0)": dict(SINGLE_RUN, whiten_dims=100, whiten_power=0.0),
    "whiten d=50 p=0.5": dict(SINGLE_RUN, whiten_dims=50, whiten_power=0.5),
    "whiten d=384 p=0.5": dict(SINGLE_RUN, whiten_dims=384, whiten_power=0.5),
    "whiten d=100 p=0.75": dict(SINGLE_RUN, whiten_dims=100, whiten_power=0.75),
    "whiten d=100 p=1.0": dict(SINGLE_RUN, whiten_dims=100, whiten_power=1.0),
    "v1: whiten d=100 p=0.5": dict(SINGLE_RUN),
    "+ parsimonious k only": dict(n_init=1, n_neighbors=0),
    "+ n_init 3 only": dict(k_tolerance=None, n_neighbors=0),
    "+ parsimonious k + n_init 3 (v2)": dict(n_neighbors=0),
    "+ smoothing k=10, weight 0.5": dict(n_neighbors=10, smoothing=0.5),
    "+ smoothing k=10, weight 1": dict(n_neighbors=10),
    "current: + smoothing k=15, weight 1": dict(),
}


def main(argv=None) -> None:
    from sklearn.metrics import normalized_mutual_info_score
    from bench.common import DATASETS, embed_texts, load_sample, markdown_table, print_header, run_info
    parser = argparse.ArgumentParser(description="clusterer variants × datasets × seeds (auto k)")
    parser.add_argument("--n", type=int, default=6000)
    parser.add_argument("--sample-seed", type=int, default=42)
    parser.add_argument("--seeds", default="40,41,42,43,44,45,46,47,48,49", help="clusterer seeds (k-means init, k-choice sample)")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--variants", default=None, help="comma-separated substrings of variant names")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = {k: v for k, v in VARIANTS.items()
                if args.variants is None or any(s in k for s in args.variants.split(","))}
    print_header("Clusterer variants (automatic k) x seeds", run_info(argv if argv is not None else sys.argv))
    print(f"sample: {args.n} notes per dataset (seed {args.sample_seed}); clusterer seeds {seeds}; "
          "NMI counts outliers as label -1\n", flush=True)
    rows = []
    for name in args.datasets.split(","):
        df = load_sample(name, args.n, args.sample_seed)
        X, _ = embed_texts(df["text"].tolist(), show_progress=False)
        y = df["label"].to_numpy()
        for vname, params in variants.items():
            nmis, ks, outl, secs = [], [], [], []
            for seed in seeds:
                t0 = time.perf_counter()
                model = TopicClusterer(seed=seed, **params).fit(X)
                secs.append(time.perf_counter() - t0)
                nmis.append(normalized_mutual_info_score(y, model.labels_))
                ks.append(model.n_topics_)
                outl.append(float(np.mean(model.labels_ < 0)))
            row = {"dataset": name, "variant": vname, "NMI mean": float(np.mean(nmis)),
                   "NMI min": float(np.min(nmis)), "k chosen": "/".join(map(str, ks)),
                   "outliers": float(np.mean(outl)), "fit s": float(np.mean(secs))}
            rows.append(row)
            print(f"{name:16s} {vname:38s} NMI {row['NMI mean']:.3f} (min {row['NMI min']:.3f}) "
                  f"k {row['k chosen']} {row['fit s']:.1f}s", flush=True)
    print()
    print(markdown_table(rows, ["dataset", "variant", "NMI mean", "NMI min", "k chosen", "outliers", "fit s"]))


if __name__ == "__main__":
    main()
