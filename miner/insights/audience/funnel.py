"""AIPS 人群流转 (stage flow) of touched users, per brand, with the matched association lift.

Stage *before* = the user's latest snapshot for the brand dated on/before the window start; stage
*after* = latest snapshot on/before window end + ``horizon_days``. Users without a snapshot are
stage ``O`` (not in the brand pool). For each from-stage X: ``reached`` = population users at X
before who **touched** the topic in the window (engaged actions, see :mod:`.touches`), ``moved`` =
those of them at any later stage after (X→next or further), ``rate`` = moved ÷ reached. The lift
compares that rate with unreached users at X matched on segment and prior activity
(:mod:`.lift`). Every count is of distinct users of one brand.
"""
from __future__ import annotations

import pandas as pd

from miner.schema import AIPS_STAGES, TOPIC_ID

from .lift import LIFT_STRATA, activity_table, matched_lift
from .privacy import suppress
from .touches import ENGAGED_ACTIONS, Touches, ratio, require_tables

__all__ = ["NOT_IN_POOL", "FLOW_STAGES", "FLOW_PAIRS", "aips_flow", "aips_stage_counts"]

NOT_IN_POOL = "O"                                  # no snapshot for the brand (机会人群 / 未入池)
FLOW_STAGES = (NOT_IN_POOL,) + AIPS_STAGES         # rank 0..5
_RANK = {s: i for i, s in enumerate(FLOW_STAGES)}
FLOW_PAIRS = tuple(zip(FLOW_STAGES[1:-1], FLOW_STAGES[2:]))   # A→I, I→TI, TI→P, P→S


def flow_raw(t: Touches, brand, horizon_days: int, prior_days: int = 90):
    """Per-stratum counts: ``reached`` (topic, brand, r0, strata, n, y = moved), ``pop`` (brand, r0,
    strata, n, y) and ``after`` (topic, brand, r1, n): touched users by stage after."""
    require_tables(t.con, ["aips_stages"])
    start, end = t.period()
    have = {r[0] for r in t.con.execute("SELECT DISTINCT brand FROM aips_stages").fetchall()}
    brands = [b for b in t.brands(brand) if b in have]
    if not brands:
        raise ValueError(f"no AIPS snapshots for brand {brand!r}; brands with snapshots: {sorted(have)}")
    act = activity_table(t, prior_days)
    bt = t.temp("brands")
    t.con.execute(f"CREATE TEMP TABLE {bt} AS SELECT unnest(?::VARCHAR[]) AS brand", [brands])
    rank = "CASE {col} " + " ".join(f"WHEN '{s}' THEN {_RANK[s]}" for s in AIPS_STAGES) + " ELSE 0 END"
    last = "arg_max(s.stage, s.date) FILTER (WHERE s.date <= ?)"
    strata = ", ".join(LIFT_STRATA)
    pb = t.temp("pb")
    t.con.execute(f"""CREATE TEMP TABLE {pb} AS
        WITH st AS (SELECT s.user_id, s.brand, {rank.format(col=last)} AS r0, {rank.format(col=last)} AS r1
                    FROM aips_stages s WHERE s.user_id IN (SELECT user_id FROM {t.pop})
                    AND s.brand IN (SELECT brand FROM {bt}) GROUP BY ALL)
        SELECT p.user_id, b.brand, p.gender, p.age_band, p.city_tier, a.activity,
               coalesce(st.r0, 0) AS r0, coalesce(st.r1, 0) AS r1
        FROM {t.pop} p CROSS JOIN {bt} b JOIN {act} a USING (user_id)
        LEFT JOIN st ON st.user_id = p.user_id AND st.brand = b.brand""",
                  [start.date(), (end + pd.Timedelta(days=horizon_days)).date()])
    touched = f"FROM {{tu}} tu JOIN {pb} pb USING (user_id) WHERE tu.last_touch_ts IS NOT NULL"
    reached = t.df(f"SELECT tu.topic_id, pb.brand, pb.r0, {strata}, count(*) AS n, "
                   f"sum((pb.r1 > pb.r0)::INT) AS y {touched} GROUP BY ALL")
    pop = t.df(f"SELECT brand, r0, {strata}, count(*) AS n, sum((r1 > r0)::INT) AS y FROM {pb} GROUP BY ALL")
    after = t.df(f"SELECT tu.topic_id, pb.brand, pb.r1, count(*) AS n {touched} GROUP BY ALL")
    return brands, reached, pop, after


