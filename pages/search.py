"""选题搜索 Creator search: a free-text idea → ranked topics with the reasons behind each."""
import time

import streamlit as st

from miner.ui import curation, loaders, widgets as w

EXAMPLES = ("秋冬穿搭 平价", "猫咪 日常", "露营 装备", "手机 拍照", "减脂 早餐")

ctx = w.page_setup("选题搜索 Creator search")
w.defaults({"search.query": "", "search.k": 8})


def _use_example(text: str) -> None:
    st.session_state["search.query"] = text


st.text_input("想写什么？输入关键词或一句话 What do you want to write about?", key="search.query",
              placeholder="例如：秋冬通勤穿搭 平价")
cols = st.columns(len(EXAMPLES) + 1)
cols[0].caption("试试：")
for i, text in enumerate(EXAMPLES):
    cols[i + 1].button(text, key=f"search.example.{i}", on_click=_use_example, args=(text,))
k = st.slider("结果数 Results", 3, 20, key="search.k")
curation.hidden_toggle()

query = st.session_state["search.query"].strip()
if not query:
    st.info("输入关键词后按回车搜索 Type a query and press Enter.")
    st.stop()

searcher = loaders.searcher(ctx.source.snapshots_dir, ctx.source.run_id)
started = time.perf_counter()
try:
    ideas = searcher.search(query, k=k, include_hidden=curation.show_hidden())
except ValueError as exc:
    st.error(f"搜索失败 Search failed: {w.md_escape(exc)}")
    st.stop()
elapsed_ms = 1000 * (time.perf_counter() - started)
if ideas.empty_query:
    st.warning(ideas.message or "查询里没有可搜索的文字 Nothing searchable in the query.", icon=":material/info:")
    st.stop()
if ideas.no_match:
    w.plain(ideas.message)      # contains the query: plain text, never markdown
    st.caption(f"以下是最接近的 {len(ideas)} 个话题，仅供参考（弱匹配）· 用时 {elapsed_ms:.0f} ms")
else:
    st.caption(f"找到 {len(ideas.strong)} 个强匹配选题方向（共 {len(ideas)} 个）· 用时 {elapsed_ms:.0f} ms")

for rank, idea in enumerate(ideas, start=1):
    with st.container(border=True, key=f"search.result.{rank}"):
        badge = ":green-badge[强匹配]" if idea.match == "strong" else ":gray-badge[弱匹配]"
        mixed = " :orange-badge[混合话题]" if getattr(idea, "is_mixed", False) else ""
        mixed += " :gray-badge[已隐藏]" if idea.hidden else ""
        st.markdown(f"{badge}{mixed} **{rank}. #{idea.topic_id} {w.md_escape(idea.label)}**")
        facts = [f"相关度 z={idea.relevance:.1f}", f"匹配度 {idea.score:.2f}", f"生命周期 {idea.stage_zh or '—'}",
                 f"机会分 {'—' if idea.opportunity is None else f'{idea.opportunity:.2f}'}",
                 f"笔记 {idea.size:,} 篇"]
        st.caption(" · ".join(facts))
        why = [f"语义相似 {idea.semantic_score:.2f}"]
        if idea.matched_keywords:
            why.insert(0, "命中关键词：" + "、".join(idea.matched_keywords[:6]))
        w.plain("推荐理由：" + "；".join(why))
        if idea.keywords:
            w.plain("话题关键词：" + " ".join(idea.keywords[:8]))
        for note in idea.examples:
            w.plain(f"· {note.title}（互动 {note.engagement:,}）", limit=90)
        a, b, _ = st.columns([1, 1, 4])
        if a.button("查看详情", key=f"search.open.{idea.topic_id}"):
            w.open_topic(idea.topic_id)
            st.switch_page("pages/topic_detail.py")
        if b.button("生成简报", key=f"search.brief.{idea.topic_id}"):
            w.open_topic(idea.topic_id)
            st.switch_page("pages/brief.py")
