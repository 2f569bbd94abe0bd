import numpy as np

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
