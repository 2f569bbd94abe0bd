"""Audience metrics per topic: reach and penetration, AIPS flow (人群流转), order value, interactions.

Every function takes a DuckDB connection holding the ingested tables (``engagements``,
``audience``, ``aips_stages``, ``orders``; see :mod:`miner.schema`) and an ``assignments``
DataFrame (``note_id``, ``topic_id``; −1 = outlier, left out), registered for the query only.
The heavy lifting is DuckDB SQL, so the same code runs on 10M engagement rows: each call makes one
pass over ``engagements`` into a temporary per-(topic, user) table that every metric of the call
reads (``topic_metrics_table`` shares it across all of them). Temporary tables work on read-only
connections too; they are dropped before returning. The connection's ``TimeZone`` is set to
Asia/Shanghai (dates of timestamps are Shanghai dates).

Definitions (all users are hashed ids; "population" = audience users matching the segment):

* **reach** — population users with at least one engagement (any action in ``actions``,
  impressions included by default = 触达) on a note of the topic inside the window.
* **penetration** — reach ÷ population size (segment size).
* **penetration change / growth** — penetration(window) − penetration(previous window), and the
  ratio − 1.
* **engagement rate** — (like + collect + comment + share events) ÷ impression events, from the
  first-party engagements table.
* **AIPS flow** — stage *before* = the user's latest brand snapshot dated on/before the window
  start; stage *after* = latest snapshot dated on/before window end + ``horizon_days``. Users
  without a snapshot are stage ``O`` (not in the brand pool). ``moved`` counts users at stage X
  before who are at any later stage after (X→next or further). The baseline is the same rate
  among population users *not* reached by the topic in the window; ``lift`` = rate ÷ baseline.
* **order value** — an order is attributed to a topic when the same user engaged with the topic
  at time t (inside the window) with ``t <= order.ts <= t + attribution_days`` (both ends
  inclusive; exact timestamps, a day = 24 h; an order before any engagement is never attributed). GMV = Σ amount of attributed
  orders; buyers = users with ≥1 attributed order; 客单价 ``aov`` = GMV ÷ buyers (Taobao
  definition, per paying user); conversion = buyers ÷ reach.
* **lift vs comparable unreached users** — over the period P = [window start, window end +
  attribution_days], reached users' conversion (share with ≥1 order in P) and AOV (GMV in P ÷
  their buyers) against the same quantities for unreached population users, standardised to the
  reached users' mix of ``strata`` (gender × age_band × city_tier by default; direct
  standardisation). A same-period, same-demographics comparison: an association, not a causal
  effect (reached users are also more active users).
* **CPE / ROI** (when spend is given) — CPE = spend ÷ (likes + collects + comments) of the notes
  carrying spend (public note counts); ROI = attributed GMV ÷ topic spend (投产比).

Privacy (k-anonymity): every output row is a cell of users (reached users of a topic in a
segment, or those at one AIPS stage). A cell with fewer than ``k`` users has its metrics set to
NaN and ``suppressed = True`` — never a small number. Sums and averages of order amounts are
additionally hidden (``amounts_suppressed``) when fewer than ``k`` buyers make them up.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from typing import Iterable

import numpy as np
import pandas as pd

from miner.schema import (ACTIONS, AIPS_STAGES, AUDIENCE, COLLECTS, COMMENTS, LIKES, NOTE_ID, OUTLIER, SHARES,
                          TOPIC_ID, TZ)

__all__ = [
    "Segment", "topic_reach_penetration", "penetration_growth", "topic_engagement", "aips_flow",
    "aips_stage_counts", "order_value", "interaction_metrics", "topic_metrics_table",
    "TOPIC_METRICS_COLUMNS", "FLOW_STAGES", "NOT_IN_POOL",
]

NOT_IN_POOL = "O"                                  # no snapshot for the brand (机会人群 / 未入池)
FLOW_STAGES = (NOT_IN_POOL,) + AIPS_STAGES         # rank 0..5
_RANK = {s: i for i, s in enumerate(FLOW_STAGES)}
FLOW_PAIRS = tuple(zip(FLOW_STAGES[1:-1], FLOW_STAGES[2:]))   # A→I, I→TI, TI→P, P→S
INTERACTION_ACTIONS = ("like", "collect", "comment", "share")
DEFAULT_STRATA = ("gender", "age_band", "city_tier")

_GENDER_ZH = {"F": "女性", "M": "男性", "U": "性别未知"}
_TIER_ZH = {"1": "一线", "new1": "新一线", "2": "二线", "3": "三线", "4+": "四线及以下"}


# ---- segments ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    """A target audience segment: users matching every given filter (values inside one filter OR).

    Each filter is a string or a tuple of strings; ``interests`` matches users having any of them.
    ``Segment()`` is everyone in the audience table.
    """

    gender: str | tuple[str, ...] | None = None
    age_band: str | tuple[str, ...] | None = None
    city_tier: str | tuple[str, ...] | None = None
    interests: str | tuple[str, ...] | None = None
    name_zh: str = ""

    @classmethod
    def from_spec(cls, spec: str | dict | None, name_zh: str = "") -> "Segment":
        """Parse ``"gender=F,age_band=18-24|25-34"`` (or a dict) and check values against the schema."""
        if spec is None or isinstance(spec, Segment):
            return spec or cls()
        if isinstance(spec, str):
            items = {}
            for part in filter(None, (p.strip() for p in spec.split(","))):
                key, sep, value = part.partition("=")
                if not sep:
                    raise ValueError(f"segment part {part!r} is not key=value (e.g. gender=F,age_band=18-24)")
                items[key.strip()] = tuple(v.strip() for v in value.split("|") if v.strip())
            spec = items
        known = [f.name for f in fields(cls) if f.name != "name_zh"]
        clean = {}
        for key, value in spec.items():
            if key not in known:
                raise ValueError(f"unknown segment key {key!r}; use one of {known}")
            values = (value,) if isinstance(value, str) else tuple(value)
            allowed = AUDIENCE.column(key).allowed
            bad = [v for v in values if allowed and v not in allowed]
            if bad:
                raise ValueError(f"segment {key}={bad}: allowed values are {list(allowed)}")
            clean[key] = values
        return cls(**clean, name_zh=name_zh)

    def filters(self) -> dict[str, tuple[str, ...]]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "name_zh" and value:
                out[f.name] = (value,) if isinstance(value, str) else tuple(value)
        return out

    @property
    def label(self) -> str:
        """``name_zh`` if set, else a generated Chinese description such as ``女性·18-24岁``."""
        if self.name_zh:
            return self.name_zh
        f = self.filters()
        parts = ["/".join(_GENDER_ZH.get(v, v) for v in f.get("gender", ()))]
        parts.append("/".join(f"{v}岁" for v in f.get("age_band", ())))
        parts.append("/".join(_TIER_ZH.get(v, v) for v in f.get("city_tier", ())))
        parts.append(("兴趣:" + "/".join(f["interests"])) if "interests" in f else "")
        return "·".join(p for p in parts if p) or "全部用户"

    def where_sql(self, con, alias: str = "au") -> tuple[str, list]:
        """SQL predicate over the audience table and its parameters."""
        clauses, params = ["TRUE"], []
        for key, values in self.filters().items():
            marks = ", ".join("?" for _ in values)
            if key != "interests":
                clauses.append(f"{alias}.{key} IN ({marks})")
            elif _column_type(con, "audience", "interests").endswith("[]"):
                clauses.append(f"list_has_any({alias}.interests, [{marks}])")
            else:   # interests stored as a '|'/','-joined string
                clauses.append("(" + " OR ".join(
                    f"list_contains(string_split_regex({alias}.interests, '[|,]'), ?)" for _ in values) + ")")
            params.extend(values)
        return " AND ".join(clauses), params


# ---- shared plumbing -----------------------------------------------------------------------------
def _column_type(con, table: str, column: str) -> str:
    row = con.execute("SELECT data_type FROM information_schema.columns WHERE table_name = ? AND column_name = ?",
                      [table, column]).fetchone()
    return row[0] if row else ""


def _tables(con) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _require_tables(con, names: Iterable[str]) -> None:
    missing = [n for n in names if n not in _tables(con)]
    if missing:
        raise ValueError(f"missing tables {missing}; ingest them first (python -m miner audience ...)")


def _timestamp(value) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize(TZ) if ts.tzinfo is None else ts.tz_convert(TZ)


def _window(window) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``(start, end)``: engagements with ``start <= ts < end``; either end may be None."""
    if window is None:
        return None, None
    start, end = window
    start, end = _timestamp(start), _timestamp(end)
    if start is not None and end is not None and end <= start:
        raise ValueError(f"window end {end} is not after start {start}")
    return start, end


