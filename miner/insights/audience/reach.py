"""Reach (触达), penetration (渗透率) and engagement rate per topic.

* **reach** — population users with at least one engagement (any action in ``actions``,
  impressions included by default) on a note of the topic inside the window.
* **penetration** — reach ÷ population size (segment size).
* **penetration change / growth** — penetration(window) − penetration(previous window), and the
  ratio − 1.
* **engagement rate** — (like + collect + comment + share events) ÷ impression events, from the
  first-party engagements table.

Cells: reach and segment size are distinct users; a cell under k is hidden (NaN, ``suppressed``).
"""
from __future__ import annotations

from typing import Iterable

import pandas as pd

from miner.schema import ACTIONS, TOPIC_ID

from .filters import DEFAULT_STRATA
from .privacy import suppress
from .touches import Touches, ratio

__all__ = ["INTERACTION_ACTIONS", "topic_reach_penetration", "penetration_growth", "topic_engagement"]

INTERACTION_ACTIONS = ("like", "collect", "comment", "share")


# ---- reach & penetration -------------------------------------------------------------------------
def _reach_raw(t: Touches, by=()) -> pd.DataFrame:
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


def _reach_table(t: Touches, k: int, by=()) -> pd.DataFrame:
    out = _reach_raw(t, by)
    out["penetration"] = ratio(out["reach"], out["segment_size"])
    out = suppress(out, "segment_size", ["reach", "penetration"], k)
    return suppress(out, "reach", ["penetration"], k)


def topic_reach_penetration(con, assignments: pd.DataFrame, segment=None, window=None, k: int = 50,
                            by: Iterable[str] | None = None, actions: Iterable[str] | None = None) -> pd.DataFrame:
    """Reach and penetration per topic (× ``by`` audience columns, e.g. ``["gender"]``).

    Parameters
    ----------
    con : duckdb connection with ``engagements`` and ``audience``.
    assignments : DataFrame with ``note_id``, ``topic_id``.
    segment : AudienceFilter, spec string ``"gender=F,age_band=18-24"``, dict or None (everyone).
    window : ``(start, end)`` on engagement ts, start inclusive, end exclusive; None = all.
    k : minimum users per cell; smaller cells are suppressed.
    by : audience columns to break each topic down by (segment cells).
    actions : actions that count as reach (default: all, impressions included).

    Returns
    -------
    DataFrame: ``topic_id``, *by*, ``reach``, ``segment_size``, ``penetration``, ``suppressed``.
    """
    with Touches(con, assignments, segment, window, actions) as t:
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
    out["penetration_growth"] = ratio(out["penetration"], out["penetration_prev"]) - 1
    return out


def _engagement_table(t: Touches, k: int) -> pd.DataFrame:
    sums = ", ".join(f"sum(n_{a}) AS n_{a}" for a in ACTIONS)
    df = t.df(f"SELECT topic_id, count(*) AS users, {sums} FROM {{tu}} GROUP BY topic_id")
    out = pd.DataFrame({TOPIC_ID: t.topic_ids}).merge(df, on=TOPIC_ID, how="left").fillna(0)
    inter = out[[f"n_{a}" for a in INTERACTION_ACTIONS]].sum(axis=1)
    out["engagement_rate"] = ratio(inter, out["n_impression"])
    value_cols = [f"n_{a}" for a in ACTIONS] + ["engagement_rate"]
    return suppress(out, "users", value_cols, k)


def topic_engagement(con, assignments: pd.DataFrame, segment=None, window=None, k: int = 50) -> pd.DataFrame:
    """Action counts and engagement rate per topic from the first-party engagements table.

    Returns ``topic_id``, ``users``, one ``n_<action>`` column per action, ``engagement_rate``
    (= interaction events ÷ impression events), ``suppressed`` (users < k).
    """
    with Touches(con, assignments, segment, window) as t:
        return _engagement_table(t, k)
