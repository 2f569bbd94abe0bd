"""Shared widgets: page setup, sidebar status, filters, topic picker and safe text rendering.

Note text, titles, tags and topic labels come from users' notes: they are never passed to
markdown or HTML. Use :func:`plain` (``st.text``) for free text and :func:`md_escape` where a
label must sit inside a markdown string (headers, captions).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from miner import schema
from miner.config import MinerConfig
from miner.topics.snapshot import latest_run_id
from miner.ui import auth, loaders

ALL = "全部"
ANY = ""          # widget value for "no restriction" (None would show as an empty selectbox)

# Target segments offered in the filters: specs for miner.insights.audience.AudienceFilter.from_spec ("" = everyone).
SEGMENT_SPECS: tuple[str, ...] = (
    ANY,
    "gender=F",
    "gender=F,age_band=18-24",
    "gender=F,age_band=25-34",
    "gender=M",
    "city_tier=1|new1",
    "city_tier=3|4+",
)

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$&=])")
# GFM autolink literals (``http://``, ``www.``, ``a@b.c``) are found in the text *after* escapes are
# resolved, so backslashes cannot stop them; a WORD JOINER (U+2060, invisible) inside the trigger can.
_AUTOLINK = re.compile(r"(?i)(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)(?=[-\w])")   # where to put the joiner
WORD_JOINER = "\u2060"


def md_escape(text) -> str:
    """Escape every markdown/HTML-significant ASCII character (CommonMark backslash escapes) and
    break GFM's bare-URL/e-mail autolinks with an invisible word joiner; newlines become spaces."""
    text = _AUTOLINK.sub(WORD_JOINER, str(text))
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def plain(text, limit: int | None = None) -> None:
    """Render untrusted text as plain text (never markdown or HTML)."""
    text = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    st.text(text)


def defaults(values: dict) -> None:
    """Set session_state defaults for this page's widgets (so a page runs alone)."""
    for key, value in values.items():
        st.session_state.setdefault(key, value)


def keep_valid(key: str, options, fallback) -> None:
    """Reset a widget's stored value that is no longer among its options (e.g. after a rebuild)."""
    if st.session_state.get(key, fallback) not in options:
        st.session_state[key] = fallback


def segment_label(spec: str | None) -> str:
    from miner.insights.audience import AudienceFilter
    return AudienceFilter.from_spec(spec or None).label


# ---- setup ---------------------------------------------------------------------------------------
@dataclass
class PageContext:
    config: MinerConfig
    source: loaders.Source
    snapshot: object

    @property
    def k(self) -> int:
        return self.source.k


def ensure_workspace(config: MinerConfig) -> None:
    """First start: build what is missing with a visible progress bar.

    Checked once per session and workspace state (snapshot + database stamp), under the database
    lock, so reruns do not reopen DuckDB and concurrent sessions wait for one build.
    """
    state = (str(config.snapshots_dir), latest_run_id(config), loaders.db_stamp(config))
    if st.session_state.get("_workspace_checked") == state:
        return
    loaders.open_workspace(str(config.workspace_dir), str(config.snapshots_dir))
    workspace = loaders.workspace(config)
    with loaders.db_lock():
        if workspace.needs_preparation():
            _run_preparation(workspace)
        st.session_state["_workspace_demo"] = workspace.is_demo()
    st.session_state["_workspace_checked"] = (str(config.snapshots_dir), latest_run_id(config),
                                              loaders.db_stamp(config))


def _run_preparation(workspace) -> None:
    """Build the demo workspace with a visible progress bar (caller holds the database lock)."""
    box = st.empty()
    with box.container():
        st.info("首次启动：正在构建演示数据与话题快照，约需几分钟 First start: building the demo snapshot…")
        bar = st.progress(0.0, text="准备中 preparing…")

    def report(stage: str, frac: float) -> None:
        bar.progress(min(max(frac, 0.0), 1.0), text=f"{stage} · {frac:.0%}")

    try:
        workspace.prepare(on_progress=report, embedder=loaders.embedder(workspace.config))
    except Exception as exc:   # show it; whatever completed (e.g. a snapshot) is kept
        st.error(f"构建失败 Build failed: {md_escape(exc)}")
        st.stop()
    box.empty()
    loaders.clear_tables()


