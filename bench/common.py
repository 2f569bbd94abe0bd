"""Shared bench helpers: labelled datasets, fixed-seed samples, cached embeddings, run metadata.

Datasets come from ``/work/shared/datasets`` (override with ``MINER_DATASETS_DIR``); each loader
returns a DataFrame with ``text`` and ``label`` columns. Embeddings go through the project's own
``miner.topics.embed.cached_encode`` with an on-disk cache under ``bench/out/cache/embeddings`` (git-ignored),
so a re-run only pays for the clustering.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:          # `python bench/quality.py` from the repo root
    sys.path.insert(0, str(REPO_ROOT))

OUT_DIR = BENCH_DIR / "out"
CACHE_DIR = OUT_DIR / "cache" / "embeddings"
DATASETS_DIR = Path(os.environ.get("MINER_DATASETS_DIR", "/work/shared/datasets"))
MERGED_STOPWORDS = DATASETS_DIR / "chinese-stopwords" / "merged_stopwords.txt"


@dataclass(frozen=True)
class Dataset:
    name: str
    label_column: str
    floor_nmi: float          # TF-IDF + KMeans NMI from the dataset's PROVENANCE.md (10k sample)
    loader: Callable[[], pd.DataFrame]


def _online_shopping() -> pd.DataFrame:
    df = pd.read_csv(DATASETS_DIR / "online-shopping-10cats" / "online_shopping_10_cats.csv")
    text = df["review"].fillna("").astype(str).str.replace("\ufeff", "", regex=False).str.strip()
    return pd.DataFrame({"text": text, "label": df["cat"].astype(str)})


def _nlpcc() -> pd.DataFrame:
    df = pd.read_csv(DATASETS_DIR / "nlpcc2017-news-headlines" / "nlpcc2017_headlines_test_full.csv")
    return pd.DataFrame({"text": df["text"].fillna("").astype(str).str.strip(), "label": df["label"].astype(str)})


def _bilibili() -> pd.DataFrame:
    # one row per video (last snapshot); text = title + desc, as in the PROVENANCE baseline ("-" = no desc)
    df = pd.read_csv(DATASETS_DIR / "bilibili-popular" / "bilibili_popular_videos_latest.csv")
    desc = df["desc"].fillna("").astype(str).str.strip().replace("-", "")
    text = (df["title"].fillna("").astype(str).str.strip() + "\n" + desc).str.strip()
    return pd.DataFrame({"text": text, "label": df["main_zone"].astype(str)})


DATASETS: dict[str, Dataset] = {
    "online-shopping": Dataset("online-shopping", "cat", 0.408, _online_shopping),
    "nlpcc": Dataset("nlpcc", "label", 0.125, _nlpcc),
    "bilibili": Dataset("bilibili", "main_zone", 0.084, _bilibili),
}


def load_sample(name: str, n: int, seed: int) -> pd.DataFrame:
    """A fixed-seed uniform sample of ``n`` non-empty, de-duplicated texts (all of them if fewer)."""
    df = DATASETS[name].loader()
    df = df[df["text"].str.len() > 0].drop_duplicates("text").reset_index(drop=True)
    if n and len(df) > n:
        rng = np.random.default_rng(seed)
        df = df.iloc[np.sort(rng.choice(len(df), n, replace=False))].reset_index(drop=True)
    return df


def get_bench_embedder():
    from miner.config import MinerConfig
    from miner.topics.embed import get_embedder
    return get_embedder(MinerConfig.load())


def embed_texts(texts: list[str], embedder=None, show_progress: bool = True) -> tuple[np.ndarray, dict]:
    """Embeddings for ``texts`` through the project's disk cache; returns (float32 L2-normalised, stats)."""
    from miner.topics.cluster import as_float32_normalized
    from miner.topics.embed import EmbeddingCache, cached_encode
    embedder = embedder or get_bench_embedder()
    cache = EmbeddingCache(CACHE_DIR)
    started = time.perf_counter()
    vectors = cached_encode(embedder, list(texts), cache, show_progress=show_progress)
    stats = {"hits": cache.last_stats.hits, "misses": cache.last_stats.misses}
    stats["seconds"] = time.perf_counter() - started
    return as_float32_normalized(vectors), stats


def run_info(argv: list[str] | None = None) -> dict:
    """Date, machine and command of this run, for the printed report."""
    cpu = platform.processor() or ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"nproc={os.cpu_count()}, CPU={cpu or 'unknown'}, python {platform.python_version()}",
        "command": "python " + " ".join(argv if argv is not None else sys.argv),
        "load": load_average(),
    }


def load_average() -> str:
    """1/5/15-minute load average: on a shared machine, other jobs inflate wall-clock timings."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def library_versions() -> str:
    import importlib.metadata as md
    names = ["faiss-cpu", "scikit-learn", "numpy", "jieba", "torch", "sentence-transformers",
             "bertopic", "umap-learn", "hdbscan"]
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(parts)


def print_header(title: str, info: dict) -> None:
    print(f"# {title}")
    print(f"date: {info['date']}")
    print(f"machine: {info['machine']}")
    print(f"command: {info['command']}")
    print(f"libraries: {library_versions()}")
    print(f"load average at start (1/5/15 min): {info['load']}")


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def small_real_workspace(root: Path, n_notes: int, repo: Path = REPO_ROOT):
    """A workspace under ``root`` holding a real build (default embedder) of ``n_notes`` demo notes
    spread over the categories; built on the first call only. Returns ``(config, env, built)``,
    ``env`` being the ``MINER_*`` variables that point an app at it."""
    from miner.config import MinerConfig
    from miner.topics.embed import get_embedder
    from miner.topics.pipeline import build_topics
    from miner.topics.snapshot import latest_run_id
    model = MinerConfig().embedding_model
    config = MinerConfig(models_dir=root / "models", workspace_dir=root / "workspace", embedding_model=model)
    built = latest_run_id(config) is None
    if built:
        notes = pd.read_parquet(repo / "data" / "demo" / "notes.parquet")
        notes = notes.groupby("category", sort=False).head(max(1, n_notes // 90)).head(n_notes)
        build_topics(config, notes, embedder=get_embedder(model), show_progress=False, run_id="real")
    env = {"MINER_MODELS_DIR": str(config.models_dir), "MINER_WORKSPACE_DIR": str(config.workspace_dir),
           "MINER_EMBEDDING_MODEL": str(model)}
    return config, env, built


def replace_results_section(heading: str, lines: list[str], path: Path | None = None) -> None:
    """Drop the section of ``bench/RESULTS.md`` starting with ``heading`` (up to the next ``## ``)
    and append ``lines`` as its new version."""
    path = path or REPO_ROOT / "bench" / "RESULTS.md"
    text = path.read_text(encoding="utf-8")
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + 3)
        text = text[:start] + text[end + 1:] if end >= 0 else text[:start]
    path.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines), encoding="utf-8")
