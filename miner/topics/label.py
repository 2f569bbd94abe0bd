"""Topic labelling: c-TF-IDF candidates re-ranked by meaning, coherence, representative notes.

1. **Candidates.** c-TF-IDF treats all notes of a topic as one document:
   ``W(t, c) = tf(t, c) / |c| * log(1 + A / f(t))`` with ``A`` the mean token count per topic and
   ``f(t)`` the frequency of ``t`` across topics. Tokens come from
   :class:`miner.topics.segment.JiebaSegmenter`, so Chinese words and hashtags are kept (BERTopic's
   default vectorizer is English-only). The ``n_candidates`` best terms, the topic's frequent
   hashtags and its frequent bigrams (two adjacent tokens, e.g. 露营+装备) are the candidates; a
   candidate must occur in at least ``min_topic_df`` of the topic's notes (one chatty note does not
   name a topic).
2. **Re-ranking (KeyBERT-style, with MMR).** With an ``embedder``, candidates are embedded once
   (batched; through an :class:`~miner.topics.embed.EmbeddingCache` when given) and chosen by
   maximal marginal relevance: relevance = ``1 − keyword_weight`` × the centred cosine of the word
   to the topic centroid (both minus their mean, min-max scaled within the topic) +
   ``keyword_weight`` × its c-TF-IDF weight ÷ the topic's best; each pick is penalised by
   ``label_diversity`` × its largest cosine to the words already picked, so 穿搭·穿搭分享·搭配 does
   not fill a label. The first ``n_label_words`` picks make the label and lead the keywords; the
   other keywords follow the c-TF-IDF order (words common in the topic's notes, which keeps the
   keyword set coherent). Without an embedder the c-TF-IDF order is kept.
3. **Coherence.** ``coherence`` is the mean NPMI (Bouma 2009) of the pairs of the topic's keywords over
   the corpus notes (document co-occurrence; a pair never seen together scores −1). A topic below
   ``min_coherence`` is flagged ``is_mixed`` (混合话题): its keywords do not go together in notes.
"""
from __future__ import annotations

import heapq
from array import array
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import CountVectorizer

from miner.topics.blocks import row_blocks
from miner.topics.tokens import TokenTable
from miner.schema import OUTLIER, split_tags  # noqa: F401  (OUTLIER: re-exported)

NEAR_DUPLICATE = 0.97   # cosine above which two notes count as copies of each other


def _identity(tokens):
    return tokens


class ClassTfidf(BaseEstimator):
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
        if not isinstance(token_lists, (list, TokenTable)):   # sliced by position below
            token_lists = list(token_lists)
        self.vocabulary_ = _vocabulary(token_lists, self.min_df)
        self.classes_ = np.unique(labels)
        class_counts = _class_counts(token_lists, np.searchsorted(self.classes_, labels), len(self.classes_),
                                     self.vocabulary_).astype(np.float64)
        tf = sp.diags(1.0 / np.maximum(np.asarray(class_counts.sum(axis=1)).ravel(), 1)) @ class_counts
        freq = np.asarray(class_counts.sum(axis=0)).ravel()
        avg = class_counts.sum() / max(len(self.classes_), 1)
        if self.bm25_weighting:
            idf = np.log(1 + np.maximum((avg - freq + 0.5) / (freq + 0.5), 0))
        else:
            idf = np.log(1 + avg / np.maximum(freq, 1))
        self.ctfidf_ = (tf @ sp.diags(idf)).tocsr()
        self.ctfidf_.sort_indices()    # ties in top_terms: vocabulary order
        return self

    def top_terms(self, class_id, n: int = 10) -> list[tuple[str, float]]:
        row = int(np.searchsorted(self.classes_, class_id))
        if row >= len(self.classes_) or self.classes_[row] != class_id:
            return []
        vec = self.ctfidf_.getrow(row)
        order = np.argsort(-vec.data, kind="stable")[:n]
        return [(str(self.vocabulary_[vec.indices[i]]), float(vec.data[i])) for i in order]


def _vocabulary(token_lists, min_df: int) -> np.ndarray:
    """Sorted terms held by at least ``min_df`` notes (all terms when none is); as
    ``CountVectorizer(min_df=...)`` chooses them, counted without its notes × terms matrix."""
    if isinstance(token_lists, TokenTable):       # counted on the word ids: no string per distinct word
        df = token_lists.document_frequencies()
        kept = np.flatnonzero(df >= min_df)
        terms = sorted(token_lists.words(kept if len(kept) else np.flatnonzero(df)))
        if not terms:
            raise ValueError("empty vocabulary: the notes hold no tokens")
        return np.array(terms, dtype=object)
    doc_freq: Counter = Counter()
    for tokens in token_lists:
        doc_freq.update(set(tokens))
    terms = sorted(t for t, f in doc_freq.items() if f >= min_df) or sorted(doc_freq)
    if not terms:
        raise ValueError("empty vocabulary: the notes hold no tokens")
    return np.array(terms, dtype=object)