class _Touches:
    """One pass over engagements for (assignments, segment, window, actions), as temp tables.

    ``pop``: population users (user_id + strata columns). ``tu``: one row per reached (topic,
    user) with ``first_ts``, ``last_ts`` and one ``n_<action>`` count per action. ``eng_filter`` /
    ``eng_params``: the window/actions predicate on ``engagements e``, for the second look at
    single touches of a few (topic, user) pairs.
    Use as a context manager; the temp tables and registered assignments go on exit.
    """

    def __init__(self, con, assignments: pd.DataFrame, segment=None, window=None, actions=None):
        self.con = con
        self.assignments = assignments
        self.segment = segment
        self.window = window
        self.actions = actions

    def __enter__(self) -> "_Touches":
        con = self.con
        missing = {NOTE_ID, TOPIC_ID} - set(self.assignments.columns)
        if missing:
            raise ValueError(f"assignments lack columns {sorted(missing)}")
        _require_tables(con, ["engagements", "audience"])
        segment = Segment.from_spec(self.segment)
        self.start, self.end = _window(self.window)
        asg = self.assignments.loc[self.assignments[TOPIC_ID] != OUTLIER, [NOTE_ID, TOPIC_ID]].copy()
        asg[NOTE_ID] = asg[NOTE_ID].astype(str)
        asg[TOPIC_ID] = asg[TOPIC_ID].astype("int64")
        self.topic_ids = sorted(asg[TOPIC_ID].unique().tolist())
        tag = uuid.uuid4().hex[:10]
        self.asg, self.pop, self.tu = f"_mt_asg_{tag}", f"_mt_pop_{tag}", f"_mt_tu_{tag}"
        con.execute(f"SET TimeZone = '{TZ}'")
        con.register(self.asg, asg)
        try:
            where, params = segment.where_sql(con, "au")
            strata = ", ".join(f"au.{c}" for c in DEFAULT_STRATA)
            con.execute(f"CREATE TEMP TABLE {self.pop} AS SELECT au.user_id, {strata} FROM audience au "
                        f"WHERE {where}", params)
            cond, self.eng_params = ["TRUE"], []
            if self.start is not None:
                cond.append("e.ts >= ?")
                self.eng_params.append(self.start)
            if self.end is not None:
                cond.append("e.ts < ?")
                self.eng_params.append(self.end)
            if self.actions is not None:
                actions = tuple(self.actions)
                cond.append(f"e.action IN ({', '.join('?' for _ in actions)})")
                self.eng_params.extend(actions)
            self.eng_filter = " AND ".join(cond)
            counts = ", ".join(f"count(*) FILTER (WHERE e.action = '{a}') AS n_{a}" for a in ACTIONS)
            # group first, then keep population users: cheaper than a semi-join on every engagement row
            con.execute(f"""CREATE TEMP TABLE {self.tu} AS
                SELECT * FROM (
                    SELECT a.topic_id, e.user_id, min(e.ts) AS first_ts, max(e.ts) AS last_ts, {counts}
                    FROM engagements e JOIN {self.asg} a ON e.note_id = a.note_id
                    WHERE {self.eng_filter} GROUP BY a.topic_id, e.user_id)
                WHERE user_id IN (SELECT user_id FROM {self.pop})""", self.eng_params)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for name in (self.tu, self.pop):
            self.con.execute(f"DROP TABLE IF EXISTS temp.{name}")
        self.con.unregister(self.asg)

    def df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run ``sql`` with ``{pop}``, ``{tu}`` and ``{asg}`` filled in."""
        return self.con.execute(sql.format(pop=self.pop, tu=self.tu, asg=self.asg), params or []).df()

    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Concrete ``[start, end)``; open ends take the engagements' data range."""
        start, end = self.start, self.end
        if start is None or end is None:
            lo, hi = self.con.execute("SELECT min(ts), max(ts) FROM engagements").fetchone()
            if lo is None:
                raise ValueError("the engagements table is empty")
            start = start if start is not None else _timestamp(lo)
            end = end if end is not None else _timestamp(hi) + pd.Timedelta(microseconds=1)
        return start, end


