"""人群纠偏 per topic: which audience cells over-index among a topic's engaged users (TGI).

For a topic and an audience cell (gender × age_band × city_tier, or one dimension alone):

* **engaged users** — audience users with at least one of ``actions`` (default like, collect,
  comment, share: 互动) on a note of the topic, up to ``as_of``. Users missing from the
  ``audience`` table have no profile and are left out.
* **TGI** = (cell share among the topic's engaged users ÷ cell share in the whole audience) × 100.
  100 = as common as in the audience; 162 = 1.62 × as common. The interval is the Wilson interval
  of the topic share divided by the (fixed, whole-audience) base share. ``over_index`` means the
  interval lies above 100.
* **movement** — the same TGI over the last ``period_days`` to ``as_of`` and the period before it;
  the arrow (↑ / ↓) is shown when a two-proportion z-test of the cell's share between the two
  periods gives p < 0.05, else → (no significant change). (A user can be engaged in both periods;
  the test treats the periods as independent samples, an approximation.)
* **conversion lift** (when an ``orders`` table exists) — a user converts when they ordered
  between their first engagement with the topic and ``attribution_days`` after their last; lift =
  the cell's conversion ÷ that of the topic's other engaged users, with the Katz log interval of a
  ratio of two proportions. An association, not a causal effect.

Privacy: a cell with fewer than ``k`` distinct engaged users (or fewer than ``k`` audience users)
is never returned; a period value resting on fewer than ``k`` users is NaN.
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager

import numpy as np
import pandas as pd

from miner.schema import NOTE_ID, OUTLIER, TOPIC_ID, TZ
from miner.store import table_names

__all__ = ["CELL_SETS", "DIMENSIONS", "ENGAGED_ACTIONS", "TGI_COLUMNS", "has_tgi_tables", "segment_name_zh",
           "tgi_headlines", "topic_tgi"]

DIMENSIONS = ("gender", "age_band", "city_tier")
CELL_SETS = (DIMENSIONS, ("gender",), ("age_band",), ("city_tier",))
ENGAGED_ACTIONS = ("like", "collect", "comment", "share")
GENDER_ZH = {"F": "女性", "M": "男性", "U": "性别未知"}
TIER_ZH = {"1": "一线", "new1": "新一线", "2": "二线", "3": "三线", "4+": "四线及以下"}
Z95 = 1.959963984540054

TGI_COLUMNS = (
    TOPIC_ID, "dims", "gender", "age_band", "city_tier", "segment_zh", "engaged_users", "audience_users",
    "topic_share", "base_share", "tgi", "tgi_lo", "tgi_hi", "over_index", "rank",
    "buyers", "conversion_rate", "conversion_lift", "lift_lo", "lift_hi", "lift_rank",
    "users_last", "tgi_last", "users_prev", "tgi_prev", "tgi_change", "change_p_value", "trend_arrow", "headline",
)


_tables = table_names


def has_tgi_tables(con) -> bool:
    """Whether ``con`` holds the ``engagements`` and ``audience`` tables TGI needs."""
    return {"engagements", "audience"} <= _tables(con)


@contextmanager
def registered_assignments(con, assignments: pd.DataFrame):
    """Register the non-outlier (note_id, topic_id) rows under a unique name for one query."""
    missing = {NOTE_ID, TOPIC_ID} - set(assignments.columns)
    if missing:
        raise ValueError(f"assignments lack columns {sorted(missing)}")
    asg = assignments.loc[assignments[TOPIC_ID] != OUTLIER, [NOTE_ID, TOPIC_ID]].copy()
    asg[NOTE_ID] = asg[NOTE_ID].astype(str)
    asg[TOPIC_ID] = asg[TOPIC_ID].astype("int64")
    name = f"_asg_{uuid.uuid4().hex[:10]}"
    con.execute(f"SET TimeZone = '{TZ}'")
    con.register(name, asg)
    try:
        yield name
    finally:
        con.unregister(name)


def segment_name_zh(gender=None, age_band=None, city_tier=None) -> str:
    """``25-34岁 新一线 女性`` (age, tier, gender; dimensions that are not set are left out)."""
    parts = [f"{age_band}岁" if _set(age_band) else "", TIER_ZH.get(city_tier, city_tier) if _set(city_tier) else "",
             GENDER_ZH.get(gender, gender) if _set(gender) else ""]
    return " ".join(p for p in parts if p) or "全部"


def _set(v) -> bool:
    return v is not None and not (isinstance(v, float) and np.isnan(v)) and v != "*"


def _grouping_sets(cells, lead: str = "") -> str:
    sets = [f"({lead}{', '.join(f'au.{d}' for d in c)})" for c in cells] + [f"({lead.rstrip(', ')})"]
    return ", ".join(sets)


def _wilson(x, n, z=Z95):
    x, n = np.asarray(x, dtype="float64"), np.asarray(n, dtype="float64")
    with np.errstate(all="ignore"):
        p = x / n
        den = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / den
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return centre - half, centre + half


def _two_prop_p(x1, n1, x2, n2):
    from scipy.stats import norm
    x1, n1, x2, n2 = (np.asarray(v, dtype="float64") for v in (x1, n1, x2, n2))
    with np.errstate(all="ignore"):
        pooled = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
    return np.where(se > 0, 2 * norm.sf(np.abs(z)), np.nan)


def _as_of(con, as_of) -> pd.Timestamp:
    if as_of is not None:
        ts = pd.Timestamp(as_of)
        if ts.tzinfo is None:         # a date: the whole day counts
            ts = (ts.normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)).tz_localize(TZ)
        return ts
    value = con.execute("SELECT max(ts) FROM engagements").fetchone()[0]
    if value is None:
        raise ValueError("the engagements table is empty: no TGI to compute")
    ts = pd.Timestamp(value)
    return ts.tz_localize(TZ) if ts.tzinfo is None else ts


def _counts(con, asg: str, cells, actions, bounds, attribution_days: int, with_orders: bool) -> pd.DataFrame:
    start, mid, end = bounds
    marks = ", ".join("?" for _ in actions)
    bought = (f"""SELECT tu.topic_id, tu.user_id, 1 AS bought FROM tu JOIN orders o ON o.user_id = tu.user_id
                  AND o.ts >= tu.first_ts AND o.ts <= tu.last_ts + to_days({int(attribution_days)})
                  GROUP BY 1, 2""" if with_orders else
              "SELECT NULL::BIGINT AS topic_id, NULL::VARCHAR AS user_id, 0 AS bought WHERE FALSE")
    grouping = ", ".join(f"GROUPING(au.{d}) AS g_{d}" for d in DIMENSIONS)
    sql = f"""
        WITH tu AS (
            SELECT a.topic_id, e.user_id, min(e.ts) AS first_ts, max(e.ts) AS last_ts,
                   max(CASE WHEN e.ts > ? AND e.ts <= ? THEN 1 ELSE 0 END) AS in_last,
                   max(CASE WHEN e.ts > ? AND e.ts <= ? THEN 1 ELSE 0 END) AS in_prev
            FROM engagements e JOIN {asg} a ON e.note_id = a.note_id
            WHERE e.action IN ({marks}) AND e.ts <= ?
            GROUP BY a.topic_id, e.user_id),
        bought AS ({bought})
        SELECT tu.topic_id, {', '.join(f'au.{d}' for d in DIMENSIONS)}, {grouping},
               count(*) AS engaged_users, sum(tu.in_last) AS users_last, sum(tu.in_prev) AS users_prev,
               sum(coalesce(b.bought, 0)) AS buyers
        FROM tu JOIN audience au ON au.user_id = tu.user_id
        LEFT JOIN bought b ON b.topic_id = tu.topic_id AND b.user_id = tu.user_id
        GROUP BY GROUPING SETS ({_grouping_sets(cells, 'tu.topic_id, ')})"""
    return con.execute(sql, [mid, end, start, mid, *actions, end]).df()


def _base(con, cells) -> pd.DataFrame:
    grouping = ", ".join(f"GROUPING(au.{d}) AS g_{d}" for d in DIMENSIONS)
    return con.execute(f"""SELECT {', '.join(f'au.{d}' for d in DIMENSIONS)}, {grouping}, count(*) AS audience_users
                           FROM audience au GROUP BY GROUPING SETS ({_grouping_sets(cells)})""").df()


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for d in DIMENSIONS:
        out[d] = np.where(out[f"g_{d}"].astype(int) == 1, "*", out[d].astype(object))
    out["dims"] = ["×".join(d for d in DIMENSIONS if r[d] != "*") for _, r in out[list(DIMENSIONS)].iterrows()]
    return out.drop(columns=[f"g_{d}" for d in DIMENSIONS])


def topic_tgi(con, assignments: pd.DataFrame, topic_ids=None, actions=ENGAGED_ACTIONS, k: int | None = None,
              period_days: int = 30, as_of=None, attribution_days: int | None = None, cells=CELL_SETS) -> pd.DataFrame:
    """TGI of every audience cell among each topic's engaged users (:data:`TGI_COLUMNS`).

    Parameters
    ----------
    con : DuckDB connection with ``engagements`` and ``audience`` (``orders`` optional).
    assignments : ``note_id``, ``topic_id`` (−1 outliers are left out).
    topic_ids : restrict to these topics (default all).
    k : k-anonymity threshold (default ``MinerConfig().k_anonymity``).
    period_days : length of each of the two periods compared for the movement arrow.
    as_of : end of the data used (timestamp or date; default the last engagement).
    attribution_days : orders this long after the last engagement count (default config).

    Returns rows sorted by topic, then TGI (highest first); ``rank`` is 1 for the highest TGI,
    ``lift_rank`` 1 for the highest conversion lift (NaN without orders).
    """
    from miner.config import MinerConfig
    cfg = MinerConfig()
    k = cfg.k_anonymity if k is None else int(k)
    attribution_days = cfg.attribution_days if attribution_days is None else int(attribution_days)
    if not has_tgi_tables(con):
        raise ValueError("TGI needs the engagements and audience tables (import them on 数据管理 / `miner ingest`)")
    actions = tuple(actions)
    end = _as_of(con, as_of)
    bounds = (end - pd.Timedelta(days=2 * period_days), end - pd.Timedelta(days=period_days), end)
    if topic_ids is not None:
        assignments = assignments[assignments[TOPIC_ID].isin(list(topic_ids))]
    with registered_assignments(con, assignments) as asg:
        counts = _keyed(_counts(con, asg, cells, actions, bounds, attribution_days, "orders" in _tables(con)))
    base = _keyed(_base(con, cells))
    if counts.empty:
        return pd.DataFrame(columns=list(TGI_COLUMNS))
    totals = counts[counts["dims"] == ""].set_index(TOPIC_ID)
    n_all = float(base.loc[base["dims"] == "", "audience_users"].iloc[0])
    df = counts[counts["dims"] != ""].merge(base[base["dims"] != ""], on=["dims", *DIMENSIONS], how="inner")
    for col in ("engaged_users", "users_last", "users_prev", "buyers"):
        df[f"{col}_total"] = df[TOPIC_ID].map(totals[col]).astype("float64")
        df[col] = df[col].astype("float64")
    df = df[(df["engaged_users"] >= k) & (df["audience_users"] >= k) & (df["engaged_users_total"] >= k)].copy()
    df["topic_share"] = df["engaged_users"] / df["engaged_users_total"]
    df["base_share"] = df["audience_users"] / n_all
    df["tgi"] = 100 * df["topic_share"] / df["base_share"]
    lo, hi = _wilson(df["engaged_users"], df["engaged_users_total"])
    df["tgi_lo"], df["tgi_hi"] = 100 * lo / df["base_share"], 100 * hi / df["base_share"]
    df["over_index"] = df["tgi_lo"] > 100
    _conversion(df, "orders" in _tables(con))
    _movement(df, k)
    df["segment_zh"] = [segment_name_zh(r.gender, r.age_band, r.city_tier) for r in df.itertuples()]
    df["headline"] = [f"{s} TGI {t:.0f}" + (f" {a}" if a else "") for s, t, a in
                      zip(df["segment_zh"], df["tgi"], df["trend_arrow"])]
    for d in DIMENSIONS:
        df[d] = df[d].where(df[d] != "*", None)
    df = df.sort_values([TOPIC_ID, "tgi"], ascending=[True, False], kind="stable")
    df["rank"] = df.groupby(TOPIC_ID).cumcount() + 1
    df["lift_rank"] = df.groupby(TOPIC_ID)["conversion_lift"].rank(ascending=False, method="first")
    df["engaged_users"] = df["engaged_users"].astype("int64")
    df["audience_users"] = df["audience_users"].astype("int64")
    return df[list(TGI_COLUMNS)].reset_index(drop=True)


def _conversion(df: pd.DataFrame, with_orders: bool) -> None:
    if not with_orders:
        for c in ("buyers", "conversion_rate", "conversion_lift", "lift_lo", "lift_hi"):
            df[c] = np.nan
        return
    b, n = df["buyers"], df["engaged_users"]
    rb, rn = df["buyers_total"] - b, df["engaged_users_total"] - n
    with np.errstate(all="ignore"):
        df["conversion_rate"] = b / n
        lift = (b / n) / (rb / rn)
        se = np.sqrt(1 / b - 1 / n + 1 / rb - 1 / rn)
        ok = (b > 0) & (rb > 0) & (rn > 0)
    df["conversion_lift"] = lift.where((rn > 0) & (rb > 0))
    df["lift_lo"] = np.exp(np.log(lift) - Z95 * se).where(ok)
    df["lift_hi"] = np.exp(np.log(lift) + Z95 * se).where(ok)


def _movement(df: pd.DataFrame, k: int) -> None:
    with np.errstate(all="ignore"):
        for p in ("last", "prev"):
            share = df[f"users_{p}"] / df[f"users_{p}_total"]
            df[f"tgi_{p}"] = (100 * share / df["base_share"]).where(df[f"users_{p}"] >= k)
    df["tgi_change"] = df["tgi_last"] - df["tgi_prev"]
    pval = _two_prop_p(df["users_last"], df["users_last_total"], df["users_prev"], df["users_prev_total"])
    df["change_p_value"] = np.where(df["tgi_change"].notna(), pval, np.nan)
    arrow = np.where(df["change_p_value"] < 0.05, np.where(df["tgi_change"] > 0, "↑", "↓"), "→")
    df["trend_arrow"] = np.where(df["tgi_change"].notna(), arrow, "")
    for p in ("last", "prev"):
        df[f"users_{p}"] = df[f"users_{p}"].where(df[f"users_{p}"] >= k)


def tgi_headlines(table: pd.DataFrame, topic_id: int, n: int = 3, over_only: bool = True) -> list[str]:
    """The ``n`` highest-TGI cells of a topic as lines such as ``25-34岁 新一线 女性 TGI 162 ↑``."""
    rows = table[table[TOPIC_ID] == topic_id]
    if over_only:
        rows = rows[rows["over_index"]]
    return rows.head(n)["headline"].tolist()
