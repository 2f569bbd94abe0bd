"""内容简报 Brief: a content brief for a topic × segment × marketing node, downloadable as Markdown."""
import datetime as dt
from zoneinfo import ZoneInfo

import streamlit as st

from miner.ui import loaders, widgets as w

ctx = w.page_setup("内容简报 Content brief")
today = dt.datetime.now(ZoneInfo(ctx.config.timezone)).date()

c1, c2, c3 = st.columns([2, 1, 1])
with c1:
    topic_id = w.topic_picker("brief.topic", ctx.snapshot)
with c2:
    segment = w.segment_picker("brief.segment")
with c3:
    upcoming = w.upcoming_nodes(today)
    w.keep_valid("brief.node", [w.ANY, *upcoming], w.ANY)
    node_key = st.selectbox("营销节点", [w.ANY, *upcoming], key="brief.node",
                            format_func=lambda k: "自动（下一个节点）" if k == w.ANY else upcoming[k]) or None

try:
    brief = loaders.brief(ctx.source, topic_id, segment, node_key, today)
except Exception as exc:   # a brief that cannot be written must not take the page down
    st.error(f"无法生成简报 Cannot build the brief: {w.md_escape(exc)}")
    st.stop()
markdown = brief.to_markdown()

st.subheader(f"#{brief.topic_id} {w.md_escape(brief.label)}")
st.caption(f"{brief.n_notes} 篇笔记 · 人群 {w.md_escape(brief.audience.get('segment_zh', '全部用户'))} · "
           f"快照 {w.md_escape(brief.run_id)}")
d1, d2 = st.columns(2)
d1.download_button("下载简报 Markdown", data=markdown.encode("utf-8"), mime="text/markdown",
                   file_name=f"brief-topic{brief.topic_id}-{brief.run_id}.md", key="brief.download",
                   type="primary", icon=":material/download:")
d2.download_button("下载 JSON", data=brief.to_json().encode("utf-8"), mime="application/json",
                   file_name=f"brief-topic{brief.topic_id}-{brief.run_id}.json", key="brief.download_json")

if not brief.recommended:
    st.warning("混合话题：该话题不作选题推荐（见简报说明）")
if brief.data_freshness.get("stale"):
    st.caption(f"数据截至 {brief.data_freshness['data_end']}，比规划日早 {brief.data_freshness['data_age_days']} 天")
st.markdown("#### 定位")
w.plain(brief.positioning)
if brief.angles:
    st.markdown("#### 切入角度")
    for i, angle in enumerate(brief.angles, start=1):
        ci = "" if angle.index_low is None else f"（区间 {angle.index_low:.2f}–{angle.index_high:.2f}）"
        w.plain(f"{i}. {angle.label} — {angle.n_notes} 篇（{angle.share:.0%}），年龄调整互动为话题的 "
                f"{angle.engagement_index:.2f} 倍{ci}；关键词 {' '.join(angle.keywords)}")
if brief.timing:
    st.markdown("#### 节点节奏")
    tm = brief.timing
    when = (f"蓄水已开始，距节点 {tm['days_until_node']} 天" if tm.get("seeding_started")
            else f"距规划日 {tm['days_until_seeding']} 天")
    w.plain(f"{tm['node_zh']}（{tm['date']}）：{tm['seeding_start']} 开始蓄水，{when}")
st.markdown("#### 完整简报（Markdown 原文）")
st.code(markdown, language="markdown", wrap_lines=True)
