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
   A Chinese query token absent from the vocabulary is expanded to up to ``max_expansions``
   Chinese vocabulary words containing it (most frequent first), or else to vocabulary words it
   contains — "露营穿搭" still finds 露营 and 穿搭. Latin words, digits and ids never expand
   (they match a vocabulary word exactly or not at all: "camping" is not "pin", "iphone" not a
   video id); English and mixed queries are understood through the embedding.

**Hidden topics** (``hidden`` on the snapshot's topics, set on 话题管理) take part in no list unless
``search(..., include_hidden=True)``: ranks, fused scores and the no-match verdict are those of the
shown topics alone, as if the hidden ones were not there.

Fusion (reciprocal rank fusion, Cormack et al. 2009)::

    score(t) = Σ_lists w_l / (rrf_k + rank_l(t))  ÷  Σ_lists w_l / (rrf_k + 1)

with ``rrf_k = 60`` and weights (centroid 1, notes 1, keyword 2): the two semantic lists are two
views of one signal, so meaning and words weigh the same. A topic ranked first in every list
scores 1. RRF needs no score calibration between cosine and BM25 (whose scales differ by model
and corpus). ``semantic_score`` (the centred cosine, −1…1; > 0 when the topic leans towards the
query) and ``keyword_score`` (topic BM25 ÷ the best topic's) are reported alongside for
explanation.

**Knowing when nothing matches.** Ranks alone always yield ``k`` topics, so each idea also gets a
calibrated ``relevance``: a z-score of its centred cosine against an off-topic baseline. With
``calibration="labels"`` (default) the baseline of topic ``t`` is the centred cosine to ``t`` of
*other* topics' label queries (each topic's label and two triples of its keywords, embedded as
queries at fit time): ``z_t = (s_t − mean_t) / std_t``. This corrects hub topics that every short or
odd query lands near ("音乐·翻唱" for "asdfghjkl", "12345", "<script>"). With
``calibration="topics"`` the baseline is the query's own scores over the other topics,
``(s_t − mean_{u≠t} s_u) / std_{u≠t} s_u``. An idea is a ``"strong"`` match when ``z ≥ strong_z``
and its centred cosine is at least ``min_cosine``, or when the query's words are common in the
topic (it is in the keyword list and ``≥ keyword_coverage_strong`` of its notes hold a query word)
and ``z ≥ keyword_z``; otherwise ``"weak"``. A result without a strong idea has ``no_match=True``
and a Chinese message saying that no topic matches well; its ideas are the nearest ones, flagged
weak. An empty or punctuation-only query returns an ``empty_query`` result with a message
(nothing is embedded). Thresholds: ``bench/search_quality.py`` (RESULTS.md).

Typos and synonyms are only bridged by the embedding model (a semantic model, not the lexical
``hashing`` one).

The searcher follows scikit-learn: ``TopicSearcher(embedder=..., segmenter=..., ...)`` stores its
arguments, ``fit(snapshot)`` builds the state (attributes ending in ``_``) and returns ``self``,
``search`` only reads it, so a fitted searcher can be shared (``st.cache_resource``) and
``sklearn.base.clone`` gives an unfitted copy. Pass the workspace's segmenter
(:func:`miner.topics.segment.make_segmenter`) so queries are cut like the notes.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sklearn.base import BaseEstimator

from miner import schema
from miner.schema import NOTE_ID, OUTLIER, TOPIC_ID

__all__ = ["ExampleNote", "SearchResult", "TopicIdea", "TopicSearcher", "bm25_matrix"]

STRONG, WEAK = "strong", "weak"
HAS_WORD_RE = re.compile(r"[0-9A-Za-z\u3400-\u9fff\uf900-\ufaff]")
CJK_ONLY_RE = re.compile(r"^[\u3400-\u9fff]+$")
EMPTY_QUERY_MESSAGE = "请输入要搜索的内容：一个词或一句话，例如「露营 穿搭 平价」（只有标点或空白无法搜索）"
ALL_HIDDEN_MESSAGE = "所有话题都已在「话题管理」中隐藏；打开「显示已隐藏话题」后再搜索"
NO_MATCH_MESSAGE = "没有话题与「{query}」匹配得好；下面是最接近的几个话题，仅供参考（弱匹配）"


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
    relevance: float = 0.0     # z-score of semantic_score against the other topics' for this query
    keyword_coverage: float = 0.0   # share of the topic's notes holding a query word
    match: str = WEAK          # "strong" / "weak" (see the module doc)
    stage: str | None = None           # lifecycle stage (miner.insights.trends)
    stage_zh: str | None = None
    opportunity: float | None = None   # opportunity score 0–1 (miner.insights.opportunity), all users
    keywords: list[str] = field(default_factory=list)
    size: int = 0
    ranks: dict = field(default_factory=dict)   # rank in each fused list (absent = not listed)
    hidden: bool = False       # hidden by curation (only returned with ``include_hidden=True``)

    def to_dict(self) -> dict:
        from dataclasses import asdict
        return asdict(self)


@dataclass
class SearchResult:
    """What one search returns: the ideas plus whether anything matched.

    Iterating, ``len`` and indexing go over ``ideas`` (best first).
    """

    query: str
    ideas: list[TopicIdea]
    no_match: bool              # no idea is a strong match (also True for an empty query)
    empty_query: bool = False   # nothing searchable in the query (empty, punctuation only)
    message: str = ""           # Chinese line for the page / CLI; "" when there are strong matches

    def __iter__(self):
        return iter(self.ideas)

    def __len__(self) -> int:
        return len(self.ideas)

    def __getitem__(self, i):
        return self.ideas[i]

    @property
    def strong(self) -> list[TopicIdea]:
        return [i for i in self.ideas if i.match == STRONG]

    def to_dict(self) -> dict:
        return {"query": self.query, "no_match": self.no_match, "empty_query": self.empty_query,
                "message": self.message, "ideas": [i.to_dict() for i in self.ideas]}


def _identity(tokens):
    return tokens


@functools.lru_cache(maxsize=1)
def _default_segmenter():
    """One shared default segmenter (read-only once loaded; loading the lexicons takes ~1 s)."""
    from miner.topics.segment import JiebaSegmenter
    return JiebaSegmenter()


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


class TopicSearcher(BaseEstimator):
    """Hybrid (embedding + BM25) topic search over a snapshot.

    Parameters
    ----------
    embedder : embedder of the snapshot's model (``encode(texts, kind="query")``); required.
    segmenter : :class:`miner.topics.segment.JiebaSegmenter` for queries; None = a default one
        (pass :func:`miner.topics.segment.make_segmenter` of the workspace config).
    trends : optional :func:`miner.insights.trends.trend_scores` table; computed from the notes when None.
    opportunity : optional :func:`miner.insights.opportunity.opportunity_scores` table; computed (all
        users, no node) when None.
    n_note_hits, top_note_hits : notes retrieved per query / best hits averaged per topic.
    rrf_k, weights : RRF constant and the weight of the (centroid, notes, keyword) lists.
    k1, b : BM25 parameters. max_expansions : vocabulary words per out-of-vocabulary Chinese token.
    n_examples : example notes per idea. min_keyword_notes, min_keyword_coverage : entry to the keyword list.
    calibration : ``"labels"`` (z against other topics' label queries) or ``"topics"`` (z against
        the query's scores over the other topics); see the module doc.
    strong_z, min_cosine : semantic floor of a strong match (z-score, centred cosine).
    keyword_coverage_strong, keyword_z : keyword route to a strong match (share of the topic's notes
        holding the query words, and the z-score it still needs).

    Attributes
    ----------
    model_id_, run_id_ : the snapshot's embedding model and run.
    note_topic_, topic_ids_, topic_label_, keywords_, representatives_, topic_sizes_ : per note / topic.
    mean_, centred_norms_ : mean note embedding and ``|c − μ|`` per centroid (hubness correction).
    background_mean_, background_sd_ : per-topic off-topic baseline (``calibration="labels"``; else None).
    bm25_, vocabulary_, df_, term_index_ : the BM25 matrix over note tokens.
    engagement_, note_ids_, titles_, row_of_note_ : per-note display data.
    trends_, opportunity_, stage_, opportunity_by_topic_ : joined insight tables.
    hidden_ : per topic row, hidden by curation (left out of results unless asked for).
    segmenter_ : the query segmenter (``segmenter`` or a default one), dictionary loaded.
    """

    def __init__(self, embedder=None, segmenter=None, trends: pd.DataFrame | None = None,
                 opportunity: pd.DataFrame | None = None, n_note_hits: int = 200, top_note_hits: int = 3,
                 rrf_k: int = 60, weights: tuple[float, float, float] = (1.0, 1.0, 2.0), k1: float = 1.2,
                 b: float = 0.75, max_expansions: int = 5, n_examples: int = 3, min_keyword_notes: int = 2,
                 min_keyword_coverage: float = 0.02, calibration: str = "labels", strong_z: float = 3.0,
                 min_cosine: float = 0.15, keyword_coverage_strong: float = 0.1, keyword_z: float = 1.0):
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
        self.calibration = calibration
        self.strong_z = strong_z
        self.min_cosine = min_cosine
        self.keyword_coverage_strong = keyword_coverage_strong
        self.keyword_z = keyword_z

    # -- fitting ----------------------------------------------------------------------------------
    def fit(self, snapshot, y=None) -> "TopicSearcher":
        """Build the search state from ``snapshot`` (:class:`miner.topics.snapshot.Snapshot`, or any
        object with ``notes`` incl. ``tokens``, ``topics``, ``assignments``, ``note_index``,
        ``topic_index`` and optionally ``embeddings``, ``centroids``, ``model_id``, ``run_id``)."""
        snap = snapshot
        if self.embedder is None:
            raise ValueError("TopicSearcher needs an embedder (the snapshot's model): "
                             "TopicSearcher(embedder=snapshot_embedder(snapshot.meta['embedding']))")
        model_id = getattr(snap, "model_id", None)
        if model_id is not None and getattr(self.embedder, "model_id", model_id) != model_id:
            raise ValueError(f"snapshot {getattr(snap, 'run_id', '')} was built with {model_id}, not "
                             f"{self.embedder.model_id}; search with the same embedding model")
        if len(self.weights) != 3 or min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ValueError(f"weights must be three numbers ≥ 0 (centroid, notes, keyword), got {self.weights}")
        if self.calibration not in ("labels", "topics"):
            raise ValueError(f"calibration must be 'labels' or 'topics', got {self.calibration!r}")
        notes = snap.notes
        if "tokens" not in notes.columns:
            raise ValueError("snapshot notes have no 'tokens' column; rebuild the snapshot")
        self.model_id_ = model_id
        self.run_id_ = getattr(snap, "run_id", None)
        self.note_index_ = snap.note_index
        self.topic_index_ = snap.topic_index
        topics = snap.topics.sort_values(TOPIC_ID).reset_index(drop=True)
        self.topic_ids_ = topics[TOPIC_ID].astype("int64").to_numpy()
        # permanent topic ids need not be 0..n-1: internally a topic is its row (row i of the
        # topic index ↔ i-th topic by id), note_topic_ holds rows (−1 = outlier)
        row_of_topic = pd.Series(np.arange(len(topics)), index=self.topic_ids_)
        topic_of = snap.assignments.set_index(NOTE_ID)[TOPIC_ID].map(row_of_topic)
        self.note_topic_ = notes[NOTE_ID].map(topic_of).fillna(OUTLIER).astype("int64").to_numpy()
        self.topic_label_ = topics["label"].astype(str).tolist()
        self.keywords_ = [[str(w) for w in schema.list_cell(v)] for v in
                          (topics["keywords"] if "keywords" in topics else [[]] * len(topics))]
        self.representatives_ = [[str(n) for n in schema.list_cell(v)] for v in
                                 (topics["representative_note_ids"] if "representative_note_ids" in topics
                                  else [[]] * len(topics))]
        n_topics = len(topics)
        self.hidden_ = (topics["hidden"].fillna(False).astype(bool).to_numpy() if "hidden" in topics
                        else np.zeros(n_topics, dtype=bool))
        self.topic_sizes_ = np.bincount(self.note_topic_[self.note_topic_ >= 0], minlength=n_topics)

        embeddings = getattr(snap, "embeddings", None)
        from miner.topics.blocks import mean_rows
        self.mean_ = (mean_rows(embeddings).astype(np.float32)      # blockwise: embeddings may be memory-mapped
                      if embeddings is not None and len(embeddings) else None)
        centroids = getattr(snap, "centroids", None)
        self.centred_norms_ = None
        if self.mean_ is not None and centroids is not None and len(centroids) == n_topics:
            C = np.asarray(centroids, dtype=np.float32)
            C = C / np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)   # as the index holds them
            self.centred_norms_ = np.maximum(np.linalg.norm(C - self.mean_, axis=1), 1e-6)
        self.background_mean_, self.background_sd_ = self._background(n_topics)
        self.bm25_, self.vocabulary_, self.df_ = bm25_matrix([schema.list_cell(t) for t in notes["tokens"]],
                                                             self.k1, self.b)
        self.term_index_ = {t: i for i, t in enumerate(self.vocabulary_)}
        # only Chinese words take part in substring expansion (never Latin words, numbers or ids)
        self.cjk_vocabulary_text_ = "\n" + "\n".join(t for t in self.vocabulary_ if CJK_ONLY_RE.match(t)) + "\n"

        self.engagement_ = schema.engagement(notes).to_numpy(dtype="int64")
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
        self.stage_ = ({} if trends is None or trends.empty else
                       dict(zip(trends[TOPIC_ID].astype(int), zip(trends["stage"], trends["stage_zh"]))))
        self.opportunity_by_topic_ = dict(zip(opportunity[TOPIC_ID].astype(int), opportunity["score"].astype(float)))
        self.segmenter_ = _default_segmenter() if self.segmenter is None else self.segmenter
        self.segmenter_.segment("预热")   # load jieba's dictionary now, not on the first query
        return self

    def _background(self, n_topics: int):
        """Per topic: mean and std of the centred cosine of the other topics' label queries."""
        if self.calibration != "labels" or n_topics < 3:
            return None, None
        texts, owner = [], []
        for t in range(n_topics):
            kws = self.keywords_[t]
            for text in (self.topic_label_[t].replace("·", " "), " ".join(kws[3:6]), " ".join(kws[6:9])):
                if text.strip():
                    texts.append(text)
                    owner.append(t)
        B = np.asarray(self.embedder.encode(texts, kind="query"), dtype=np.float32).reshape(len(texts), -1)
        scores = self._centroid_scores(B - self.mean_ if self.mean_ is not None else B, n_topics)
        owner = np.asarray(owner)
        other = owner[:, None] != np.arange(n_topics)[None, :]
        finite = np.isfinite(scores) & other
        cnt = np.maximum(finite.sum(axis=0), 1)
        vals = np.where(finite, scores, 0.0)
        mean = vals.sum(axis=0) / cnt
        sd = np.sqrt(np.maximum((vals ** 2).sum(axis=0) / cnt - mean ** 2, 0.0))
        return mean, sd

    def _check_fitted(self) -> None:
        if not hasattr(self, "term_index_"):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError("TopicSearcher is not fitted yet; call fit(snapshot) first")

    # -- query side -------------------------------------------------------------------------------

    def query_terms(self, query: str) -> list[str]:
        """Vocabulary terms the query matches: its tokens, with out-of-vocabulary Chinese ones expanded."""
        self._check_fitted()
        tokens = self.segmenter_.segment(query)
        # whitespace-separated words the segmenter split or dropped still count as words
        stop = getattr(self.segmenter_, "stopwords", frozenset())     # the configured stopwords hold here too
        tokens += [w.lower() for w in query.split() if len(w) >= 2 and w.lower() not in stop]
        terms: list[str] = []
        for tok in dict.fromkeys(tokens):
            if tok in self.term_index_:
                found = [tok]
            else:
                found = self._expand(tok)
            terms.extend(t for t in found if t not in terms)
        return terms

    def _expand(self, token: str) -> list[str]:
        if len(token) < 2 or not CJK_ONLY_RE.match(token):
            return []     # Latin words, digits and ids match exactly or not at all
        pattern = re.compile(rf"^[^\n]*{re.escape(token)}[^\n]*$", re.MULTILINE)
        containing = [m.group(0) for m in pattern.finditer(self.cjk_vocabulary_text_)]
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

    def search(self, query: str, k: int = 10, include_hidden: bool = False) -> SearchResult:
        """Ranked topic ideas for ``query`` (best first, at most ``k``), each flagged strong/weak.

        An empty or punctuation-only query gives an ``empty_query`` result (no ideas) with a
        Chinese message; when no idea is a strong match the result has ``no_match=True``. Topics
        hidden by curation are left out unless ``include_hidden``.
        """
        if not isinstance(query, str):
            raise TypeError(f"the search query must be text, got {type(query).__name__}")
        if k < 1:
            raise ValueError(f"k must be ≥ 1, got {k}")
        self._check_fitted()
        query = query.strip()
        if not HAS_WORD_RE.search(query):
            return SearchResult(query=query, ideas=[], no_match=True, empty_query=True, message=EMPTY_QUERY_MESSAGE)
        n_topics = len(self.topic_ids_)
        if n_topics == 0:
            return SearchResult(query=query, ideas=[], no_match=True, message="快照中还没有话题，请先构建话题")
        shown = np.ones(n_topics, dtype=bool) if include_hidden else ~self.hidden_
        if not shown.any():
            return SearchResult(query=query, ideas=[], no_match=True, message=ALL_HIDDEN_MESSAGE)
        q = np.asarray(self.embedder.encode([query], kind="query"), dtype=np.float32).reshape(1, -1)
        # rank by similarity to the query minus the corpus mean (hubness correction, see module doc)
        qc = q - self.mean_ if self.mean_ is not None else q
        centroid = self._centroid_scores(qc, n_topics)
        note_level, hits_by_topic = self._note_scores(qc, n_topics)

        terms = self.query_terms(query)
        keyword, per_term, (kw_rows, kw_note_scores) = self._keyword_scores(terms)
        kw_topics = self.note_topic_[kw_rows]
        matching = np.bincount(kw_topics[kw_topics >= 0], minlength=n_topics)
        coverage = matching / np.maximum(self.topic_sizes_, 1)
        # a topic enters the keyword list only when the words are part of it, not one stray note
        kw_member = (keyword > 0) & (matching >= self.min_keyword_notes) & (coverage >= self.min_keyword_coverage)

        fused = np.zeros(n_topics)
        rank_of = {}
        for name, w, values, member in zip(("centroid", "notes", "keyword"), self.weights,
                                           (centroid, note_level, keyword),
                                           (np.isfinite(centroid), np.isfinite(note_level), kw_member)):
            listed = np.flatnonzero(member & shown)
            order = listed[np.argsort(-values[listed], kind="stable")]
            ranks = np.zeros(n_topics, dtype=np.int64)
            ranks[order] = np.arange(1, len(order) + 1)
            fused[order] += w / (self.rrf_k + ranks[order])
            rank_of[name] = ranks
        fused /= sum(self.weights) / (self.rrf_k + 1)

        if self.background_mean_ is not None:
            z = (centroid - self.background_mean_) / np.maximum(self.background_sd_, 0.02)
            relevance = np.where(np.isfinite(centroid), z, -np.inf)
        else:
            relevance = self.relevance_z(centroid)
        strong = self._is_strong(centroid, relevance, kw_member, coverage) & shown
        best_kw = keyword[shown].max() if keyword[shown].max() > 0 else 1.0
        order = [t for t in np.lexsort((np.arange(n_topics), -centroid, -fused)) if shown[t]][:k]
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
            stage = self.stage_.get(tid, (None, None))
            ideas.append(TopicIdea(
                topic_id=tid, label=self.topic_label_[t], score=float(fused[t]),
                semantic_score=float(centroid[t]) if np.isfinite(centroid[t]) else 0.0,
                keyword_score=float(keyword[t] / best_kw), matched_keywords=matched,
                examples=self._examples(t, hits_by_topic.get(t, []), kw_sorted_rows[lo:hi][: self.n_examples]),
                relevance=float(relevance[t]), keyword_coverage=float(coverage[t]) if kw_member[t] else 0.0,
                match=STRONG if strong[t] else WEAK,
                stage=stage[0], stage_zh=stage[1], opportunity=self.opportunity_by_topic_.get(tid),
                keywords=list(self.keywords_[t]), size=int(self.topic_sizes_[t]),
                ranks={name: int(r[t]) for name, r in rank_of.items() if r[t] > 0}, hidden=bool(self.hidden_[t])))
        no_match = not bool(strong.any())
        return SearchResult(query=query, ideas=ideas, no_match=no_match,
                            message=NO_MATCH_MESSAGE.format(query=query) if no_match else "")

    # -- scores -----------------------------------------------------------------------------------------
    def _centroid_scores(self, qc: np.ndarray, n_topics: int) -> np.ndarray:
        """Centred cosine cos(c − μ, q − μ) of every topic centroid (−inf where the index has none);
        one row per query row, squeezed for a single query."""
        cos, ids = self.topic_index_.search(qc, n_topics)
        out = np.full((len(qc), n_topics), -np.inf)
        rows, cols = np.nonzero(ids >= 0)
        out[rows, ids[rows, cols]] = cos[rows, cols]
        if self.centred_norms_ is not None:
            # FAISS gave c·(q−μ)/|q−μ|; turn it into cos(c − μ, q − μ), the centred cosine
            qn = np.linalg.norm(qc, axis=1)
            shift = (qc @ self.mean_) / np.maximum(qn, 1e-12)
            out = np.where(qn[:, None] > 0, (out - shift[:, None]) / self.centred_norms_, out)
        return out[0] if len(qc) == 1 else out

    def _note_scores(self, qc: np.ndarray, n_topics: int):
        """Per topic: mean similarity of its best ``top_note_hits`` note hits, and its hits (row, sim)."""
        sims, rows = self.note_index_.search(qc, self.n_note_hits)
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
        return note_level, hits_by_topic

    @staticmethod
    def relevance_z(centroid: np.ndarray, min_sd: float = 0.02) -> np.ndarray:
        """How far each topic's centred cosine stands out from the *other* topics' for this query:
        ``(s_t − mean_{u≠t} s_u) / max(std_{u≠t} s_u, min_sd)`` (−inf where there is no score)."""
        finite = np.isfinite(centroid)
        n = int(finite.sum())
        if n < 2:
            return np.where(finite, 0.0, -np.inf)
        s = np.where(finite, centroid, 0.0)
        total, sq = float(s.sum()), float((s ** 2).sum())
        mean_o = (total - s) / (n - 1)
        var_o = np.maximum((sq - s ** 2) / (n - 1) - mean_o ** 2, 0.0)
        z = (s - mean_o) / np.maximum(np.sqrt(var_o), min_sd)
        return np.where(finite, z, -np.inf)

    def _is_strong(self, centroid, relevance, kw_member, coverage) -> np.ndarray:
        semantic = (relevance >= self.strong_z) & (centroid >= self.min_cosine)
        lexical = kw_member & (coverage >= self.keyword_coverage_strong) & (relevance >= self.keyword_z)
        return semantic | lexical

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
