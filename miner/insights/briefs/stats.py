"""The brief's statistics: engagement adjusted for note age and author size, intervals, group tests.

* **adjusted engagement** — public counts grow with a note's age and its author's reach, so raw
  counts favour old notes and big accounts. Over all notes of the snapshot we fit by least squares
  ``log1p(engagement) ~ 1 + log1p(age_days) [+ log1p(followers)]``, where ``age_days`` is measured
  from publishing to the newest note of the snapshot (counts are observed when the data was
  collected, not on the planning date). The residual says how a note did against notes of its age
  (and author size); ``engagement_index`` = exp(residual): 1 = as expected, 2 = twice as much.
* **median ratio interval** — percentile bootstrap of median(group) ÷ median(topic), resampling
  the topic's notes (with their group labels) together.
* **best group** — a group (weekday, hour block, format) is recommended only when a
  Kruskal–Wallis test over the groups with at least ``min_size`` notes gives p < ``alpha``;
  otherwise the brief says there is no significant difference.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from miner import schema

__all__ = ["FOLLOWER_COLUMNS", "adjusted_engagement", "best_group", "median_ratio_interval", "raw_engagement"]

# a per-note author follower count, when the notes carry one (first present wins)
FOLLOWER_COLUMNS = ("author_followers", "followers", "fans")


def raw_engagement(frame: pd.DataFrame) -> pd.Series:
    return schema.engagement(frame).astype("int64").rename(None)


def adjusted_engagement(notes: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Per note: ``engagement``, ``age_days``, ``per_day``, ``log_residual``, ``engagement_index``.

    Returns the frame (same index as ``notes``) and a dict describing the fit (shown in the brief).
    """
    eng = raw_engagement(notes).astype("float64")
    y = np.log1p(eng.to_numpy())
    X = [np.ones(len(notes))]
    terms, info = [], {"observed_at": None}
    age = pd.Series(np.nan, index=notes.index)
    if schema.PUBLISHED_AT in notes and notes[schema.PUBLISHED_AT].notna().any():
        ts = pd.to_datetime(notes[schema.PUBLISHED_AT])
        observed = ts.max()
        age = ((observed - ts).dt.total_seconds() / 86400.0).clip(lower=0.0)
        info["observed_at"] = observed.isoformat()
    has_age = age.notna().to_numpy()
    if has_age.sum() >= 3 and age[has_age].nunique() > 1:
        X.append(np.log1p(age.fillna(age.median()).to_numpy()))
        terms.append("log1p(age_days)")
    followers = next((c for c in FOLLOWER_COLUMNS if c in notes and notes[c].notna().sum() >= 3), None)
    if followers is not None:
        f = pd.to_numeric(notes[followers], errors="coerce").clip(lower=0)
        X.append(np.log1p(f.fillna(f.median()).to_numpy()))
        terms.append(f"log1p({followers})")
    A = np.column_stack(X)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    out = pd.DataFrame({"engagement": eng, "age_days": age,
                        "per_day": eng / np.maximum(age.to_numpy(), 1.0),
                        "log_residual": resid, "engagement_index": np.exp(resid)}, index=notes.index)
    info.update({"model": "log1p(engagement) ~ 1" + "".join(f" + {t}" for t in terms),
                 "coefficients": {name: float(c) for name, c in zip(["intercept", *terms], coef)},
                 "by_age": "log1p(age_days)" in terms, "by_author_size": followers is not None,
                 "follower_column": followers, "n_notes": int(len(notes))})
    return out, info


def median_ratio_interval(values, in_group, n_boot: int = 500, level: float = 0.95,
                          seed: int = 0) -> tuple[float, float | None, float | None]:
    """median(values[in_group]) ÷ median(values) with a percentile-bootstrap interval.

    ``values`` must be positive (the adjusted index is). The interval is None when the group has
    fewer than 2 notes.
    """
    v = np.asarray(values, dtype="float64")
    g = np.asarray(in_group, dtype=bool)
    ratio = float(np.median(v[g]) / np.median(v))
    if g.sum() < 2:
        return ratio, None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    draws, member = v[idx], g[idx]
    ok = member.any(axis=1)
    with np.errstate(all="ignore"):
        group_med = np.nanmedian(np.where(member, draws, np.nan)[ok], axis=1)
    ratios = group_med / np.median(draws[ok], axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(ratios, [alpha, 1.0 - alpha])
    return ratio, float(lo), float(hi)


def best_group(score: pd.Series, key: pd.Series, min_size: int, alpha: float = 0.05) -> dict:
    """Per-group table and, when Kruskal–Wallis over the big-enough groups is significant, the best.

    Returns ``{"table": DataFrame(n_notes, share, median_score), "best": key or None, "p_value",
    "n_groups_tested", "min_size", "significant"}``.
    """
    from scipy.stats import kruskal
    frame = pd.DataFrame({"score": score.to_numpy(), "key": key.to_numpy()})
    table = frame.groupby("key")["score"].agg(n_notes="size", median_score="median")
    table["share"] = table["n_notes"] / len(frame)
    big = table[table["n_notes"] >= min_size]
    out = {"table": table, "best": None, "p_value": None, "n_groups_tested": int(len(big)), "min_size": int(min_size),
           "significant": False}
    if len(big) < 2:
        return out
    groups = [frame.loc[frame["key"] == k, "score"].to_numpy() for k in big.index]
    if np.ptp(np.concatenate(groups)) == 0:           # all scores equal: no difference to test
        out["p_value"] = 1.0
        return out
    p = float(kruskal(*groups).pvalue)
    out["p_value"] = p
    if p < alpha:
        out["best"] = big["median_score"].idxmax()
        out["significant"] = True
    return out
