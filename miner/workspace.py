"""Application services: the one place where workflows live, called by the CLI and the app alike.

A :class:`Workspace` wraps one :class:`~miner.config.MinerConfig` (a DuckDB store, a models folder)
and offers what a front end needs: prepare the demo, ingest any table, build topics, load the
serving snapshot, compute metric tables when their inputs exist, predict, search and write briefs.
It returns reports, tables and dataclasses and never prints; the CLI prints them, the app renders
them.

Rules kept here so that the front ends cannot disagree:

* simulated audience tables only ever enter the **demo** workspace (every stored note comes from
  the demo corpus); a user's workspace that lacks audience tables gets ``None`` metrics and a
  :class:`MissingTablesError` where a table is required;
* queries are segmented with the configured dictionaries and stopwords
  (:func:`miner.topics.segment.make_segmenter`).
"""
from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from miner.config import MinerConfig
from miner.schema import INPUT_SCHEMAS, NOTE_ID
from miner.store import table_names

ProgressFn = Callable[[str, float], None]

# Tables the audience views read; the demo gets them simulated together when any is missing.
AUDIENCE_TABLES = ("audience", "engagements", "aips_stages", "orders")
SIMULATED_FILES = {"engagements": "engagements", "audience": "audience", "aips": "aips_stages",
                   "orders": "orders", "spend": "spend"}
TABLE_NAMES_ZH = {
    "notes": "笔记 notes",
    "engagements": "互动行为 engagements",
    "audience": "用户画像 audience",
    "aips_stages": "AIPS 人群资产 aips_stages",
    "orders": "订单回流 orders",
    "spend": "投放花费 spend",
}


class MissingTablesError(LookupError):
    """A view needs workspace tables that were never ingested."""

    def __init__(self, tables: list[str]):
        self.tables = list(tables)
        super().__init__(f"工作区缺少数据表 {', '.join(self.tables)} (workspace lacks these tables); "
                         f"导入 ingest them with `python -m miner ingest FILE --table NAME` "
                         f"or the app's 数据管理 page")


@dataclass
class BuildOutcome:
    """What :meth:`Workspace.build` did: the ingests it ran first, then the build itself."""

    ingests: list = field(default_factory=list)      # IngestReport objects
    notices: list[str] = field(default_factory=list)
    result: object = None                            # miner.topics.pipeline.BuildResult

    def lines(self) -> list[str]:
        return [*self.notices, *(r.summary() for r in self.ingests), self.result.summary()]


def _scaled(report: ProgressFn, lo: float, hi: float) -> ProgressFn:
    return lambda stage, frac: report(stage, lo + (hi - lo) * max(0.0, min(1.0, frac)))


