"""Table contracts between stages: column names, types and which columns are required.

Every table is a pandas DataFrame (or DuckDB table) with snake_case English columns; Chinese text
lives only in values. Timestamps end in ``_at`` and are timezone-aware (Asia/Shanghai).

Input tables (validated by :mod:`miner.ingest`; bad rows go to a rejects file with the reason):

``notes``        one row per note (XHS 笔记)
``engagements``  one row per user action on a note
``audience``     one row per user (profile)
``aips_stages``  per-user brand/SPU AIPS stage snapshots (认知 A, 兴趣 I, 深度兴趣 TI, 购买 P, 分享 S)
``orders``       first-party order backflow (一方数据)
``spend``        optional marketing spend per note (for CPE/ROI)

Output tables of a topic snapshot (written by :mod:`miner.topics.snapshot`):

``topics``       one row per topic
``assignments``  one row per note: note_id → topic_id (−1 = outlier) and score
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

TZ = "Asia/Shanghai"

# dtype vocabulary used by validators: "str", "text", "int", "float", "datetime", "list", "bool", "date"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    required: bool = True
    description: str = ""
    allowed: tuple[str, ...] | None = None   # closed vocabulary, if any
    min_value: float | None = None


@dataclass(frozen=True)
class TableSchema:
    name: str
    key: tuple[str, ...]           # duplicate detection key ("latest wins" for notes)
    columns: tuple[Column, ...]
    hashed_ids: tuple[str, ...] = ()   # user id columns, salted-hashed on ingest, never stored raw
    # Columns a file may omit, with the value every row then gets (a column that IS in the file
    # must still be filled where ``Column.required``). ``text_id`` names the id column filled with
    # a stable hash of the text columns when the file has no such column.
    defaults: tuple[tuple[str, object], ...] = ()
    text_id: str | None = None

    @property
    def required(self) -> list[str]:
        """Columns every file must have (required and without a default)."""
        absent_ok = {name for name, _ in self.defaults} | ({self.text_id} if self.text_id else set())
        return [c.name for c in self.columns if c.required and c.name not in absent_ok]

    @property
    def text_columns(self) -> list[str]:
        """Text columns; a file needs at least one of them, and each row text in one of them."""
        return [c.name for c in self.columns if c.dtype == "text"]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


# ---- note columns (constants used across stages) -------------------------------------------
NOTE_ID = "note_id"
TITLE = "title"
BODY = "body"
TAGS = "tags"
AUTHOR_ID = "author_id"
PUBLISHED_AT = "published_at"
LIKES, COLLECTS, COMMENTS, SHARES = "likes", "collects", "comments", "shares"
ENGAGEMENT_COLS = (LIKES, COLLECTS, COMMENTS, SHARES)
CATEGORY = "category"
NOTE_TYPE = "note_type"
IS_COMMERCIAL = "is_commercial"
AUTHOR_NAME = "author_name"
IP_LOCATION = "ip_location"
COUNTS_CAPPED = "counts_capped"   # True when a count was shown capped ('10w+', '999+'): stored at its floor

NOTES = TableSchema(
    name="notes",
    key=(NOTE_ID,),
    columns=(
        Column(NOTE_ID, "str", description="unique note id"),
        Column(TITLE, "text", description="note title (may be empty if body is not)"),
        Column(BODY, "text", description="note body text"),
        Column(TAGS, "list", required=False, description="hashtags without '#'; list, or '|'/','-joined string"),
        Column(AUTHOR_ID, "str", description="author/creator id"),
        Column(PUBLISHED_AT, "datetime", description="publish time; naive times are Asia/Shanghai"),
        Column(LIKES, "int", min_value=0),
        Column(COLLECTS, "int", min_value=0),
        Column(COMMENTS, "int", min_value=0),
        Column(SHARES, "int", min_value=0),
        Column(CATEGORY, "str", required=False, description="platform/category label, if known"),
        Column(NOTE_TYPE, "str", required=False, description="image | video"),
        Column(IS_COMMERCIAL, "bool", required=False, description="brand-sponsored (商业笔记) flag"),
        Column(AUTHOR_NAME, "str", required=False, description="author nickname, if known"),
        Column(IP_LOCATION, "str", required=False, description="IP属地 shown on the note, if known"),
        Column(COUNTS_CAPPED, "bool", required=False,
               description="a count was capped ('10w+', '999+') and is stored at its floor"),
    ),
    # Text-only import: a file needs title or body; the rest get these values when absent.
    defaults=((TITLE, ""), (BODY, ""), (AUTHOR_ID, None), (PUBLISHED_AT, None),
              (LIKES, 0), (COLLECTS, 0), (COMMENTS, 0), (SHARES, 0), (COUNTS_CAPPED, False)),
    text_id=NOTE_ID,
)

# ---- audience / commerce ----------------------------------------------------------------------
USER_ID = "user_id"
ACTIONS = ("impression", "read", "like", "collect", "comment", "share", "search")
AIPS_STAGES = ("A", "I", "TI", "P", "S")   # 认知, 兴趣, 深度兴趣, 购买, 分享
AIPS_STAGE_NAMES = {"A": "认知", "I": "兴趣", "TI": "深度兴趣", "P": "购买", "S": "分享"}

ENGAGEMENTS = TableSchema(
    name="engagements",
    key=(USER_ID, NOTE_ID, "action", "ts"),
    columns=(
        Column(USER_ID, "str"),
        Column(NOTE_ID, "str"),
        Column("action", "str", allowed=ACTIONS),
        Column("ts", "datetime"),
    ),
    hashed_ids=(USER_ID,),
)

AUDIENCE = TableSchema(
    name="audience",
    key=(USER_ID,),
    columns=(
        Column(USER_ID, "str"),
        Column("gender", "str", allowed=("F", "M", "U")),
        Column("age_band", "str", allowed=("<18", "18-24", "25-34", "35-44", "45+")),
        Column("city_tier", "str", allowed=("1", "new1", "2", "3", "4+")),
        Column("interests", "list", required=False),
    ),
    hashed_ids=(USER_ID,),
)

AIPS = TableSchema(
    name="aips_stages",
    key=(USER_ID, "brand", "date"),
    columns=(
        Column(USER_ID, "str"),
        Column("brand", "str", description="brand or SPU"),
        Column("stage", "str", allowed=AIPS_STAGES),
        Column("date", "date"),
    ),
    hashed_ids=(USER_ID,),
)

ORDERS = TableSchema(
    name="orders",
    key=("order_id",),
    columns=(
        Column("order_id", "str"),
        Column(USER_ID, "str"),
        Column("brand", "str", description="brand or SPU"),
        Column("amount", "float", min_value=0),
        Column("ts", "datetime"),
        Column("channel", "str", required=False),
    ),
    hashed_ids=(USER_ID,),
)

SPEND = TableSchema(
    name="spend",
    key=(NOTE_ID,),
    columns=(
        Column(NOTE_ID, "str"),
        Column("amount", "float", min_value=0, description="marketing spend on the note (CNY)"),
    ),
)

INPUT_SCHEMAS = {s.name: s for s in (NOTES, ENGAGEMENTS, AUDIENCE, AIPS, ORDERS, SPEND)}

# ---- snapshot outputs ---------------------------------------------------------------------------
TOPIC_ID = "topic_id"          # int; −1 = outlier / noise
OUTLIER = -1
SCORE = "score"                # cosine similarity of a note to its topic centroid

TOPICS_COLUMNS = {
    TOPIC_ID: "int, permanent id (miner.topics.registry); rows in id order, row i ↔ centroids row i",
    "label": "short Chinese label, e.g. '露营·装备·平价' (a planner's name when renamed)",
    "auto_label": "the label c-TF-IDF gives",
    "keywords": "list[str], c-TF-IDF top keywords, best first",
    "keyword_scores": "list[float]",
    "size": "int, notes assigned",
    "representative_note_ids": "list[str], near the centroid and mutually diverse",
    "coherence": "float, mean NPMI of the keyword pairs over the notes (−1…1)",
    "is_mixed": "bool, coherence below the labeller's floor: 混合话题 (sort last, never recommend)",
    "hidden": "bool, hidden by curation", "pinned": "bool, pinned by curation",
    "born_at": "timestamp the permanent id was issued",
}
RAW_TOPIC_ID = "raw_topic_id"  # the model's own topic of a note, before curation (merges, splits)
ASSIGNMENTS_COLUMNS = {NOTE_ID: "str", TOPIC_ID: "int (−1 outlier), as shown after curation", SCORE: "float",
                       RAW_TOPIC_ID: "int (−1 outlier), before curation"}
ENGAGEMENT = "engagement"      # likes + collects + comments + shares of a note (public counts)


def hidden_topic_ids(topics) -> set[int]:
    """Topics hidden by curation (话题管理): what a planner reads leaves them out unless asked for."""
    if topics is None or "hidden" not in topics:
        return set()
    return {int(t) for t in topics.loc[topics["hidden"].fillna(False).astype(bool), TOPIC_ID]}


def note_id_column(frame) -> "pd.Series":
    """``frame``'s note ids as strings. Pyarrow-backed ids (a build's memory-mapped notes, see
    :mod:`miner.ingest.notes_file`) stay so: no Python string is made per note."""
    ids = frame[NOTE_ID]
    if isinstance(ids.dtype, pd.ArrowDtype) and str(ids.dtype.pyarrow_dtype) in ("string", "large_string"):
        return ids
    return ids.astype(str)


def strictly_increasing(values: "pd.Series") -> bool:
    """True when each value is greater than the one before (sorted and unique), in one pass;
    pyarrow-backed strings compare in Arrow (byte order, which is Python's order for UTF-8)."""
    if len(values) < 2:
        return True
    if isinstance(values.dtype, pd.ArrowDtype):
        import pyarrow.compute as pc
        arr = values.array._pa_array
        return bool(pc.all(pc.greater(arr[1:], arr[:-1])).as_py())
    return bool(values.is_monotonic_increasing and values.is_unique)


def engagement(frame) -> "pd.Series":
    """Total engagement per row: likes + collects + comments + shares (the one home of this sum).

    Columns of :data:`ENGAGEMENT_COLS` that the frame lacks count as 0, as do missing values.
    """
    import pandas as pd
    present = [c for c in ENGAGEMENT_COLS if c in frame.columns]
    if not present:
        return pd.Series(0.0, index=frame.index, name="engagement")
    values = frame[present].apply(pd.to_numeric, errors="coerce").fillna(0)
    return values.sum(axis=1).astype("float64").rename("engagement")


def list_cell(value, split_text: bool = False) -> list:
    """One cell of a list column (tags, tokens, keywords) as a Python list.

    Lists, tuples and arrays (as parquet/DuckDB return them) keep their items; None and NaN give
    ``[]``; a string is one item, or with ``split_text`` is split on ``|``, commas and whitespace
    (hand-made tag cells such as ``"露营|户外"``).
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and np.isnan(value):
        return []
    if split_text and isinstance(value, str):
        return split_tags(value)
    return [value]


_TAG_SEPARATORS = re.compile(r"[|,，、;；]")
_TAG_STRIP = " \t\r\n|,，、;；#\ufeff"


def split_tags(value) -> list[str]:
    """The one tag-parsing rule: a tag cell (or typed tag text) → tags in order, without duplicates.

    ``['a', 'b']`` keeps its items; ``'["a", "b"]'`` (JSON) is parsed; in text, ``#a# #b[话题]#``
    hashtags win, else ``|``, commas, ``、`` and semicolons separate, else whitespace does
    (so ``'City Walk|露营'`` keeps "City Walk" whole). Items are stripped of separators, ``#`` and
    XHS's ``[话题]`` suffix; None, NaN and empty items are dropped.
    """
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [str(v) for v in value if v is not None and not (isinstance(v, float) and np.isnan(v))]
    else:
        text = str(value).strip()
        items = None
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = json.loads(text)
                items = [str(v) for v in parsed if v is not None] if isinstance(parsed, list) else None
            except json.JSONDecodeError:
                pass
        if items is None:
            if "#" in text:
                items = text.split("#")
            elif _TAG_SEPARATORS.search(text):
                items = _TAG_SEPARATORS.split(text)
            else:
                items = text.split()
    out: list[str] = []
    for item in items:
        tag = re.sub(r"\[话题\]$", "", item.strip(_TAG_STRIP)).strip()
        if tag and tag not in out:
            out.append(tag)
    return out

