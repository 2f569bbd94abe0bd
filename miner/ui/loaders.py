"""Cached loaders: one place that decides what is computed once and what per rerun.

* ``st.cache_resource`` — the loaded snapshot, the embedder and the searcher: large, read-only,
  shared by every session.
  The notes table and the build-time daily aggregates are resources too (read-only: a
  cache_data hit pickles its value, which costs seconds for a million notes with their text).
* ``st.cache_data`` — small DataFrames derived from them (trend scores, audience metrics, the
  topic map, counts); each caller gets its own copy, so a page may mutate what it receives.

Every cached function is keyed by a :class:`Source` — the serving snapshot plus a stamp of the
workspace database — so a rebuild (new ``run_id``) or an ingest (new stamp) is picked up on the
next rerun without clearing anything by hand.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from miner import schema
from miner.config import MinerConfig
from miner.schema import ENGAGEMENT
from miner.store import table_names
from miner.topics.snapshot import latest_run_id, read_meta
from miner.workspace import Workspace


@dataclass(frozen=True)
class Source:
    """What cached tables depend on (hashable, cheap to build on every rerun)."""

    snapshots_dir: str
    run_id: str
    db_path: str
    db_stamp: int                 # mtime_ns of the workspace database; changes on every ingest
    k: int                        # k-anonymity threshold
    attribution_days: int
    timezone: str


def app_config() -> MinerConfig:
    """Config from ``MINER_CONFIG`` (a JSON file, optional) and ``MINER_*`` variables."""
    return MinerConfig.load(os.environ.get("MINER_CONFIG") or None)


def workspace(config: MinerConfig | None = None) -> Workspace:
    """The workspace service for this app (cheap: it holds only the config)."""
    return Workspace(config or app_config())


@st.cache_resource(show_spinner=False)
def open_workspace(workspace_dir: str, snapshots_dir: str) -> bool:
    """Once per server process and workspace: remove uploads and builds left by a crash."""
    Workspace.open(app_config())
    return True


def db_stamp(config: MinerConfig) -> int:
    paths = [config.db_path, Path(str(config.db_path) + ".wal")]
    return max((p.stat().st_mtime_ns for p in paths if p.exists()), default=0)


def current_source(config: MinerConfig, run_id: str | None = None) -> Source | None:
    run_id = run_id or latest_run_id(config)
    if run_id is None:
        return None
    return Source(str(config.snapshots_dir), run_id, str(config.db_path), db_stamp(config),
                  int(config.k_anonymity), int(config.attribution_days), config.timezone)


@st.cache_resource
def db_lock() -> threading.RLock:
    """One lock for the workspace database within this server process (DuckDB refuses a
    read-only and a read-write connection to the same file at the same time)."""
    return threading.RLock()


@st.cache_resource
def build_lock() -> threading.Lock:
    """At most one rebuild at a time in this server process."""
    return threading.Lock()


# ---- resources -----------------------------------------------------------------------------------
@st.cache_resource(max_entries=3, show_spinner="加载话题快照 Loading snapshot…")
def load_snapshot(snapshots_dir: str, run_id: str):
    from miner.topics.snapshot import load_snapshot as _load
    return _load(Path(snapshots_dir), run_id)


def snapshot(source: Source):
    return load_snapshot(source.snapshots_dir, source.run_id)


def _background(name: str, fn, *args):
    """A future of ``fn(*args)``, running in a daemon worker thread (returns at once)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    future = pool.submit(fn, *args)
    pool.shutdown(wait=False)
    return future


def _wait(future, message: str, *loaders):
    """The future's value; a spinner only while it is still running. A failed load is not cached
    (``loaders``: the cached functions whose futures it depends on; all are cleared)."""
    if not future.done():
        with st.spinner(message):
            wait([future])
    if future.exception() is not None:        # do not cache a failed load: the next call retries
        for loader in loaders:
            loader.clear()
        raise future.exception()
    return future.result()