def flow_table(t: Touches, brands, reached, pop, k: int) -> pd.DataFrame:
    keys = ["brand", TOPIC_ID, "r0"]
    grid = pd.MultiIndex.from_product([brands, t.topic_ids, range(len(FLOW_STAGES) - 1)], names=keys).to_frame(
        index=False)
    lift = matched_lift(reached, pop, keys, k=k) if len(reached) else pd.DataFrame(columns=keys)
    out = grid.merge(lift, on=keys, how="left")
    out["reached"] = out.pop("n_reached").fillna(0)
    moved = reached.groupby(keys, as_index=False)["y"].sum().rename(columns={"y": "moved"})
    out = out.merge(moved, on=keys, how="left").fillna({"moved": 0})
    out["rate"] = ratio(out["moved"], out["reached"])
    out["from_stage"] = [FLOW_STAGES[i] for i in out["r0"]]
    out["to_stage"] = [FLOW_STAGES[i + 1] for i in out["r0"]]
    out["lift_suppressed"] = out["lift_suppressed"].astype("boolean").fillna(True).astype(bool)
    out = suppress(out, "moved", ["rate"], k, "moved_suppressed")
    out = suppress(out, "reached", ["moved", "rate", "baseline_rate", "assoc_lift", "assoc_lift_lo",
                                    "assoc_lift_hi", "naive_lift"], k)
    out.loc[out["suppressed"], "lift_suppressed"] = True
    cols = ["brand", TOPIC_ID, "from_stage", "to_stage", "reached", "moved", "rate", "n_matched_control",
            "baseline_rate", "assoc_lift", "assoc_lift_lo", "assoc_lift_hi", "lift_significant", "naive_lift",
            "suppressed", "moved_suppressed", "lift_suppressed"]
    return out.sort_values(keys)[cols].reset_index(drop=True)


def aips_flow(con, assignments: pd.DataFrame, segment=None, window=None, brand=None, horizon_days: int = 15,
              k: int = 50, touch_actions=ENGAGED_ACTIONS, prior_days: int = 90) -> pd.DataFrame:
    """AIPS stage flow of touched users vs matched untouched users, per brand × topic × from-stage.

    ``brand``: one brand, a list, or None = each brand with snapshots (one row set per brand).
    ``from_stage`` runs over O (not in pool), A, I, TI, P.

    Returns ``brand``, ``topic_id``, ``from_stage``, ``to_stage``, ``reached``, ``moved``,
    ``rate``, ``n_matched_control``, ``baseline_rate``, ``assoc_lift`` (关联提升) with
    ``assoc_lift_lo``/``assoc_lift_hi`` (95 %), ``lift_significant``, ``naive_lift``,
    ``suppressed`` (reached < k), ``moved_suppressed`` (moved < k), ``lift_suppressed``.
    """
    with Touches(con, assignments, segment, window, touch_actions=touch_actions) as t:
        brands, reached, pop, _ = flow_raw(t, brand, horizon_days, prior_days)
        return flow_table(t, brands, reached, pop, k)


def aips_stage_counts(con, assignments: pd.DataFrame, segment=None, window=None, brand=None,
                      horizon_days: int = 15, k: int = 50, touch_actions=ENGAGED_ACTIONS) -> pd.DataFrame:
    """Touched users per AIPS stage (after = window end + horizon), per brand × topic.

    Returns ``brand``, ``topic_id``, ``stage`` (O, A, I, TI, P, S), ``users``, ``share`` (of the
    topic's touched users), ``suppressed`` (users < k).
    """
    with Touches(con, assignments, segment, window, touch_actions=touch_actions) as t:
        brands, _, _, after = flow_raw(t, brand, horizon_days)
        topic_ids = t.topic_ids
    keys = ["brand", TOPIC_ID, "r1"]
    grid = pd.MultiIndex.from_product([brands, topic_ids, range(len(FLOW_STAGES))], names=keys).to_frame(index=False)
    out = grid.merge(after, on=keys, how="left").fillna({"n": 0})
    out["share"] = ratio(out["n"], out.groupby(["brand", TOPIC_ID])["n"].transform("sum"))
    out["stage"] = [FLOW_STAGES[i] for i in out["r1"]]
    out = out.sort_values(keys).rename(columns={"n": "users"})
    out = out[["brand", TOPIC_ID, "stage", "users", "share"]].reset_index(drop=True)
    return suppress(out, "users", ["share"], k)
