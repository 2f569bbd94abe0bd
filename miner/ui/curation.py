"""话题管理 helpers: who acts, hidden/pinned ordering, flags, audit and history tables (the work is
done by :class:`miner.workspace.Workspace`, which calls :mod:`miner.topics.curation`)."""
from __future__ import annotations

import json
import os

import pandas as pd
import streamlit as st

from miner import schema
from miner.ui import auth, loaders

NEW_DAYS_DEFAULT = 7               # 新话题 = born within this many days (MINER_NEW_TOPIC_DAYS)
SHOW_HIDDEN_KEY = "curation.show_hidden"
ACTION_ZH = {"rename": "改名", "merge": "合并", "split": "拆分", "hide": "隐藏", "unhide": "取消隐藏",
             "pin": "置顶", "unpin": "取消置顶"}
EVENT_ZH = {"born": "诞生于", "merged": "合并", "split": "拆分", "retired": "消退", **ACTION_ZH}
AUDIT_COLUMNS = ["时间", "操作人", "操作", "话题", "修改前", "修改后"]


def new_days() -> int:
    try:
        return max(1, int(os.environ.get("MINER_NEW_TOPIC_DAYS", NEW_DAYS_DEFAULT)))
    except ValueError:
        return NEW_DAYS_DEFAULT


def actor() -> str:
    """Who curates: the signed-in user, else the configured MINER_CURATOR_NAME, else 本地用户."""
    return auth.current_user() or os.environ.get("MINER_CURATOR_NAME", "").strip() or "本地用户"


def show_hidden() -> bool:
    """Editors may tick 显示已隐藏话题; everyone else never sees hidden topics."""
    return auth.can_edit() and bool(st.session_state.get(SHOW_HIDDEN_KEY, False))


def hidden_toggle() -> None:
    if auth.can_edit():
        st.toggle("显示已隐藏话题", key=SHOW_HIDDEN_KEY,
                  help="已隐藏的话题默认不出现在总览、选题搜索、话题选择和简报里；打开后在本次会话的各页面显示")


def keep_show_hidden() -> None:
    """Keep the 显示已隐藏话题 choice on pages that do not draw the toggle (Streamlit drops a
    widget's state on a page where it is not drawn; re-storing it is the documented way out)."""
    if SHOW_HIDDEN_KEY in st.session_state:
        st.session_state[SHOW_HIDDEN_KEY] = st.session_state[SHOW_HIDDEN_KEY]


def visible_topics(topics: pd.DataFrame, include_hidden: bool | None = None) -> pd.DataFrame:
    """Topics without the hidden ones (unless asked), pinned first, then by size."""
    include_hidden = show_hidden() if include_hidden is None else include_hidden
    t = topics.copy()
    for col in ("hidden", "pinned"):
        t[col] = t[col].fillna(False).astype(bool) if col in t else False
    if not include_hidden:
        t = t[~t["hidden"]]
    return t.sort_values(["pinned", "size"], ascending=[False, False], kind="stable")


def flag_text(row, is_new: set[int]) -> str:
    tid = int(row[schema.TOPIC_ID])
    marks = (["📌置顶"] if row.get("pinned") else []) + (["新话题"] if tid in is_new else []) + \
        (["已隐藏"] if row.get("hidden") else [])
    return " ".join(f"[{m}]" for m in marks)


def new_topic_ids(config) -> set[int]:
    flags = loaders.topic_flags(config, new_days())
    return set() if flags is None else {int(t) for t in flags.loc[flags["is_new"], "topic_id"]}


def retired_ids(config) -> set[int]:
    flags = loaders.topic_flags(config, new_days())
    return set() if flags is None else {int(t) for t in flags.loc[flags["is_retired"], "topic_id"]}


def _json_text(text) -> str:
    if not isinstance(text, str) or not text:
        return ""
    try:
        obj = json.loads(text)
    except ValueError:
        return text
    if isinstance(obj, dict):
        return "，".join(f"{k}={v}" for k, v in obj.items() if v not in (None, [], ""))
    if isinstance(obj, list):
        return "；".join(_json_text(json.dumps(o, ensure_ascii=False)) for o in obj)
    return str(obj)


FIELD_ZH = {"label": "名称", "hidden": "隐藏", "pinned": "置顶", "curated_into": "并入"}


def _loads(text):
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _field(name: str, value) -> str:
    if name == "label":
        return f"名称「{value}」" if value else "名称 自动名"
    if name == "curated_into":
        return f"并入 #{value}" if value is not None else "独立显示"
    if isinstance(value, bool):
        return f"{FIELD_ZH.get(name, name)} {'是' if value else '否'}"
    return f"{FIELD_ZH.get(name, name)} {value}"


def _ids(ids) -> str:
    return "、".join(f"#{int(t)}" for t in ids)


