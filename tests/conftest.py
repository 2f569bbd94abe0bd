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


# ---- a small app workspace whose user text is Markdown/HTML (tests/test_auth.py, test_no_markdown_injection.py)
PAYLOADS = ("![x](http://127.0.0.1:9/p.png)", "[link](http://evil)", "<img src=x onerror=alert(1)>", "**bold**")


@pytest.fixture(scope="session")
def payloads() -> tuple[str, ...]:
    return PAYLOADS


@pytest.fixture(scope="session")
def payload_workspace_root(tmp_path_factory) -> Path:
    """90 of the user's own notes (one per demo category, no simulated audience) whose titles, tags and
    categories and — set after the build, as a curator would — topic labels and keywords carry
    Markdown/HTML payloads."""
    from miner.config import MinerConfig
    from miner.ingest import ingest_file, load_notes
    from miner.schema import NOTES
    from miner.topics.pipeline import build_topics
    from miner.topics.snapshot import latest_run_id

    root = tmp_path_factory.mktemp("payload-workspace")
    notes = pd.read_parquet(Path(__file__).parent.parent / "data" / "demo" / "notes.parquet")
    notes = notes.groupby("category", sort=False).head(1).reset_index(drop=True)
    notes["note_id"] = "own_" + notes["note_id"].astype(str)
    notes["title"] = [f"{PAYLOADS[i % 4]} {t}" for i, t in enumerate(notes["title"])]
    notes["category"] = [f"{c}{PAYLOADS[i % 4]}" for i, c in enumerate(notes["category"])]
    notes["tags"] = [[PAYLOADS[i % 4], *list(t)[:2]] for i, t in enumerate(notes["tags"])]
    notes.to_parquet(root / "payload.parquet", index=False)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in payload_workspace_env(root).items():
            mp.setenv(key, value)
        config = MinerConfig.load()
        ingest_file(root / "payload.parquet", NOTES, config)
        build_topics(config, load_notes(config), show_progress=False)
        topics_path = Path(config.snapshots_dir) / latest_run_id(config) / "topics.parquet"
    topics = pd.read_parquet(topics_path)
    topics["label"] = [f"{PAYLOADS[i % 4]} {label} {' '.join(PAYLOADS)}" for i, label in enumerate(topics["label"])]
    topics["keywords"] = [[PAYLOADS[i % 4], *list(k)[1:]] for i, k in enumerate(topics["keywords"])]
    topics.to_parquet(topics_path, index=False)
    return root


def payload_workspace_env(root: Path) -> dict[str, str]:
    return {"MINER_MODELS_DIR": str(root / "models"), "MINER_WORKSPACE_DIR": str(root / "workspace"),
            "MINER_EMBEDDING_MODEL": "hashing", "MINER_N_TOPICS": "6"}


@pytest.fixture
def payload_workspace(payload_workspace_root, monkeypatch):
    """The payload workspace's MINER_* variables, set for this test only; no accounts configured."""
    from miner.config import MinerConfig
    for key, value in payload_workspace_env(payload_workspace_root).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MINER_APP_PASSWORD", raising=False)
    monkeypatch.setenv("MINER_AUTH_FILE", "")
    monkeypatch.setenv("HOME", str(payload_workspace_root / "home"))      # no ~/.config/topic-miner/auth.yaml
    return MinerConfig.load()