def _loaded_embedder(model: str, max_seq_length: int | None):
    from miner.topics.embed import get_embedder
    embedder = get_embedder(model, max_seq_length)
    warm = getattr(embedder, "warm", None)           # ONNX: session first (it releases the GIL)
    if warm is not None:
        warm()
    else:                                            # torch / hashing: one encode loads everything
        embedder.encode(["预热"], kind="query", show_progress=False)
    return embedder


@st.cache_resource(max_entries=2, show_spinner=False)
def _embedder_loading(model: str, max_seq_length: int | None):
    """A future of the loaded embedder, loading in a background thread from the first page view on."""
    return _background("embedder-warmup", _loaded_embedder, model, max_seq_length)


def embedder(config: MinerConfig):
    """The configured embedder (shared by every session); waits for the background load if still running."""
    return _wait(_embedder_loading(config.embedding_model, config.embedding_max_seq_length),
                 "加载向量模型 Loading embedding model…", _embedder_loading)


def _loaded_segmenter():
    segmenter = workspace().segmenter()
    segmenter.segment("预热")           # loads jieba's dictionary and the lexicons (seconds)
    return segmenter


def _fit_searcher(snap, embedder_future, segmenter_future):
    # Built by the workspace service: the configured dictionaries and stopwords segment queries.
    found = workspace().searcher(snap, embedder_future.result(), segmenter_future.result())
    found.search("预热 warm-up", k=1)    # loads the query segmenter's dictionary and runs the encoder once
    return found


@st.cache_resource(max_entries=2, show_spinner=False)
def _segmenter_loading(run_id: str):
    """A future of the loaded query segmenter (per snapshot, so an edited user dictionary is read
    again after a rebuild)."""
    return _background("segmenter-warmup", _loaded_segmenter)


def warm_models(source: Source) -> None:
    """Start loading the snapshot's embedder and the query segmenter now, before the snapshot's
    tables: the page renders while they load, and the first search does not wait for them."""
    try:
        embedding = read_meta(source.snapshots_dir, source.run_id)["embedding"]
    except (OSError, ValueError, KeyError):
        return                                    # load_snapshot will report the broken snapshot
    _embedder_loading(embedding["model"], embedding.get("max_seq_length"))
    _segmenter_loading(source.run_id)


@st.cache_resource(max_entries=2, show_spinner=False)
def _searcher_loading(snapshots_dir: str, run_id: str, _snap):
    """A future of the fitted searcher: embedder and segmenter loads, then the fit, in a background thread.

    Whatever :func:`miner.topics.embed.get_embedder` returns for the snapshot's model is used, so
    the warm-up does not depend on which embedder that is (ONNX, torch, hashing).
    """
    embedding = _snap.meta["embedding"]          # the snapshot's own model and length, not the config's
    model = _embedder_loading(embedding["model"], embedding.get("max_seq_length"))
    return _background("searcher-warmup", _fit_searcher, _snap, model, _segmenter_loading(run_id))


def warm_up(snap, snapshots_dir: str, run_id: str) -> None:
    """Start fitting the searcher now (returns at once; the model loads began in :func:`warm_models`),
    so the first search after a page is up does not wait for them."""
    _searcher_loading(snapshots_dir, run_id, snap)


def searcher(snapshots_dir: str, run_id: str):
    """The fitted searcher (shared by every session); waits, with a spinner, only if not ready yet."""
    snap = load_snapshot(snapshots_dir, run_id)
    return _wait(_searcher_loading(snapshots_dir, run_id, snap), "建立搜索索引 Building search index…",
                 _searcher_loading, _segmenter_loading, _embedder_loading)


@st.cache_resource(show_spinner=False)
def marketing_nodes(years: tuple[int, ...]):
    """Marketing nodes (frozen dataclasses) for ``years``; a lunar node without a tabulated date
    for a year is simply absent (load_calendar warns about it; the UI does not need to)."""
    import warnings
    from miner.insights.calendar import load_calendar
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(load_calendar(years=years))