def through_router() -> None:
    """Until some session has called ``st.navigation``, Streamlit runs a ``pages/*.py`` URL by itself
    with a sidebar of file names (app, topic detail, …): the first visitor of a fresh server who
    opens a bookmarked page would see that. Drop that mode and rerun, so app.py routes (the page
    hash comes from the URL path, which both modes share). Streamlit keeps the flag on a class."""
    from streamlit.runtime.pages_manager import PagesManager
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_setup(title: str) -> PageContext:
    """Sign-in guard, title, first-start build if needed, serving snapshot and sidebar status."""
    through_router()
    auth.guard()                       # signed out: the sign-in form, and nothing below runs
    from miner.ui import curation
    curation.keep_show_hidden()
    st.title(title)
    config = loaders.app_config()
    ensure_workspace(config)
    source = loaders.current_source(config)
    if source is None:
        st.error("没有可用的话题快照 No topic snapshot; build one on 数据管理.")
        st.stop()
    loaders.warm_models(source)       # embedder + segmenter load in the background from here on
    snap = loaders.snapshot(source)
    loaders.warm_up(snap, source.snapshots_dir, source.run_id)   # in the background: the first search need not wait
    sidebar_status(source, snap)
    return PageContext(config, source, snap)


def sidebar_status(source: loaders.Source, snap) -> None:
    with st.sidebar:
        st.caption("当前快照 Serving snapshot")
        st.code(source.run_id, language=None, wrap_lines=True)
        meta = snap.meta
        st.caption(f"{len(snap.notes):,} 篇笔记 · {len(snap.topics)} 个话题 · "
                   f"模型 {md_escape(meta.get('embedding', {}).get('model_id', '?'))}")
        if st.session_state.get("_workspace_demo"):
            st.warning("演示数据：笔记为公开样本；人群、AIPS、订单为模拟数据 (SIMULATED)，仅供演示。",
                       icon=":material/science:")


# ---- filters -------------------------------------------------------------------------------------
@dataclass
class Filters:
    start: dt.date | None
    end: dt.date | None
    category: str | None
    segment: str | None
    node: object | None          # miner.insights.calendar.MarketingNode

    @property
    def window_label(self) -> str:
        if self.start is None:
            return "全部时间"
        return f"{self.start:%Y-%m-%d} ~ {self.end:%Y-%m-%d}"


def data_date_range(ctx: PageContext) -> tuple[dt.date, dt.date]:
    return loaders.date_range(ctx.source)


def nodes_in_range(lo: dt.date, hi: dt.date) -> list:
    """Marketing nodes whose phases overlap the data's date range."""
    nodes = loaders.marketing_nodes(tuple(range(lo.year - 1, hi.year + 2)))
    return [n for n in nodes if n.end >= lo and n.start <= hi]


def node_key(node) -> str:
    return f"{node.key}:{node.year}"


def node_label(node) -> str:
    return f"{node.name_zh} {node.year}（{node.start:%m-%d}~{node.end:%m-%d}）"


def node_picker(key: str, nodes: list, label: str = "营销节点") -> object | None:
    by_key = {node_key(n): n for n in nodes}
    options = [ANY, *by_key]
    keep_valid(key, options, ANY)
    chosen = st.selectbox(label, options, key=key,
                          format_func=lambda k: "不限" if k == ANY else node_label(by_key[k]))
    return by_key.get(chosen)


def segment_picker(key: str, label: str = "目标人群") -> str | None:
    """Target segment spec, or None for everyone."""
    keep_valid(key, SEGMENT_SPECS, ANY)
    return st.selectbox(label, list(SEGMENT_SPECS), key=key, format_func=segment_label) or None


