"""Audience metrics per topic: reach and penetration, AIPS flow (人群流转), attributed order value, 关联提升.

Modules, one job each:

* :mod:`.filters` — :class:`AudienceFilter`, the target audience (gender / age / city / interests).
* :mod:`.touches` — the one pass over ``engagements`` (reach = any action; touch = engaged action).
* :mod:`.reach` — reach, penetration, penetration change, engagement rate.
* :mod:`.funnel` — AIPS stage flow per brand.
* :mod:`.attribution` — multi-touch order attribution per brand that conserves money, ROI.
* :mod:`.lift` — 关联提升: reached vs unreached users matched on segment × prior activity, with a 95 % CI.
* :mod:`.privacy` — k-anonymity on distinct people.
* :mod:`.metrics` — :func:`topic_metrics_table`, the one table for the app, and public interactions.
"""
from __future__ import annotations

from .attribution import ATTRIBUTION_RULES, ORDER_COLUMNS, UNATTRIBUTED, default_brand, order_value
from .filters import DEFAULT_STRATA, AudienceFilter
from .funnel import FLOW_PAIRS, FLOW_STAGES, NOT_IN_POOL, aips_flow, aips_stage_counts
from .lift import ACTIVITY_EDGES, LIFT_COLUMNS, LIFT_STRATA, matched_lift
from .metrics import TOPIC_METRICS_COLUMNS, interaction_metrics, topic_metrics_table
from .privacy import suppressed_text
from .reach import INTERACTION_ACTIONS, penetration_growth, topic_engagement, topic_reach_penetration
from .touches import ENGAGED_ACTIONS


__all__ = [
    "AudienceFilter", "topic_reach_penetration", "penetration_growth", "topic_engagement", "aips_flow",
    "aips_stage_counts", "order_value", "default_brand", "interaction_metrics", "topic_metrics_table", "matched_lift",
    "suppressed_text", "TOPIC_METRICS_COLUMNS", "ORDER_COLUMNS", "LIFT_COLUMNS", "FLOW_STAGES", "FLOW_PAIRS",
    "NOT_IN_POOL", "INTERACTION_ACTIONS", "ENGAGED_ACTIONS", "ATTRIBUTION_RULES", "UNATTRIBUTED", "ACTIVITY_EDGES",
    "LIFT_STRATA", "DEFAULT_STRATA",
]
