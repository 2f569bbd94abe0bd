import pytest
import numpy as np

from miner.topics import index as index_module
from miner.topics.index import MAX_NLIST, MAX_TRAIN_ROWS, VectorIndex, choose_factory, training_rows


def _clustered(n, d=32, centers=50, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    X = c[rng.integers(0, centers, n)] + 0.3 * rng.normal(size=(n, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_factory_chosen_by_size():
    assert choose_factory(5_000) == "Flat"
    assert choose_factory(1_000_000) == "IVF4096,Flat"
    assert choose_factory(10_000_000) == f"IVF{MAX_NLIST},Flat"       # 4·√n would be 16,384


def test_training_sample_stops_growing_with_the_corpus():
    assert training_rows(5_000, 128, seed=0) == slice(None)
    small, large = training_rows(1_000_000, 4096, 0), training_rows(10_000_000, MAX_NLIST, 0)
    assert len(small) == len(large) == MAX_TRAIN_ROWS
    assert np.all(np.diff(large) > 0) and large[-1] < 10_000_000      # sorted, distinct, in range


def test_ivf_trained_on_a_sample_keeps_recall_and_leaves_the_input_alone(monkeypatch):
    monkeypatch.setattr(index_module, "MAX_TRAIN_ROWS", 2_000)        # 20,000 rows: trained on 2,000
    X = _clustered(20_000) * 3.0                                      # not unit length: copied, not normalised in place
    before = X.copy()
    Q = _clustered(200, seed=1)
    _, gt = VectorIndex(factory="Flat").fit(X).search(Q, 10)
    _, got = VectorIndex(factory="IVF128,Flat", nprobe=16).fit(X).search(Q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(gt, got)])
    assert recall >= 0.9, recall
    assert np.array_equal(X, before)
    VectorIndex(factory="IVF64,Flat").fit(X[:4_000])                 # every row trained on: a copy too
    assert np.array_equal(X, before)


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


def _assert_same_hits(a: VectorIndex, b: VectorIndex, Q) -> None:
    for x, y in zip(a.search(Q, 10), b.search(Q, 10)):
        np.testing.assert_array_equal(x, y)


def test_lists_on_disk_give_the_same_hits_and_survive_the_build_folder(tmp_path, monkeypatch):
    import shutil
    import miner.topics.blocks as blocks_module
    monkeypatch.setattr(blocks_module, "CHUNK_ROWS", 1_000)        # several shards to merge
    X, Q = _clustered(5_000), _clustered(100, seed=1)
    in_ram = VectorIndex(factory="IVF32,Flat", nprobe=8).fit(X)
    on_disk = VectorIndex(factory="IVF32,Flat", nprobe=8).fit(X, lists_dir=tmp_path / "build")
    assert in_ram.lists_file is None
    assert on_disk.lists_file.parent == tmp_path / "build" and on_disk.ntotal == len(X)
    assert [p.name for p in (tmp_path / "build").iterdir()] == [on_disk.lists_file.name]   # shards removed
    _assert_same_hits(in_ram, on_disk, Q)

    on_disk.save(tmp_path / "snap" / "notes.faiss")
    shutil.rmtree(tmp_path / "build")                               # the build's scratch folder goes
    back = VectorIndex.load(tmp_path / "snap" / "notes.faiss")
    assert back.lists_file == tmp_path / "snap" / "notes.faiss.ivfdata"
    _assert_same_hits(in_ram, back, Q)
    # the index file holds only the coarse quantizer; the vectors are in the lists file
    assert (tmp_path / "snap" / "notes.faiss").stat().st_size < X.nbytes / 10
    assert (tmp_path / "snap" / "notes.faiss.ivfdata").stat().st_size >= X.nbytes


def test_extending_an_index_on_disk_equals_extending_in_memory(tmp_path):
    X, Y, Q = _clustered(4_000), _clustered(700, seed=2), _clustered(100, seed=1)
    in_ram = VectorIndex(factory="IVF32,Flat", nprobe=8).fit(X)
    on_disk = VectorIndex(factory="IVF32,Flat", nprobe=8).fit(X, lists_dir=tmp_path / "a")
    on_disk.save(tmp_path / "snap" / "notes.faiss")
    served = VectorIndex.load(tmp_path / "snap" / "notes.faiss")
    bigger = served.extended(Y, lists_dir=tmp_path / "b")
    expected = in_ram.extended(Y)
    assert bigger.ntotal == expected.ntotal == len(X) + len(Y) and served.ntotal == len(X)
    assert bigger.lists_file.parent == tmp_path / "b"
    _assert_same_hits(expected, bigger, np.vstack([Q, Y[:50]]))
    _assert_same_hits(in_ram, served, Q)                           # the served index is unchanged
    with pytest.raises(ValueError, match="lists_dir"):
        served.extended(Y)


def test_a_served_index_on_disk_is_memory_mapped_not_read_into_memory(tmp_path):
    import subprocess
    import sys
    X = _clustered(60_000, d=128)                                  # 31 MB of vectors
    VectorIndex(factory="IVF64,Flat").fit(X, lists_dir=tmp_path / "a").save(tmp_path / "disk.faiss")
    VectorIndex(factory="IVF64,Flat").fit(X).save(tmp_path / "ram.faiss")
    probe = ("import sys\nfrom pathlib import Path\nfrom miner.topics.index import VectorIndex\n"
             "def private():\n"
             "    s = Path('/proc/self/status').read_text().splitlines()\n"
             "    return int(next(x for x in s if x.startswith('RssAnon')).split()[1]) * 1024\n"
             "before = private()\nindex = VectorIndex.load(sys.argv[1])\n"
             "index.search([[1.0] * 128], 5)\n"
             "print(private() - before)\n")
    grown = {name: int(subprocess.run([sys.executable, "-c", probe, str(tmp_path / f"{name}.faiss")],
                                      capture_output=True, text=True, check=True).stdout.split()[-1])
             for name in ("disk", "ram")}
    assert grown["ram"] > X.nbytes / 2                               # read into memory: the probe sees it
    assert grown["disk"] < X.nbytes / 4, grown                       # memory-mapped: page cache only
