"""Shared fixtures: small real slices of third-party data (see tests/data/README.md)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

TESTS_DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def reviews_4cats() -> pd.DataFrame:
    """240 real e-commerce reviews, 60 each of 洗发水/水果/手机/酒店 (online-shopping-10cats)."""
    return pd.read_csv(TESTS_DATA / "reviews_4cats.csv")


@pytest.fixture(scope="session")
def _review_vectors(reviews_4cats):
    """Lexical vectors of the reviews (jieba tokens → TF-IDF → SVD), a cheap stand-in for embeddings."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from miner.topics.segment import JiebaSegmenter
    tokens = JiebaSegmenter().segment_many(reviews_4cats["review"].tolist())
    tfidf = TfidfVectorizer(analyzer=lambda t: t, min_df=2).fit_transform(tokens)
    vecs = TruncatedSVD(48, random_state=0).fit_transform(tfidf).astype(np.float32)
    return tokens, vecs


@pytest.fixture
def review_vectors(_review_vectors):
    tokens, vecs = _review_vectors
    return [list(t) for t in tokens], vecs.copy()


@pytest.fixture
def review_notes(reviews_4cats) -> pd.DataFrame:
    """The reviews in the notes schema (body = review; times and counts are placeholders)."""
    n = len(reviews_4cats)
    return pd.DataFrame({
        "note_id": [f"r{i:03d}" for i in range(n)], "title": "", "body": reviews_4cats["review"],
        "tags": [[] for _ in range(n)], "author_id": [f"a{i % 7}" for i in range(n)],
        "published_at": pd.date_range("2023-09-01", periods=n, freq="h", tz="Asia/Shanghai"),
        "likes": 1, "collects": 0, "comments": 0, "shares": 0, "category": reviews_4cats["cat"]})


@pytest.fixture
def config(tmp_path):
    """A workspace in tmp_path with the hashing embedder (fast, lexical)."""
    from miner.config import MinerConfig
    return MinerConfig(models_dir=tmp_path / "models", workspace_dir=tmp_path / "ws",
                       embedding_model="hashing", min_topic_size=10)
