"""Creator topic search (选题搜索): a free-text query → ranked topic ideas.

Hybrid retrieval over one snapshot, three ranked lists of topics fused by reciprocal rank:

1. **centroid** — similarity of the query vector (``kind="query"``) to each topic centroid
   (``snapshot.topic_index``).
2. **notes** — the ``n_note_hits`` nearest notes (``snapshot.note_index``); a topic's score is the
   mean similarity of its best ``top_note_hits`` hits (topics without a hit are not in this list).

   Sentence encoders are anisotropic (every cosine ≈ 0.85), so generic topics/notes ("hubs") sit
   close to every query. Both semantic lists therefore remove the shared direction ``μ`` (the
   mean note embedding), as the clusterer does: topics rank by the *centred cosine*
   ``cos(c − μ, q − μ)`` (from the ``topic_index`` scores and the precomputed ``|c − μ|``), notes by
   ``n · (q − μ)`` (the ``note_index`` searched with the centred query; a CSLS-style hubness
   correction).
3. **keyword** — BM25 (``k1``, ``b``; idf ``log(1 + (N − df + ½) / (df + ½))`` over notes) of
   every note on the query's jieba tokens; a topic's keyword score is the *mean* BM25 of its notes,
   so a topic where the query words are common beats a large topic with a few stray matches.
   Only topics where at least ``min_keyword_notes`` notes and ``min_keyword_coverage`` of the
   topic's notes match enter this list (one stray mention does not make a topic about the word).
   A query token absent from the vocabulary is expanded to up to ``max_expansions`` vocabulary
   words containing it (most frequent first), or else to vocabulary words it contains —
   "露营穿搭" still finds 露营 and 穿搭.

Fusion (reciprocal rank fusion, Cormack et al. 2009)::

    score(t) = Σ_lists w_l / (rrf_k + rank_l(t))  ÷  Σ_lists w_l / (rrf_k + 1)

with ``rrf_k = 60`` and weights (centroid 1, notes 1, keyword 2): the two semantic lists are two
views of one signal, so meaning and words weigh the same. A topic ranked first in every list
scores 1. RRF needs no score calibration between cosine and BM25 (whose scales differ by model
and corpus). ``semantic_score`` (the centred cosine, −1…1; > 0 when the topic leans towards the
query) and ``keyword_score`` (topic BM25 ÷ the best topic's) are reported alongside for
explanation.

Typos and synonyms are only bridged by the embedding model (a semantic model, not the lexical
``hashing`` one).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from miner import schema
from miner.schema import NOTE_ID, OUTLIER, TOPIC_ID

__all__ = ["ExampleNote", "TopicIdea", "TopicSearcher", "bm25_matrix"]


@dataclass
class ExampleNote:
    note_id: str
    title: str
    engagement: int            # likes + collects + comments + shares
    similarity: float | None   # note · (query − mean note), when found by the note index


@dataclass
class TopicIdea:
    topic_id: int
    label: str
    score: float               # fused, 0–1
    semantic_score: float      # centred cosine cos(centroid − μ, query − μ), −1…1
    keyword_score: float       # topic BM25 ÷ best topic's BM25, 0–1
    matched_keywords: list[str]
    examples: list[ExampleNote]
    stage: str | None = None           # lifecycle stage (miner.insights.trends)
    stage_zh: str | None = None
    opportunity: float | None = None   # opportunity score 0–1 (miner.insights.opportunity), all users
    keywords: list[str] = field(default_factory=list)
    size: int = 0
    ranks: dict = field(default_factory=dict)   # rank in each fused list (absent = not listed)

    def to_dict(self) -> dict:
        from dataclasses import asdict
        return asdict(self)


def _identity(tokens):
    return tokens


def bm25_matrix(token_lists, k1: float = 1.2, b: float = 0.75):
    """BM25 term weights of each note: (csc float32 matrix n_notes × n_terms, vocabulary, df)."""
    from sklearn.feature_extraction.text import CountVectorizer
    vec = CountVectorizer(analyzer=_identity, lowercase=False, dtype=np.float32)
    try:
        counts = vec.fit_transform(token_lists).tocsr()
    except ValueError:   # no tokens at all
        return sp.csc_matrix((len(token_lists), 0), dtype=np.float32), np.array([], dtype=object), np.array([])
    n = counts.shape[0]
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    avg = max(lengths.mean(), 1e-9)
    df = np.diff(counts.tocsc().indptr)
    idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
    norm = (k1 * (1 - b + b * lengths / avg)).astype(np.float32)
    tf = counts.data
    rows = np.repeat(np.arange(n), np.diff(counts.indptr))
    counts.data = (tf * (k1 + 1) / (tf + norm[rows]) * idf[counts.indices]).astype(np.float32)
    return counts.tocsc(), vec.get_feature_names_out(), df


class TopicSearcher:
    """Hybrid (embedding + BM25) topic search over a snapshot.

    Parameters
    ----------
    snapshot : :class:`miner.topics.snapshot.Snapshot` (or any object with ``notes`` incl. ``tokens``,
        ``topics``, ``assignments``, ``note_index``, ``topic_index``).
    embedder : embedder of the snapshot's model (``encode(texts, kind="query")``).
    segmenter : :class:`miner.topics.segment.JiebaSegmenter` for queries; default the project one.
    trends : optional :func:`miner.insights.trends.trend_scores` table; computed from the notes when None.
    opportunity : optional :func:`miner.insights.opportunity.opportunity_scores` table; computed (all
        users, no node) when None.
    n_note_hits, top_note_hits : notes retrieved per query / best hits averaged per topic.
    rrf_k, weights : RRF constant and the weight of the (centroid, notes, keyword) lists.
    k1, b : BM25 parameters. max_expansions : vocabulary words per out-of-vocabulary query token.
    n_examples : example notes per idea.

    ``fit`` (run on the first ``search`` if not called) builds the BM25 matrix and joins the trend
    and opportunity tables; the fitted searcher is read-only, so one instance can be cached and
    shared (``st.cache_resource``).
    """

    def __init__(self, snapshot, embedder, segmenter=None, trends: pd.DataFrame | None = None,
                 opportunity: pd.DataFrame | None = None, n_note_hits: int = 200, top_note_hits: int = 3,
                 rrf_k: int = 60, weights: tuple[float, float, float] = (1.0, 1.0, 2.0), k1: float = 1.2,
                 b: float = 0.75, max_expansions: int = 5, n_examples: int = 3, min_keyword_notes: int = 2,
                 min_keyword_coverage: float = 0.02):
        self.snapshot = snapshot
        self.embedder = embedder
        self.segmenter = segmenter
        self.trends = trends
        self.opportunity = opportunity
        self.n_note_hits = n_note_hits
        self.top_note_hits = top_note_hits
        self.rrf_k = rrf_k
        self.weights = weights
        self.k1 = k1
        self.b = b
        self.max_expansions = max_expansions
        self.n_examples = n_examples
        self.min_keyword_notes = min_keyword_notes
        self.min_keyword_coverage = min_keyword_coverage

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self) -> "TopicSearcher":
        snap = self.snapshot
        model_id = getattr(snap, "model_id", None)
        if model_id is not None and getattr(self.embedder, "model_id", model_id) != model_id:
            raise ValueError(f"snapshot {getattr(snap, 'run_id', '')} was built with {model_id}, not "
                             f"{self.embedder.model_id}; search with the same embedding model")
        if len(self.weights) != 3 or min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ValueError(f"weights must be three numbers ≥ 0 (centroid, notes, keyword), got {self.weights}")
        notes = snap.notes
        if "tokens" not in notes.columns:
            raise ValueError("snapshot notes have no 'tokens' column; rebuild the snapshot")
        topics = snap.topics.sort_values(TOPIC_ID).reset_index(drop=True)
        self.topic_ids_ = topics[TOPIC_ID].astype("int64").to_numpy()
        # permanent topic ids need not be 0..n-1: internally a topic is its row (row i of the
        # topic index ↔ i-th topic by id), note_topic_ holds rows (−1 = outlier)
        row_of_topic = pd.Series(np.arange(len(topics)), index=self.topic_ids_)
        topic_of = snap.assignments.set_index(NOTE_ID)[TOPIC_ID].map(row_of_topic)
        self.note_topic_ = notes[NOTE_ID].map(topic_of).fillna(OUTLIER).astype("int64").to_numpy()
        self.labels_ = topics["label"].astype(str).tolist()
        self.keywords_ = [[str(w) for w in schema.list_cell(v)] for v in
                          (topics["keywords"] if "keywords" in topics else [[]] * len(topics))]
        self.representatives_ = [[str(n) for n in schema.list_cell(v)] for v in
                                 (topics["representative_note_ids"] if "representative_note_ids" in topics
                                  else [[]] * len(topics))]
        n_topics = len(topics)
        sizes = np.bincount(self.note_topic_[self.note_topic_ >= 0], minlength=n_topics)
        self.topic_sizes_ = sizes

        embeddings = getattr(snap, "embeddings", None)
        self.mean_ = (np.asarray(embeddings, dtype=np.float64).mean(axis=0).astype(np.float32)
                      if embeddings is not None and len(embeddings) else None)
        centroids = getattr(snap, "centroids", None)
        self.centred_norms_ = None
        if self.mean_ is not None and centroids is not None and len(centroids) == n_topics:
            C = np.asarray(centroids, dtype=np.float32)
            C = C / np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)   # as the index holds them
            self.centred_norms_ = np.maximum(np.linalg.norm(C - self.mean_, axis=1), 1e-6)
        self.bm25_, self.vocabulary_, self.df_ = bm25_matrix([schema.list_cell(t) for t in notes["tokens"]],
                                                             self.k1, self.b)
        self.term_index_ = {t: i for i, t in enumerate(self.vocabulary_)}
        self._vocab_text = "\n" + "\n".join(self.vocabulary_) + "\n"

        counts = [c for c in schema.ENGAGEMENT_COLS if c in notes.columns]
        self.engagement_ = (notes[counts].fillna(0).sum(axis=1).to_numpy(dtype="int64") if counts
                            else np.zeros(len(notes), dtype="int64"))
        self.note_ids_ = notes[NOTE_ID].astype(str).to_numpy()
        self.titles_ = (notes[schema.TITLE].fillna("").astype(str).to_numpy() if schema.TITLE in notes
                        else np.full(len(notes), "", dtype=object))
        self.row_of_note_ = {nid: i for i, nid in enumerate(self.note_ids_)}

        trends = self.trends
        has_time = schema.PUBLISHED_AT in notes.columns and notes[schema.PUBLISHED_AT].notna().any()
        if trends is None and has_time:
            from miner.insights.trends import topic_time_series, trend_scores
            trends = trend_scores(topic_time_series(notes, snap.assignments))
        self.trends_ = trends
        opportunity = self.opportunity
        if opportunity is None:
            from miner.insights.opportunity import opportunity_scores
            opportunity = opportunity_scores(notes, snap.assignments, topics, trends=trends)
        self.opportunity_ = opportunity
        self._stage = ({} if trends is None or trends.empty else
                       dict(zip(trends[TOPIC_ID].astype(int), zip(trends["stage"], trends["stage_zh"]))))
        self._opp = dict(zip(opportunity[TOPIC_ID].astype(int), opportunity["score"].astype(float)))
        if self.segmenter is None:
            from miner.topics.segment import JiebaSegmenter
            self.segmenter_ = JiebaSegmenter()
        else:
            self.segmenter_ = self.segmenter
        self.segmenter_.segment("预热")   # load jieba's dictionary now, not on the first query
        return self

    # -- query side -------------------------------------------------------------------------------

    def query_terms(self, query: str) -> list[str]:
        """Vocabulary terms the query matches: its tokens, with out-of-vocabulary ones expanded."""
        if not hasattr(self, "term_index_"):
            self.fit()
        tokens = self.segmenter_.segment(query)
        # whitespace-separated words the segmenter split or dropped still count as words
        tokens += [w.lower() for w in query.split() if len(w) >= 2]
        terms: list[str] = []
        for tok in dict.fromkeys(tokens):
            if tok in self.term_index_:
                found = [tok]
            else:
                found = self._expand(tok)
            terms.extend(t for t in found if t not in terms)
        return terms

    def _expand(self, token: str) -> list[str]:
        if len(token) < 2:
            return []
        pattern = re.compile(rf"^[^\n]*{re.escape(token)}[^\n]*$", re.MULTILINE)
        containing = [m.group(0) for m in pattern.finditer(self._vocab_text)]
        if not containing:   # the token may be a compound of vocabulary words
            containing = [token[i:j] for i in range(len(token)) for j in range(i + 2, len(token) + 1)
                          if (i, j) != (0, len(token)) and token[i:j] in self.term_index_]
        containing.sort(key=lambda t: -self.df_[self.term_index_[t]])
        return containing[: self.max_expansions]

    def _keyword_scores(self, terms: list[str]):
        """Per-topic mean BM25, the per-topic × per-term means, and (matching rows, their BM25)."""
        n_topics = len(self.topic_ids_)
        per_term = np.zeros((n_topics, len(terms)))
        if not terms:
            return np.zeros(n_topics), per_term, (np.array([], dtype=np.int64), np.array([]))
        indptr, indices, data = self.bm25_.indptr, self.bm25_.indices, self.bm25_.data
        all_rows, all_data = [], []
        for j, term in enumerate(terms):
            col = self.term_index_[term]
            rows, vals = indices[indptr[col]:indptr[col + 1]], data[indptr[col]:indptr[col + 1]]
            topics = self.note_topic_[rows]
            keep = topics >= 0
            per_term[:, j] = np.bincount(topics[keep], weights=vals[keep], minlength=n_topics)
            all_rows.append(rows)
            all_data.append(vals)
        rows, inverse = np.unique(np.concatenate(all_rows), return_inverse=True)
        note_scores = np.bincount(inverse, weights=np.concatenate(all_data))
        per_term /= np.maximum(self.topic_sizes_, 1)[:, None]
        return per_term.sum(axis=1), per_term, (rows, note_scores)

    def search(self, query: str, k: int = 10) -> list[TopicIdea]:
        """Ranked topic ideas for ``query`` (best first, at most ``k``)."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("the search query is empty; type a few words, e.g. '露营 穿搭 平价'")
        if k < 1:
            raise ValueError(f"k must be ≥ 1, got {k}")
        if not hasattr(self, "term_index_"):
            self.fit()
        n_topics = len(self.topic_ids_)
        if n_topics == 0:
            return []
        snap = self.snapshot
        q = np.asarray(self.embedder.encode([query.strip()], kind="query"), dtype=np.float32).reshape(1, -1)
        # rank by similarity to the query minus the corpus mean (hubness correction, see module doc)
        qc = q - self.mean_ if self.mean_ is not None else q

        cos, ids = snap.topic_index.search(qc, n_topics)
        centroid = np.full(n_topics, -np.inf)
        valid = ids[0] >= 0
        centroid[ids[0][valid]] = cos[0][valid]
        if self.centred_norms_ is not None:
            # FAISS gave c·(q−μ)/|q−μ|; turn it into cos(c − μ, q − μ), the centred cosine
            qn = float(np.linalg.norm(qc))
            if qn > 0:
                centroid = (centroid - float(self.mean_ @ qc[0]) / qn) / self.centred_norms_

        sims, rows = snap.note_index.search(qc, self.n_note_hits)
        ok = (rows[0] >= 0) & (self.note_topic_[np.maximum(rows[0], 0)] >= 0)
        sims, rows = sims[0][ok], rows[0][ok]
        hit_topics = self.note_topic_[rows]
        # hits come best first; a topic's note-level score is the mean of its first top_note_hits
        by_topic = np.lexsort((np.arange(len(rows)), hit_topics))
        note_level = np.full(n_topics, -np.inf)
        hits_by_topic: dict[int, list[tuple[int, float]]] = {}
        for t in np.unique(hit_topics):
            idx = by_topic[hit_topics[by_topic] == t]
            hits_by_topic[int(t)] = [(int(rows[i]), float(sims[i])) for i in idx[: self.n_examples]]
            note_level[t] = float(sims[idx[: self.top_note_hits]].mean())

        terms = self.query_terms(query)
        keyword, per_term, (kw_rows, kw_note_scores) = self._keyword_scores(terms)
        kw_topics = self.note_topic_[kw_rows]
        matching = np.bincount(kw_topics[kw_topics >= 0], minlength=n_topics)
        # a topic enters the keyword list only when the words are part of it, not one stray note
        kw_member = (keyword > 0) & (matching >= self.min_keyword_notes) & (
            matching >= self.min_keyword_coverage * self.topic_sizes_)

        fused = np.zeros(n_topics)
        rank_of = {}
        for name, w, values, member in zip(("centroid", "notes", "keyword"), self.weights,
                                           (centroid, note_level, keyword),
                                           (np.isfinite(centroid), np.isfinite(note_level), kw_member)):
            listed = np.flatnonzero(member)
            order = listed[np.argsort(-values[listed], kind="stable")]
            ranks = np.zeros(n_topics, dtype=np.int64)
            ranks[order] = np.arange(1, len(order) + 1)
            fused[order] += w / (self.rrf_k + ranks[order])
            rank_of[name] = ranks
        fused /= sum(self.weights) / (self.rrf_k + 1)

        best_kw = keyword.max() if keyword.size and keyword.max() > 0 else 1.0
        order = np.lexsort((np.arange(n_topics), -centroid, -fused))[:k]
        # keyword-matching notes grouped by topic, best first
        kw_order = np.lexsort((-kw_note_scores, kw_topics))
        kw_sorted_rows = kw_rows[kw_order]
        kw_sorted_topics = self.note_topic_[kw_sorted_rows]
        ideas = []
        for t in order:
            t = int(t)
            lo, hi = np.searchsorted(kw_sorted_topics, [t, t + 1])
            matched = [terms[j] for j in np.argsort(-per_term[t], kind="stable") if per_term[t, j] > 0]
            tid = int(self.topic_ids_[t])
            stage = self._stage.get(tid, (None, None))
            ideas.append(TopicIdea(
                topic_id=tid, label=self.labels_[t], score=float(fused[t]),
                semantic_score=float(centroid[t]) if np.isfinite(centroid[t]) else 0.0,
                keyword_score=float(keyword[t] / best_kw), matched_keywords=matched,
                examples=self._examples(t, hits_by_topic.get(t, []), kw_sorted_rows[lo:hi][: self.n_examples]),
                stage=stage[0], stage_zh=stage[1], opportunity=self._opp.get(tid),
                keywords=list(self.keywords_[t]), size=int(self.topic_sizes_[t]),
                ranks={name: int(r[t]) for name, r in rank_of.items() if r[t] > 0}))
        return ideas

    def _examples(self, topic: int, hits: list[tuple[int, float]], kw_rows) -> list[ExampleNote]:
        """Nearest notes of the topic, then its best keyword matches, then its representatives."""
        chosen: dict[int, float | None] = {}
        for r, s in hits:
            if len(chosen) >= self.n_examples:
                break
            chosen.setdefault(r, s)
        for r in kw_rows:
            if len(chosen) >= self.n_examples:
                break
            chosen.setdefault(int(r), None)
        for nid in self.representatives_[topic]:
            if len(chosen) >= self.n_examples:
                break
            r = self.row_of_note_.get(str(nid))
            if r is not None:
                chosen.setdefault(r, None)
        return [ExampleNote(note_id=str(self.note_ids_[r]), title=str(self.titles_[r]),
                            engagement=int(self.engagement_[r]), similarity=s) for r, s in chosen.items()]
