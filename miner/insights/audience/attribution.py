"""Order value that conserves money: multi-touch attribution of each order, per brand.

Per brand (never pooled across brands), over the period P = [window start, window end +
``attribution_days``]:

* **touches** — engagements with an action in ``touch_actions`` (default: read, like, collect,
  comment, share, search; not a bare impression) on a note of a topic, inside the window.
* **eligible topics of an order** — the topics the buyer touched at some time t with
  ``t <= order.ts <= t + attribution_days`` (both ends inclusive; a day = 24 h). For each, the
  *latest* such touch counts.
* **the split** (``rule``) — each order's amount is divided among its eligible topics with
  weights normalised to 1:

  - ``"even"`` (default): equal shares;
  - ``"time_decay"``: weight 2^(−Δ / half_life_days), Δ = order time − the topic's latest
    eligible touch;
  - ``"last_touch"``: everything to the topic touched last (ties share evenly).

  So Σ over topics of ``attributed_gmv`` + ``unattributed`` = the brand's GMV in P from
  population users, exactly: money is never counted twice. Orders with no eligible topic form
  the unattributed row (``topic_id`` = :data:`UNATTRIBUTED`).
* ``attributed_orders`` is fractional (Σ of shares); ``buyers`` = distinct users with any credit
  on the topic; ``aov`` = attributed_gmv ÷ buyers; ``conversion_rate`` = buyers ÷ n_reached
  (users who touched the topic in the window).
* **ROI** — ``paid_gmv`` = the credit of orders whose latest eligible touch on the topic was on
  a note carrying spend; ``roi`` = paid_gmv ÷ the topic's spend (投产比).
* **关联提升** — the period conversion (≥1 order of the brand in P) of touched users against
  matched untouched users (:mod:`.lift`); ``aov_lift`` compares GMV per buyer the same way.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from miner.schema import TOPIC_ID

from .lift import LIFT_STRATA, activity_table, matched_lift
from .privacy import suppress
from .touches import ENGAGED_ACTIONS, Touches, ratio, require_tables, tables

__all__ = ["ATTRIBUTION_RULES", "UNATTRIBUTED", "order_value", "default_brand", "ORDER_COLUMNS"]

ATTRIBUTION_RULES = ("even", "time_decay", "last_touch")
UNATTRIBUTED = -2          # topic_id of the per-brand row of orders no topic touched
_DAY_US = 86_400_000_000

ORDER_COLUMNS = {
    "brand": "brand or SPU (every row is one brand's)",
    TOPIC_ID: f"topic; {UNATTRIBUTED} = orders without an eligible touch (未归因)",
    "n_reached": "users who touched the topic in the window (engaged actions)",
    "buyers": "distinct users with attributed credit on the topic",
    "attributed_orders": "Σ of order shares credited to the topic (fractional)",
    "attributed_gmv": "Σ amount × share credited to the topic (conserved: Σ topics + unattributed = brand_gmv)",
    "paid_gmv": "credit whose latest eligible touch was on a note carrying spend",
    "aov": "客单价 = attributed_gmv ÷ buyers",
    "conversion_rate": "buyers ÷ n_reached",
    "gmv_share": "attributed_gmv ÷ brand_gmv",
    "brand_gmv": "Σ amount of the brand's orders in the period from population users",
    "spend": "Σ spend on the topic's notes",
    "roi": "paid_gmv ÷ spend (投产比)",
    "n_matched_control": "untouched users matched on segment × prior activity (lift baseline)",
    "period_conversion": "touched users with ≥1 brand order in the period ÷ matched touched users",
    "baseline_conversion": "the same for matched controls, standardised to the touched users' strata",
    "assoc_lift": "关联提升 = period_conversion ÷ baseline_conversion",
    "assoc_lift_lo": "95% interval, lower end",
    "assoc_lift_hi": "95% interval, upper end",
    "lift_significant": "interval excludes 1 (False: grey it out)",
    "naive_lift": "vs all untouched users, unmatched (for comparison only)",
    "aov_lift": "touched users' GMV per buyer in the period ÷ matched controls' (standardised)",
    "suppressed": "n_reached < k: the row is hidden",
    "orders_suppressed": "buyers < k: buyers, orders, GMV, AOV, conversion, ROI hidden",
    "lift_suppressed": "a lift group or its buyers < k: lift hidden",
}


def _weight_sql(rule: str, half_life_days: float) -> str:
    if rule == "even":
        return "1.0"
    if rule == "time_decay":
        if not half_life_days > 0:
            raise ValueError("half_life_days must be > 0")
        return f"pow(0.5, (o.t - c.touch_t) / {float(half_life_days) * _DAY_US})"
    if rule == "last_touch":
        return "(c.touch_t = max(c.touch_t) OVER (PARTITION BY c.order_id))::DOUBLE"
    raise ValueError(f"unknown attribution rule {rule!r}; use one of {list(ATTRIBUTION_RULES)}")


def _period_orders(t: Touches, brands: list[str], attribution_days: int) -> str:
    """Temp table ``o``: the brands' orders in P from population users (``t`` in epoch µs)."""
    require_tables(t.con, ["orders"])
    start, end = t.period()
    name = t.temp("o")
    t.con.execute(f"""CREATE TEMP TABLE {name} AS
        SELECT order_id, user_id, brand, amount, epoch_us(ts) AS t FROM orders
        WHERE brand IN (SELECT unnest(?::VARCHAR[])) AND ts >= ? AND ts <= ?
        AND user_id IN (SELECT user_id FROM {t.pop})""",
                  [brands, start, end + pd.Timedelta(days=int(attribution_days))])
    return name