# ---- tables ----------------------------------------------------------------------------------------
@st.cache_resource(max_entries=2, show_spinner=False)
def notes_table(source: Source) -> pd.DataFrame:
    """The snapshot's notes with topic, label, local publish time and total engagement.

    A shared resource (no copy per call: at a million notes a cache_data hit would pickle the
    whole frame): callers must not mutate it; derive a new frame instead.
    """
    notes = snapshot(source).notes_with_topics().drop(columns=["tokens"], errors="ignore")
    published = pd.to_datetime(notes[schema.PUBLISHED_AT])
    if published.dt.tz is None:
        published = published.dt.tz_localize(source.timezone)
    notes[schema.PUBLISHED_AT] = published.dt.tz_convert(source.timezone)
    notes[ENGAGEMENT] = schema.engagement(notes)
    notes[schema.TOPIC_ID] = notes[schema.TOPIC_ID].fillna(schema.OUTLIER).astype("int64")
    return notes


@st.cache_resource(max_entries=2, show_spinner=False)
def _note_positions(source: Source) -> pd.Index:
    return pd.Index(notes_table(source)[schema.NOTE_ID])


def notes_by_id(source: Source, note_ids) -> pd.DataFrame:
    """The rows of :func:`notes_table` for ``note_ids`` (in that order; unknown ids left out)."""
    rows = _note_positions(source).get_indexer(list(note_ids))
    return notes_table(source).iloc[rows[rows >= 0]]


def filtered_notes(source: Source, start: dt.date | None, end: dt.date | None,
                   category: str | None) -> pd.DataFrame:
    """:func:`notes_table` rows in the filter (not cached: only cached tables call it)."""
    notes = notes_table(source)
    if start is None and end is None and not category:
        return notes
    day = notes[schema.PUBLISHED_AT].dt.date
    keep = pd.Series(True, index=notes.index)
    if start is not None:
        keep &= day >= start
    if end is not None:
        keep &= day <= end
    if category and schema.CATEGORY in notes:
        keep &= notes[schema.CATEGORY] == category
    return notes[keep].reset_index(drop=True)


@st.cache_resource(max_entries=2, show_spinner=False)
def aggregates(source: Source) -> pd.DataFrame:
    """Topic × day × category counts stored with the snapshot (:mod:`miner.topics.aggregates`)."""
    from miner.topics.aggregates import snapshot_aggregates
    return snapshot_aggregates(snapshot(source))


@st.cache_data(max_entries=4, show_spinner=False)
def date_range(source: Source) -> tuple[dt.date, dt.date]:
    """First and last local publish day of the snapshot's notes."""
    days = aggregates(source)["day"]
    return days.min().date(), days.max().date()


@st.cache_data(max_entries=4, show_spinner=False)
def categories(source: Source) -> list[str]:
    from miner.topics.aggregates import NO_CATEGORY
    return sorted(c for c in aggregates(source)[schema.CATEGORY].unique() if c != NO_CATEGORY)


@st.cache_data(max_entries=32, show_spinner=False)
def note_count(source: Source, start: dt.date | None, end: dt.date | None, category: str | None) -> int:
    """How many notes the filter keeps (outliers included)."""
    from miner.topics.aggregates import filter_aggregates
    return int(filter_aggregates(aggregates(source), start, end, category)["notes"].sum())


@st.cache_data(max_entries=16, show_spinner="计算趋势 Scoring trends…")
def trend_table(source: Source, start: dt.date | None, end: dt.date | None,
                category: str | None) -> pd.DataFrame:
    """One row per topic with notes in the filter: :func:`miner.insights.trends.trend_table`."""
    from miner.insights.trends import trend_table as _trend_table
    snap = snapshot(source)
    notes = filtered_notes(source, start, end, category)
    return _trend_table(notes, snap.assignments, snap.topics, start=start, end=end, freq="D")


