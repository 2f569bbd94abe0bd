"""How much a topic gains inside a marketing node's windows: node lift, shrunk for small counts.

For topic ``t`` with ``n_in`` notes inside the node's windows (every occurrence, 蓄水 start → 返场
end) and ``n_out`` outside, and the share ``π_in = V_in / (V_in + V_out)`` of all notes that fall
inside, the expected counts at an unchanged share are ``E_in = (n_in + n_out)·π_in`` and
``E_out = (n_in + n_out)·(1 − π_in)``. The raw lift ``(n_in / E_in) / (n_out / E_out)`` is the
share inside over the share outside; with one note in and one out of a short window it is huge
(the old +1-smoothed version gave 7.68). We shrink it with the gamma–Poisson (empirical-Bayes) rate
model used for small-area rates: each topic's relative rate inside has prior Gamma(a, a) (mean 1),
so its posterior mean is ``(n_in + a) / (E_in + a)``, likewise outside, and::

    node_lift = ((n_in + a) / (E_in + a)) / ((n_out + a) / (E_out + a))

``a`` (``prior_strength``) is estimated from all topics by the method of moments (Marshall 1991:
prior variance of the inside rate = weighted variance of ``n_in / E_in`` minus its Poisson part),
``a = m² / v`` with ``m`` the pooled inside rate (≈ 1), clipped to ``[min_prior, max_prior]``; pass a number to fix it. Big topics keep
their raw lift; a topic with a handful of notes is pulled toward 1.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from miner import schema
from miner.schema import TOPIC_ID

__all__ = ["NODE_LIFT_COLUMNS", "node_lift", "node_lift_table"]

NODE_LIFT_COLUMNS = (TOPIC_ID, "n_in", "n_out", "expected_in", "raw_lift", "node_lift", "prior_strength")


def node_lift_table(series: pd.DataFrame, node_key: str, nodes=None, prior_strength: float | None = None,
                    min_prior: float = 2.0, max_prior: float = 1e4) -> pd.DataFrame:
    """Per topic: notes inside / outside the node's windows, raw and shrunk lift (module docstring).

    ``series`` is a daily :func:`miner.insights.series.topic_time_series`. ``node_lift`` is NaN for
    every topic when the series covers no occurrence of the node, or only node days.
    """
    from miner.insights.calendar import load_calendar

    if series.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in NODE_LIFT_COLUMNS})
    days = pd.to_datetime(series["period_start"])
    days = (days.dt.tz_convert(schema.TZ) if days.dt.tz is not None else days).dt.date
    first, last = days.min(), days.max()
    if nodes is None:
        nodes = load_calendar(years=range(first.year - 1, last.year + 2))
    mine = [n for n in nodes if n.key == node_key]
    if not mine:
        raise ValueError(f"no marketing node {node_key!r}; known: {sorted({n.key for n in nodes})}")
    inside = np.zeros(len(series), dtype=bool)
    for node in mine:
        inside |= ((days >= node.start) & (days <= node.end)).to_numpy()
    frame = series.assign(_in=inside)
    topics = pd.Index(sorted(series[TOPIC_ID].unique()), name=TOPIC_ID)
    per = frame.groupby([TOPIC_ID, "_in"])["note_count"].sum().unstack(fill_value=0)
    per = per.reindex(index=topics, columns=[False, True], fill_value=0)
    totals = frame.drop_duplicates("period_start").groupby("_in")["period_notes"].sum()
    v_in, v_out = float(totals.get(True, 0)), float(totals.get(False, 0))
    n_in, n_out = per[True].to_numpy(float), per[False].to_numpy(float)
    out = pd.DataFrame({TOPIC_ID: topics.to_numpy(), "n_in": n_in.astype("int64"),
                        "n_out": n_out.astype("int64")})
    if v_in <= 0 or v_out <= 0:
        for c in ("expected_in", "raw_lift", "node_lift", "prior_strength"):
            out[c] = np.nan
        return out
    pi = v_in / (v_in + v_out)
    e_in, e_out = (n_in + n_out) * pi, (n_in + n_out) * (1 - pi)
    a = float(prior_strength) if prior_strength is not None else _marshall_prior(n_in, e_in, min_prior, max_prior)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where((n_out > 0) & (e_in > 0), (n_in / e_in) / (n_out / np.maximum(e_out, 1e-12)), np.nan)
    lift = ((n_in + a) / (e_in + a)) / ((n_out + a) / (e_out + a))
    out["expected_in"], out["raw_lift"], out["node_lift"], out["prior_strength"] = e_in, raw, lift, a
    return out


def node_lift(series: pd.DataFrame, node_key: str, nodes=None, prior_strength: float | None = None) -> pd.Series:
    """Shrunk node lift per topic (index ``topic_id``); see :func:`node_lift_table`."""
    table = node_lift_table(series, node_key, nodes, prior_strength)
    return pd.Series(table["node_lift"].to_numpy(float), name="node_lift",
                     index=pd.Index(table[TOPIC_ID].astype("int64"), name=TOPIC_ID))


def _marshall_prior(n: np.ndarray, e: np.ndarray, lo: float, hi: float) -> float:
    ok = e > 0
    if ok.sum() < 3:
        return lo * 5                                # too few topics to estimate: a moderate prior
    n, e = n[ok], e[ok]
    m = n.sum() / e.sum()
    s2 = (e * (n / e - m) ** 2).sum() / e.sum()
    v = s2 - m / e.mean()
    if v <= 0:
        return hi
    return float(np.clip(m * m / v, lo, hi))