def _class_counts(token_lists, rows, n_classes: int, vocabulary, chunk_rows: int = 65_536) -> sp.csr_matrix:
    """classes × terms token counts, summed block by block of notes: memory holds one block's
    notes × terms matrix, never the whole corpus's (a :class:`TokenTable`: counted on its word ids)."""
    if isinstance(token_lists, TokenTable):
        column = token_lists.positions_in(vocabulary)
        total = sp.csr_matrix((n_classes, len(vocabulary)), dtype=np.int64)
        for lo, hi, note_of, ids in token_lists.id_blocks(chunk_rows):
            cols = column[ids]
            kept = cols >= 0
            total = total + sp.csr_matrix((np.ones(int(kept.sum()), np.int64),
                                           (np.asarray(rows[lo:hi])[note_of[kept]], cols[kept])),
                                          shape=(n_classes, len(vocabulary)))
        total.sort_indices()
        return total
    vectorizer = CountVectorizer(analyzer=_identity, lowercase=False,
                                 vocabulary={t: i for i, t in enumerate(vocabulary)})
    total = sp.csr_matrix((n_classes, len(vocabulary)), dtype=np.int64)
    for lo, hi in row_blocks(len(token_lists), chunk_rows):
        counts = vectorizer.transform(token_lists[lo:hi])
        member = sp.csr_matrix((np.ones(hi - lo, dtype=np.int64), (rows[lo:hi], np.arange(hi - lo))),
                               shape=(n_classes, hi - lo))
        total = total + member @ counts
    total = total.tocsr()
    total.sort_indices()          # tied c-TF-IDF weights then rank in vocabulary (sorted) order
    return total


def _most_common(counter: Counter, n: int) -> list[tuple[str, int]]:
    """``counter.most_common(n)`` with ties in word order: ``most_common`` breaks them by insertion
    order, which follows set iteration and so Python's per-process string hashing (the same notes
    gave different labels run to run)."""
    return heapq.nsmallest(n, counter.items(), key=lambda item: (-item[1], item[0]))


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
    coherence: float = 0.0            # mean NPMI of the keyword pairs over the corpus notes, −1…1
    is_mixed: bool = False            # coherence below the labeller's min_coherence: 混合话题


def doc_term_matrix(token_lists, vocabulary, n_rows: int | None = None) -> sp.csc_matrix:
    """Binary notes × terms matrix (1 = the note holds the term) over ``vocabulary``.
    ``token_lists`` may be a generator when ``n_rows`` gives its length."""
    index = {t: i for i, t in enumerate(vocabulary)}
    rows, cols = array("q"), array("q")          # 8 bytes an entry, not a Python int's 36
    n = 0
    for r, tokens in enumerate(token_lists):
        n = r + 1
        for c in {index[t] for t in tokens if t in index}:
            rows.append(r)
            cols.append(c)
    n_rows = n if n_rows is None else n_rows
    return sp.csc_matrix((np.ones(len(rows), dtype=np.float32), (np.frombuffer(rows, np.int64),
                                                                  np.frombuffer(cols, np.int64))),
                         shape=(n_rows, len(vocabulary)))


def npmi_coherence(words: list[str], doc_terms: sp.csc_matrix, term_index: dict) -> float:
    """Mean NPMI of all pairs of ``words`` by document co-occurrence.

    ``NPMI(a, b) = log(P(a,b) / (P(a) P(b))) / −log P(a,b)`` with probabilities = share of notes
    holding the word(s); a pair never seen together scores −1, a word absent from the corpus
    counts as never co-occurring. Fewer than two words → 0.
    """
    if len(words) < 2:
        return 0.0
    n = doc_terms.shape[0]
    cols = [term_index.get(w) for w in words]
    present = [c for c in cols if c is not None]
    sub = doc_terms[:, present] if present else sp.csc_matrix((n, 0))
    co = (sub.T @ sub).toarray()
    df = np.diag(co)
    pos = {c: i for i, c in enumerate(present)}
    total, pairs = 0.0, 0
    for i in range(len(cols)):
        for j in range(i + 1, len(cols)):
            pairs += 1
            a, b = pos.get(cols[i]), pos.get(cols[j])
            if a is None or b is None or co[a, b] == 0:
                total -= 1.0
                continue
            p_ab = co[a, b] / n
            if p_ab >= 1.0:
                total += 1.0
                continue
            total += np.log(p_ab / (df[a] / n * df[b] / n)) / -np.log(p_ab)
    return float(total / pairs)


