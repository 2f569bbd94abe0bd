"""One contract for every learned stage (scikit-learn conventions), checked on each class:

``__init__`` only stores its arguments; ``get_params``/``set_params`` make ``sklearn.clone`` work;
``fit`` returns self; what fit adds ends in ``_``; save/load round-trips every constructor argument.
Each stage is fitted on the same small real slice (240 reviews as lexical vectors).
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.base import clone

from miner.topics.cluster import TopicClusterer
from miner.topics.index import VectorIndex
from miner.topics.label import ClassTfidf, TopicLabeler


def _fit_clusterer(est, tokens, vecs):
    return est.fit(vecs)


def _fit_index(est, tokens, vecs):
    return est.fit(vecs)


def _roundtrip_clusterer(est, tmp_path):
    meta, arrays = est.get_state()
    return TopicClusterer.from_state(meta, arrays)


def _roundtrip_index(est, tmp_path):
    est.save(tmp_path / "i.faiss")
    return VectorIndex.load(tmp_path / "i.faiss")


def _fit_labeler(est, tokens, vecs):
    labels = TopicClusterer(min_topic_size=10, seed=3).fit(vecs).labels_
    from miner.topics.pipeline import topic_centroids
    return est.fit(tokens, labels, vecs, topic_centroids(vecs, labels, int(labels.max()) + 1))


def _fit_ctfidf(est, tokens, vecs):
    return est.fit(tokens, np.arange(len(tokens)) % 4)


def _roundtrip_params(est, tmp_path):
    """Stages whose state lives in the snapshot tables rebuild from their params (JSON)."""
    import json
    return type(est)(**json.loads(json.dumps(est.get_params())))


# (estimator with non-default arguments, fit, save+load)
STAGES = {
    "TopicLabeler": (lambda: TopicLabeler(n_keywords=7, n_representatives=3, min_coherence=-0.7),
                     _fit_labeler, _roundtrip_params),
    "ClassTfidf": (lambda: ClassTfidf(min_df=1, bm25_weighting=True), _fit_ctfidf, _roundtrip_params),
    "TopicClusterer": (lambda: TopicClusterer(min_topic_size=10, n_neighbors=7, seed=3, n_init=2),
                       _fit_clusterer, _roundtrip_clusterer),
    "VectorIndex": (lambda: VectorIndex(nprobe=16, flat_threshold=50, seed=7), _fit_index, _roundtrip_index),
}


@pytest.fixture(params=sorted(STAGES))
def stage(request):
    return STAGES[request.param]


def test_init_only_stores_arguments(stage):
    make, _, _ = stage
    est = make()
    names = [p for p in inspect.signature(type(est).__init__).parameters if p != "self"]
    assert sorted(vars(est)) == sorted(names)
    assert est.get_params() == {n: getattr(est, n) for n in names}


def test_clone_and_set_params(stage):
    make, _, _ = stage
    est = make()
    copy = clone(est)
    assert copy is not est and copy.get_params() == est.get_params()
    first = next(iter(est.get_params()))
    assert copy.set_params(**{first: est.get_params()[first]}) is copy


def test_fit_returns_self_and_adds_only_underscore_attributes(stage, review_vectors):
    make, fit, _ = stage
    est = make()
    before = set(vars(est))
    assert fit(est, *review_vectors) is est
    added = [a for a in set(vars(est)) - before if not a.startswith("_")]
    assert added and all(a.endswith("_") for a in added), added


def test_save_load_round_trips_every_argument(stage, review_vectors, tmp_path):
    make, fit, roundtrip = stage
    est = fit(make(), *review_vectors)
    loaded = roundtrip(est, tmp_path)
    assert loaded.get_params() == est.get_params()


def test_loaded_stages_give_the_same_answers(review_vectors, tmp_path):
    tokens, vecs = review_vectors
    clusterer = TopicClusterer(min_topic_size=10, seed=3).fit(vecs)
    again = _roundtrip_clusterer(clusterer, tmp_path)
    assert np.array_equal(again.predict(vecs), clusterer.predict(vecs))
    index = VectorIndex(flat_threshold=50, nprobe=4).fit(vecs)       # IVF from 50 rows
    loaded = _roundtrip_index(index, tmp_path)
    assert loaded.factory_.startswith("IVF") and loaded.nprobe == 4
    assert np.array_equal(loaded.search(vecs[:5], 3)[1], index.search(vecs[:5], 3)[1])