@st.cache_data(max_entries=16, show_spinner="计算机会分 Scoring opportunities…")
def opportunity_table(source: Source, start: dt.date | None, end: dt.date | None, category: str | None,
                      segment: str | None, node_key: str | None) -> pd.DataFrame:
    """:func:`miner.insights.opportunity.opportunity_scores` for the filters (audience metrics when present).

    Momentum comes from the trend scores of the date window; node timing compares the node's
    windows with the rest of the data, so it sees every date of the chosen category.
    """
    from miner.insights.opportunity import OPPORTUNITY_COLUMNS, opportunity_scores
    snap = snapshot(source)
    trends = trend_table(source, start, end, category)
    if trends.empty:                       # nothing in the filter: nothing to score
        return pd.DataFrame(columns=list(OPPORTUNITY_COLUMNS))
    notes = filtered_notes(source, None, None, category).drop(
        columns=[schema.TOPIC_ID, schema.SCORE, "label", ENGAGEMENT], errors="ignore")
    keep = set(trends[schema.TOPIC_ID])
    asg = snap.assignments[snap.assignments[schema.TOPIC_ID].isin(keep)]
    metrics = segment_metrics(source, segment, start, end)
    return opportunity_scores(notes, asg, snap.topics[snap.topics[schema.TOPIC_ID].isin(keep)],
                              trends=trends, metrics=metrics, node=node_key)


@st.cache_data(max_entries=4, show_spinner=False)
def topic_series(source: Source) -> pd.DataFrame:
    """Daily series of every topic (:func:`miner.topics.aggregates.daily_series`)."""
    from miner.topics.aggregates import daily_series
    return daily_series(aggregates(source))


@st.cache_data(max_entries=4, show_spinner=False)
def topic_map(source: Source) -> pd.DataFrame:
    """2-D coordinates of topic centroids (PCA by SVD of the centred centroids)."""
    snap = snapshot(source)
    c = np.asarray(snap.centroids, dtype=np.float64)
    xy = np.zeros((len(c), 2))
    if len(c) >= 2:
        centred = c - c.mean(axis=0)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        k = min(2, len(s))
        xy[:, :k] = u[:, :k] * s[:k]
    ids = snap.topics[schema.TOPIC_ID].to_numpy()      # permanent ids; topics row i ↔ centroids row i
    return pd.DataFrame({schema.TOPIC_ID: ids, "x": xy[:, 0], "y": xy[:, 1]})


def audience_window(start: dt.date | None, end: dt.date | None, tz: str):
    """Inclusive dates → the ``[start, end)`` timestamp window the audience metrics take."""
    if start is None and end is None:
        return None
    lo = pd.Timestamp(start).tz_localize(tz) if start is not None else None
    hi = (pd.Timestamp(end) + pd.Timedelta(days=1)).tz_localize(tz) if end is not None else None
    return (lo, hi)


def _audience_call(source: Source, needs: tuple[str, ...], fn):
    """Run ``fn(con, assignments)`` on a read-only connection, or None when tables are missing."""
    path = Path(source.db_path)
    if not path.exists():
        return None
    with db_lock(), workspace().store(read_only=True).connect() as con:
        have = table_names(con)
        if any(n not in have for n in needs):
            return None
        return fn(con, snapshot(source).assignments)


@st.cache_data(max_entries=16, show_spinner="计算人群指标 Computing audience metrics…")
def segment_metrics(source: Source, segment: str | None, start: dt.date | None,
                    end: dt.date | None) -> pd.DataFrame | None:
    """:func:`miner.insights.opportunity.segment_metrics` (penetration, AIPS flow, orders, engaged users)
    for a segment and date window; None when the audience tables are missing."""
    from miner.insights.opportunity import segment_metrics as _metrics
    window = audience_window(start, end, source.timezone)
    return _audience_call(source, ("engagements", "audience"), lambda con, asg: _metrics(
        con, snapshot(source), segment=segment, window=window, k=source.k,
        attribution_days=source.attribution_days))


@st.cache_data(max_entries=16, show_spinner=False)
def penetration_by(source: Source, by: tuple[str, ...], start: dt.date | None,
                   end: dt.date | None) -> pd.DataFrame | None:
    from miner.insights import audience
    window = audience_window(start, end, source.timezone)
    return _audience_call(source, ("engagements", "audience"), lambda con, asg: audience.topic_reach_penetration(
        con, asg, window=window, k=source.k, by=list(by)))