def _suppress(frame: pd.DataFrame, count_col: str, value_cols: Iterable[str], k: int,
              flag: str = "suppressed") -> pd.DataFrame:
    """NaN the value columns (and the count) of rows whose ``count_col`` < k; add the flag column."""
    small = frame[count_col].isna() | (frame[count_col] < k)
    cols = list(dict.fromkeys([count_col, *value_cols]))
    frame[cols] = frame[cols].astype("float64")
    frame.loc[small, cols] = np.nan
    frame[flag] = small.to_numpy()
    return frame


def _ratio(num, den) -> pd.Series:
    num, den = pd.Series(num, dtype="float64"), pd.Series(den, dtype="float64")
    return num.div(den.where(den > 0))


def _brand_list(brand) -> list[str] | None:
    return [brand] if isinstance(brand, str) else (list(brand) if brand is not None else None)


# ---- reach & penetration -------------------------------------------------------------------------
def _reach_raw(t: _Touches, by=()) -> pd.DataFrame:
    by = tuple(by or ())
    bad = [c for c in by if c not in DEFAULT_STRATA]
    if bad:
        raise ValueError(f"cannot break down by {bad}; use {list(DEFAULT_STRATA)}")
    cols = "".join(f"p.{c}, " for c in by)
    sizes = t.df(f"SELECT {cols}count(*) AS segment_size FROM {{pop}} p {'GROUP BY ALL' if by else ''}")
    reach = t.df(f"SELECT tu.topic_id, {cols}count(*) AS reach FROM {{tu}} tu JOIN {{pop}} p USING (user_id) "
                 "GROUP BY ALL")
    out = pd.DataFrame({TOPIC_ID: t.topic_ids}).merge(sizes, how="cross").merge(reach, on=[TOPIC_ID, *by],
                                                                                how="left")
    out["reach"] = out["reach"].fillna(0).astype("int64")
    return out[[TOPIC_ID, *by, "reach", "segment_size"]]


def _reach_table(t: _Touches, k: int, by=()) -> pd.DataFrame:
    out = _reach_raw(t, by)
    out["penetration"] = _ratio(out["reach"], out["segment_size"])
    out = _suppress(out, "segment_size", ["reach", "penetration"], k)
    small = out["suppressed"]
    out = _suppress(out, "reach", ["penetration"], k)
    out["suppressed"] |= small
    return out


