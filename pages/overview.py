"""总览 Overview: KPIs, the trending-topic table and the topic map, under shared filters."""
import streamlit as st

from miner import schema
from miner.ui import curation, charts, loaders, tables, widgets as w

SORTS = {"机会分": "score", "增长": "growth_pct", "渗透率": "penetration", "归因 GMV": "attributed_gmv"}

ctx = w.page_setup("总览 Overview")
w.defaults({"overview.sort": "机会分"})
w.keep_valid("overview.sort", list(SORTS), "机会分")
f = w.filter_bar(ctx, "overview")

trends = loaders.trend_table(ctx.source, f.start, f.end, f.category)
opp = loaders.opportunity_table(ctx.source, f.start, f.end, f.category, f.segment,
                                f.node.key if f.node is not None else None)
metrics = loaders.segment_metrics(ctx.source, f.segment, f.start, f.end)
table = curation.shown_rows(tables.overview_table(trends, opp, metrics, ctx.k, topics=ctx.snapshot.topics),
                            ctx.snapshot.topics)

n_notes = loaders.note_count(ctx.source, f.start, f.end, f.category)
rising = int(table["stage"].isin(["emerging", "rising"]).sum()) if len(table) else 0
c1, c2, c3, c4 = st.columns(4)
c1.metric("笔记数", f"{n_notes:,}")
c2.metric("话题数", f"{len(table):,}")
c3.metric("上升/新兴话题", f"{rising:,}")
c4.metric("目标人群", w.segment_label(f.segment))
st.caption(f"时间窗口 {f.window_label}" + (f" · 节点 {w.md_escape(w.node_label(f.node))}" if f.node else "")
           + ("" if metrics is not None else " · 尚无人群数据（在 数据管理 导入），渗透率/GMV 暂缺"))

st.subheader("趋势话题 Trending topics")
sort_label = st.selectbox("排序 Sort by", list(SORTS), key="overview.sort")
table = curation.pinned_first(tables.sort_topics(table, SORTS[sort_label]), ctx.snapshot.topics)
curation.hidden_toggle()
if table.empty:
    st.info("当前筛选下没有话题 No topics match these filters.")
else:
    event = st.dataframe(table, hide_index=True, key="overview.table", on_select="rerun",
                         selection_mode="single-row", column_order=tables.OVERVIEW_COLUMNS,
                         column_config=tables.overview_column_config(ctx.k))
    st.download_button("导出话题表 Excel", data=loaders.topic_table_xlsx(table, f.window_label),
                       file_name="topics.xlsx", key="overview.excel", icon=":material/download:",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    rows = event.selection.rows if event is not None and hasattr(event, "selection") else []
    if rows:
        picked = int(table.iloc[rows[0]][schema.TOPIC_ID])
        if st.button(f"查看话题 #{picked} 详情", key="overview.open", type="primary"):
            w.open_topic(picked)
            st.switch_page("pages/topic_detail.py")

    st.subheader("话题地图 Topic map")
    st.caption("话题中心向量的二维投影 (PCA)；气泡大小 = 笔记数，颜色 = 生命周期")
    topic_xy = loaders.topic_map(ctx.source).merge(table, on=schema.TOPIC_ID)
    st.plotly_chart(charts.topic_map(topic_xy), key="overview.map")
