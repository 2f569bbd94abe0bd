import numpy as np
import pytest

from miner.topics.label import ClassTfidf, TopicLabeler, representative_indices, short_label


def test_ctfidf_hand_computed():
    docs = [["露营", "帐篷"], ["露营", "天幕"], ["洗发水", "露营"]]
    labels = [0, 0, 1]
    model = ClassTfidf(min_df=1).fit(docs, labels)
    # class 0 tokens: 露营×2, 帐篷, 天幕 (4); class 1: 洗发水, 露营 (2); A = 3
    # 露营 freq 3 → idf log(2); 帐篷 freq 1 → idf log(4)
    top0 = dict(model.top_terms(0, 5))
    assert np.isclose(top0["露营"], 2 / 4 * np.log(1 + 3 / 3))
    assert np.isclose(top0["帐篷"], 1 / 4 * np.log(1 + 3 / 1))
    assert model.top_terms(1, 1)[0][0] == "洗发水"


def test_keywords_of_real_categories(reviews_4cats, review_vectors):
    tokens, X = review_vectors
    cats = reviews_4cats["cat"].astype("category")
    labels = cats.cat.codes.to_numpy()
    model = ClassTfidf().fit(tokens, labels)
    top = {c: [t for t, _ in model.top_terms(i, 10)] for i, c in enumerate(cats.cat.categories)}
    assert "酒店" in top["酒店"] or "房间" in top["酒店"]
    assert "洗发水" in top["洗发水"] or "头发" in top["洗发水"]
    assert "手机" in top["手机"]


