"""One table for the app: :func:`topic_metrics_table` (reach, engagement, AIPS flow, orders, lift), and
public interaction counts (:func:`interaction_metrics`).

Every function takes a DuckDB connection holding the ingested tables (``engagements``,
``audience``, ``aips_stages``, ``orders``; see :mod:`miner.schema`) and an ``assignments``
DataFrame (``note_id``, ``topic_id``; −1 = outlier, left out), registered for the query only.
The heavy lifting is DuckDB SQL: each call makes one pass over ``engagements`` into a temporary
per-(topic, user) table every metric of the call reads (:mod:`.touches`). Temporary tables work
on read-only connections too; they are dropped before returning. The connection's ``TimeZone`` is
set to Asia/Shanghai.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from miner.schema import COLLECTS, COMMENTS, LIKES, NOTE_ID, OUTLIER, SHARES, TOPIC_ID

from .attribution import ORDER_COLUMNS, UNATTRIBUTED, order_table, spend_table
from .funnel import FLOW_PAIRS, NOT_IN_POOL, flow_raw, flow_table
from .reach import _engagement_table, _reach_table, _with_previous
from .touches import ENGAGED_ACTIONS, Touches, ratio, tables

__all__ = ["interaction_metrics", "topic_metrics_table", "TOPIC_METRICS_COLUMNS"]


# ---- interactions (public note counts) -----------------------------------------------------------
def interaction_metrics(notes: pd.DataFrame, assignments: pd.DataFrame, spend: pd.DataFrame | None = None
                        ) -> pd.DataFrame:
    """Public interaction counts per topic and, with spend, CPE.

    Returns ``topic_id``, ``n_notes``, ``likes``, ``collects``, ``comments``, ``shares``,
    ``interactions`` (likes + collects + comments), ``interactions_per_note``, ``spend`` (NaN
    without spend), ``cpe`` (spend ÷ interactions of the notes that carry spend).
    """
    counts = [LIKES, COLLECTS, COMMENTS, SHARES]
    asg = assignments.loc[assignments[TOPIC_ID] != OUTLIER, [NOTE_ID, TOPIC_ID]]
    df = asg.merge(notes[[NOTE_ID, *counts]], on=NOTE_ID, how="left")
    df[counts] = df[counts].fillna(0)
    df["interactions"] = df[LIKES] + df[COLLECTS] + df[COMMENTS]
    if spend is not None:
        per_note = spend.groupby(NOTE_ID)["amount"].sum()
        df["spend"] = df[NOTE_ID].map(per_note)
        df["paid_interactions"] = np.where(df["spend"].notna(), df["interactions"], 0)
    else:
        df["spend"] = np.nan
        df["paid_interactions"] = 0
    g = df.groupby(TOPIC_ID)
    out = g[counts + ["interactions", "paid_interactions"]].sum()
    out["n_notes"] = g.size()
    out["spend"] = g["spend"].sum(min_count=1)
    out["interactions_per_note"] = out["interactions"] / out["n_notes"]
    out["cpe"] = ratio(out["spend"], out["paid_interactions"]).to_numpy()
    out = out.reset_index()
    return out[[TOPIC_ID, "n_notes", *counts, "interactions", "interactions_per_note", "spend", "cpe"]]


# ---- one table for the app -----------------------------------------------------------------------
_FLOW_PARTS = {"moved": "flow_", "rate": "flow_rate_", "assoc_lift": "flow_lift_", "assoc_lift_lo": "flow_lift_lo_",
               "assoc_lift_hi": "flow_lift_hi_", "lift_significant": "flow_significant_"}
_ORDER_KEEP = ("n_reached", "buyers", "attributed_orders", "attributed_gmv", "paid_gmv", "aov", "conversion_rate",
               "gmv_share", "brand_gmv", "roi", "n_matched_control", "period_conversion", "baseline_conversion",
               "assoc_lift", "assoc_lift_lo", "assoc_lift_hi", "lift_significant", "naive_lift", "aov_lift",
               "orders_suppressed", "lift_suppressed")

TOPIC_METRICS_COLUMNS = {
    "brand": "brand the flow/order/lift columns are about (one row set per brand; NA without brand data)",
    TOPIC_ID: f"int; {UNATTRIBUTED} = the brand's unattributed orders (with include_unattributed)",
    "label": "topic label (when topics are given)",
    "reach": "users in the segment with any action on a topic note in the window (触达)",
    "segment_size": "users in the segment (audience table)",
    "penetration": "reach ÷ segment_size",
    "penetration_prev": "penetration in previous_window (when given)",
    "penetration_change": "penetration − penetration_prev (share points as a fraction)",
    "engagement_rate": "(like+collect+comment+share events) ÷ impression events, first-party",
    "n_notes": "notes in the topic (when notes are given)",
    "interactions": "likes + collects + comments of the topic's notes (public counts)",
    "spend": "Σ spend on the topic's notes",
    "cpe": "spend ÷ interactions of the notes carrying spend",
    **{f"flow_{a}_{b}": f"touched users at {a} before who reached {b} or later after" for a, b in FLOW_PAIRS},
    **{f"flow_rate_{a}_{b}": f"flow_{a}_{b} ÷ touched users at {a} before" for a, b in FLOW_PAIRS},
    **{f"flow_lift_{a}_{b}": f"关联提升 of flow_rate_{a}_{b} vs matched untouched users" for a, b in FLOW_PAIRS},
    **{f"flow_lift_lo_{a}_{b}": "95% interval, lower end" for a, b in FLOW_PAIRS},
    **{f"flow_lift_hi_{a}_{b}": "95% interval, upper end" for a, b in FLOW_PAIRS},
    **{f"flow_significant_{a}_{b}": "flow lift interval excludes 1" for a, b in FLOW_PAIRS},
    **{c: ORDER_COLUMNS[c] for c in _ORDER_KEEP},
    "suppressed": "reach < k: reach metrics hidden (NaN); order rows: n_reached < k",
    "flow_suppressed": "any flow cell of the row hidden (a stage group or its movers < k)",
}


def _flow_wide(flow: pd.DataFrame) -> pd.DataFrame:
    flow = flow[flow["from_stage"] != NOT_IN_POOL].copy()
    flow["pair"] = [f"{a}_{b}" for a, b in zip(flow["from_stage"], flow["to_stage"])]
    flow["lift_significant"] = flow["lift_significant"].astype("float64")    # NA-safe pivot
    wide = flow.pivot(index=["brand", TOPIC_ID], columns="pair", values=list(_FLOW_PARTS))
    wide.columns = [_FLOW_PARTS[m] + p for m, p in wide.columns]
    order = [f"{prefix}{a}_{b}" for prefix in _FLOW_PARTS.values() for a, b in FLOW_PAIRS]
    wide = wide.reindex(columns=order)
    for a, b in FLOW_PAIRS:
        col = f"flow_significant_{a}_{b}"
        wide[col] = pd.array(wide[col].map(lambda v: pd.NA if pd.isna(v) else bool(v)), dtype="boolean")
    hidden = flow.groupby(["brand", TOPIC_ID])[["suppressed", "moved_suppressed", "lift_suppressed"]].any()
    wide["flow_suppressed"] = hidden.any(axis=1).reindex(wide.index).to_numpy()
    return wide.reset_index()


def topic_metrics_table(con, assignments: pd.DataFrame, topics: pd.DataFrame | None = None,
                        notes: pd.DataFrame | None = None, segment=None, window=None, previous_window=None,
                        brand=None, attribution_days: int = 15, k: int = 50,
                        spend: pd.DataFrame | None = None, rule: str = "even", half_life_days: float = 7.0,
                        touch_actions=ENGAGED_ACTIONS, prior_days: int = 90,
                        include_unattributed: bool = False) -> pd.DataFrame:
    """One row per brand × topic combining every metric; columns in :data:`TOPIC_METRICS_COLUMNS`.

    ``brand``: one brand (one row per topic), a list, or None = every brand in the orders/AIPS
    tables (one row set per brand; nothing is pooled across brands). Without brand tables there is
    one row per topic and ``brand`` is NA. AIPS flow uses ``horizon_days = attribution_days``;
    ``rule``/``half_life_days``/``touch_actions``/``prior_days`` as in
    :func:`miner.insights.audience.order_value`. ``spend`` defaults to the connection's ``spend``
    table when it exists.
    """
    have = tables(con)
    spend = spend_table(con, spend)
    paid = spend["note_id"].astype(str).tolist() if spend is not None else None
    with Touches(con, assignments, segment, window, touch_actions=touch_actions, paid_notes=paid) as t:
        out = _reach_table(t, k)
        if previous_window is not None:
            with Touches(con, assignments, segment, previous_window) as prev:
                out = _with_previous(out, _reach_table(prev, k), [TOPIC_ID])
            out = out.drop(columns=["reach_prev", "penetration_growth", "suppressed_prev"])
        out = out.merge(_engagement_table(t, k)[[TOPIC_ID, "engagement_rate"]], on=TOPIC_ID, how="left")
        brands = t.brands(brand)
        staged = {r[0] for r in con.execute("SELECT DISTINCT brand FROM aips_stages").fetchall()} \
            if "aips_stages" in have else set()
        flow_brands = [b for b in brands if b in staged]
        flow = flow_table(t, *flow_raw(t, flow_brands, attribution_days, prior_days)[:3], k) if flow_brands else None
        orders = order_table(t, brand, attribution_days, rule, half_life_days, prior_days, None, k,
                             include_unattributed) if "orders" in have and brands else None

    if notes is not None:
        inter = interaction_metrics(notes, assignments, spend)
        out = out.merge(inter[[TOPIC_ID, "n_notes", "interactions", "spend", "cpe"]], on=TOPIC_ID, how="left")
    elif spend is not None:
        per_topic = assignments.astype({NOTE_ID: str}).merge(spend.astype({NOTE_ID: str}), on=NOTE_ID)
        out = out.merge(per_topic.groupby(TOPIC_ID)["amount"].sum().rename("spend").reset_index(), on=TOPIC_ID,
                        how="left")

    rows = pd.MultiIndex.from_product([brands or [pd.NA], out[TOPIC_ID]], names=["brand", TOPIC_ID]).to_frame(
        index=False)
    if orders is not None and include_unattributed:
        rows = pd.concat([rows, pd.DataFrame({"brand": brands, TOPIC_ID: UNATTRIBUTED})], ignore_index=True)
    out = rows.merge(out, on=TOPIC_ID, how="left")
    if flow is not None:
        out = out.merge(_flow_wide(flow), on=["brand", TOPIC_ID], how="left")
    if orders is not None:
        orders = orders.rename(columns={"suppressed": "orders_row_suppressed"})
        keep = [c for c in _ORDER_KEEP if c in orders]
        out = out.merge(orders[["brand", TOPIC_ID, *keep]], on=["brand", TOPIC_ID], how="left")
        if "spend" in out:
            out["roi"] = ratio(orders.set_index(["brand", TOPIC_ID])["paid_gmv"].reindex(
                pd.MultiIndex.from_frame(out[["brand", TOPIC_ID]])).to_numpy(), out["spend"]).to_numpy()
            out.loc[out["orders_suppressed"].fillna(True).astype(bool).to_numpy(), "roi"] = np.nan
    if topics is not None:
        out = out.merge(topics[[TOPIC_ID, "label"]], on=TOPIC_ID, how="left")
        out.loc[out[TOPIC_ID] == UNATTRIBUTED, "label"] = "未归因 unattributed"
    out["suppressed"] = out["suppressed"].astype("boolean").fillna(False).astype(bool)
    cols = [c for c in TOPIC_METRICS_COLUMNS if c in out.columns]
    return out[cols + [c for c in out.columns if c not in cols]].reset_index(drop=True)
