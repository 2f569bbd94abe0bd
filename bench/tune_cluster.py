"""Clustering experiments for miner/cluster.py, and the proposed change as a drop-in subclass.

Finding (see bench/RESULTS.md): on sentence embeddings the cosine silhouette of plain centred
vectors is nearly flat across k and peaks at too few topics (online-shopping: k=5, NMI 0.44).
A *partial PCA whitening* of the centred embeddings — keep the top ``whiten_dims`` principal
directions and divide each by ``sqrt(eigenvalue) ** whiten_power`` (0 = plain PCA, 1 = full
whitening) — evens out the few dominant directions that every note shares. In that space
spherical k-means separates topics better and the silhouette peak sits near the k that
maximises NMI, so the existing silhouette k-choice starts to work.

``ProposedClusterer`` is ``TopicClusterer`` with that projection in front of it (everything else —
k choice, k-means, small-topic dissolve, outlier quantile, renumbering — is inherited); the
projection is one extra array (``components_``) to persist. Optional ``lexical_weight`` > 0 appends
an L2-normalised TF-IDF→SVD view of the jieba tokens (needs ``tokens`` in ``fit``; ``predict``
then needs tokens too, so it is off by default).

    python bench/tune_cluster.py              # the sweep behind the proposal (cached embeddings)
    python bench/tune_cluster.py --datasets nlpcc --seeds 1,2,3
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import faiss
import numpy as np

from miner.cluster import OUTLIER, TopicClusterer, as_float32_normalized


def whitening_projection(X: np.ndarray, dims: int, power: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components) with ``(X - mean) @ components`` = top-``dims`` PCA scores / sqrt(eig)**power."""
    mean = X.mean(axis=0)
    Xc = (X - mean).astype(np.float64)
    cov = Xc.T @ Xc / max(len(X) - 1, 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1][:min(dims, X.shape[1])]
    evals = np.maximum(evals[order], 1e-12)
    components = evecs[:, order] / evals ** (power / 2)
    components /= np.abs(components).max()          # scale is irrelevant after normalising; keep it tame
    return mean.astype(np.float32), np.ascontiguousarray(components, dtype=np.float32)


class ProposedClusterer(TopicClusterer):
    """``TopicClusterer`` on partially whitened embeddings (see module docstring).

    Extra parameters
    ----------------
    whiten_dims : int, principal directions kept (None = all)
    whiten_power : float in [0, 1], 0 = PCA rotation only, 1 = full whitening
    n_init : int, k-means restarts for the final fit (FAISS ``nredo``; the lowest objective wins)
    k_smoothing : bool, choose k on the silhouette curve averaged with its grid neighbours
    lexical_weight : float in [0, 1), share of the squared norm given to a TF-IDF→SVD view of the
        tokens (experiment only; it lowered NMI everywhere)

    Extra attributes: ``components_`` (d, whiten_dims).
    """

    uses_tokens = True      # bench hook: speed.py / quality.py pass tokens to fit

    def __init__(self, n_topics=None, outlier_share=0.08, min_topic_size=15, k_candidates=None,
                 sample_size=4000, center=True, seed=42, whiten_dims=100, whiten_power=0.5,
                 n_init=1, k_smoothing=False, lexical_weight=0.0, lexical_dims=100):
        super().__init__(n_topics=n_topics, outlier_share=outlier_share, min_topic_size=min_topic_size,
                         k_candidates=k_candidates, sample_size=sample_size, center=center, seed=seed)
        self.whiten_dims = whiten_dims
        self.whiten_power = whiten_power
        self.n_init = n_init
        self.k_smoothing = k_smoothing
        self.lexical_weight = lexical_weight
        self.lexical_dims = lexical_dims

    def fit(self, X, y=None, tokens=None):
        X = as_float32_normalized(X)
        if self.lexical_weight > 0:
            if tokens is None:
                raise ValueError("lexical_weight > 0 needs the notes' tokens: fit(X, tokens=...)")
            X = self._with_lexical(X, tokens)
        n = X.shape[0]
        if not 0 <= self.outlier_share < 0.5:
            raise ValueError(f"outlier_share must be in [0, 0.5), got {self.outlier_share}")
        if n < 2 * max(2, self.min_topic_size):
            raise ValueError(f"need at least {2 * max(2, self.min_topic_size)} notes to find topics, got {n}")
        # the only change to TopicClusterer.fit: a partial-whitening projection instead of centring alone
        dims = X.shape[1] if self.whiten_dims is None else self.whiten_dims
        self.mean_, self.components_ = whitening_projection(X, dims, self.whiten_power)
        Z = self._centred(X)

        self.k_scores_ = {}
        k = int(self.n_topics) if self.n_topics is not None else self._choose_k(Z)
        centers, labels = spherical_kmeans(Z, k, self.seed, nredo=self.n_init)
        centers, labels = self._dissolve_small(Z, centers, labels)
        scores = np.einsum("ij,ij->i", Z, centers[labels])
        self.threshold_ = float(np.quantile(scores, self.outlier_share)) if self.outlier_share > 0 else -np.inf
        labels = np.where(scores < self.threshold_, OUTLIER, labels)
        self.cluster_centers_, self.labels_ = self._renumber_by_size(centers, labels)
        self.scores_ = scores.astype(np.float32)
        self.n_topics_ = len(self.cluster_centers_)
        return self

    def _choose_k(self, Z):
        best = super()._choose_k(Z)
        if not self.k_smoothing or len(self.k_scores_) < 3:
            return best
        ks = sorted(self.k_scores_)
        raw = np.array([self.k_scores_[k] for k in ks])
        padded = np.concatenate([raw[:1], raw, raw[-1:]])
        smooth = (padded[:-2] + padded[1:-1] + padded[2:]) / 3
        self.k_scores_smoothed_ = dict(zip(ks, smooth.tolist()))
        return int(ks[int(np.argmax(smooth))])

    def _with_lexical(self, X, tokens):
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        tfidf = TfidfVectorizer(analyzer=_identity, min_df=2, sublinear_tf=True).fit_transform(tokens)
        dims = min(self.lexical_dims, tfidf.shape[1] - 1)
        L = TruncatedSVD(dims, random_state=self.seed).fit_transform(tfidf)
        L = as_float32_normalized(L - L.mean(axis=0))
        w = self.lexical_weight
        return np.hstack([np.sqrt(1 - w) * as_float32_normalized(X - X.mean(axis=0)), np.sqrt(w) * L])

    def _centred(self, X):
        return as_float32_normalized((X - self.mean_) @ self.components_)