def filter_bar(ctx: PageContext, prefix: str) -> Filters:
    """Date range, category, target segment and marketing-node filters (keys ``<prefix>.*``)."""
    lo, hi = data_date_range(ctx)
    categories = loaders.categories(ctx.source)
    keep_valid(f"{prefix}.category", [ALL, *categories], ALL)
    dates_key = f"{prefix}.dates"
    current = st.session_state.get(dates_key)
    if not (isinstance(current, (tuple, list)) and all(lo <= d <= hi for d in current)):
        st.session_state[dates_key] = (lo, hi)      # first run, or the data range changed
    cols = st.columns([2, 1, 1, 1.5])
    with cols[0]:
        dates = st.date_input("日期范围", min_value=lo, max_value=hi, key=dates_key)
    with cols[1]:
        category = st.selectbox("品类", [ALL, *categories], key=f"{prefix}.category")
    with cols[2]:
        segment = segment_picker(f"{prefix}.segment")
    with cols[3]:
        node = node_picker(f"{prefix}.node", nodes_in_range(lo, hi))
    start, end = _date_pair(dates, lo, hi)
    if node is not None:   # a node narrows the window to its 蓄水 → 返场 span
        start, end = max(start, node.start), min(end, node.end)
        if start > end:
            st.warning("所选节点不在日期范围内，已忽略节点 The node lies outside the date range; ignored.")
            start, end = _date_pair(dates, lo, hi)
    return Filters(start, end, None if category == ALL else category, segment, node)


def _date_pair(value, lo: dt.date, hi: dt.date) -> tuple[dt.date, dt.date]:
    """date_input returns one date while the user is still picking the second: treat as open."""
    if isinstance(value, (tuple, list)):
        if len(value) == 2:
            return value[0], value[1]
        if len(value) == 1:
            return value[0], hi
        return lo, hi
    return (value, hi) if value else (lo, hi)


# ---- topics --------------------------------------------------------------------------------------
def topic_options(snap, include_hidden: bool | None = None) -> dict[int, str]:
    """Pickable topics: hidden ones left out (unless an editor shows them), pinned first, flagged."""
    from miner.ui import curation
    topics = curation.visible_topics(snap.topics, include_hidden)
    if topics.empty:                   # everything hidden: still offer something to pick
        topics = curation.visible_topics(snap.topics, True)
    fresh = curation.new_topic_ids(loaders.app_config())
    return {int(r[schema.TOPIC_ID]): " ".join(filter(None, [
        f"#{int(r[schema.TOPIC_ID])} {r['label']}（{int(r['size'])} 篇）", curation.flag_text(r, fresh)]))
        for _, r in topics.iterrows()}


def topic_picker(key: str, snap, label: str = "话题", include_hidden: bool | None = None) -> int:
    options = topic_options(snap, include_hidden)
    ids = list(options)
    keep_valid(key, ids, ids[0])
    return st.selectbox(label, ids, key=key, format_func=lambda t: options[t])


def open_topic(topic_id: int) -> None:
    """Button callback: show ``topic_id`` on the topic-detail page."""
    st.session_state["detail.topic"] = int(topic_id)
    st.session_state["brief.topic"] = int(topic_id)


def note_card(note: pd.Series, limit: int = 280) -> None:
    """One note in a bordered box; every user-written field is plain text."""
    with st.container(border=True):
        plain(note.get(schema.TITLE) or "（无标题）", limit=120)
        plain(note.get(schema.BODY), limit=limit)
        tags = note.get(schema.TAGS)
        if tags is not None and len(tags):
            plain(" ".join(f"#{t}" for t in list(tags)[:8]))
        published = note.get(schema.PUBLISHED_AT)
        when = published.strftime("%Y-%m-%d") if hasattr(published, "strftime") else ""
        counts = " · ".join(f"{zh} {_count(note.get(c)):,}" for zh, c in
                            (("赞", schema.LIKES), ("藏", schema.COLLECTS), ("评", schema.COMMENTS)))
        st.caption(f"{when} · {counts}")


def _count(value) -> int:
    return 0 if value is None or pd.isna(value) else int(value)


def upcoming_nodes(today: dt.date) -> dict[str, str]:
    """Each marketing node's next occurrence on/after ``today``: key → label, soonest first."""
    nodes = loaders.marketing_nodes((today.year, today.year + 1))
    nxt: dict[str, object] = {}
    for n in sorted(nodes, key=lambda n: n.date):
        if n.date >= today and n.key not in nxt:
            nxt[n.key] = n
    return {k: f"{n.name_zh} {n.date:%Y-%m-%d}" for k, n in nxt.items()}