class Workspace:
    """Services over one workspace (its store, snapshots and config); see the module docstring."""

    def __init__(self, config: MinerConfig | None = None):
        self.config = config or MinerConfig.load()

    @classmethod
    def open(cls, config: MinerConfig | None = None) -> "Workspace":
        """The workspace, after removing what crashed processes left (old uploads, dead builds)."""
        from miner.topics.snapshot import remove_stale_builds
        from miner.uploads import remove_stale_uploads
        workspace = cls(config)
        remove_stale_uploads(workspace.config.workspace_dir)
        if Path(workspace.config.snapshots_dir).exists():
            remove_stale_builds(workspace.config.snapshots_dir)
        return workspace

    # ---- paths ---------------------------------------------------------------------------------
    @property
    def demo_notes_path(self) -> Path:
        return self.config.demo_dir / "notes.parquet"

    @property
    def simulated_dir(self) -> Path:
        return self.config.demo_dir / "simulated"

    # ---- state ---------------------------------------------------------------------------------
    def store(self, read_only: bool = False):
        from miner.store import Store
        return Store(self.config.db_path, read_only=read_only)

    def has_table(self, name: str) -> bool:
        return self.store().has_table(name)

    def missing_tables(self, names=AUDIENCE_TABLES) -> list[str]:
        if not Path(self.config.db_path).exists():
            return list(names)
        from miner.store import table_names
        with self.store(read_only=True).connect() as con:     # one connection, not one per table
            present = table_names(con)
        return [n for n in names if n not in present]

    def latest_run_id(self) -> str | None:
        from miner.topics.snapshot import latest_run_id
        return latest_run_id(self.config)

    def is_demo(self) -> bool:
        """True when every stored note comes from the demo corpus (so simulated audiences fit)."""
        if not self.demo_notes_path.exists() or not self.has_table("notes"):
            return False
        with self.store(read_only=True).connect() as con:
            stored = {r[0] for r in con.execute(f"SELECT DISTINCT {NOTE_ID} FROM notes").fetchall()}
        demo = set(pd.read_parquet(self.demo_notes_path, columns=[NOTE_ID])[NOTE_ID].astype(str))
        return bool(stored) and stored <= demo

    def needs_preparation(self) -> bool:
        """No snapshot to serve yet, or a demo workspace without its simulated audience tables."""
        if self.latest_run_id() is None:
            return True
        return bool(self.missing_tables()) and self.is_demo()

    def table_counts(self) -> pd.DataFrame:
        """Rows per input table (0 when missing)."""
        counts = {name: 0 for name in TABLE_NAMES_ZH}
        if Path(self.config.db_path).exists():
            with self.store(read_only=True).connect() as con:
                have = table_names(con)
                for name in counts:
                    if name in have:
                        counts[name] = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        return pd.DataFrame({"表 table": [TABLE_NAMES_ZH[n] for n in counts], "行数 rows": list(counts.values())})

    def snapshot_catalog(self) -> pd.DataFrame:
        """Every snapshot with its stamp (from its config.json), newest first."""
        from miner.topics.snapshot import snapshot_catalog
        return snapshot_catalog(self.config)

    # ---- ingest --------------------------------------------------------------------------------
    def ingest(self, path, table: str = "notes", mode: str = "upsert", column_map: dict | None = None,
               _demo_data: bool = False):
        """Validate and store one file into ``table`` (``column_map``: file header → schema column,
        else the detected preset); returns its IngestReport."""
        from miner.ingest import ingest_file
        if table not in INPUT_SCHEMAS:
            raise ValueError(f"unknown table {table!r}; choose one of {sorted(INPUT_SCHEMAS)}")
        # The public demo salt is accepted only for the simulated demo people (never for real ids).
        return ingest_file(path, INPUT_SCHEMAS[table], self.config, mode=mode, column_map=column_map or None,
                           allow_public_salt=_demo_data)

    @contextmanager
    def _uploaded(self, filename: str, data: bytes):
        """The uploaded bytes as a file in a private temp folder, removed on every path."""
        from miner.uploads import UPLOAD_PREFIX, safe_filename, uploads_root
        root = uploads_root(self.config.workspace_dir)
        root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=root))
        try:
            path = folder / safe_filename(filename)
            path.write_bytes(data)
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def ingest_upload(self, filename: str, data: bytes, table: str, mode: str = "upsert",
                      column_map: dict | None = None):
        """Ingest uploaded bytes (see :meth:`ingest`)."""
        with self._uploaded(filename, data) as path:
            return self.ingest(path, table, mode, column_map=column_map)

    def upload_columns(self, filename: str, data: bytes, table: str) -> tuple[list[str], dict[str, str]]:
        """The uploaded file's headers and a proposed mapping onto ``table``'s columns (exact names,
        the detected export preset, near misses) for the app's column mapper."""
        from miner.ingest import iter_table_chunks, suggest_column_map
        if table not in INPUT_SCHEMAS:
            raise ValueError(f"unknown table {table!r}; choose one of {sorted(INPUT_SCHEMAS)}")
        with self._uploaded(filename, data) as path:
            chunks = iter_table_chunks(path, chunk_rows=50)
            first = next(chunks, None)
            chunks.close()
        headers = [] if first is None else [str(c) for c in first.columns]
        return headers, suggest_column_map(headers, table)

    def ingest_demo_notes(self):
        if not self.demo_notes_path.exists():
            raise FileNotFoundError(f"demo corpus missing: {self.demo_notes_path}; run `python data/build_demo.py`")
        return self.ingest(self.demo_notes_path, "notes", mode="replace")

    def ingest_tables(self, files: dict, replace: bool = False, _demo_data: bool = False) -> list:
        """Ingest ``{table: path}``; returns the reports in order."""
        mode = "replace" if replace else "upsert"
        return [self.ingest(path, table, mode, _demo_data=_demo_data) for table, path in files.items()]

    def simulated_files(self) -> dict[str, Path]:
        files = {table: self.simulated_dir / f"{table}.parquet" for table in SIMULATED_FILES.values()}
        missing = [str(p) for p in files.values() if not p.exists()]
        if missing:
            raise FileNotFoundError(f"simulated demo files missing ({', '.join(missing)}); "
                                    f"run `python -m miner simulate`")
        return files

    def ingest_simulated_audience(self) -> list:
        """Load the SIMULATED demo audience tables (simulating them first if their files are missing).

        Refused outside the demo workspace: simulated people never mix with a user's real notes.
        """
        if not self.is_demo():
            raise ValueError("模拟人群数据只用于演示工作区 simulated audience tables only enter the demo "
                             "workspace; ingest your own engagements/audience/orders files")
        try:
            files = self.simulated_files()
        except FileNotFoundError:
            from miner.simulate import simulate, write_simulated
            with tempfile.TemporaryDirectory(prefix="miner-sim-") as tmp:
                paths = write_simulated(simulate(self.notes(), seed=self.config.seed), tmp)
                return self.ingest_tables(paths, replace=True, _demo_data=True)
        return self.ingest_tables(files, replace=True, _demo_data=True)

    def notes(self) -> pd.DataFrame:
        from miner.ingest import load_notes
        return load_notes(self.config)

    # ---- build ---------------------------------------------------------------------------------
    def build(self, input_path=None, demo: bool = False, limit: int | None = None, embedder=None,
              show_progress: bool = False, on_progress: ProgressFn | None = None,
              notes: pd.DataFrame | None = None) -> BuildOutcome:
        """Ingest ``input_path`` (or the demo corpus when asked or when no notes exist), then mine
        topics from the stored notes (or the ``notes`` given) and write a snapshot; ``latest`` moves
        only when the build succeeds."""
        from miner.topics.pipeline import build_topics
        outcome = BuildOutcome()
        if notes is not None:
            pass
        elif input_path:
            outcome.ingests.append(self.ingest(input_path, "notes"))
        elif demo or not self.has_table("notes"):
            outcome.notices.append(f"使用演示语料 using demo corpus {self.demo_notes_path.name}")
            outcome.ingests.append(self.ingest_demo_notes())
        with self._stored_notes(notes) as notes:
            if limit:
                notes = notes.head(limit)
            outcome.result = build_topics(self.config, notes, embedder=embedder, show_progress=show_progress,
                                          on_progress=on_progress)
        return outcome

    @contextmanager
    def _stored_notes(self, notes: pd.DataFrame | None):
        """``notes`` when given, else the stored notes memory-mapped from an Arrow file in a build
        scratch folder (texts never held as Python strings; see :mod:`miner.ingest.notes_file`)."""
        if notes is not None:
            yield notes
            return
        from miner.ingest.notes_file import export_notes_file, open_notes_file
        from miner.topics.pipeline import scratch_dir
        folder = scratch_dir(self.config)
        try:
            yield open_notes_file(export_notes_file(self.config, folder / "notes.arrow"), self.config)
        finally:
            shutil.rmtree(folder, ignore_errors=True)      # the mapping outlives the file (POSIX)

    def update(self, input_path=None, embedder=None, show_progress: bool = False) -> BuildOutcome:
        """Daily update without a rebuild: ingest ``input_path`` (if given), then add every stored
        note the serving snapshot lacks to the existing topics (only those are embedded), refresh
        the counts of the others, and give persistent dense groups of new notes an emerging id
        (:func:`miner.topics.update.update_topics`)."""
        from miner.topics.update import update_topics
        outcome = BuildOutcome()
        if input_path:
            outcome.ingests.append(self.ingest(input_path, "notes"))
        outcome.result = update_topics(self.config, self.notes(), embedder=embedder, show_progress=show_progress)
        return outcome

    # ---- curation (rename / merge / split / hide / pin, audited; see miner.topics.curation) -----------
    def rename_topic(self, topic_id: int, name: str, actor: str) -> dict:
        from miner.topics.curation import rename_topic
        return rename_topic(self.config, topic_id, name, actor)

    def merge_topics(self, source_ids, target_id: int, actor: str) -> dict:
        from miner.topics.curation import merge_topics
        return merge_topics(self.config, source_ids, target_id, actor)

    def split_topic(self, topic_id: int, actor: str, keyword: str | None = None, note_ids=None,
                    name: str | None = None) -> int:
        from miner.topics.curation import split_topic
        return split_topic(self.config, topic_id, actor, keyword=keyword, note_ids=note_ids, name=name)

    def hide_topic(self, topic_id: int, actor: str, hidden: bool = True) -> dict:
        from miner.topics.curation import hide_topic
        return hide_topic(self.config, topic_id, actor, hidden=hidden)

    def pin_topic(self, topic_id: int, actor: str, pinned: bool = True) -> dict:
        from miner.topics.curation import pin_topic
        return pin_topic(self.config, topic_id, actor, pinned=pinned)

    def topic_history(self, topic_id: int) -> pd.DataFrame:
        from miner.topics.registry import topic_history
        return topic_history(self.config, topic_id)

    def audit_log(self, topic_id: int | None = None) -> pd.DataFrame:
        from miner.topics.registry import audit_log
        return audit_log(self.config, topic_id)

    def topic_flags(self, new_within_days: int = 7) -> pd.DataFrame:
        from miner.topics.registry import topic_flags
        return topic_flags(self.config, new_within_days)

    def prepare(self, on_progress: ProgressFn | None = None, embedder=None) -> list[str]:
        """First start: build what is missing (notes → snapshot → simulated demo audiences)."""
        report = on_progress or (lambda stage, frac: None)
        done: list[str] = []
        if self.latest_run_id() is None:
            report("导入笔记 loading notes", 0.0)
            outcome = self.build(demo=not self.has_table("notes"), embedder=embedder,
                                 on_progress=_scaled(report, 0.05, 0.8))
            done.extend(outcome.lines())
        if self.missing_tables() and self.is_demo():
            report("导入模拟人群数据 ingesting SIMULATED audience tables", 0.85)
            done.extend(r.summary() for r in self.ingest_simulated_audience())
        report("完成 done", 1.0)
        return done

    # ---- serving snapshot ------------------------------------------------------------------------
    def snapshot(self, run_id: str | None = None):
        from miner.topics.snapshot import load_snapshot
        return load_snapshot(self.config, run_id)

    def predict(self, texts: list[str], run_id: str | None = None, snapshot=None) -> pd.DataFrame:
        from miner.topics.pipeline import predict_texts
        return predict_texts(snapshot or self.snapshot(run_id), texts)

    def segmenter(self, n_jobs: int = 1):
        """The query/notes segmenter with the configured dictionaries and stopwords."""
        from miner.topics.segment import make_segmenter
        return make_segmenter(self.config, n_jobs=n_jobs)

    def searcher(self, snapshot, embedder=None, segmenter=None):
        """A fitted :class:`~miner.insights.search.TopicSearcher` using the configured segmenter
        (or ``segmenter``, one made by :meth:`segmenter`, e.g. already loaded)."""
        from miner.insights.search import TopicSearcher
        from miner.topics.embed import snapshot_embedder
        embedder = embedder or snapshot_embedder(snapshot.meta["embedding"])
        return TopicSearcher(embedder=embedder, segmenter=segmenter or self.segmenter()).fit(snapshot)

    # ---- insights --------------------------------------------------------------------------------
    def trend_table(self, snapshot, freq: str = "D", today=None, include_hidden: bool = False) -> pd.DataFrame:
        """Per-topic trends; topics hidden on 话题管理 are left out unless ``include_hidden``."""
        from miner.insights.opportunity import without_hidden
        from miner.insights.trends import trend_table
        table = trend_table(snapshot.notes, snapshot.assignments, snapshot.topics, freq=freq, today=today)
        return table if include_hidden else without_hidden(table, snapshot.topics)

    def audience_tables_ready(self, needs=("engagements", "audience")) -> bool:
        """True when the tables exist; loads the simulated ones first in the demo workspace only."""
        if not self.missing_tables(needs):
            return True
        if self.is_demo():
            self.ingest_simulated_audience()
            return not self.missing_tables(needs)
        return False

    def topic_metrics(self, snapshot, segment=None, window=None, previous_window=None, brand=None,
                      attribution_days: int | None = None, k: int | None = None) -> pd.DataFrame:
        """Per-topic penetration, AIPS flow and order value; :class:`MissingTablesError` when the
        workspace lacks the audience tables (a user workspace never gets simulated ones)."""
        from miner.insights.audience import topic_metrics_table
        if not self.audience_tables_ready(AUDIENCE_TABLES):
            raise MissingTablesError(self.missing_tables(AUDIENCE_TABLES))
        with self.store(read_only=True).connect() as con:
            return topic_metrics_table(
                con, snapshot.assignments, topics=snapshot.topics, notes=snapshot.notes, segment=segment,
                window=window, previous_window=previous_window, brand=brand,
                attribution_days=self.config.attribution_days if attribution_days is None else attribution_days,
                k=self.config.k_anonymity if k is None else k)

    def segment_metrics(self, snapshot, segment=None, window=None) -> pd.DataFrame | None:
        """Segment metrics for opportunity and briefs, or None when audience tables are missing."""
        from miner.insights.opportunity import segment_metrics
        if not self.audience_tables_ready():
            return None
        with self.store(read_only=True).connect() as con:
            return segment_metrics(con, snapshot, segment=segment, window=window, k=self.config.k_anonymity,
                                   attribution_days=self.config.attribution_days)

    def opportunity(self, snapshot, segment=None, node: str | None = None,
                    include_hidden: bool = False) -> pd.DataFrame:
        """Topics ranked by opportunity; hidden ones left out (ranks renumbered) unless ``include_hidden``."""
        from miner.insights.opportunity import snapshot_opportunity, without_hidden
        metrics = self.segment_metrics(snapshot, segment) if segment else None
        table = snapshot_opportunity(snapshot, metrics=metrics, node=node)
        return table if include_hidden else without_hidden(table, snapshot.topics)

    def brief(self, snapshot, topic_id: int, segment=None, node: str | None = None, today=None,
              polish: bool = False):
        """A :class:`~miner.insights.briefs.ContentBrief` (with scorecard and TGI when the audience
        tables exist); the optional LLM polish is off by default."""
        from miner.insights.briefs import build_brief
        metrics = self.segment_metrics(snapshot, segment) if segment else None
        options = dict(segment=segment, node=node, metrics=metrics, today=today, polish=polish,
                       k=self.config.k_anonymity)
        if not self.audience_tables_ready():
            return build_brief(snapshot, topic_id, **options)
        with self.store(read_only=True).connect() as con:
            return build_brief(snapshot, topic_id, con=con, **options)

    def scorecard(self, snapshot, segment=None, today=None) -> pd.DataFrame:
        """极光-style scorecard (one row per topic × metric); notes-only metrics without audience data."""
        from miner.insights.scorecard import topic_scorecard
        metrics = self.segment_metrics(snapshot, segment) if segment else None
        if not self.audience_tables_ready(("engagements",)):
            return topic_scorecard(snapshot, metrics=metrics, today=today, k=self.config.k_anonymity)
        with self.store(read_only=True).connect() as con:
            return topic_scorecard(snapshot, metrics=metrics, con=con, today=today, k=self.config.k_anonymity)

    def tgi(self, snapshot, topic_ids=None) -> pd.DataFrame:
        """人群纠偏: audience cells ranked by TGI per topic (k-anonymous); MissingTablesError without data."""
        from miner.insights.tgi import topic_tgi
        if not self.audience_tables_ready():
            raise MissingTablesError(self.missing_tables(("engagements", "audience")))
        with self.store(read_only=True).connect() as con:
            return topic_tgi(con, snapshot.assignments, topic_ids=topic_ids, k=self.config.k_anonymity,
                             attribution_days=self.config.attribution_days)