def mmr_order(relevance: np.ndarray, vectors: np.ndarray, n: int, diversity: float) -> list[int]:
    """Indices of ``n`` items by maximal marginal relevance (vectors L2-normalised)."""
    if len(relevance) == 0:
        return []
    chosen = [int(np.argmax(relevance))]
    while len(chosen) < min(n, len(relevance)):
        redundancy = (vectors @ vectors[chosen].T).max(axis=1)
        score = (1 - diversity) * relevance - diversity * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen


class TopicLabeler(BaseEstimator):
    """Label topics: re-ranked keywords, a short Chinese label, coherence, representative notes.

    Parameters
    ----------
    n_keywords, n_representatives : keywords and representative notes per topic.
    min_df : c-TF-IDF vocabulary floor (notes). diversity : MMR weight for representative notes.
    embedder : embeds candidate words for re-ranking (``encode(texts, kind=...)``); None = c-TF-IDF order.
    word_cache : optional :class:`~miner.topics.embed.EmbeddingCache` for the candidate words.
    n_candidates : c-TF-IDF terms per topic considered. min_topic_df : share of a topic's notes
        (at least 2) a candidate must occur in. label_diversity : MMR weight for keywords.
    keyword_weight : weight of the c-TF-IDF score in a candidate's relevance (0…1).
    min_coherence : NPMI below which a topic is flagged ``is_mixed`` (混合话题).
    n_label_words : words in the short label (picked by MMR; the rest of the keywords follow c-TF-IDF).

    Attributes
    ----------
    topics_ : list[TopicLabels], one per topic id ≥ 0, in id order (``None`` for a topic left out
        by ``fit(..., only=...)``)
    ctfidf_ : the fitted :class:`ClassTfidf`
    """

    def __init__(self, n_keywords: int = 10, n_representatives: int = 5, min_df: int = 2,
                 diversity: float = 0.3, embedder=None, word_cache=None, n_candidates: int = 30,
                 min_topic_df: float = 0.02, label_diversity: float = 0.3, keyword_weight: float = 0.5,
                 min_coherence: float = -0.8, n_label_words: int = 3):
        self.n_keywords = n_keywords
        self.n_representatives = n_representatives
        self.min_df = min_df
        self.diversity = diversity
        self.embedder = embedder
        self.word_cache = word_cache
        self.n_candidates = n_candidates
        self.min_topic_df = min_topic_df
        self.label_diversity = label_diversity
        self.keyword_weight = keyword_weight
        self.min_coherence = min_coherence
        self.n_label_words = n_label_words

    def fit(self, token_lists, topic_ids, embeddings: np.ndarray, centroids: np.ndarray, tags=None, only=None):
        """Label each topic 0..len(centroids)−1; ``tags`` (hashtags per note) add candidates.

        ``only``: label just these topics, exactly as a full fit labels them (c-TF-IDF and the word
        centring still see every topic); the others' ``topics_`` entries are ``None``."""
        if not 0 <= self.keyword_weight <= 1:
            raise ValueError(f"keyword_weight must be in [0, 1], got {self.keyword_weight}")
        topic_ids = np.asarray(topic_ids)
        if not isinstance(token_lists, TokenTable):     # a table on disk is read a note or a block at a time
            token_lists = [t if isinstance(t, list) else list(t) for t in token_lists]    # lists shared, not copied
        self.ctfidf_ = ClassTfidf(min_df=self.min_df).fit(token_lists, topic_ids)
        candidates = [self._candidates(token_lists, topic_ids, topic, tags) for topic in range(len(centroids))]
        wanted = range(len(centroids)) if only is None else sorted({int(t) for t in only})
        ranked = self._rerank(candidates, embeddings, centroids, wanted)   # all candidates: the same centring
        vocabulary = sorted({w for words in ranked.values() for w, _ in words})
        doc_terms = doc_term_matrix(self._with_bigrams(token_lists, vocabulary), vocabulary, len(token_lists))
        term_index = {t: i for i, t in enumerate(vocabulary)}
        self.topics_ = [None] * len(centroids)
        for topic, words in ranked.items():
            keywords = [w for w, _ in words]
            label = short_label(keywords)
            members = np.flatnonzero(topic_ids == topic)
            reps = representative_indices(embeddings, members, centroids[topic],
                                          self.n_representatives, self.diversity)
            coherence = round(npmi_coherence(keywords, doc_terms, term_index), 6)
            self.topics_[topic] = TopicLabels(topic, label, keywords, [round(s, 6) for _, s in words], reps,
                                              coherence, bool(coherence < self.min_coherence))
        return self

    # -- candidates ---------------------------------------------------------------------------------
    def _candidates(self, token_lists, topic_ids, topic, tags) -> list[tuple[str, float]]:
        """(word, c-TF-IDF weight or 0) of one topic, best c-TF-IDF first; frequent enough in the topic."""
        members = np.flatnonzero(topic_ids == topic)
        floor = max(2, int(np.ceil(self.min_topic_df * len(members))))
        in_notes: Counter = Counter()
        pairs: Counter = Counter()
        for r in members:
            toks = token_lists[r]
            in_notes.update(set(toks))
            pairs.update({a + b for a, b in zip(toks, toks[1:]) if a != b and not (a in b or b in a)})
        terms = self.ctfidf_.top_terms(topic, max(self.n_candidates, self.n_keywords))
        out = [(t, s) for t, s in terms if in_notes[t] >= floor]
        if len(out) < self.n_keywords:      # small topics: fall back to the plain c-TF-IDF order
            out += [(t, s) for t, s in terms if (t, s) not in out][: self.n_keywords - len(out)]
        seen = {t for t, _ in out}
        extra = [w for w, c in _most_common(pairs, 10) if c >= max(floor, 3)]
        if tags is not None:
            member_tags = tags.iloc[members].tolist() if hasattr(tags, "iloc") else [tags[r] for r in members]
            tag_count = Counter(t for cell in member_tags for t in set(split_tags(cell)))
            extra += [t for t, c in _most_common(tag_count, 10) if c >= floor]
        out += [(w, 0.0) for w in dict.fromkeys(extra) if w not in seen]
        return out

    @staticmethod
    def _with_bigrams(token_lists, vocabulary):
        """Each token list plus its joined bigrams that are in ``vocabulary`` (for co-occurrence),
        one note at a time (a generator: the corpus is not copied)."""
        vocab = set(vocabulary)
        for toks in token_lists:
            yield [*toks, *(a + b for a, b in zip(toks, toks[1:]) if a + b in vocab)]

    # -- re-ranking -------------------------------------------------------------------------------------
    def _rerank(self, candidates, embeddings, centroids, wanted) -> dict[int, list[tuple[str, float]]]:
        """{topic: its keywords (word, c-TF-IDF weight)} for the ``wanted`` topics."""
        n = self.n_keywords
        if self.embedder is None or not any(candidates):
            return {t: [(w, s) for w, s in candidates[t] if s > 0][:n] or candidates[t][:n] for t in wanted}
        words = sorted({w for c in candidates for w, _ in c})
        from miner.topics.embed import cached_encode
        V = np.asarray(cached_encode(self.embedder, words, self.word_cache, kind="query"), dtype=np.float64)
        V -= V.mean(axis=0)                         # centred: remove what every word shares
        V /= np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
        row = {w: i for i, w in enumerate(words)}
        from miner.topics.blocks import mean_rows
        mu = mean_rows(embeddings)                  # no float64 copy of a large (memory-mapped) matrix
        out = {}
        for topic in wanted:
            cands = candidates[topic]
            if not cands:
                out[topic] = []
                continue
            c = np.asarray(centroids[topic], dtype=np.float64) - mu
            c /= max(np.linalg.norm(c), 1e-12)
            vecs = V[[row[w] for w, _ in cands]]
            sem = vecs @ c
            sem = (sem - sem.min()) / max(sem.max() - sem.min(), 1e-12)
            kw = np.array([s for _, s in cands])
            kw = kw / kw.max() if kw.max() > 0 else kw
            relevance = (1 - self.keyword_weight) * sem + self.keyword_weight * kw
            order = mmr_order(relevance, vecs, n, self.label_diversity)
            label_words = short_label([cands[i][0] for i in order], self.n_label_words).split("·")
            # keywords: the label's words first, then the c-TF-IDF order (which keeps them coherent)
            score = dict(cands)
            rest = [w for w, s in cands if s > 0 and w not in label_words]
            out[topic] = [(w, float(score.get(w, 0.0))) for w in (label_words + rest)[:n]]
        return out
