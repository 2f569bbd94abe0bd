import numpy as np

from miner.topics.index import VectorIndex, choose_factory


def _clustered(n, d=32, centers=50, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    X = c[rng.integers(0, centers, n)] + 0.3 * rng.normal(size=(n, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_factory_chosen_by_size():
    assert choose_factory(5_000) == "Flat"
    assert choose_factory(1_000_000).startswith("IVF")


def test_flat_search_is_exact_cosine(review_vectors):
    _, X = review_vectors
    idx = VectorIndex().fit(X)
    Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-9)
    scores, ids = idx.search(Xn[:3], k=5)
    # reviews repeat (e.g. "不错"), so compare scores, not ids, against brute force
    brute = -np.sort(-(Xn[:3] @ Xn.T), axis=1)[:, :5]
    assert np.allclose(scores, brute, atol=1e-5)
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert all(np.isclose(Xn[q] @ Xn[ids[q, 0]], 1.0, atol=1e-5) for q in range(3))


def test_ivf_recall_against_exact():
    X = _clustered(20_000)
    Q = _clustered(200, seed=1)
    exact = VectorIndex(factory="Flat").fit(X)
    ivf = VectorIndex(factory="IVF128,Flat", nprobe=16).fit(X)
    _, gt = exact.search(Q, 10)
    _, got = ivf.search(Q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(gt, got)])
    assert recall >= 0.9, recall


def test_save_load_round_trip(tmp_path, review_vectors):
    _, X = review_vectors
    idx = VectorIndex().fit(X)
    idx.save(tmp_path / "n.faiss")
    back = VectorIndex.load(tmp_path / "n.faiss")
    assert back.factory_ == "Flat" and back.ntotal == len(X)
    assert np.array_equal(back.search(X[:4], 3)[1], idx.search(X[:4], 3)[1])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_blockwise_fit_equals_one_block(monkeypatch):
    import miner.topics.blocks as blocks_module
    X = _clustered(3_000) * 3.0                                     # not unit length: fit normalises
    Q = _clustered(50, seed=1)
    one = VectorIndex(factory="IVF16,Flat", nprobe=4).fit(X)
    monkeypatch.setattr(blocks_module, "CHUNK_ROWS", 256)
    blocks = VectorIndex(factory="IVF16,Flat", nprobe=4).fit(X)
    assert blocks.ntotal == len(X)
    for a, b in zip(one.search(Q, 10), blocks.search(Q, 10)):
        np.testing.assert_array_equal(a, b)
