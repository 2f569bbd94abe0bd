"""话题管理 Curation: rename, merge, split, hide/unhide, pin — editors only, every action audited."""
import streamlit as st

from miner import schema
from miner.ui import auth, curation, loaders, widgets as w

ctx = w.page_setup("话题管理 Curation")
workspace = loaders.workspace(ctx.config)
editable = auth.can_edit()
curation.hidden_toggle()
topic_id = w.topic_picker("curation.topic", ctx.snapshot)
topic = ctx.snapshot.topics.set_index(schema.TOPIC_ID).loc[topic_id]
st.subheader(f"#{topic_id} {w.md_escape(topic['label'])}")
st.caption(f"自动名 {w.md_escape(topic.get('auto_label', ''))} · {int(topic['size'])} 篇 · "
           f"{'已隐藏' if topic.get('hidden') else '显示中'} · {'已置顶' if topic.get('pinned') else '未置顶'}")
keywords = [str(k) for k in schema.list_cell(topic.get("keywords"))][:10]
if keywords:
    st.caption("关键词 " + " · ".join(w.md_escape(k) for k in keywords))

st.markdown("#### 话题历史 History（诞生于 / 合并自 / 拆分为 / 由谁改名）")
with loaders.db_lock():
    history = workspace.topic_history(topic_id)
st.dataframe(curation.history_table(history), hide_index=True, key="curation.history")

st.markdown("#### 编辑 Curate")
if not editable:
    st.info("只读账户：改名、合并、拆分、隐藏、置顶需要编辑权限 Viewer account: curation needs an editor.")
others = {t: label for t, label in w.topic_options(ctx.snapshot, True).items() if t != topic_id}


def act(message: str, fn, *args, **kwargs) -> None:
    """Run one curation action as the current user; on success clear caches and redraw."""
    if not auth.can_edit():
        st.session_state["curation.result"] = ("error", "需要编辑权限 Editors only.")
        return
    try:
        with loaders.db_lock(), st.spinner("保存中 Saving…"):
            fn(*args, actor=curation.actor(), **kwargs)
    except (ValueError, KeyError, OSError) as exc:
        st.session_state["curation.result"] = ("error", f"操作失败 Refused: {w.md_escape(exc)}")
        return
    loaders.clear_tables()
    st.session_state["curation.result"] = ("ok", message)
    st.rerun()


# a radio, not st.tabs: a tab is browser-side state, and the rerun of a widget inside it could jump
# back to the first tab; the chosen action is session state and only its form is drawn
action = st.radio("操作", ["改名", "合并", "拆分", "隐藏 / 置顶"], key="curation.action", horizontal=True,
                  label_visibility="collapsed")
if action == "改名":
    name = st.text_input("新名称（留空恢复自动名）", key="curation.name", disabled=not editable, max_chars=80)
    if st.button("保存名称", key="curation.rename", disabled=not editable):
        act(f"已改名 #{topic_id} → {w.md_escape(name) if name.strip() else '自动名'}",
            workspace.rename_topic, topic_id, name)
elif action == "合并":
    sources = st.multiselect("把这些话题并入当前话题", list(others), key="curation.merge_sources",
                             format_func=others.get, disabled=not editable, placeholder="选择话题（可多选）")
    sure = st.checkbox("确认合并：所选话题的笔记并入当前话题，原话题不再单独显示（重建后仍保持合并；"
                       "要分开需再按关键词或笔记拆分）", disabled=not editable or not sources,
                       key=f"curation.merge_confirm.{topic_id}.{'-'.join(map(str, sources))}")   # new choice, new tick
    if st.button("合并", key="curation.merge", disabled=not editable or not sources or not sure):
        act(f"已把 {', '.join(f'#{s}' for s in sources)} 并入 #{topic_id}", workspace.merge_topics, sources, topic_id)
elif action == "拆分":
    how = st.radio("拆分方式", ["按关键词", "按选中笔记"], key="curation.split_how", horizontal=True,
                   disabled=not editable)
    # a form cleared on submit: after a split the fields are empty, so a second click repeats nothing
    with st.form("curation.split_form", clear_on_submit=True, border=False):
        new_name = st.text_input("新话题名称（可选）", key="curation.split_name", disabled=not editable, max_chars=80)
        if how == "按关键词":
            keyword = st.text_input("关键词（标题/正文包含即移出）", key="curation.split_keyword", disabled=not editable)
            go = st.form_submit_button("按关键词拆分", key="curation.split_kw", disabled=not editable)
        else:
            members = ctx.snapshot.assignments.loc[ctx.snapshot.assignments[schema.TOPIC_ID] == topic_id,
                                                   schema.NOTE_ID]
            notes = loaders.notes_by_id(ctx.source, list(members)[:200])
            titles = dict(zip(notes[schema.NOTE_ID].astype(str), notes[schema.TITLE].astype(str)))
            chosen = st.multiselect("选择要移出的笔记", list(titles), key="curation.split_notes",
                                    format_func=lambda n: f"{titles[n][:40]}（{n}）", disabled=not editable,
                                    placeholder="选择笔记（可多选）")
            go = st.form_submit_button("按选中笔记拆分", key="curation.split_ids", disabled=not editable)
    if go and how == "按关键词":
        if not keyword.strip():
            st.session_state["curation.result"] = ("error", "请先填写关键词 Enter a keyword first.")
        else:
            act(f"已按关键词「{w.md_escape(keyword)}」拆分 #{topic_id}", workspace.split_topic, topic_id,
                keyword=keyword.strip(), name=new_name)
    elif go:
        if not chosen:
            st.session_state["curation.result"] = ("error", "请先选择要移出的笔记 Choose notes first.")
        else:
            act(f"已把 {len(chosen)} 篇笔记拆分出 #{topic_id}", workspace.split_topic, topic_id,
                note_ids=chosen, name=new_name)
else:
    hidden, pinned = bool(topic.get("hidden")), bool(topic.get("pinned"))
    a, b = st.columns(2)
    if a.button("取消隐藏" if hidden else "隐藏话题", key="curation.hide", disabled=not editable):
        act(f"#{topic_id} 已取消隐藏" if hidden else
            f"#{topic_id} 已隐藏：总览、搜索、话题选择和简报不再显示它（打开上方「显示已隐藏话题」可找回并取消隐藏）",
            workspace.hide_topic, topic_id, hidden=not hidden)
    if b.button("取消置顶" if pinned else "置顶话题", key="curation.pin", disabled=not editable):
        act(f"#{topic_id} 已{'取消置顶' if pinned else '置顶'}", workspace.pin_topic, topic_id, pinned=not pinned)

result = st.session_state.pop("curation.result", None)
if result is not None:
    (st.success if result[0] == "ok" else st.error)(result[1])

st.markdown("#### 操作记录 Audit trail")
with loaders.db_lock():
    audit = workspace.audit_log()
st.dataframe(curation.audit_table(audit), hide_index=True, key="curation.audit")
retired = curation.retired_ids(ctx.config)
if retired:
    st.caption("消退话题 Retired: " + ", ".join(f"#{t}" for t in sorted(retired)))
