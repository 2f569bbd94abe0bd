"""One pass over ``engagements`` per metrics call: the per-(topic, user) touch table every metric reads.

Two kinds of contact with a topic are kept apart:

* **reach** (触达) — any action in ``actions`` (default: every action, bare impressions included);
  reach, penetration and the engagement rate use it.
* **touch** (engaged contact) — an action in ``touch_actions`` (default :data:`ENGAGED_ACTIONS`:
  read, like, collect, comment, share, search; *not* a bare impression). Attribution, the
  association lift and AIPS flow count only touches: "reached" in those metrics means touched.
"""
from __future__ import annotations

import uuid
from typing import Iterable

import pandas as pd

from miner.schema import ACTIONS, NOTE_ID, OUTLIER, TOPIC_ID, TZ
from miner.store import table_names

from .filters import DEFAULT_STRATA, AudienceFilter

__all__ = ["ENGAGED_ACTIONS", "Touches"]

ENGAGED_ACTIONS = ("read", "like", "collect", "comment", "share", "search")


tables = table_names


def require_tables(con, names: Iterable[str]) -> None:
    missing = [n for n in names if n not in tables(con)]
    if missing:
        raise ValueError(f"missing tables {missing}; ingest them first (python -m miner audience ...)")


def timestamp(value) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize(TZ) if ts.tzinfo is None else ts.tz_convert(TZ)


def parse_window(window) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``(start, end)``: engagements with ``start <= ts < end``; either end may be None."""
    if window is None:
        return None, None
    start, end = window
    start, end = timestamp(start), timestamp(end)
    if start is not None and end is not None and end <= start:
        raise ValueError(f"window end {end} is not after start {start}")
    return start, end


def ratio(num, den) -> pd.Series:
    num, den = pd.Series(num, dtype="float64"), pd.Series(den, dtype="float64")
    return num.div(den.where(den > 0))


def check_actions(actions, name: str) -> tuple[str, ...]:
    actions = tuple(actions)
    bad = [a for a in actions if a not in ACTIONS]
    if bad or not actions:
        raise ValueError(f"{name} {bad or '()'}: use a non-empty subset of {list(ACTIONS)}")
    return actions


class Touches:
    """Temp tables for (assignments, audience filter, window, actions), as a context manager.

    ``pop``: population users (user_id + strata columns). ``tu``: one row per reached (topic,
    user) with ``first_ts``/``last_ts`` (any counted action), one ``n_<action>`` count per action,
    ``first_touch_ts``/``last_touch_ts`` (touch actions only; NULL = reached but never touched) and
    ``last_touch_paid`` (the latest touch was on a note carrying spend). ``eng_filter`` /
    ``eng_params``: the window/actions predicate on ``engagements e``; ``touch_filter`` adds the
    touch actions. Temp tables and the registered assignments go on exit; ``temp(stem)`` makes
    another name that goes with them; ``cache`` holds derived temp tables shared within the call.
    """

    def __init__(self, con, assignments: pd.DataFrame, segment=None, window=None, actions=None,
                 touch_actions=ENGAGED_ACTIONS, paid_notes: Iterable[str] | None = None):
        self.con = con
        self.assignments = assignments
        self.segment = segment
        self.window = window
        self.actions = actions
        self.touch_actions = touch_actions
        self.paid_notes = paid_notes

    def temp(self, stem: str) -> str:
        name = f"_mt_{stem}{len(self._temps)}_{self._tag}"
        self._temps.append(name)
        return name

    def __enter__(self) -> "Touches":
        con = self.con
        missing = {NOTE_ID, TOPIC_ID} - set(self.assignments.columns)
        if missing:
            raise ValueError(f"assignments lack columns {sorted(missing)}")
        require_tables(con, ["engagements", "audience"])
        segment = AudienceFilter.from_spec(self.segment)
        touch = check_actions(self.touch_actions, "touch_actions")
        self.start, self.end = parse_window(self.window)
        asg = self.assignments.loc[self.assignments[TOPIC_ID] != OUTLIER, [NOTE_ID, TOPIC_ID]].copy()
        asg[NOTE_ID] = asg[NOTE_ID].astype(str)
        asg[TOPIC_ID] = asg[TOPIC_ID].astype("int64")
        asg["paid"] = asg[NOTE_ID].isin({str(n) for n in (self.paid_notes or ())})
        self.topic_ids = sorted(asg[TOPIC_ID].unique().tolist())
        self._tag, self._temps, self.cache = uuid.uuid4().hex[:10], [], {}
        self.asg = f"_mt_asg_{self._tag}"
        self.pop, self.tu = self.temp("pop"), self.temp("tu")
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
                actions = check_actions(self.actions, "actions")
                cond.append(f"e.action IN ({', '.join('?' for _ in actions)})")
                self.eng_params.extend(actions)
            self.eng_filter = " AND ".join(cond)
            self.touch_sql = "e.action IN (" + ", ".join(f"'{a}'" for a in touch) + ")"
            self.touch_filter = f"{self.eng_filter} AND {self.touch_sql}"
            counts = ", ".join(f"count(*) FILTER (WHERE e.action = '{a}') AS n_{a}" for a in ACTIONS)
            is_touch = f"FILTER (WHERE {self.touch_sql})"
            # group first, then keep population users: cheaper than a semi-join on every engagement row
            con.execute(f"""CREATE TEMP TABLE {self.tu} AS
                SELECT * FROM (
                    SELECT a.topic_id, e.user_id, min(e.ts) AS first_ts, max(e.ts) AS last_ts, {counts},
                           min(e.ts) {is_touch} AS first_touch_ts, max(e.ts) {is_touch} AS last_touch_ts,
                           arg_max(a.paid, e.ts) {is_touch} AS last_touch_paid
                    FROM engagements e JOIN {self.asg} a ON e.note_id = a.note_id
                    WHERE {self.eng_filter} GROUP BY a.topic_id, e.user_id)
                WHERE user_id IN (SELECT user_id FROM {self.pop})""", self.eng_params)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for name in self._temps:
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
            start = start if start is not None else timestamp(lo)
            end = end if end is not None else timestamp(hi) + pd.Timedelta(microseconds=1)
        return start, end

    def brands(self, brand) -> list[str]:
        """``brand`` as a list; None = every brand in ``orders`` and ``aips_stages`` (sorted)."""
        if isinstance(brand, str):
            return [brand]
        if brand is not None:
            return list(brand)
        have = tables(self.con)
        parts = [f"SELECT DISTINCT brand FROM {t}" for t in ("orders", "aips_stages") if t in have]
        if not parts:
            return []
        return [r[0] for r in self.con.execute(" UNION ".join(parts) + " ORDER BY 1").fetchall()]
