"""Topic labelling: class-based TF-IDF over jieba tokens, short labels and representative notes.

c-TF-IDF treats all notes of a topic as one document: ``W(t, c) = tf(t, c) / |c| * log(1 + A / f(t))``
with ``A`` the mean token count per topic and ``f(t)`` the frequency of ``t`` across topics.
Tokens come from :class:`miner.topics.segment.JiebaSegmenter`, so Chinese words and hashtags are kept
(BERTopic's default vectorizer is English-only).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from miner.schema import OUTLIER

NEAR_DUPLICATE = 0.97   # cosine above which two notes count as copies of each other


def _identity(tokens):
    return tokens


class ClassTfidf:
    """c-TF-IDF over pre-tokenised documents.

    Parameters
    ----------
    min_df : int, drop tokens seen in fewer notes
    bm25_weighting : use BERTopic's BM25-style idf variant ``log(1 + (A - f + .5) / (f + .5))``

    Attributes
    ----------
    vocabulary_ : ndarray of str
    classes_ : ndarray of class ids (rows of the matrix)
    ctfidf_ : sparse matrix (n_classes, n_terms)
    """

    def __init__(self, min_df: int = 2, bm25_weighting: bool = False):
        self.min_df = min_df
        self.bm25_weighting = bm25_weighting

    def fit(self, token_lists, labels):
        labels = np.asarray(labels)
        if len(token_lists) != len(labels):
            raise ValueError(f"{len(token_lists)} token lists but {len(labels)} labels")
        self._vectorizer = CountVectorizer(analyzer=_identity, min_df=self.min_df, lowercase=False)
        try:
            counts = self._vectorizer.fit_transform(token_lists)
        except ValueError:   # every token below min_df: fall back to all tokens
            self._vectorizer = CountVectorizer(analyzer=_identity, min_df=1, lowercase=False)
            counts = self._vectorizer.fit_transform(token_lists)
        self.vocabulary_ = self._vectorizer.get_feature_names_out()
        self.classes_ = np.unique(labels)
        member = sp.csr_matrix((np.ones(len(labels)), (np.searchsorted(self.classes_, labels),
                                                      np.arange(len(labels)))),
                               shape=(len(self.classes_), len(labels)))
        class_counts = (member @ counts).tocsr().astype(np.float64)
        tf = sp.diags(1.0 / np.maximum(np.asarray(class_counts.sum(axis=1)).ravel(), 1)) @ class_counts
        freq = np.asarray(class_counts.sum(axis=0)).ravel()
        avg = class_counts.sum() / max(len(self.classes_), 1)
        if self.bm25_weighting:
            idf = np.log(1 + np.maximum((avg - freq + 0.5) / (freq + 0.5), 0))
        else:
            idf = np.log(1 + avg / np.maximum(freq, 1))
        self.ctfidf_ = (tf @ sp.diags(idf)).tocsr()
        return self

    def top_terms(self, class_id, n: int = 10) -> list[tuple[str, float]]:
        row = int(np.searchsorted(self.classes_, class_id))
        if row >= len(self.classes_) or self.classes_[row] != class_id:
            return []
        vec = self.ctfidf_.getrow(row)
        order = np.argsort(-vec.data, kind="stable")[:n]
        return [(str(self.vocabulary_[vec.indices[i]]), float(vec.data[i])) for i in order]


def short_label(keywords: list[str], n: int = 3) -> str:
    """'露营·装备·平价': the first keywords, skipping ones contained in an earlier keyword."""
    chosen: list[str] = []
    for kw in keywords:
        if any(kw in c or c in kw for c in chosen):
            continue
        chosen.append(kw)
        if len(chosen) == n:
            break
    return "·".join(chosen) if chosen else "未命名话题"


def representative_indices(embeddings: np.ndarray, members: np.ndarray, centroid: np.ndarray,
                           n: int = 5, diversity: float = 0.3, pool: int = 50) -> list[int]:
    """Members near the centroid and unlike each other (maximal marginal relevance).

    Returns row indices into ``embeddings``, best first.
    """
    if len(members) == 0:
        return []
    sims = embeddings[members] @ centroid
    top = members[np.argsort(-sims, kind="stable")[:pool]]
    relevance = embeddings[top] @ centroid
    chosen = [0]
    while len(chosen) < min(n, len(top)):
        redundancy = (embeddings[top] @ embeddings[top[chosen]].T).max(axis=1)
        mmr = (1 - diversity) * relevance - diversity * redundancy
        mmr[redundancy > NEAR_DUPLICATE] -= 10.0   # reposts/near-copies only if nothing else is left
        mmr[chosen] = -np.inf
        chosen.append(int(np.argmax(mmr)))
    return [int(top[i]) for i in chosen]


@dataclass
class TopicLabels:
    topic_id: int
    label: str
    keywords: list[str]
    keyword_scores: list[float]
    representative_rows: list[int] = field(default_factory=list)


class TopicLabeler:
    """Label topics: c-TF-IDF keywords, a short Chinese label, representative notes.

    Attributes
    ----------
    labels_ : list[TopicLabels], one per topic id ≥ 0, in id order
    ctfidf_ : the fitted :class:`ClassTfidf`
    """

    def __init__(self, n_keywords: int = 10, n_representatives: int = 5, min_df: int = 2,
                 diversity: float = 0.3):
        self.n_keywords = n_keywords
        self.n_representatives = n_representatives
        self.min_df = min_df
        self.diversity = diversity

    def fit(self, token_lists, topic_ids, embeddings: np.ndarray, centroids: np.ndarray):
        topic_ids = np.asarray(topic_ids)
        self.ctfidf_ = ClassTfidf(min_df=self.min_df).fit(token_lists, topic_ids)
        self.labels_ = []
        for topic in range(len(centroids)):
            terms = self.ctfidf_.top_terms(topic, self.n_keywords)
            keywords = [t for t, _ in terms]
            members = np.flatnonzero(topic_ids == topic)
            reps = representative_indices(embeddings, members, centroids[topic],
                                          self.n_representatives, self.diversity)
            self.labels_.append(TopicLabels(topic, short_label(keywords), keywords,
                                            [round(s, 6) for _, s in terms], reps))
        return self
