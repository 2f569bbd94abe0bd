"""Column-mapping presets for common exports, auto-detected from the header, and mapping suggestions.

A preset maps an export's column names onto the schema's (``desc`` → ``body``). Presets:

``mediacrawler_xhs``  MediaCrawler's 小红书 note export: note_id, title, desc, time (ms), user_id,
                      nickname, liked_count, collected_count, comment_count, share_count, tag_list,
                      ip_location, type (``normal`` → ``image``)
``zh_generic``        Chinese headers: 笔记ID, 标题, 正文/内容, 标签, 作者ID/作者, 作者昵称, 发布时间,
                      点赞数, 收藏数, 评论数, 分享数, 分类, 类型, IP属地

A header that already is a schema column name is never renamed, and each schema column takes the
first alias found. :func:`suggest_column_map` proposes a full mapping for a column-mapper UI.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from miner.schema import INPUT_SCHEMAS, NOTES, TableSchema

__all__ = ["Preset", "PRESETS", "detect_preset", "preset_map", "suggest_column_map", "did_you_mean",
           "normalize_name"]

_CUTOFF = 0.75          # difflib ratio for "did you mean" ('tag' ~ 'tags' is 0.86)


@dataclass(frozen=True)
class Preset:
    name: str
    table: str
    columns: tuple[tuple[str, str], ...]           # (source header, schema column), in priority order
    requires: tuple[tuple[str, ...], ...]          # each group: at least one of these headers present
    min_hits: int = 2                              # source headers that must be present
    values: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()   # per column: (from, to) values


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        "mediacrawler_xhs", NOTES.name,
        columns=(("note_id", "note_id"), ("title", "title"), ("desc", "body"), ("time", "published_at"),
                 ("user_id", "author_id"), ("nickname", "author_name"), ("liked_count", "likes"),
                 ("collected_count", "collects"), ("comment_count", "comments"), ("share_count", "shares"),
                 ("tag_list", "tags"), ("ip_location", "ip_location"), ("type", "note_type")),
        requires=(("desc",), ("liked_count", "collected_count", "comment_count", "share_count")),
        values=(("note_type", (("normal", "image"),)),),
    ),
    Preset(
        "zh_generic", NOTES.name,
        columns=(("笔记id", "note_id"), ("笔记编号", "note_id"), ("标题", "title"), ("笔记标题", "title"),
                 ("正文", "body"), ("内容", "body"), ("笔记内容", "body"), ("笔记正文", "body"), ("描述", "body"),
                 ("标签", "tags"), ("话题", "tags"), ("话题标签", "tags"),
                 ("作者id", "author_id"), ("博主id", "author_id"), ("用户id", "author_id"),
                 ("作者昵称", "author_name"), ("昵称", "author_name"), ("博主昵称", "author_name"),
                 ("作者", "author_id"), ("博主", "author_id"), ("作者", "author_name"), ("博主", "author_name"),
                 ("发布时间", "published_at"), ("发布日期", "published_at"), ("时间", "published_at"),
                 ("点赞数", "likes"), ("点赞", "likes"), ("点赞量", "likes"),
                 ("收藏数", "collects"), ("收藏", "collects"), ("收藏量", "collects"),
                 ("评论数", "comments"), ("评论", "comments"), ("评论量", "comments"),
                 ("分享数", "shares"), ("分享", "shares"), ("转发数", "shares"), ("分享量", "shares"),
                 ("分类", "category"), ("类目", "category"), ("笔记类型", "note_type"), ("类型", "note_type"),
                 ("是否商业笔记", "is_commercial"), ("商业笔记", "is_commercial"),
                 ("ip属地", "ip_location")),
        requires=(("标题", "笔记标题", "正文", "内容", "笔记内容", "笔记正文", "描述"),),
    ),
)}


def normalize_name(name) -> str:
    """A header as matched: trimmed, lower-cased, BOM dropped."""
    return str(name).strip().lstrip("\ufeff").strip().lower()


def detect_preset(headers, table: str = NOTES.name) -> str | None:
    """The preset whose required headers are all present (most matching headers wins), or None."""
    names = {normalize_name(h) for h in headers}
    best, best_hits = None, 0
    for preset in PRESETS.values():
        if preset.table != table or not all(names & set(group) for group in preset.requires):
            continue
        hits = len(names & {src for src, _ in preset.columns})
        if hits >= preset.min_hits and hits > best_hits:
            best, best_hits = preset.name, hits
    return best


def preset_map(headers, preset: str | Preset, schema: TableSchema) -> dict[str, str]:
    """``{normalized header: schema column}`` renames a preset makes on these headers."""
    preset = PRESETS[preset] if isinstance(preset, str) else preset
    names = [normalize_name(h) for h in headers]
    taken = {n for n in names if n in schema.names}       # a header already named right stays
    out: dict[str, str] = {}
    for source, target in preset.columns:
        if source in names and source not in taken and source not in out and target not in taken:
            out[source] = target
            taken.add(target)
    return {s: t for s, t in out.items() if s != t}


def did_you_mean(name: str, schema: TableSchema, taken=()) -> str | None:
    """The schema column a misspelt header probably meant ('tag' → 'tags'), or None."""
    key = normalize_name(name)
    candidates = {c: c for c in schema.names if c not in taken}
    for preset in PRESETS.values():
        if preset.table == schema.name:
            candidates.update({src: tgt for src, tgt in preset.columns if tgt not in taken})
    if key in candidates and candidates[key] != key:
        return candidates[key]                            # a known alias ('desc' → 'body')
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=_CUTOFF)
    return candidates[close[0]] if close else None


def suggest_column_map(headers, table: str | TableSchema = NOTES.name) -> dict[str, str]:
    """A proposed ``{file header: schema column}`` for every header that maps somewhere.

    Exact names map to themselves; then the detected preset's aliases; then near misses
    (``did_you_mean``). Each schema column is proposed for one header at most. Pass the result
    (edited) as ``ingest_file(..., column_map=...)``.
    """
    schema = table if isinstance(table, TableSchema) else INPUT_SCHEMAS[table]
    headers = [str(h) for h in headers]
    out: dict[str, str] = {h: normalize_name(h) for h in headers if normalize_name(h) in schema.names}
    taken = set(out.values())
    preset = detect_preset(headers, schema.name)
    renames = preset_map(headers, preset, schema) if preset else {}
    for h in headers:
        key = normalize_name(h)
        if h in out:
            continue
        target = renames.get(key) or did_you_mean(h, schema, taken)
        if target and target not in taken:
            out[h] = target
            taken.add(target)
    return out