def attribute(t: Touches, o: str, attribution_days: int, rule: str = "even", half_life_days: float = 7.0):
    """Credit per (brand, topic) and per-brand totals with the unattributed remainder."""
    n_us = int(attribution_days) * _DAY_US
    weight = _weight_sql(rule, half_life_days)
    credit = t.temp("credit")
    # Candidates lie in [first touch, last touch + N]. When the order is at/after the last touch, that
    # touch is the latest one before it (no second look). Only orders between touches re-read the single
    # touches of just those (topic, user) pairs (a SEMI JOIN) for the latest touch at/before the order.
    t.con.execute(f"""CREATE TEMP TABLE {credit} AS
        WITH tt AS (SELECT topic_id, user_id, epoch_us(first_touch_ts) AS f, epoch_us(last_touch_ts) AS l,
                           last_touch_paid AS lp FROM {t.tu} WHERE last_touch_ts IS NOT NULL),
        cand AS MATERIALIZED (SELECT o.order_id, o.user_id, o.t, tt.topic_id, tt.l, tt.lp
                              FROM {o} o JOIN tt USING (user_id) WHERE o.t >= tt.f AND o.t <= tt.l + {n_us}),
        hard AS (SELECT order_id, user_id, t, topic_id FROM cand WHERE t < l),
        pairs AS (SELECT DISTINCT topic_id, user_id FROM hard),
        touch AS (SELECT a.topic_id, e.user_id, epoch_us(e.ts) AS t, a.paid
                  FROM engagements e JOIN {t.asg} a ON e.note_id = a.note_id
                  SEMI JOIN pairs ON pairs.topic_id = a.topic_id AND pairs.user_id = e.user_id
                  WHERE {t.touch_filter}),
        hard_latest AS (SELECT h.order_id, h.topic_id, h.t, max(x.t) AS touch_t, arg_max(x.paid, x.t) AS paid
                        FROM hard h JOIN touch x ON x.topic_id = h.topic_id AND x.user_id = h.user_id AND x.t <= h.t
                        GROUP BY h.order_id, h.topic_id, h.t),
        c AS (SELECT order_id, topic_id, l AS touch_t, lp AS paid FROM cand WHERE t >= l
              UNION ALL SELECT order_id, topic_id, touch_t, paid FROM hard_latest WHERE t - touch_t <= {n_us}),
        w AS (SELECT c.order_id, c.topic_id, c.paid, o.user_id, o.brand, o.amount, {weight} AS w
              FROM c JOIN {o} o USING (order_id))
        SELECT *, w / sum(w) OVER (PARTITION BY order_id) AS share FROM w""", t.eng_params)
    per_topic = t.df(f"""SELECT brand, topic_id, count(DISTINCT user_id) AS buyers, sum(share) AS attributed_orders,
               sum(share * amount) AS attributed_gmv, coalesce(sum(share * amount) FILTER (WHERE paid), 0) AS paid_gmv
        FROM {credit} WHERE share > 0 GROUP BY brand, topic_id""")
    totals = t.df(f"""SELECT o.brand, count(*) AS brand_orders, count(DISTINCT o.user_id) AS brand_buyers,
               sum(o.amount) AS brand_gmv, count(*) FILTER (WHERE c.order_id IS NULL) AS unattributed_orders,
               count(DISTINCT o.user_id) FILTER (WHERE c.order_id IS NULL) AS unattributed_buyers,
               coalesce(sum(o.amount) FILTER (WHERE c.order_id IS NULL), 0) AS unattributed_gmv
        FROM {o} o LEFT JOIN (SELECT DISTINCT order_id FROM {credit}) c USING (order_id) GROUP BY o.brand""")
    return per_topic, totals


