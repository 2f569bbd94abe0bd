"""The upload page's column mapper: each file header → a table column (or ignored).

Proposals come from :meth:`miner.workspace.Workspace.upload_columns` (exact names, the detected
export preset such as MediaCrawler's XHS notes, near misses); the user corrects them before the
import. Header names are user text: they are shown through widgets' labels only as plain strings.
"""
from __future__ import annotations

import hashlib

import streamlit as st

from miner.schema import INPUT_SCHEMAS

IGNORE = ""


def column_mapper(workspace, filename: str, data: bytes, table: str) -> dict[str, str] | None:
    """Draw one select box per header and return ``{header: column}``; None when unreadable."""
    digest = hashlib.sha1(data[:65536] + filename.encode() + table.encode()).hexdigest()[:10]
    try:
        headers, proposed = _columns(workspace, filename, data, table, digest)
    except (ValueError, OSError) as exc:
        from miner.ui.widgets import md_escape     # the message can quote the file's own text
        st.warning("无法读取表头 Cannot read the header: " + md_escape(str(exc)[:300]), icon=":material/warning:")
        return None
    columns = INPUT_SCHEMAS[table].names
    options = [IGNORE, *columns]
    with st.expander(f"列映射 Column mapping（{len(headers)} 列，已自动匹配 {len(proposed)} 列）",
                     expanded=len(proposed) < len(headers)):
        st.caption("左侧为文件中的列名，右侧选择对应的数据表字段；选「忽略」则不导入该列。")
        mapping: dict[str, str] = {}
        grid = st.columns(3)
        for i, header in enumerate(headers):
            default = proposed.get(header, IGNORE)
            chosen = grid[i % 3].selectbox(
                _label(header), options, index=options.index(default) if default in options else 0,
                key=f"data.map.{digest}.{i}", format_func=lambda c: "（忽略 ignore）" if c == IGNORE else c)
            if chosen != IGNORE:
                mapping[header] = chosen
    return mapping


@st.cache_data(max_entries=8, show_spinner=False)
def _columns(_workspace, filename: str, data: bytes, table: str, digest: str):
    return _workspace.upload_columns(filename, data, table)


def _label(header: str) -> str:
    """A header as a widget label: markdown-significant characters escaped, length bounded."""
    from miner.ui.widgets import md_escape
    text = header if len(header) <= 40 else header[:40] + "…"
    return md_escape(text) or "（空列名）"
