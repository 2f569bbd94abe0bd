"""数据管理 Data: upload tables with a validation report, rebuild topics, see what is serving."""
from pathlib import Path

import streamlit as st

from miner.errors import WorkspaceBusyError
from miner.ui import auth, loaders, manage, widgets as w
from miner.ui.upload import column_mapper

ctx = w.page_setup("数据管理 Data")
workspace = loaders.workspace(ctx.config)
w.defaults({"data.table": "notes", "data.mode": "upsert"})
editable = auth.can_edit()             # viewers see this page but cannot upload, replace or rebuild

st.subheader("当前服务的快照 Serving snapshot")
meta = ctx.snapshot.meta
st.code(ctx.source.run_id, language=None)
c = st.columns(3)
c[0].metric("笔记", f"{len(ctx.snapshot.notes):,}")
c[1].metric("话题", f"{len(ctx.snapshot.topics):,}")
c[2].metric("离群占比", f"{(ctx.snapshot.assignments['topic_id'] < 0).mean():.1%}")
st.caption(f"模型 {w.md_escape(meta.get('embedding', {}).get('model_id', '?'))} · "
           f"创建于 {w.md_escape(meta.get('created_at', '?'))} · 数据指纹 {w.md_escape(meta.get('data_hash', '?'))}")
with st.expander("全部快照 All snapshots"):
    st.dataframe(workspace.snapshot_catalog(), hide_index=True, key="data.snapshots")

st.subheader("上传数据 Upload")
st.caption("支持 CSV / TSV / JSONL / Excel (.xlsx) / Parquet；编码自动识别 (UTF-8 / GBK)。用户 ID 入库前加盐哈希。")
if not editable:
    st.info("只读账户：上传、替换与重建需要编辑权限 Viewer account: upload, replace and rebuild need an editor.")
a, b = st.columns([1, 1])
table = a.selectbox("数据表", list(manage.TABLE_NAMES_ZH), key="data.table",
                    format_func=manage.TABLE_NAMES_ZH.get)
mode = b.radio("写入方式", ["upsert", "replace"], key="data.mode", horizontal=True, disabled=not editable,
               format_func={"upsert": "合并更新 upsert", "replace": "整表替换 replace"}.get)
upload = st.file_uploader("选择文件", type=manage.UPLOAD_TYPES, key="data.upload", disabled=not editable)
st.caption("可直接导入常见导出格式：MediaCrawler 小红书笔记（note_id/title/desc/time/liked_count…）、"
           "中文表头（标题/正文/点赞数/收藏数/评论数/分享数/发布时间/作者）。只有标题或正文也能导入（趋势需要发布时间）。")
column_map = column_mapper(workspace, upload.name, upload.getvalue(), table) if upload and editable else None
if st.button("校验并导入 Validate & import", key="data.ingest", disabled=upload is None or not editable,
             type="primary") and editable and upload is not None:
    try:
        with loaders.db_lock(), st.spinner("校验中 Validating…"):
            st.session_state["data.report"] = workspace.ingest_upload(upload.name, upload.getvalue(),
                                                                      table, mode, column_map=column_map)
        loaders.clear_tables()
    except WorkspaceBusyError:
        st.session_state["data.report"] = None
        st.warning("工作区正忙（另一个导入或构建正在写入），请稍后重试 Workspace busy, retry in a moment.")
    except (ValueError, OSError) as exc:
        st.session_state["data.report"] = None
        st.error(f"导入失败，未写入任何数据 Import refused, nothing written: {w.md_escape(exc)}")

report = st.session_state.get("data.report")
if report is not None:
    st.markdown("#### 校验报告 Validation report")
    r = st.columns(4)
    r[0].metric("读取", f"{report.rows_read:,}")
    r[1].metric("接受", f"{report.rows_accepted:,}")
    r[2].metric("拒绝", f"{report.rows_rejected:,}")
    r[3].metric("重复合并", f"{report.duplicates_resolved:,}")
    w.plain(report.summary())
    if report.ignored_columns:
        w.plain("未识别的列（已忽略）: " + ", ".join(report.ignored_columns))
    for notice in getattr(report, "notices", []):
        w.plain("提示: " + str(notice))
    if report.errors:
        st.dataframe(manage.report_errors(report), hide_index=True, key="data.errors")
    rejects = Path(report.rejects_path) if report.rejects_path else None
    if rejects is not None and rejects.exists():
        st.download_button("下载拒绝明细 rejects CSV", data=rejects.read_bytes(), file_name=rejects.name,
                           mime="text/csv", key="data.rejects")
    if report.table == "notes" and report.rows_accepted:
        st.info("笔记已更新：点击下方「重建话题」生成新快照 Notes changed: rebuild to mine them.")

st.subheader("工作区数据 Workspace tables")
try:
    with loaders.db_lock():
        counts = workspace.table_counts()
    st.dataframe(counts, hide_index=True, key="data.tables")
except WorkspaceBusyError:
    st.warning("工作区正忙（另一个进程正在写入），稍后刷新 Workspace busy; refresh in a moment.")

st.subheader("增量更新 Update topics")
st.caption("不重建：只把快照里还没有的笔记（上面导入的新笔记）归入现有话题，刷新其余笔记的互动数，"
           "并为持续出现的新笔记群分配新话题编号。改名、合并、隐藏等管理操作保持不变。")
if st.button("增量更新 Update", key="data.update", disabled=not editable) and editable:
    manage.run_update(workspace, ctx)
update_status = st.session_state.get("data.update_result")
if update_status is not None:
    (st.success if update_status[0] == "ok" else st.error)(update_status[1])

st.subheader("重建话题 Rebuild topics")
st.caption("用工作区的全部笔记重新挖掘话题。构建成功后才切换快照；失败时继续使用当前快照。")
if st.button("重建话题 Rebuild", key="data.rebuild", disabled=not editable) and editable:
    lock = loaders.build_lock()
    if not lock.acquire(blocking=False):
        st.warning("另一个重建正在进行，请稍后刷新 Another rebuild is running; refresh in a while.")
        st.stop()
    bar = st.progress(0.0, text="开始 starting…")

    def progress(stage: str, frac: float) -> None:
        bar.progress(min(max(frac, 0.0), 1.0), text=f"{stage} · {frac:.0%}")

    try:
        with loaders.db_lock():          # the database is read only here; the build itself runs unlocked
            notes = workspace.notes()
        result = workspace.build(notes=notes, embedder=loaders.embedder(ctx.config),
                                 on_progress=progress).result
    except Exception as exc:              # any failure: report it; `latest` still names the old snapshot
        st.session_state["data.build"] = ("error", f"重建失败，继续使用快照 {ctx.source.run_id} "
                                                   f"Rebuild failed; still serving {ctx.source.run_id}: {w.md_escape(exc)}")
    else:
        st.session_state["data.build"] = ("ok", result.summary())
        loaders.clear_tables()
    finally:
        lock.release()
    if st.session_state["data.build"][0] == "ok":
        st.rerun()                         # redraw everything on the new snapshot
status = st.session_state.get("data.build")
if status is not None:
    (st.success if status[0] == "ok" else st.error)(status[1])