def spherical_kmeans(X: np.ndarray, k: int, seed: int, niter: int = 25, nredo: int = 1):
    """``miner.cluster.spherical_kmeans`` plus FAISS ``nredo`` restarts."""
    km = faiss.Kmeans(X.shape[1], k, niter=niter, seed=seed, spherical=True, verbose=False, nredo=nredo,
                      min_points_per_centroid=1, max_points_per_centroid=max(256, X.shape[0]),
                      init_method=faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS)
    km.train(X)
    _, idx = km.index.search(X, 1)
    return km.centroids.copy(), idx[:, 0].astype(np.int64)


def _identity(tokens):
    return tokens


# -- the sweep ---------------------------------------------------------------------------------
VARIANTS = {
    "current (centre, silhouette k)": dict(cls="current"),
    "pca100 only (power 0)": dict(whiten_dims=100, whiten_power=0.0),
    "whiten d=384 p=0.5": dict(whiten_dims=384, whiten_power=0.5),
    "whiten d=50 p=0.5": dict(whiten_dims=50, whiten_power=0.5),
    "whiten d=100 p=0.5": dict(whiten_dims=100, whiten_power=0.5),
    "whiten d=100 p=0.75": dict(whiten_dims=100, whiten_power=0.75),
    "whiten d=100 p=1.0": dict(whiten_dims=100, whiten_power=1.0),
    "whiten + k smoothing": dict(whiten_dims=100, whiten_power=0.5, k_smoothing=True),
    "whiten + n_init 3": dict(whiten_dims=100, whiten_power=0.5, n_init=3),
    "whiten + smoothing + n_init 3": dict(whiten_dims=100, whiten_power=0.5, k_smoothing=True, n_init=3),
    "whiten + lexical 0.3": dict(whiten_dims=100, whiten_power=0.5, lexical_weight=0.3),
}


def main(argv=None) -> None:
    from sklearn.metrics import normalized_mutual_info_score
    from bench.common import DATASETS, embed_texts, load_sample, markdown_table
    from miner.segment import JiebaSegmenter
    parser = argparse.ArgumentParser(description="clusterer variants × datasets × seeds (auto k)")
    parser.add_argument("--n", type=int, default=6000)
    parser.add_argument("--sample-seed", type=int, default=42)
    parser.add_argument("--seeds", default="1,2,3", help="clusterer seeds (k-means init, k-choice sample)")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--variants", default=None, help="comma-separated substrings of variant names")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = {k: v for k, v in VARIANTS.items()
                if args.variants is None or any(s in k for s in args.variants.split(","))}
    rows = []
    for name in args.datasets.split(","):
        df = load_sample(name, args.n, args.sample_seed)
        X, _ = embed_texts(df["text"].tolist(), show_progress=False)
        tokens = JiebaSegmenter(n_jobs=-1).segment_many(df["text"].tolist())
        y = df["label"].to_numpy()
        for vname, params in variants.items():
            nmis, ks, outl, secs = [], [], [], []
            for seed in seeds:
                t0 = time.perf_counter()
                if params.get("cls") == "current":
                    model = TopicClusterer(seed=seed).fit(X)
                else:
                    model = ProposedClusterer(seed=seed, **params).fit(X, tokens=tokens)
                secs.append(time.perf_counter() - t0)
                nmis.append(normalized_mutual_info_score(y, model.labels_))
                ks.append(model.n_topics_)
                outl.append(float(np.mean(model.labels_ < 0)))
            row = {"dataset": name, "variant": vname, "NMI mean": float(np.mean(nmis)),
                   "NMI min": float(np.min(nmis)), "k chosen": "/".join(map(str, ks)),
                   "outliers": float(np.mean(outl)), "fit s": float(np.mean(secs))}
            rows.append(row)
            print(f"{name:16s} {vname:34s} NMI {row['NMI mean']:.3f} (min {row['NMI min']:.3f}) "
                  f"k {row['k chosen']} {row['fit s']:.1f}s", flush=True)
    print()
    print(markdown_table(rows, ["dataset", "variant", "NMI mean", "NMI min", "k chosen", "outliers", "fit s"]))


if __name__ == "__main__":
    main()
