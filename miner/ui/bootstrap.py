"""First start: make sure there is a snapshot to serve (and audience tables to measure against).

``streamlit run app.py`` must open on the demo with no setup, so when the workspace has no topic
snapshot yet, :func:`prepare_workspace` ingests the demo corpus (only when no notes were ingested)
and builds topics; when the workspace is the demo's and lacks the engagement/audience/order
tables, it ingests the SIMULATED demo tables (running the simulator if their files are missing).
A workspace holding the user's own notes never gets simulated audience data.

Everything goes through ordinary miner calls; this module only sequences them and maps their
progress onto one 0…1 bar. It does not import streamlit.
"""
from __future__ import annotations

import tempfile
from typing import Callable

import pandas as pd

from miner.config import MinerConfig
from miner.topics.snapshot import latest_run_id
from miner.schema import NOTE_ID

ProgressFn = Callable[[str, float], None]

# Tables the audience pages read; simulated together when any is missing.
AUDIENCE_TABLES = ("audience", "engagements", "aips_stages", "orders")


def missing_tables(config: MinerConfig, names=AUDIENCE_TABLES) -> list[str]:
    from miner.store import Store
    store = Store(config.db_path)
    return [n for n in names if not store.has_table(n)]


def is_demo_workspace(config: MinerConfig) -> bool:
    """True when every stored note comes from the demo corpus (so simulated audience data fits)."""
    import duckdb
    from miner.cli.core import DEMO_NOTES
    from miner.store import Store
    if not DEMO_NOTES.exists() or not Store(config.db_path).has_table("notes"):
        return False
    with duckdb.connect(str(config.db_path), read_only=True) as con:
        stored = {r[0] for r in con.execute("SELECT DISTINCT note_id FROM notes").fetchall()}
    demo = set(pd.read_parquet(DEMO_NOTES, columns=[NOTE_ID])[NOTE_ID].astype(str))
    return bool(stored) and stored <= demo


def needs_preparation(config: MinerConfig) -> bool:
    """True when there is no snapshot to serve, or when a demo workspace lacks its (simulated)
    audience tables. A workspace with the user's own notes never gets simulated audience data."""
    if latest_run_id(config) is None:
        return True
    return bool(missing_tables(config)) and is_demo_workspace(config)


def _scaled(report: ProgressFn, lo: float, hi: float) -> ProgressFn:
    return lambda stage, frac: report(stage, lo + (hi - lo) * max(0.0, min(1.0, frac)))


def prepare_workspace(config: MinerConfig, on_progress: ProgressFn | None = None, embedder=None) -> list[str]:
    """Build whatever is missing (notes → snapshot → simulated audience tables); return what was done."""
    from miner.cli.core import ensure_notes
    from miner.store import Store

    report = on_progress or (lambda stage, frac: None)
    done: list[str] = []
    if latest_run_id(config) is None:
        from miner.topics.pipeline import build_topics
        report("导入演示笔记 loading notes", 0.0)
        have_notes = Store(config.db_path).has_table("notes")
        notes = ensure_notes(config, demo=not have_notes)
        result = build_topics(config, notes, embedder=embedder, show_progress=False,
                              on_progress=_scaled(report, 0.05, 0.8))
        done.append(result.summary())
    if missing_tables(config) and is_demo_workspace(config):
        report("导入模拟人群数据 ingesting SIMULATED audience tables", 0.85)
        done.extend(r.summary() for r in _simulated_tables(config))
    report("完成 done", 1.0)
    return done


def _simulated_tables(config: MinerConfig) -> list:
    """Ingest the SIMULATED demo audience tables; simulate them first if the files are missing."""
    from miner.cli.audience import FILE_TABLES, SIMULATED_DIR, demo_files, ingest_audience_files
    if not all((SIMULATED_DIR / f"{t}.parquet").exists() for t in FILE_TABLES.values()):
        from miner.ingest import load_notes
        from miner.simulate import simulate, write_simulated
        with tempfile.TemporaryDirectory(prefix="miner-sim-") as tmp:
            paths = write_simulated(simulate(load_notes(config), seed=config.seed), tmp)
            return ingest_audience_files(paths, config, replace=True)
    return ingest_audience_files(demo_files(), config, replace=True)