@st.cache_data(max_entries=16, show_spinner=False)
def aips_counts(source: Source, segment: str | None, start: dt.date | None,
                end: dt.date | None) -> pd.DataFrame | None:
    from miner.insights import audience
    window = audience_window(start, end, source.timezone)
    return _audience_call(source, ("engagements", "audience", "aips_stages"), lambda con, asg: (
        audience.aips_stage_counts(con, asg, segment=segment, window=window,
                                   horizon_days=source.attribution_days, k=source.k)))


@st.cache_data(max_entries=16, show_spinner=False)
def order_values(source: Source, segment: str | None, start: dt.date | None,
                 end: dt.date | None) -> pd.DataFrame | None:
    from miner.insights import audience
    window = audience_window(start, end, source.timezone)
    return _audience_call(source, ("engagements", "audience", "orders"), lambda con, asg: audience.order_value(
        con, asg, segment=segment, window=window, attribution_days=source.attribution_days, k=source.k,
        brand=audience.default_brand(con), include_unattributed=False))


def clear_tables() -> None:
    """Drop cached DataFrames (after an ingest or rebuild; resources are keyed by run id)."""
    st.cache_data.clear()


@st.cache_data(max_entries=32, show_spinner="生成简报 Writing the brief…")
def brief(source: Source, topic_id: int, segment: str | None, node_key: str | None, today: dt.date):
    """:func:`miner.insights.briefs.build_brief` with the segment's metrics (a ContentBrief)."""
    from miner.insights.briefs import build_brief
    metrics = segment_metrics(source, segment, None, None)
    return build_brief(snapshot(source), int(topic_id), segment=segment, node=node_key, metrics=metrics,
                       today=today)


@st.cache_data(max_entries=16, show_spinner="计算极光指标 Scoring the quadrants…")
def scorecard(source: Source, segment: str | None, today: dt.date) -> pd.DataFrame:
    """:func:`miner.insights.scorecard.topic_scorecard`; notes-only rows when the audience tables are missing."""
    from miner.insights.scorecard import topic_scorecard
    metrics = segment_metrics(source, segment, None, None) if segment else None
    card = _audience_call(source, ("engagements",), lambda con, asg: topic_scorecard(
        snapshot(source), metrics=metrics, con=con, today=today, k=source.k))
    return card if card is not None else topic_scorecard(snapshot(source), metrics=metrics, today=today, k=source.k)


@st.cache_data(max_entries=8, show_spinner="计算人群纠偏 Ranking audiences (TGI)…")
def tgi(source: Source) -> pd.DataFrame | None:
    """:func:`miner.insights.tgi.topic_tgi` for every topic; None when the audience tables are missing."""
    from miner.insights.tgi import topic_tgi
    return _audience_call(source, ("engagements", "audience"), lambda con, asg: topic_tgi(
        con, asg, k=source.k, attribution_days=source.attribution_days))


@st.cache_data(max_entries=8, show_spinner=False)
def topic_table_xlsx(table: pd.DataFrame, window_label: str) -> bytes:
    """The overview's topic table as an Excel workbook (columns as shown, a note on the window)."""
    from miner.insights.briefs import topic_table_excel
    return topic_table_excel(table, notes=[f"时间窗口 {window_label}"])


# ---- curation state (the registry lives in the workspace database) -----------------------------------
@st.cache_data(max_entries=4, show_spinner=False)
def _topic_flags(db_path: str, stamp: int, days: int, _config: MinerConfig) -> pd.DataFrame | None:
    try:
        return Workspace(_config).topic_flags(days)
    except Exception:      # no registry yet (a snapshot from before curation)
        return None


def topic_flags(config: MinerConfig, days: int) -> pd.DataFrame | None:
    with db_lock():
        return _topic_flags(str(config.db_path), db_stamp(config), int(days), config)
