"""话题详情 Topic detail: trend with marketing nodes, 极光 scorecard, keywords, notes, AIPS, TGI, penetration, orders."""
import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from miner import schema
from miner.ui import charts, curation, loaders, tables, widgets as w

ctx = w.page_setup("话题详情 Topic detail")
c1, c2 = st.columns([2, 1])
with c1:
    topic_id = w.topic_picker("detail.topic", ctx.snapshot)
with c2:
    segment = w.segment_picker("detail.segment")

topic = ctx.snapshot.topics.set_index(schema.TOPIC_ID).loc[topic_id]
trends = loaders.trend_table(ctx.source, None, None, None).set_index(schema.TOPIC_ID)
trend = trends.loc[topic_id] if topic_id in trends.index else pd.Series(dtype=object)
metrics = loaders.segment_metrics(ctx.source, segment, None, None)
mrow = metrics.set_index(schema.TOPIC_ID).loc[topic_id] if metrics is not None and topic_id in set(
    metrics[schema.TOPIC_ID]) else None

st.subheader(f"#{topic_id} {w.md_escape(topic['label'])}")
m = st.columns(5)
m[0].metric("笔记数", f"{int(topic['size']):,}")
m[1].metric("生命周期", str(trend.get("stage_zh") or "—"))
m[2].metric("增长 (近7天)", "—" if pd.isna(trend.get("growth_pct")) else f"{trend['growth_pct']:+.0f}%")
m[3].metric(f"渗透率 · {w.segment_label(segment)}",
            "—" if mrow is None else tables.cell_text(mrow.get("penetration"), mrow.get("suppressed"), ctx.k))
m[4].metric("互动率", "—" if mrow is None else tables.cell_text(mrow.get("engagement_rate"),
                                                               mrow.get("suppressed"), ctx.k))
curation.topic_header(ctx, topic_id, topic)
if st.button("为该话题生成内容简报 →", key="detail.to_brief"):
    w.open_topic(topic_id)
    st.switch_page("pages/brief.py")

st.markdown("#### 趋势与营销节点")
series = loaders.topic_series(ctx.source)
lo, hi = w.data_date_range(ctx)
st.plotly_chart(charts.trend(series[series[schema.TOPIC_ID] == topic_id], w.nodes_in_range(lo, hi)),
                key="detail.trend")
st.caption("阴影：节点 蓄水(蓝) / 爆发(红) / 返场(灰) 阶段；虚线：节点当天")

st.markdown("#### 极光指标 · 认知 / 内容积累 / 人群渗透 / 口碑激发")
card = loaders.scorecard(ctx.source, segment, dt.datetime.now(ZoneInfo(ctx.config.timezone)).date())
radar, detail = st.columns([2, 3])
radar.plotly_chart(charts.scorecard_radar(card, topic_id), key="detail.scorecard")
rows = card[card[schema.TOPIC_ID] == topic_id]
detail.dataframe(pd.DataFrame({"象限": rows["quadrant_zh"], "指标": rows["metric_zh"], "数值": rows["value"],
                               "话题间百分位": rows["percentile"], "口径": rows["basis"]}),
                 hide_index=True, key="detail.scorecard_table",
                 column_config={"数值": st.column_config.NumberColumn(format="%.3g"),
                                "话题间百分位": st.column_config.ProgressColumn(min_value=0, max_value=100, format="P%.0f")})

left, right = st.columns([1, 2])
with left:
    st.markdown("#### 关键词")
    kw = pd.DataFrame({"关键词": list(topic["keywords"]), "权重": list(topic["keyword_scores"])})
    st.dataframe(kw, hide_index=True, key="detail.keywords", column_config={
        "权重": st.column_config.ProgressColumn(min_value=0.0, max_value=float(kw["权重"].max() or 1), format="%.3f")})
with right:
    st.markdown("#### 代表笔记")
    for _, note in loaders.notes_by_id(ctx.source, list(topic["representative_note_ids"])[:5]).iterrows():
        w.note_card(note)

st.markdown(f"#### 人群 · {w.md_escape(w.segment_label(segment))}")
st.caption(f"隐私保护：少于 {ctx.k} 人的单元格显示为「{tables.SUPPRESSED_ZH.format(k=ctx.k)}」，不显示小数字")
counts = loaders.aips_counts(ctx.source, segment, None, None)
if counts is None:
    st.info("尚无人群数据 No audience data yet: import engagements/audience/AIPS tables on 数据管理.")