def topic_reach_penetration(con, assignments: pd.DataFrame, segment=None, window=None, k: int = 50,
                            by: Iterable[str] | None = None, actions: Iterable[str] | None = None) -> pd.DataFrame:
    """Reach and penetration per topic (× ``by`` audience columns, e.g. ``["gender"]``).

    Parameters
    ----------
    con : duckdb connection with ``engagements`` and ``audience``.
    assignments : DataFrame with ``note_id``, ``topic_id``.
    segment : Segment, spec string ``"gender=F,age_band=18-24"``, dict or None (everyone).
    window : ``(start, end)`` on engagement ts, start inclusive, end exclusive; None = all.
    k : minimum users per cell; smaller cells are suppressed.
    by : audience columns to break each topic down by (segment cells).
    actions : actions that count as reach (default: all, impressions included).

    Returns
    -------
    DataFrame: ``topic_id``, *by*, ``reach``, ``segment_size``, ``penetration``, ``suppressed``.
    """
    with _Touches(con, assignments, segment, window, actions) as t:
        return _reach_table(t, k, by)


def penetration_growth(con, assignments: pd.DataFrame, window, previous_window, segment=None, k: int = 50,
                       by: Iterable[str] | None = None, actions: Iterable[str] | None = None) -> pd.DataFrame:
    """Penetration in ``window`` vs ``previous_window``.

    Adds ``reach_prev``, ``penetration_prev``, ``penetration_change`` (difference of shares) and
    ``penetration_growth`` (ratio − 1); the change is NaN when either cell is suppressed
    (``suppressed`` / ``suppressed_prev``).
    """
    cur = topic_reach_penetration(con, assignments, segment, window, k, by, actions)
    prev = topic_reach_penetration(con, assignments, segment, previous_window, k, by, actions)
    return _with_previous(cur, prev, [TOPIC_ID, *(by or ())])


