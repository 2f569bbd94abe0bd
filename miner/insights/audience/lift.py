"""关联提升 (association lift): reached users against unreached users matched on who they are and how active.

A naive "reached vs unreached" comparison mostly measures activity: active users both see more
topics and buy (or move through the AIPS funnel) more. The baseline here is **exact-stratum
matching** (direct standardisation to the reached users' mix) on

* the demographic segment — gender × age band × city tier, and
* **prior activity** — the user's count of engagement rows (any action, any note; impressions
  measure activity too) in the ``prior_days`` (default 90) before the window start, in strata
  :data:`ACTIVITY_EDGES` (0, 1, 2, 3, 4–5, 6–7, … steps of about √2, up to 512+).

For a reached group R and its matched controls C (population users not reached, in the same
strata; strata without controls drop their reached users, counted in ``reached_unmatched``)::

    p_R = Σ_s y_R,s / Σ_s n_R,s                    p_C = Σ_s n_R,s · (y_C,s / n_C,s) / Σ_s n_R,s
    assoc_lift = p_R / p_C

The 95 % interval is analytic (delta method on log p_R − log p_C, independent groups, binomial
variances within strata, rates smoothed as (y + ½)/(n + 1) for the variance only); it is
``exp(log lift ± 1.96 se)``. ``lift_significant`` is True when the interval excludes 1. This is
an **association**, not a causal effect: matching removes the measured confounders only. When the
window starts at the first day of data there is no prior period and every user is in the 0
stratum (the lift is then only demographically matched).

k-anonymity: the lift is shown only when the matched reached users, the matched controls and the
event counts of both groups (buyers, movers) are each ≥ k distinct people.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .filters import DEFAULT_STRATA

__all__ = ["ACTIVITY_EDGES", "LIFT_COLUMNS", "LIFT_STRATA", "matched_lift", "activity_table"]

# stratum i = count in [edges[i-1], edges[i]); 0 = no prior activity. Steps of about √2: on the planted
# benchmark (bench/recovery_audience.py, 12k users) strata 0/1-2/3-9/10-29/30-99/100+ of engaged actions
# over 28 days left null topics at a median 1.16x (35 % of their intervals excluded 1); these strata of
# all engagement rows over 84 days leave about 1.03x (5 %). What is left is measurement noise in the
# activity count (reached users in a stratum are a little more active than its controls).
ACTIVITY_EDGES = (1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 90, 128, 181, 256, 362, 512)
LIFT_STRATA = DEFAULT_STRATA + ("activity",)
Z95 = 1.959963984540054

LIFT_COLUMNS = {
    "n_reached": "reached (touched) users in the group",
    "n_matched_control": "unreached users in the strata of the reached users (the baseline)",
    "reached_unmatched": "reached users in strata without any unreached user (left out of the lift)",
    "reached_rate": "share of matched reached users with the outcome",
    "baseline_rate": "matched controls' rate, standardised to the reached users' strata mix",
    "assoc_lift": "关联提升 = reached_rate ÷ baseline_rate (an association, not a causal effect)",
    "assoc_lift_lo": "95% interval, lower end",
    "assoc_lift_hi": "95% interval, upper end",
    "lift_significant": "the interval excludes 1 (False = grey out: could be no association)",
    "naive_lift": "reached_rate ÷ rate of all unreached users (no matching; for comparison only)",
    "lift_suppressed": "a group or its event count < k: lift hidden",
}


def activity_case(edges=ACTIVITY_EDGES, col: str = "n") -> str:
    """SQL CASE mapping a count to its activity stratum 0..len(edges)."""
    edges = sorted(int(e) for e in edges)
    whens = " ".join(f"WHEN {col} < {e} THEN {i}" for i, e in enumerate(edges))
    return f"CASE {whens} ELSE {len(edges)} END"


def activity_table(t, prior_days: int = 90, edges=ACTIVITY_EDGES) -> str:
    """Temp table ``user_id, activity`` for every population user; returns its name.

    ``activity`` = stratum of the user's engagement rows (any action, any note) in
    ``[start − prior_days, start)`` where start is the window start (or the first engagement).
    """
    if prior_days < 1:
        raise ValueError("prior_days must be >= 1")
    key = ("activity", int(prior_days), tuple(edges))
    if key in t.cache:
        return t.cache[key]
    start, _ = t.period()
    name = t.cache[key] = t.temp("act")
    t.con.execute(f"""CREATE TEMP TABLE {name} AS
        WITH c AS (SELECT e.user_id, count(*) AS n FROM engagements e
                   WHERE e.ts >= ? AND e.ts < ? GROUP BY e.user_id)
        SELECT p.user_id, {activity_case(edges, 'coalesce(c.n, 0)')} AS activity
        FROM {t.pop} p LEFT JOIN c USING (user_id)""", [start - pd.Timedelta(days=int(prior_days)), start])
    return name


def _var(y, n):
    p = (y + 0.5) / (n + 1.0)
    return p * (1.0 - p) / n


def matched_lift(reached: pd.DataFrame, pop: pd.DataFrame, keys: list[str], strata=LIFT_STRATA, k: int = 1,
                 value: str | None = None) -> pd.DataFrame:
    """Matched association lift per ``keys`` group from per-stratum counts.

    Parameters
    ----------
    reached : ``keys`` + ``strata`` + ``n`` (reached users) + ``y`` (of them with the outcome)
        [+ ``value``: Σ of a per-user amount].
    pop : the same counts for the whole population (reached included), on the ``keys`` that are
        in its columns (e.g. ``brand``) + ``strata``.
    keys : group columns of ``reached`` (e.g. ``["brand", "topic_id"]``).
    k : k-anonymity threshold on matched reached users, matched controls and both event counts.
    value : optional amount column; adds ``reached_value_per_user`` and the standardised
        ``baseline_value_per_user``.

    Returns
    -------
    One row per group: ``keys`` + :data:`LIFT_COLUMNS` (+ value columns).
    """
    strata = list(strata)
    pop_keys = [c for c in keys if c in pop.columns]
    sums = ["n", "y"] + ([value] if value else [])
    m = reached.merge(pop, on=pop_keys + strata, how="left", suffixes=("", "_pop"))
    for c in sums:
        m[f"{c}_c"] = m[f"{c}_pop"].fillna(0) - m[c]
    m["matched"] = m["n_c"] > 0
    m["w_rate"] = np.where(m["matched"], m["n"] * m["y_c"] / m["n_c"].where(m["matched"], 1), 0.0)
    m["var_r"] = np.where(m["matched"], m["n"] ** 2 * _var(m["y"], m["n"]), 0.0)
    m["var_c"] = np.where(m["matched"], m["n"] ** 2 * _var(m["y_c"], m["n_c"].where(m["matched"], 1)), 0.0)
    for c in ("n", "y", "n_c", "y_c") + ((value, f"{value}_c") if value else ()):
        m[f"{c}_m"] = np.where(m["matched"], m[c], 0)
    if value:
        m["w_value"] = np.where(m["matched"], m["n"] * m[f"{value}_c"] / m["n_c"].where(m["matched"], 1), 0.0)
    agg = {c: "sum" for c in ["n", "n_m", "y_m", "n_c_m", "y_c_m", "w_rate", "var_r", "var_c"]}
    if value:
        agg.update({f"{value}_m": "sum", "w_value": "sum"})
    g = m.groupby(keys, as_index=False).agg(agg)
    # naive baseline: every unreached user of the group, no matching
    tot_r = reached.groupby(keys, as_index=False)[["n", "y"]].sum()
    tot_p = pop.groupby(pop_keys, as_index=False)[["n", "y"]].sum() if pop_keys else \
        pd.DataFrame({"n": [pop["n"].sum()], "y": [pop["y"].sum()]})
    naive = tot_r.merge(tot_p, on=pop_keys, how="left", suffixes=("", "_pop")) if pop_keys else \
        tot_r.assign(n_pop=tot_p["n"].iloc[0], y_pop=tot_p["y"].iloc[0])
    naive_rate_c = (naive["y_pop"] - naive["y"]) / (naive["n_pop"] - naive["n"]).where(naive["n_pop"] > naive["n"])
    naive_lift = (naive["y"] / naive["n"].where(naive["n"] > 0)) / naive_rate_c.where(naive_rate_c > 0)
    g = g.merge(naive[keys].assign(naive_lift=naive_lift.to_numpy()), on=keys, how="left")

    nm = g["n_m"].where(g["n_m"] > 0)
    out = g[keys].copy()
    out["n_reached"] = g["n"].astype("int64")
    out["n_matched_control"] = g["n_c_m"].astype("int64")
    out["reached_unmatched"] = (g["n"] - g["n_m"]).astype("int64")
    out["reached_rate"] = g["y_m"] / nm
    out["baseline_rate"] = g["w_rate"] / nm
    pr, pc = out["reached_rate"], out["baseline_rate"]
    out["assoc_lift"] = pr / pc.where(pc > 0)
    se = np.sqrt(g["var_r"] / nm ** 2 / pr.where(pr > 0) ** 2 + g["var_c"] / nm ** 2 / pc.where(pc > 0) ** 2)
    out["assoc_lift_lo"] = out["assoc_lift"] * np.exp(-Z95 * se)
    out["assoc_lift_hi"] = out["assoc_lift"] * np.exp(Z95 * se)
    sig = (out["assoc_lift_lo"] > 1) | (out["assoc_lift_hi"] < 1)
    out["lift_significant"] = pd.array(np.where(out["assoc_lift_lo"].isna(), None, sig), dtype="boolean")
    out["naive_lift"] = g["naive_lift"]
    if value:
        out["reached_value_per_user"] = g[f"{value}_m"] / nm
        out["baseline_value_per_user"] = g["w_value"] / nm
    out["reached_events"] = g["y_m"]
    out["control_events"] = g["y_c_m"]
    small = (g["n_m"] < k) | (g["n_c_m"] < k) | (g["y_m"] < k) | (g["y_c_m"] < k)
    hide = ["reached_rate", "baseline_rate", "assoc_lift", "assoc_lift_lo", "assoc_lift_hi", "naive_lift",
            "reached_events", "control_events"] + (["reached_value_per_user", "baseline_value_per_user"]
                                                   if value else [])
    out[hide] = out[hide].astype("float64")
    out.loc[small.to_numpy(), hide] = np.nan
    out.loc[small.to_numpy(), "lift_significant"] = pd.NA
    out["lift_suppressed"] = small.to_numpy()
    return out