def test_blockwise_class_counts_equal_one_notes_by_terms_matrix(reviews_4cats, review_vectors, monkeypatch, tmp_path):
    """c-TF-IDF summed over blocks of notes is the same matrix (and vocabulary) as from one
    CountVectorizer over the whole corpus (what it replaced: O(corpus) memory)."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import CountVectorizer
    from miner.topics import label
    tokens, _ = review_vectors
    labels = reviews_4cats["cat"].astype("category").cat.codes.to_numpy()
    vectorizer = CountVectorizer(analyzer=lambda t: t, min_df=2, lowercase=False)
    counts = vectorizer.fit_transform(tokens)
    classes = np.unique(labels)
    member = sp.csr_matrix((np.ones(len(labels)), (np.searchsorted(classes, labels), np.arange(len(labels)))))
    whole = (member @ counts).toarray()

    blocks = label._class_counts(list(tokens), np.searchsorted(classes, labels), len(classes),
                                 label._vocabulary(tokens, 2), chunk_rows=97)      # many uneven blocks
    assert list(label._vocabulary(tokens, 2)) == list(vectorizer.get_feature_names_out())
    assert np.array_equal(blocks.toarray(), whole)
    # the same counted on a TokenTable's word ids (a build's tokens on disk)
    from miner.topics.tokens import TokenTable
    table = TokenTable.from_lists(list(tokens), tmp_path / "tokens")
    assert list(label._vocabulary(table, 2)) == list(vectorizer.get_feature_names_out())
    on_ids = label._class_counts(table, np.searchsorted(classes, labels), len(classes), label._vocabulary(table, 2),
                                 chunk_rows=97)
    assert np.array_equal(on_ids.toarray(), whole) and on_ids.has_sorted_indices
    # every term below min_df: all terms, as CountVectorizer's fallback gave
    assert list(label._vocabulary([["甲"], ["乙"]], 2)) == ["乙", "甲"]
    assert list(label._vocabulary(TokenTable.from_lists([["甲"], ["乙"]], tmp_path / "two"), 2)) == ["乙", "甲"]
    with pytest.raises(ValueError, match="empty vocabulary"):
        ClassTfidf().fit([[], []], [0, 1])


def test_short_label_skips_contained_keywords():
    assert short_label(["露营", "露营装备", "天幕", "平价"]) == "露营·天幕·平价"
    assert short_label([]) == "未命名话题"


def test_representatives_are_members_near_centroid_and_diverse():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 8)).astype(np.float32)
    X[1] = X[0]   # a duplicate of the most central note must not be picked twice
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    centroid = X[0].copy()
    members = np.arange(0, 50, 2)   # only even rows are members... plus the duplicate at row 1 is not
    members = np.append(members, 1)
    reps = representative_indices(X, members, centroid, n=4, diversity=0.5)
    assert reps[0] in (0, 1)
    assert not {0, 1} <= set(reps)
    assert set(reps) <= set(members.tolist())


def test_labeler_produces_one_entry_per_topic(review_vectors):
    tokens, X = review_vectors
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-9)
    labels = np.repeat([0, 1, 2, 3], 60)
    labels[:5] = -1
    centroids = np.stack([X[labels == t].mean(0) for t in range(4)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    lab = TopicLabeler(n_keywords=5, n_representatives=3).fit(tokens, labels, X, centroids)
    assert [t.topic_id for t in lab.topics_] == [0, 1, 2, 3]
    for t in lab.topics_:
        assert len(t.keywords) == 5 and t.label
        assert all(labels[r] == t.topic_id for r in t.representative_rows)


# ---- coherence and re-ranking ------------------------------------------------------------------------
def test_npmi_hand_computed():
    from miner.topics.label import doc_term_matrix, npmi_coherence
    docs = [["a", "b"], ["a", "b"], ["a", "c"], ["d"]]
    vocab = ["a", "b", "c", "d"]
    X = doc_term_matrix(docs, vocab)
    index = {t: i for i, t in enumerate(vocab)}
    ab = np.log(0.5 / (0.75 * 0.5)) / -np.log(0.5)        # P(a)=3/4, P(b)=1/2, P(ab)=1/2
    ac = np.log(0.25 / (0.75 * 0.25)) / -np.log(0.25)     # P(c)=1/4, P(ac)=1/4
    assert npmi_coherence(["a", "b"], X, index) == pytest.approx(ab)
    assert npmi_coherence(["a", "b", "c"], X, index) == pytest.approx((ab + ac - 1.0) / 3)   # b, c never meet
    assert npmi_coherence(["a", "zzz"], X, index) == -1.0                                    # unseen word
    assert npmi_coherence(["a"], X, index) == 0.0


class WordEmbedder:
    """Fixed vectors per word: 穿搭 and 搭配 are the same direction (near-synonyms)."""

    model_id = "words"
    dim = 3
    VECS = {"穿搭": [1, 0, 0], "搭配": [1, 0, 0], "外套": [0.8, 0, 0.6], "平价": [0, 0, 1],
            "露营": [0, 1, 0], "帐篷": [0, 0.9, 0.44], "天幕": [0, 0.8, 0.6]}

    def __init__(self):
        self.seen = []

    def encode(self, texts, kind="passage", show_progress=None):
        self.seen.append(list(texts))
        v = np.array([self.VECS.get(t, [0.3, 0.3, 0.3]) for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def _fashion_and_camping():
    tokens = ([["穿搭", "搭配", "外套"]] * 4 + [["穿搭", "搭配", "平价"]] * 2
              + [["露营", "帐篷", "天幕"]] * 4 + [["露营", "帐篷"]] * 2)
    topics = np.array([0] * 6 + [1] * 6)
    X = np.array([[1, 0, 0.1]] * 6 + [[0, 1, 0.1]] * 6, dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    C = np.stack([X[topics == t].mean(0) for t in (0, 1)])
    return tokens, topics, X, C / np.linalg.norm(C, axis=1, keepdims=True)


def test_mmr_rerank_skips_near_synonyms_and_embeds_each_word_once():
    tokens, topics, X, C = _fashion_and_camping()
    plain = TopicLabeler(n_keywords=3, n_representatives=1).fit(tokens, topics, X, C)
    assert set(plain.topics_[0].keywords[:2]) == {"穿搭", "搭配"}       # c-TF-IDF order: both synonyms
    emb = WordEmbedder()
    lab = TopicLabeler(n_keywords=3, n_representatives=1, embedder=emb, label_diversity=0.5).fit(tokens, topics, X, C)
    first = lab.topics_[0]
    assert first.keywords[0] in ("穿搭", "搭配")
    assert not {"穿搭", "搭配"} <= set(first.keywords[:2])              # the synonym waits its turn
    assert first.label.split("·")[:2] == first.keywords[:2]
    assert len(emb.seen) == 1 and len(emb.seen[0]) == len(set(emb.seen[0]))   # one batch, unique words


def test_labelling_only_some_topics_gives_them_the_full_fits_labels():
    tokens, topics, X, C = _fashion_and_camping()
    full = TopicLabeler(n_keywords=3, n_representatives=2, embedder=WordEmbedder()).fit(tokens, topics, X, C)
    for only in ([1], [0]):
        part = TopicLabeler(n_keywords=3, n_representatives=2, embedder=WordEmbedder()).fit(
            tokens, topics, X, C, only=only)
        assert part.topics_[only[0]] == full.topics_[only[0]] and part.topics_[1 - only[0]] is None


def test_coherence_flags_a_mixed_topic():
    # topic 0: its words always meet; topic 1: two unrelated halves glued together
    tokens = [["猫粮", "猫砂"]] * 5 + [["基金", "股票"]] * 3 + [["手游", "抽卡"]] * 3
    topics = np.array([0] * 5 + [1] * 6)
    X = np.eye(3, dtype=np.float32)[[0] * 5 + [1] * 3 + [2] * 3]
    C = np.stack([X[topics == t].mean(0) for t in (0, 1)])
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    lab = TopicLabeler(n_keywords=4, n_representatives=1, min_df=1, min_coherence=-0.2).fit(tokens, topics, X, C)
    coherent, mixed = lab.topics_
    assert coherent.coherence == pytest.approx(1.0) and not coherent.is_mixed
    assert mixed.coherence < -0.2 and mixed.is_mixed


def test_labeler_params_clone_and_fitted_attributes():
    from sklearn.base import clone
    lab = TopicLabeler(n_keywords=4, label_diversity=0.2, min_coherence=-0.7)
    assert not [a for a in vars(lab) if a.endswith("_")]
    copy = clone(lab)
    assert copy.get_params() == lab.get_params() and copy.get_params()["min_coherence"] == -0.7
    tokens, topics, X, C = _fashion_and_camping()
    assert lab.fit(tokens, topics, X, C) is lab and len(lab.topics_) == 2
    with pytest.raises(ValueError, match="keyword_weight"):
        TopicLabeler(keyword_weight=2).fit(tokens, topics, X, C)


def test_tied_counts_rank_in_word_order_whatever_the_insertion_order():
    from collections import Counter
    from miner.topics.label import _most_common
    forward = Counter({"露营": 3, "天幕": 2, "帐篷": 2, "平价": 2, "装备": 1})
    backward = Counter(dict(reversed(list(forward.items()))))
    assert _most_common(forward, 3) == _most_common(backward, 3) == [("露营", 3), ("天幕", 2), ("帐篷", 2)]


LABEL_SCRIPT = """
import json, sys
import numpy as np, pandas as pd
from miner.topics.embed import HashingEmbedder
from miner.topics.label import TopicLabeler
from miner.topics.pipeline import notes_texts
from miner.topics.segment import JiebaSegmenter
notes = pd.read_parquet(sys.argv[1]).head(1500)
tokens = JiebaSegmenter().segment_many(notes_texts(notes))
topics = notes["category"].fillna("").astype("category").cat.codes.to_numpy()
emb = HashingEmbedder()
X = emb.encode(notes_texts(notes))
centroids = np.stack([X[topics == t].mean(axis=0) for t in range(topics.max() + 1)])
lab = TopicLabeler(embedder=emb).fit(tokens, topics, X, centroids, tags=notes["tags"].tolist())
candidates = [lab._candidates(tokens, topics, t, notes["tags"].tolist()) for t in range(len(centroids))]
print(json.dumps([[[t.label, t.keywords] for t in lab.topics_], candidates], ensure_ascii=False))
"""


def test_labels_do_not_depend_on_the_process_string_hashing(tmp_path):
    """The same notes get the same label candidates and labels in any process: ties among bigram
    and hashtag counts used to follow set iteration order, i.e. PYTHONHASHSEED (demo rebuilds
    flipped 暴雨 ↔ 骑行)."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    data = Path(__file__).resolve().parents[1] / "data" / "demo" / "notes.parquet"     # real notes, real hashtags
    script = tmp_path / "label.py"
    script.write_text(LABEL_SCRIPT, encoding="utf-8")
    root = str(Path(__file__).resolve().parents[1])
    outputs = {subprocess.run([sys.executable, str(script), str(data)], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": root}).stdout
               for seed in ("1", "2", "3")}
    assert len(outputs) == 1 and "·" in outputs.pop()