def _with_previous(cur: pd.DataFrame, prev: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    prev = prev[keys + ["reach", "penetration", "suppressed"]].rename(
        columns={"reach": "reach_prev", "penetration": "penetration_prev", "suppressed": "suppressed_prev"})
    out = cur.merge(prev, on=keys, how="left")
    out["penetration_change"] = out["penetration"] - out["penetration_prev"]
    out["penetration_growth"] = _ratio(out["penetration"], out["penetration_prev"]) - 1
    return out


def _engagement_table(t: _Touches, k: int) -> pd.DataFrame:
    sums = ", ".join(f"sum(n_{a}) AS n_{a}" for a in ACTIONS)
    df = t.df(f"SELECT topic_id, count(*) AS users, {sums} FROM {{tu}} GROUP BY topic_id")
    out = pd.DataFrame({TOPIC_ID: t.topic_ids}).merge(df, on=TOPIC_ID, how="left").fillna(0)
    inter = out[[f"n_{a}" for a in INTERACTION_ACTIONS]].sum(axis=1)
    out["engagement_rate"] = _ratio(inter, out["n_impression"])
    value_cols = [f"n_{a}" for a in ACTIONS] + ["engagement_rate"]
    return _suppress(out, "users", value_cols, k)


def topic_engagement(con, assignments: pd.DataFrame, segment=None, window=None, k: int = 50) -> pd.DataFrame:
    """Action counts and engagement rate per topic from the first-party engagements table.

    Returns ``topic_id``, ``users``, one ``n_<action>`` column per action, ``engagement_rate``
    (= interaction events ÷ impression events), ``suppressed`` (users < k).
    """
    with _Touches(con, assignments, segment, window) as t:
        return _engagement_table(t, k)


# ---- AIPS flow -----------------------------------------------------------------------------------
def _aips_raw(t: _Touches, brand, horizon_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (topic, brand, before-rank r0, after-rank r1) counts of reached users and per (brand, r0,
    r1) counts of the whole population; users without snapshots for a brand are rank 0 → 0."""
    _require_tables(t.con, ["aips_stages"])
    start, end = t.period()
    brands = _brand_list(brand)
    bfilter = f"AND s.brand IN ({', '.join('?' for _ in brands)})" if brands else ""
    rank = "CASE {col} " + " ".join(f"WHEN '{s}' THEN {_RANK[s]}" for s in AIPS_STAGES) + " ELSE 0 END"
    last = "arg_max(s.stage, s.date) FILTER (WHERE s.date <= ?)"
    st = f"""WITH st AS MATERIALIZED (
        SELECT s.user_id, s.brand, {rank.format(col=last)} AS r0, {rank.format(col=last)} AS r1
        FROM aips_stages s WHERE s.user_id IN (SELECT user_id FROM {{pop}}) {bfilter} GROUP BY ALL)"""
    params = [start.date(), (end + pd.Timedelta(days=horizon_days)).date()] + (brands or [])
    both = t.df(f"""{st}
        SELECT tu.topic_id, st.brand, st.r0, st.r1, count(*) AS n FROM {{tu}} tu JOIN st USING (user_id)
        GROUP BY ALL
        UNION ALL
        SELECT NULL, st.brand, st.r0, st.r1, count(*) FROM st GROUP BY ALL""", params)
    reached = both[both[TOPIC_ID].notna()].astype({TOPIC_ID: "int64"})
    pop_all = both[both[TOPIC_ID].isna()].drop(columns=TOPIC_ID)
    n_reached = t.df("SELECT topic_id, count(*) AS n FROM {tu} GROUP BY topic_id")
    n_pop = int(t.df("SELECT count(*) AS n FROM {pop}")["n"].iloc[0])
    all_brands = brands or [r[0] for r in t.con.execute(
        "SELECT DISTINCT brand FROM aips_stages ORDER BY brand").fetchall()]
    # users with no snapshot for a brand are O → O: add them so the counts add up to reach / population
    reached_n = pd.Series(0, index=t.topic_ids).add(n_reached.set_index(TOPIC_ID)["n"], fill_value=0)
    have = reached.groupby([TOPIC_ID, "brand"])["n"].sum()
    extra = pd.MultiIndex.from_product([t.topic_ids, all_brands], names=[TOPIC_ID, "brand"]).to_frame(index=False)
    extra["n"] = reached_n.reindex(extra[TOPIC_ID]).to_numpy() - have.reindex(
        pd.MultiIndex.from_frame(extra[[TOPIC_ID, "brand"]]), fill_value=0).to_numpy()
    have_pop = pop_all.groupby("brand")["n"].sum()
    extra_pop = pd.DataFrame({"brand": all_brands, "n": n_pop - have_pop.reindex(all_brands, fill_value=0).to_numpy()})
    reached = pd.concat([reached, extra.assign(r0=0, r1=0)], ignore_index=True)
    pop_all = pd.concat([pop_all, extra_pop.assign(r0=0, r1=0)], ignore_index=True)
    return reached, pop_all


def _flow_from_raw(reached: pd.DataFrame, pop_all: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Long flow table: per keys × from-stage, reached/moved counts and the unreached baseline."""
    def agg(frame, group):
        f = frame.assign(moved=np.where(frame["r1"] > frame["r0"], frame["n"], 0))
        return f.groupby(group + ["r0"], as_index=False)[["n", "moved"]].sum()

    r = agg(reached, keys).rename(columns={"n": "reached"})
    brand_keys = [c for c in keys if c == "brand"]
    p = agg(pop_all, brand_keys).rename(columns={"n": "pop_n", "moved": "pop_moved"})
    grid = r[keys].drop_duplicates().merge(pd.DataFrame({"r0": range(len(FLOW_STAGES) - 1)}), how="cross")
    out = grid.merge(r, on=keys + ["r0"], how="left").merge(p, on=brand_keys + ["r0"], how="left")
    out = out.fillna({"reached": 0, "moved": 0, "pop_n": 0, "pop_moved": 0})
    out["from_stage"] = [FLOW_STAGES[i] for i in out["r0"]]
    out["to_stage"] = [FLOW_STAGES[i + 1] for i in out["r0"]]
    out["rate"] = _ratio(out["moved"], out["reached"])
    out["baseline_users"] = out["pop_n"] - out["reached"]
    out["baseline_moved"] = out["pop_moved"] - out["moved"]
    out["baseline_rate"] = _ratio(out["baseline_moved"], out["baseline_users"])
    out["lift"] = out["rate"] / out["baseline_rate"].where(out["baseline_rate"] > 0)
    cols = keys + ["from_stage", "to_stage", "reached", "moved", "rate", "baseline_users", "baseline_moved",
                   "baseline_rate", "lift"]
    return out.sort_values(keys + ["r0"])[cols].reset_index(drop=True)


def _suppress_flow(out: pd.DataFrame, k: int) -> pd.DataFrame:
    out = _suppress(out, "baseline_users", ["baseline_moved", "baseline_rate", "lift"], k, "baseline_suppressed")
    return _suppress(out, "reached", ["moved", "rate", "lift"], k)


def aips_flow(con, assignments: pd.DataFrame, segment=None, window=None, brand=None, horizon_days: int = 15,
              k: int = 50) -> pd.DataFrame:
    """AIPS stage flow of reached users vs unreached users, per topic × brand × from-stage.

    Stage before = latest snapshot on/before the window start; after = latest snapshot on/before
    window end + ``horizon_days``. ``from_stage`` runs over O (not in pool), A, I, TI, P.

    Returns ``topic_id``, ``brand``, ``from_stage``, ``to_stage``, ``reached`` (reached users at
    from_stage before), ``moved`` (of them, at a later stage after), ``rate``, ``baseline_users``,
    ``baseline_moved``, ``baseline_rate`` (same among unreached population users), ``lift``,
    ``suppressed`` (reached < k), ``baseline_suppressed`` (baseline_users < k).
    """
    with _Touches(con, assignments, segment, window) as t:
        reached, pop_all = _aips_raw(t, brand, horizon_days)
    return _suppress_flow(_flow_from_raw(reached, pop_all, [TOPIC_ID, "brand"]), k)


def aips_stage_counts(con, assignments: pd.DataFrame, segment=None, window=None, brand=None,
                      horizon_days: int = 15, k: int = 50) -> pd.DataFrame:
    """Reached users per AIPS stage (after = window end + horizon), per topic × brand.

    Returns ``topic_id``, ``brand``, ``stage`` (O, A, I, TI, P, S), ``users``, ``share`` (of the
    topic's reach), ``suppressed`` (users < k).
    """
    with _Touches(con, assignments, segment, window) as t:
        reached, _ = _aips_raw(t, brand, horizon_days)
    counts = reached.groupby([TOPIC_ID, "brand", "r1"], as_index=False)["n"].sum()
    grid = counts[[TOPIC_ID, "brand"]].drop_duplicates().merge(pd.DataFrame({"r1": range(len(FLOW_STAGES))}),
                                                                how="cross")
    out = grid.merge(counts, on=[TOPIC_ID, "brand", "r1"], how="left").fillna({"n": 0})
    out["share"] = _ratio(out["n"], out.groupby([TOPIC_ID, "brand"])["n"].transform("sum"))
    out["stage"] = [FLOW_STAGES[i] for i in out["r1"]]
    out = out.sort_values([TOPIC_ID, "brand", "r1"]).rename(columns={"n": "users"})
    out = out[[TOPIC_ID, "brand", "stage", "users", "share"]].reset_index(drop=True)
    return _suppress(out, "users", ["share"], k)


# ---- order value ---------------------------------------------------------------------------------
def _orders_raw(t: _Touches, attribution_days: int, brand, strata):
    """Attributed orders per topic, plus period buyers/GMV of reached users and of the population by
    stratum (for the standardised baseline)."""
    if attribution_days < 0:
        raise ValueError("attribution_days must be >= 0")
    _require_tables(t.con, ["orders"])
    bad = [c for c in strata if c not in DEFAULT_STRATA]
    if bad:
        raise ValueError(f"unknown strata {bad}; use {list(DEFAULT_STRATA)}")
    start, end = t.period()
    brands = _brand_list(brand)
    bcond = f"brand IN ({', '.join('?' for _ in brands)})" if brands else "TRUE"
    days = int(attribution_days)
    # Candidates lie in [first touch, last touch + N]. Those within N of the first touch are attributed
    # outright; only the rest (gaps between touches longer than N) need the exact latest-touch check,
    # which re-reads the single touches of just those (topic, user) pairs (a SEMI JOIN: DuckDB 1.4 plans
    # the equivalent inner join ~30x slower) and looks for one in [order − N, order] (EXISTS beats ASOF here).
    us = f"{days} * 86400000000"          # N days as microseconds (24 h days; Shanghai has no DST)
    attributed = t.df(f"""
        WITH o AS (SELECT user_id, amount, epoch_us(ts) AS t FROM orders WHERE {bcond}),
        cand AS MATERIALIZED (
            SELECT o.user_id, o.amount, o.t, tu.topic_id, epoch_us(tu.first_ts) AS first_t
            FROM o JOIN {{tu}} tu USING (user_id)
            WHERE o.t >= epoch_us(tu.first_ts) AND o.t <= epoch_us(tu.last_ts) + {us}),
        hard AS (SELECT * FROM cand WHERE t > first_t + {us}),
        pairs AS (SELECT DISTINCT topic_id, user_id FROM hard),
        touch AS (SELECT a.topic_id, e.user_id, epoch_us(e.ts) AS t
                  FROM engagements e JOIN {{asg}} a ON e.note_id = a.note_id
                  SEMI JOIN pairs ON pairs.topic_id = a.topic_id AND pairs.user_id = e.user_id
                  WHERE {t.eng_filter}),
        att AS (SELECT topic_id, user_id, amount FROM cand WHERE t <= first_t + {us}
                UNION ALL
                SELECT topic_id, user_id, amount FROM hard h WHERE EXISTS (
                    SELECT 1 FROM touch WHERE touch.topic_id = h.topic_id AND touch.user_id = h.user_id
                    AND touch.t BETWEEN h.t - {us} AND h.t))
        SELECT topic_id, count(DISTINCT user_id) AS buyers, count(*) AS orders, sum(amount) AS gmv
        FROM att GROUP BY topic_id""", (brands or []) + t.eng_params)
    sc = ", ".join(f"p.{c}" for c in strata)
    pu = f"""WITH period AS (SELECT user_id, sum(amount) AS gmv FROM orders
                             WHERE ts >= ? AND ts <= ? AND {bcond} GROUP BY user_id),
        pu AS (SELECT p.user_id, {sc}, (period.user_id IS NOT NULL)::INT AS buyer, coalesce(period.gmv, 0) AS gmv
               FROM {{pop}} p LEFT JOIN period USING (user_id))"""
    params = [start, end + pd.Timedelta(days=days)] + (brands or [])
    reached = t.df(f"""{pu} SELECT tu.topic_id, {sc}, count(*) AS n, sum(buyer) AS buyers, sum(gmv) AS gmv
        FROM {{tu}} tu JOIN pu p USING (user_id) GROUP BY ALL""", params)
    pop = t.df(f"{pu} SELECT {sc}, count(*) AS n, sum(buyer) AS buyers, sum(gmv) AS gmv FROM pu p GROUP BY ALL",
               params)
    return t.topic_ids, attributed, reached, pop


def _standardised_baseline(reached: pd.DataFrame, pop: pd.DataFrame, strata) -> pd.DataFrame:
    """Unreached users' conversion and GMV/user per stratum, weighted by the reached users' mix."""
    strata = list(strata)
    m = reached.merge(pop, on=strata, suffixes=("", "_pop"))
    m["n_u"] = m["n_pop"] - m["n"]
    m = m[m["n_u"] > 0].copy()
    m["conv_u"] = (m["buyers_pop"] - m["buyers"]) / m["n_u"]
    m["gpu_u"] = (m["gmv_pop"] - m["gmv"]) / m["n_u"]
    m["w_conv"] = m["n"] * m["conv_u"]
    m["w_gpu"] = m["n"] * m["gpu_u"]
    g = m.groupby(TOPIC_ID)[["n", "w_conv", "w_gpu", "n_u"]].sum()
    out = pd.DataFrame({
        TOPIC_ID: g.index,
        "baseline_users": g["n_u"].to_numpy(),
        "baseline_conversion": (g["w_conv"] / g["n"]).to_numpy(),
        "baseline_gmv_per_user": (g["w_gpu"] / g["n"]).to_numpy(),
    })
    out["baseline_aov"] = _ratio(out["baseline_gmv_per_user"], out["baseline_conversion"])
    return out


def _order_table(topic_ids, attributed, reached, pop, strata) -> pd.DataFrame:
    per_topic = reached.groupby(TOPIC_ID)[["n", "buyers", "gmv"]].sum()
    per_topic.columns = ["reach", "period_buyers", "period_gmv"]
    out = pd.DataFrame({TOPIC_ID: topic_ids}).merge(per_topic.reset_index(), on=TOPIC_ID, how="left")
    out = out.merge(attributed, on=TOPIC_ID, how="left")
    out = out.fillna({"reach": 0, "period_buyers": 0, "period_gmv": 0.0, "buyers": 0, "orders": 0, "gmv": 0.0})
    out["aov"] = _ratio(out["gmv"], out["buyers"])
    out["conversion_rate"] = _ratio(out["buyers"], out["reach"])
    out["period_conversion"] = _ratio(out["period_buyers"], out["reach"])
    out["period_aov"] = _ratio(out["period_gmv"], out["period_buyers"])
    out = out.merge(_standardised_baseline(reached, pop, strata), on=TOPIC_ID, how="left")
    out["conversion_lift"] = out["period_conversion"] / out["baseline_conversion"].where(out["baseline_conversion"] > 0)
    out["aov_lift"] = out["period_aov"] / out["baseline_aov"]
    return out.drop(columns=["period_buyers", "period_gmv"])


def _suppress_orders(out: pd.DataFrame, k: int) -> pd.DataFrame:
    amounts = [c for c in ("gmv", "aov", "period_aov", "aov_lift", "roi") if c in out]
    few_buyers = out["buyers"] < k
    out[amounts] = out[amounts].astype("float64")
    out.loc[few_buyers, amounts] = np.nan
    out["amounts_suppressed"] = few_buyers.to_numpy()
    small = out["baseline_users"].isna() | (out["baseline_users"] < k)
    out.loc[small, ["baseline_conversion", "baseline_gmv_per_user", "baseline_aov", "conversion_lift",
                    "aov_lift"]] = np.nan
    return _suppress(out, "reach", ["buyers", "orders", "conversion_rate", "period_conversion", "conversion_lift",
                                    *amounts], k)


def order_value(con, assignments: pd.DataFrame, segment=None, window=None, attribution_days: int = 15,
                brand=None, k: int = 50, strata: Iterable[str] = DEFAULT_STRATA) -> pd.DataFrame:
    """Orders attributed to each topic within ``attribution_days`` after an engagement (T+N).

    Returns ``topic_id``, ``reach``, ``buyers``, ``orders``, ``gmv``, ``aov`` (客单价 = GMV ÷
    buyers), ``conversion_rate`` (buyers ÷ reach) — all from attributed orders — and, for the
    lifts, over the period P = [window start, window end + attribution_days]:
    ``period_conversion`` and ``period_aov`` of reached users, ``baseline_users``,
    ``baseline_conversion``, ``baseline_gmv_per_user``, ``baseline_aov`` (unreached users,
    standardised to the reached mix of ``strata``; NaN when fewer than k unreached users),
    ``conversion_lift`` = period_conversion ÷ baseline_conversion, ``aov_lift`` = period_aov ÷
    baseline_aov, ``amounts_suppressed`` (buyers < k: gmv, aov, period_aov, aov_lift hidden),
    ``suppressed`` (reach < k: every reached-user metric hidden).

    An order counts for every topic the user engaged with in the N days before it (no
    de-duplication across topics); ``brand`` (str or list) restricts orders.
    """
    strata = tuple(strata)
    with _Touches(con, assignments, segment, window) as t:
        raw = _orders_raw(t, attribution_days, brand, strata)
    return _suppress_orders(_order_table(*raw, strata), k)


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
    out["cpe"] = _ratio(out["spend"], out["paid_interactions"]).to_numpy()
    out = out.reset_index()
    return out[[TOPIC_ID, "n_notes", *counts, "interactions", "interactions_per_note", "spend", "cpe"]]


# ---- one table for the app -----------------------------------------------------------------------
TOPIC_METRICS_COLUMNS = {
    TOPIC_ID: "int",
    "label": "topic label (when topics are given)",
    "reach": "reached users in the segment (any action on a topic note in the window)",
    "segment_size": "users in the segment (audience table)",
    "penetration": "reach ÷ segment_size",
    "penetration_prev": "penetration in previous_window (when given)",
    "penetration_change": "penetration − penetration_prev (share points as a fraction)",
    "engagement_rate": "(like+collect+comment+share events) ÷ impression events, first-party",
    "n_notes": "notes in the topic (when notes are given)",
    "interactions": "likes + collects + comments of the topic's notes (public counts)",
    "spend": "Σ spend on the topic's notes",
    "cpe": "spend ÷ interactions of the notes carrying spend",
    **{f"flow_{a}_{b}": f"reached users at {a} before who reached {b} or later after" for a, b in FLOW_PAIRS},
    **{f"flow_rate_{a}_{b}": f"flow_{a}_{b} ÷ reached users at {a} before" for a, b in FLOW_PAIRS},
    **{f"flow_lift_{a}_{b}": f"flow_rate_{a}_{b} ÷ the same rate among unreached users" for a, b in FLOW_PAIRS},
    "buyers": "reached users with ≥1 attributed order",
    "orders": "attributed orders",
    "gmv": "Σ amount of attributed orders",
    "aov": "客单价 = gmv ÷ buyers",
    "conversion_rate": "buyers ÷ reach",
    "conversion_lift": "reached users' conversion in the period ÷ standardised unreached conversion",
    "aov_lift": "reached users' AOV in the period ÷ standardised unreached AOV",
    "roi": "gmv ÷ spend (投产比)",
    "suppressed": "reach < k: user metrics hidden (NaN)",
    "amounts_suppressed": "buyers < k: gmv/aov/aov_lift/roi hidden",
}


def topic_metrics_table(con, assignments: pd.DataFrame, topics: pd.DataFrame | None = None,
                        notes: pd.DataFrame | None = None, segment=None, window=None, previous_window=None,
                        brand=None, attribution_days: int = 15, k: int = 50,
                        spend: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per topic combining every metric; columns in :data:`TOPIC_METRICS_COLUMNS`.

    AIPS flow uses ``horizon_days = attribution_days``. With several brands (``brand=None`` or a
    list) flow counts are summed over brands, i.e. they count user × brand pairs. ``spend`` defaults
    to the connection's ``spend`` table when it exists.
    """
    tables = _tables(con)
    if spend is None and "spend" in tables:
        spend = con.execute("SELECT note_id, amount FROM spend").df()
    with _Touches(con, assignments, segment, window) as t:
        out = _reach_table(t, k)
        if previous_window is not None:
            with _Touches(con, assignments, segment, previous_window) as prev:
                out = _with_previous(out, _reach_table(prev, k), [TOPIC_ID])
            out = out.drop(columns=["reach_prev", "penetration_growth", "suppressed_prev"])
        out = out.merge(_engagement_table(t, k)[[TOPIC_ID, "engagement_rate"]], on=TOPIC_ID, how="left")
        flow = _flow_from_raw(*_aips_raw(t, brand, attribution_days), [TOPIC_ID]) if "aips_stages" in tables else None
        orders = _order_table(*_orders_raw(t, attribution_days, brand, DEFAULT_STRATA), DEFAULT_STRATA) \
            if "orders" in tables else None

    if notes is not None:
        inter = interaction_metrics(notes, assignments, spend)
        out = out.merge(inter[[TOPIC_ID, "n_notes", "interactions", "spend", "cpe"]], on=TOPIC_ID, how="left")
    elif spend is not None:
        per_topic = assignments.merge(spend, on=NOTE_ID).groupby(TOPIC_ID)["amount"].sum().rename("spend")
        out = out.merge(per_topic.reset_index(), on=TOPIC_ID, how="left")

    if flow is not None:
        flow = _suppress_flow(flow, k)
        flow = flow[flow["from_stage"] != NOT_IN_POOL]
        flow["pair"] = [f"{a}_{b}" for a, b in zip(flow["from_stage"], flow["to_stage"])]
        wide = flow.pivot(index=TOPIC_ID, columns="pair", values=["moved", "rate", "lift"])
        wide.columns = [{"moved": "flow_", "rate": "flow_rate_", "lift": "flow_lift_"}[m] + p for m, p in wide.columns]
        order = [f"{m}{a}_{b}" for m in ("flow_", "flow_rate_", "flow_lift_") for a, b in FLOW_PAIRS]
        out = out.merge(wide.reindex(columns=order).reset_index(), on=TOPIC_ID, how="left")

    if orders is not None:
        if "spend" in out:
            orders = orders.merge(out[[TOPIC_ID, "spend"]], on=TOPIC_ID, how="left")
            orders["roi"] = _ratio(orders["gmv"], orders["spend"]).to_numpy()
            orders = orders.drop(columns="spend")
        orders = _suppress_orders(orders, k)
        keep = [c for c in ("buyers", "orders", "gmv", "aov", "conversion_rate", "conversion_lift", "aov_lift",
                            "roi", "amounts_suppressed") if c in orders]
        out = out.merge(orders[[TOPIC_ID, *keep]], on=TOPIC_ID, how="left")

    if topics is not None:
        out = out.merge(topics[[TOPIC_ID, "label"]], on=TOPIC_ID, how="left")
    cols = [c for c in TOPIC_METRICS_COLUMNS if c in out.columns]
    return out[cols + [c for c in out.columns if c not in cols]]
