"""The brief's data model: dataclasses for people (``to_markdown``) and machines (``to_json``)."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Angle", "ContentBrief", "NoteRef", "TitlePattern"]


@dataclass
class NoteRef:
    note_id: str
    title: str
    engagement: int
    likes: int = 0
    collects: int = 0
    comments: int = 0
    shares: int = 0
    published_at: str | None = None
    note_type: str | None = None
    role: str = ""              # "representative" (near the centroid) | "top" (best age-adjusted engagement)
    engagement_index: float | None = None   # age-(and author-)adjusted: 1 = as expected for such a note


@dataclass
class Angle:
    label: str
    keywords: list[str]
    n_notes: int
    share: float                # of the topic's notes
    median_engagement: float    # raw engagement (赞+藏+评+转), for reference
    engagement_index: float     # median adjusted engagement of the angle ÷ the topic's
    index_low: float | None     # bootstrap interval of that ratio
    index_high: float | None
    note_ids: list[str]         # evidence: the angle's most engaging notes (adjusted)


@dataclass
class TitlePattern:
    key: str
    name_zh: str
    share_top: float            # among best-performing titles
    share_all: float            # among all titles of the topic
    lift: float                 # share_top ÷ share_all
    n_top: int
    n_all: int
    example_note_ids: list[str]
    examples: list[str]
    kind: str = "pattern"       # "pattern" (anywhere in the title) | "hook" (how the title opens)
    p_value: float | None = None   # one-sided Fisher exact test: pattern more common among the best


@dataclass
class ContentBrief:
    """A topic's content brief. ``to_markdown()`` for people, ``to_json()`` for machines."""

    topic_id: int
    label: str
    run_id: str
    generated_at: str
    n_notes: int
    positioning: str
    positioning_source: str                 # "rule" | "llm:<model>"
    positioning_evidence: list[str]         # note ids
    audience: dict
    keywords: list[str]
    hashtags: list[dict]
    angles: list[Angle]
    title_patterns: list[TitlePattern]
    title_length: dict
    format: dict
    posting: dict
    engagement_range: dict
    kpis: list[dict]
    trend: dict
    opportunity: dict | None
    timing: dict | None
    evidence_notes: list[NoteRef]
    notes: list[str] = field(default_factory=list)   # caveats and fallbacks
    recommended: bool = True                # False for a mixed topic (混合话题): never recommended
    hooks: list[TitlePattern] = field(default_factory=list)
    normalisation: dict = field(default_factory=dict)   # how engagement was adjusted for age / author size
    data_freshness: dict = field(default_factory=dict)  # data end vs the planning date
    scorecard: list[dict] = field(default_factory=list)   # 极光-style quadrants (miner.insights.scorecard)
    tgi: list[dict] = field(default_factory=list)         # 人群纠偏 over-indexing cells (miner.insights.tgi)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(finite(self.to_dict()), ensure_ascii=False, indent=indent, default=json_default,
                          allow_nan=False)

    def to_markdown(self) -> str:
        from miner.insights.briefs.render import render_markdown
        return render_markdown(self)


def num(v):
    """A finite float or None."""
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def finite(obj):
    """NaN/inf → None, recursively (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None
    return obj


def json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (dt.date, dt.datetime, pd.Timestamp)):
        return o.isoformat()
    return str(o)