else:
    a, b = st.columns(2)
    with a:
        mine = counts[counts[schema.TOPIC_ID] == topic_id]
        brands = sorted(mine["brand"].unique())
        if brands:
            brand = st.selectbox("品牌 Brand", brands, key="detail.brand")
            st.plotly_chart(charts.aips_funnel(mine[mine["brand"] == brand], tables.SUPPRESSED_ZH.format(k=ctx.k)),
                            key="detail.funnel")
    with b:
        st.markdown("**AIPS 流转（触达人群 vs 未触达人群）**")
        st.dataframe(tables.flow_table(mrow, ctx.k), hide_index=True, key="detail.flow")

    st.markdown("#### 人群纠偏 TGI（互动人群占比 ÷ 全体人群占比 × 100）")
    tgi = loaders.tgi(ctx.source)
    mine = tgi[tgi[schema.TOPIC_ID] == topic_id] if tgi is not None else tgi
    if mine is None or mine.empty:
        st.info(f"没有互动用户不少于 {ctx.k} 人的人群单元，TGI 不显示")
    else:
        st.dataframe(pd.DataFrame({
            "人群": mine["segment_zh"], "TGI": mine["tgi"].round(0), "区间": [f"{a:.0f}–{b:.0f}" for a, b in zip(
                mine["tgi_lo"], mine["tgi_hi"])], "显著偏好": mine["over_index"], "互动用户": mine["engaged_users"],
            "近期 TGI": [f"{v:.0f}" if pd.notna(v) else f"<{ctx.k} 人" for v in mine["tgi_last"]],
            "变化": mine["trend_arrow"],
            "关联提升": mine["conversion_lift"].round(2)}).head(15), hide_index=True, key="detail.tgi")
        st.caption("近期 = 最近 30 天 vs 之前 30 天；↑/↓ 为两比例检验 p < 0.05，→ 为无显著变化；"
                   "关联提升 = 该人群转化率 ÷ 话题其余互动人群转化率（相关，非因果）")

    st.markdown("#### 分人群渗透率")
    grid = loaders.penetration_by(ctx.source, ("gender", "age_band"), None, None)
    tiers = loaders.penetration_by(ctx.source, ("city_tier",), None, None)
    g, t = st.columns([3, 2])
    g.dataframe(tables.penetration_grid(grid, topic_id, ctx.k), key="detail.penetration")
    t.plotly_chart(charts.penetration_bars(tables.penetration_cells(tiers, topic_id, "city_tier", ctx.k),
                                           "city_tier", "城市等级渗透率"), key="detail.tiers")

st.markdown("#### 订单回流 Orders")
orders = loaders.order_values(ctx.source, segment, None, None)
if orders is None or topic_id not in set(orders[schema.TOPIC_ID]):
    st.info("尚无订单数据 No order data yet.")
else:
    o = orders.set_index(schema.TOPIC_ID).loc[topic_id]
    hide, hide_amounts = o.get("suppressed"), o.get("suppressed") or o.get("orders_suppressed")
    lift_hidden = hide or o.get("lift_suppressed")
    cols = st.columns(6)
    cols[0].metric("买家", tables.cell_text(o.get("buyers"), hide_amounts, ctx.k, "{:,.0f}"))
    cols[1].metric("归因 GMV", tables.cell_text(o.get("attributed_gmv"), hide_amounts, ctx.k, "¥{:,.0f}"))
    cols[2].metric("客单价 AOV", tables.cell_text(o.get("aov"), hide_amounts, ctx.k, "¥{:,.0f}"))
    cols[3].metric("转化率", tables.cell_text(o.get("conversion_rate"), hide_amounts, ctx.k))
    cols[4].metric("关联提升", tables.SUPPRESSED_ZH.format(k=ctx.k) if lift_hidden else tables.lift_text(
        o.get("assoc_lift"), o.get("assoc_lift_lo"), o.get("assoc_lift_hi"), o.get("lift_significant")),
        help=tables.ASSOC_LIFT_HELP)
    cols[5].metric("客单价提升", tables.cell_text(o.get("aov_lift"), hide_amounts, ctx.k, "{:.2f}x"))
    groups = (f"触达 {tables.cell_text(o.get('n_reached'), hide, ctx.k, '{:,.0f}')} 人 vs 匹配未触达 "
              f"{tables.cell_text(o.get('n_matched_control'), hide, ctx.k, '{:,.0f}')} 人")
    st.caption(f"品牌 {w.md_escape(o.get('brand', ''))} · 归因：互动后 T+{ctx.source.attribution_days} 天内的订单，"
               f"按买家互动过的话题平均拆分（各话题之和不超过品牌 GMV）· 关联提升对比同性别×年龄×城市×既往活跃度的"
               f"未触达人群（{groups}），是相关不是因果")
