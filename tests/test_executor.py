"""Executors for segmentation + embedding: partitions, CLI flags, local = direct, Ray = in-process."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miner.config import MinerConfig
from miner.topics.embed import EmbeddingCache, HashingEmbedder, cached_encode
from miner.topics.executor import ExecutorError, LocalExecutor, make_executor, partitions
from miner.topics.segment import make_segmenter

NLPCC_CSV = Path("/work/shared/datasets/nlpcc2017-news-headlines/nlpcc2017_headlines_test_full.csv")


def real_texts(n: int) -> list[str]:
    if not NLPCC_CSV.exists():
        pytest.skip(f"dataset missing: {NLPCC_CSV}")
    raw = pd.read_csv(NLPCC_CSV).dropna(subset=["text"])
    texts = raw["text"].astype(str).str.strip()
    return texts[texts.str.len() > 0].drop_duplicates().head(n).tolist()


@pytest.mark.parametrize("n,size", [(0, 4), (1, 4), (7, 3), (64, 64), (65, 64), (300, 64)])
def test_partitions_cover_range_in_order(n, size):
    parts = partitions(n, size)
    flat = [i for a, b in parts for i in range(a, b)]
    assert flat == list(range(n))
    assert all(0 < b - a <= size for a, b in parts)


def test_cli_parses_executor_flags():
    from miner.cli import build_parser
    from miner.cli.core import executor_overrides
    args = build_parser().parse_args(["build", "--executor", "ray", "--ray-address", "10.0.0.1:6379",
                                      "--ray-workers", "2"])
    assert executor_overrides(args) == {"executor": "ray", "ray_address": "10.0.0.1:6379", "ray_workers": 2}
    args = build_parser().parse_args(["update", "--ray-address", "head:6379"])
    assert executor_overrides(args)["executor"] == "ray"          # an address implies Ray
    args = build_parser().parse_args(["build"])
    config = MinerConfig().with_overrides(**executor_overrides(args))
    assert config.executor == "local" and config.ray_address is None and config.ray_workers is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["build", "--executor", "dask"])


def test_config_reads_executor_from_environment(monkeypatch):
    monkeypatch.setenv("MINER_EXECUTOR", "ray")
    monkeypatch.setenv("MINER_RAY_WORKERS", "3")
    config = MinerConfig.load()
    assert config.executor == "ray" and config.ray_workers == 3 and config.ray_address is None


def test_unknown_executor_is_a_user_error():
    with pytest.raises(ExecutorError, match="unknown executor"):
        make_executor(MinerConfig(executor="dask"))


def test_local_executor_equals_direct_encode_and_segment(tmp_path):
    texts = real_texts(120)
    config = MinerConfig(embedding_model="hashing", models_dir=tmp_path)
    embedder = HashingEmbedder()
    with make_executor(config) as executor:
        assert isinstance(executor, LocalExecutor)
        got = cached_encode(executor.embedder(embedder), texts, EmbeddingCache(tmp_path / "c"))
        tokens = executor.segment(texts)
    np.testing.assert_array_equal(got, embedder.encode(texts))
    assert tokens == make_segmenter(config, n_jobs=1).segment_many(texts)


def _notes(texts):
    n = len(texts)
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "note_id": [f"r{i:05d}" for i in range(n)], "title": [t[:20] for t in texts], "body": texts,
        "tags": [[] for _ in range(n)], "author_id": "a",
        "published_at": pd.Timestamp("2023-09-01", tz="Asia/Shanghai") + pd.to_timedelta(rng.integers(0, 720, n), "h"),
        "likes": rng.integers(0, 100, n), "collects": 0, "comments": 0, "shares": 0})


@pytest.mark.slow
@pytest.mark.parametrize("model", ["hashing", "default"])
def test_ray_two_workers_equal_in_process(tmp_path, model):
    """A real local 2-worker Ray cluster gives the in-process vectors, tokens and topics."""
    from miner.topics.embed import get_embedder
    from miner.topics.pipeline import build_topics
    from miner.topics.snapshot import load_snapshot

    texts = real_texts(300)
    name = "hashing" if model == "hashing" else MinerConfig().embedding_model
    results = {}
    for kind in ("local", "ray"):
        root = tmp_path / kind          # separate caches: the Ray run really embeds every note
        config = MinerConfig(models_dir=root / "models", workspace_dir=root / "ws", embedding_model=name,
                             n_topics=8, min_topic_size=5, executor=kind, ray_workers=2)
        result = build_topics(config, _notes(texts), embedder=get_embedder(config), show_progress=False)
        assert result.embedded_new == len(texts)
        snap = load_snapshot(config, result.run_id)
        results[kind] = snap
    local, ray_ = results["local"], results["ray"]
    np.testing.assert_allclose(ray_.embeddings, local.embeddings, atol=1e-4)
    assert list(ray_.notes["tokens"].map(list)) == list(local.notes["tokens"].map(list))
    a = local.assignments.sort_values("note_id")["topic_id"].to_numpy()
    b = ray_.assignments.sort_values("note_id")["topic_id"].to_numpy()
    np.testing.assert_array_equal(a, b)
    import ray
    assert not ray.is_initialized()          # the local cluster it started is shut down


def test_missing_ray_is_a_clear_user_error(monkeypatch):
    import sys
    from miner.topics.executor import RayExecutor
    monkeypatch.setitem(sys.modules, "ray", None)          # import ray → ImportError
    with pytest.raises(ExecutorError, match="未安装 Ray.*pip install ray==2.60.0"):
        RayExecutor(MinerConfig(executor="ray"))


def test_cli_maps_executor_errors_to_exit_2(monkeypatch, tmp_path, capsys):
    import sys
    from miner.cli import main
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setenv("MINER_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("MINER_WORKSPACE_DIR", str(tmp_path / "ws"))
    monkeypatch.setenv("MINER_EMBEDDING_MODEL", "hashing")
    assert main(["build", "--demo", "--limit", "50", "--executor", "ray"]) == 2
    assert "Ray is not installed" in capsys.readouterr().err