def conversion_counts(t: Touches, o: str, brands: list[str], prior_days: int):
    """Per-stratum counts for the lift: touched users (topic, brand) and the population (brand)."""
    act = activity_table(t, prior_days)
    strata = ", ".join(LIFT_STRATA)
    pu = t.temp("pu")
    t.con.execute(f"""CREATE TEMP TABLE {pu} AS
        WITH ob AS (SELECT user_id, brand, sum(amount) AS v FROM {o} GROUP BY ALL)
        SELECT p.user_id, b.brand, p.gender, p.age_band, p.city_tier, a.activity,
               (ob.user_id IS NOT NULL)::INT AS y, coalesce(ob.v, 0) AS v
        FROM {t.pop} p JOIN {act} a USING (user_id) CROSS JOIN (SELECT unnest(?::VARCHAR[]) AS brand) b
        LEFT JOIN ob ON ob.user_id = p.user_id AND ob.brand = b.brand""", [brands])
    reached = t.df(f"""SELECT tu.topic_id, pu.brand, {strata}, count(*) AS n, sum(y) AS y, sum(v) AS v
        FROM {{tu}} tu JOIN {pu} pu USING (user_id) WHERE tu.last_touch_ts IS NOT NULL GROUP BY ALL""")
    pop = t.df(f"SELECT brand, {strata}, count(*) AS n, sum(y) AS y, sum(v) AS v FROM {pu} GROUP BY ALL")
    return reached, pop


def order_table(t: Touches, brand, attribution_days: int, rule: str, half_life_days: float, prior_days: int,
                spend: pd.DataFrame | None, k: int, include_unattributed: bool = True) -> pd.DataFrame:
    if attribution_days < 0:
        raise ValueError("attribution_days must be >= 0")
    brands = t.brands(brand)
    if not brands:
        raise ValueError("no brands: the orders table is empty")
    o = _period_orders(t, brands, attribution_days)
    per_topic, totals = attribute(t, o, attribution_days, rule, half_life_days)
    reached, pop = conversion_counts(t, o, brands, prior_days)
    n_reached = t.df("SELECT topic_id, count(*) AS n_reached FROM {tu} WHERE last_touch_ts IS NOT NULL "
                     "GROUP BY topic_id")
    keys = ["brand", TOPIC_ID]
    out = pd.MultiIndex.from_product([brands, t.topic_ids], names=keys).to_frame(index=False)
    out = out.merge(n_reached, on=TOPIC_ID, how="left").merge(per_topic, on=keys, how="left")
    out = out.fillna({"n_reached": 0, "buyers": 0, "attributed_orders": 0.0, "attributed_gmv": 0.0, "paid_gmv": 0.0})
    totals = pd.DataFrame({"brand": brands}).merge(totals, on="brand", how="left").fillna(0)
    out = out.merge(totals[["brand", "brand_gmv", "brand_buyers"]], on="brand", how="left")
    out["aov"] = ratio(out["attributed_gmv"], out["buyers"])
    out["conversion_rate"] = ratio(out["buyers"], out["n_reached"])
    out["gmv_share"] = ratio(out["attributed_gmv"], out["brand_gmv"])
    if spend is not None:
        per_topic_spend = (t.assignments[["note_id", TOPIC_ID]].astype({"note_id": str})
                           .merge(spend.astype({"note_id": str}), on="note_id").groupby(TOPIC_ID)["amount"].sum())
        out["spend"] = out[TOPIC_ID].map(per_topic_spend)
        out["roi"] = ratio(out["paid_gmv"], out["spend"])
    if len(reached):
        lift = matched_lift(reached, pop, keys, k=k, value="v")
        lift = lift.rename(columns={"reached_rate": "period_conversion", "baseline_rate": "baseline_conversion"})
        period_aov = lift["reached_value_per_user"] / lift["period_conversion"].where(lift["period_conversion"] > 0)
        base_aov = lift["baseline_value_per_user"] / lift["baseline_conversion"].where(lift["baseline_conversion"] > 0)
        lift["aov_lift"] = period_aov / base_aov.where(base_aov > 0)
        lift = lift[keys + ["n_matched_control", "period_conversion", "baseline_conversion", "assoc_lift",
                            "assoc_lift_lo", "assoc_lift_hi", "lift_significant", "naive_lift", "aov_lift",
                            "lift_suppressed"]]
        out = out.merge(lift, on=keys, how="left")
    else:
        out = out.assign(n_matched_control=0, period_conversion=np.nan, baseline_conversion=np.nan,
                         assoc_lift=np.nan, assoc_lift_lo=np.nan, assoc_lift_hi=np.nan,
                         lift_significant=pd.array([pd.NA] * len(out), dtype="boolean"), naive_lift=np.nan,
                         aov_lift=np.nan, lift_suppressed=True)
    out["lift_suppressed"] = out["lift_suppressed"].astype("boolean").fillna(True).astype(bool)
    out["n_matched_control"] = out["n_matched_control"].fillna(0)
    if include_unattributed:
        un = totals.rename(columns={"unattributed_orders": "attributed_orders", "unattributed_gmv": "attributed_gmv",
                                    "unattributed_buyers": "buyers"})
        un = un.assign(**{TOPIC_ID: UNATTRIBUTED, "n_reached": np.nan, "lift_suppressed": True})
        un["gmv_share"] = ratio(un["attributed_gmv"], un["brand_gmv"])
        un["aov"] = ratio(un["attributed_gmv"], un["buyers"])
        out = pd.concat([out, un[[c for c in out.columns if c in un.columns]]], ignore_index=True)
    return suppress_orders(out, k)