def change_text(action: str, before_json, after_json) -> tuple[str, str]:
    """修改前 / 修改后 of one audit row in a planner's words: only what the action changed."""
    before, after = _loads(before_json), _loads(after_json)
    if action == "merge" and isinstance(after, dict):
        merged = after.get("merged") or []
        return f"{_ids(merged)} 独立显示", f"{_ids(merged)} 并入 #{after.get('topic_id')}"
    if action == "split" and isinstance(after, dict):
        how = (f"关键词「{after['keyword']}」" if after.get("keyword")
               else f"选中的 {len(after.get('note_ids') or [])} 篇笔记")
        name = f"「{after['label']}」" if after.get("label") else "（自动名）"
        return f"#{after.get('parent_id')} 的笔记", f"{how}拆出为新话题 #{after.get('topic_id')} {name}"
    if isinstance(before, dict) and isinstance(after, dict):
        changed = [k for k in FIELD_ZH if before.get(k) != after.get(k)]
        if changed:
            return ("，".join(_field(k, before.get(k)) for k in changed),
                    "，".join(_field(k, after.get(k)) for k in changed))
    return _json_text(before_json), _json_text(after_json)


def audit_table(audit: pd.DataFrame) -> pd.DataFrame:
    if audit is None or audit.empty:
        return pd.DataFrame(columns=AUDIT_COLUMNS)
    changes = [change_text(a, b, c) for a, b, c in zip(audit["action"], audit["before_json"], audit["after_json"])]
    return pd.DataFrame({
        "时间": pd.to_datetime(audit["acted_at"]).dt.strftime("%Y-%m-%d %H:%M:%S"),
        "操作人": audit["actor"].astype(str),
        "操作": [ACTION_ZH.get(a, a) for a in audit["action"]],
        "话题": [f"#{int(t)}" if pd.notna(t) else "" for t in audit["topic_id"]],
        "修改前": [b for b, _ in changes],
        "修改后": [a for _, a in changes]})


def history_table(history: pd.DataFrame) -> pd.DataFrame:
    """诞生于 / 合并自 / 拆分为 / 由谁改名: one row per event, oldest first."""
    cols = ["时间", "事件", "操作人", "说明"]
    if history is None or history.empty:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame({
        "时间": pd.to_datetime(history["at"]).dt.strftime("%Y-%m-%d %H:%M"),
        "事件": [EVENT_ZH.get(e, e) for e in history["event"]],
        "操作人": history["actor"].fillna("系统").astype(str),
        "说明": [d if k == "lineage" else (_change(e, d)) for k, e, d in
               zip(history["kind"], history["event"], history["detail"])]})


def _change(event: str, detail: str) -> str:
    before, _, after = str(detail).partition(" → ")
    if event == "rename":
        b, a = json.loads(before or "{}"), json.loads(after or "{}")
        return f"由谁改名：{b.get('label') or '自动名'} → {a.get('label') or '自动名'}"
    if event == "merge":
        merged = (_loads(after) or {}).get("merged") or []
        return f"合并自 {_ids(merged)}（手动合并）"
    was, now = change_text(event, before, after)
    return f"{was} → {now}"


def shown_rows(table: pd.DataFrame, topics: pd.DataFrame) -> pd.DataFrame:
    """Rows of a per-topic table whose topic is not hidden (editors may show them), with 标记."""
    keep = visible_topics(topics)
    out = table[table[schema.TOPIC_ID].isin(keep[schema.TOPIC_ID])].copy()
    fresh = new_topic_ids(loaders.app_config())
    marks = {int(r[schema.TOPIC_ID]): flag_text(r, fresh) for _, r in keep.iterrows()}
    out.insert(min(2, len(out.columns)), "标记", [marks.get(int(t), "") for t in out[schema.TOPIC_ID]])
    return out


def pinned_first(table: pd.DataFrame, topics: pd.DataFrame) -> pd.DataFrame:
    pinned = set(topics.loc[topics.get("pinned", pd.Series(False, index=topics.index)).fillna(False).astype(bool),
                            schema.TOPIC_ID])
    order = ~table[schema.TOPIC_ID].isin(pinned)
    return table.assign(_o=order).sort_values("_o", kind="stable").drop(columns="_o")


def topic_header(ctx, topic_id: int, topic) -> None:
    """Flags and the history of one topic on 话题详情 (the actions are on 话题管理)."""
    marks = flag_text({**topic.to_dict(), schema.TOPIC_ID: topic_id}, new_topic_ids(ctx.config))
    born = topic.get("born_at")
    st.caption(" · ".join(filter(None, [marks, f"诞生于 {pd.Timestamp(born):%Y-%m-%d}" if pd.notna(born) else ""])))
    with st.expander("话题历史 History（诞生于 / 合并自 / 拆分为 / 由谁改名）"):
        with loaders.db_lock():
            history = loaders.workspace(ctx.config).topic_history(topic_id)
        st.dataframe(history_table(history), hide_index=True, key="detail.history")
