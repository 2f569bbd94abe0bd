"""Content brief (选题简报) for one topic, built from the snapshot's own notes — no LLM needed.

Every claim carries its evidence: the note ids it rests on and the numbers behind it.

* **engagement** = likes + collects + comments + shares (public counts), adjusted for note age and,
  when follower counts exist, author size (:mod:`.stats`): ``engagement_index`` 1 = as expected.
  **best-performing** notes are the topic's top quartile by that index.
* **angles** (切入角度) — spherical k-means sub-groups of the topic; only those with at least
  ``min_angle_size`` notes are listed, each with its share and the ratio of its median index to the
  topic's, with a bootstrap interval.
* **title patterns and hooks** (:mod:`.patterns`) — more common among the best titles (lift, Fisher p),
  with example note ids.
* **format / posting time** — recommended only when Kruskal–Wallis over groups of at least
  ``min_group_size`` notes gives p < 0.05; otherwise the brief says there is no significant difference.
* **timing** — the topic's own season (``miner.insights.seasons``, when present) or the marketing
  node whose 蓄水 starts next; the day count is never negative (the next occurrence is used).
* **recent / freshness** — measured to the planning date ``today``; data older than ``stale_days``
  is said to be so.
* **scorecard / TGI** — 极光-style quadrants (:mod:`miner.insights.scorecard`) and the over-indexing
  audience cells (:mod:`miner.insights.tgi`) when the audience tables are given.
* **mixed topics** (``is_mixed`` on the topics table) are never recommended: the brief says so.

Modules: :mod:`.model` (dataclasses), :mod:`.patterns`, :mod:`.stats`, :mod:`.parts`, :mod:`.context`,
:mod:`.build`, :mod:`.render` (Markdown), :mod:`.export` (Excel), :mod:`.llm` (opt-in polish).
"""
from miner.insights.briefs.build import build_brief, build_briefs, is_mixed_topic
from miner.insights.briefs.export import topic_table_excel
from miner.insights.briefs.model import Angle, ContentBrief, NoteRef, TitlePattern
from miner.insights.briefs.patterns import HOOK_PATTERNS, TITLE_PATTERNS, hook_features, mine_title_patterns, title_features

__all__ = [
    "Angle", "ContentBrief", "HOOK_PATTERNS", "NoteRef", "TITLE_PATTERNS", "TitlePattern", "build_brief", "build_briefs",
    "hook_features", "is_mixed_topic", "mine_title_patterns", "title_features", "topic_table_excel",
]