def suppress_orders(out: pd.DataFrame, k: int) -> pd.DataFrame:
    """k-anonymity on distinct people: buyers < k hides every order cell; n_reached < k the whole row."""
    amounts = ["attributed_orders", "attributed_gmv", "paid_gmv", "aov", "conversion_rate", "gmv_share", "roi"]
    out = suppress(out, "buyers", amounts, k, "orders_suppressed")
    small_brand = out["brand_buyers"] < k
    out.loc[small_brand.to_numpy(), "brand_gmv"] = np.nan
    lift = ["n_matched_control", "period_conversion", "baseline_conversion", "assoc_lift", "assoc_lift_lo",
            "assoc_lift_hi", "naive_lift", "aov_lift"]
    out.loc[out["lift_suppressed"].to_numpy(), lift] = np.nan
    real = out[TOPIC_ID] != UNATTRIBUTED
    out["suppressed"] = (real & (out["n_reached"].isna() | (out["n_reached"] < k))).to_numpy()
    out.loc[out["suppressed"].to_numpy(), ["n_reached", "buyers", *amounts, *lift]] = np.nan
    out.loc[out["suppressed"].to_numpy(), ["orders_suppressed", "lift_suppressed"]] = True
    out.loc[out["suppressed"].to_numpy(), "lift_significant"] = pd.NA
    out.loc[out["lift_suppressed"].to_numpy(), "lift_significant"] = pd.NA
    cols = [c for c in ORDER_COLUMNS if c in out.columns]
    return out[cols].sort_values(["brand", TOPIC_ID], key=lambda s: s if s.name == "brand" else
                                 s.where(s != UNATTRIBUTED, np.iinfo("int64").max)).reset_index(drop=True)


def default_brand(con) -> str | None:
    """The brand with the most order GMV (ties: first by name), for callers that must show one brand
    and were given none; None without orders. Metrics are never pooled across brands."""
    if "orders" not in tables(con):
        return None
    row = con.execute("SELECT brand FROM orders GROUP BY brand ORDER BY sum(amount) DESC, brand LIMIT 1").fetchone()
    return row[0] if row else None


def spend_table(con, spend: pd.DataFrame | None) -> pd.DataFrame | None:
    if spend is None and "spend" in tables(con):
        spend = con.execute("SELECT note_id, amount FROM spend").df()
    return spend


def order_value(con, assignments: pd.DataFrame, segment=None, window=None, attribution_days: int = 15,
                brand=None, k: int = 50, rule: str = "even", half_life_days: float = 7.0,
                touch_actions=ENGAGED_ACTIONS, prior_days: int = 90, spend: pd.DataFrame | None = None,
                include_unattributed: bool = True) -> pd.DataFrame:
    """Attributed order value and 关联提升 per brand × topic (module docstring has the rules).

    Parameters
    ----------
    brand : one brand, a list, or None = each brand in the orders/AIPS tables (one row set each).
    rule : ``"even"`` | ``"time_decay"`` (``half_life_days``) | ``"last_touch"``.
    touch_actions : actions that count as a touch (default :data:`ENGAGED_ACTIONS`).
    prior_days : length of the pre-window period whose activity the lift baseline is matched on.
    spend : ``note_id``, ``amount``; default the connection's ``spend`` table when it exists.
    include_unattributed : add the per-brand row ``topic_id`` = :data:`UNATTRIBUTED`.

    Returns
    -------
    DataFrame with the :data:`ORDER_COLUMNS` present, sorted by brand then topic (unattributed last).
    """
    spend = spend_table(con, spend)
    paid = spend["note_id"].astype(str).tolist() if spend is not None else None
    with Touches(con, assignments, segment, window, touch_actions=touch_actions, paid_notes=paid) as t:
        return order_table(t, brand, attribution_days, rule, half_life_days, prior_days, spend, k,
                           include_unattributed)
