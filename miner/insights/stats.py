"""Small statistical helpers shared by trends, seasons and opportunity (pure numpy).

- :func:`normal_sf` — one-sided upper-tail p-value of a z-score, ``P(Z ≥ z)``.
- :func:`bh_qvalues` — Benjamini–Hochberg adjusted p-values (q-values): calling every test with
  ``q ≤ α`` controls the false discovery rate at ``α`` across the tests (independent or positively
  dependent tests; topics sharing the volume denominator are mildly positively dependent).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["bh_qvalues", "normal_sf"]

_SQRT2 = math.sqrt(2.0)


def normal_sf(z) -> np.ndarray:
    """``P(Z ≥ z)`` for a standard normal Z, elementwise; NaN stays NaN."""
    z = np.asarray(z, dtype="float64")
    out = np.full(z.shape, np.nan)
    ok = ~np.isnan(z)
    out[ok] = [0.5 * math.erfc(v / _SQRT2) for v in z[ok]]
    return out


def bh_qvalues(pvalues) -> np.ndarray:
    """Benjamini–Hochberg q-values.

    ``q_(i) = min_{j ≥ i} m · p_(j) / j`` over the ``m`` non-NaN p-values sorted ascending, capped at
    1; NaN p-values (a test that was not run, e.g. a topic below the minimum volume) stay NaN and do
    not count in ``m``.

    Examples
    --------
    >>> bh_qvalues([0.01, 0.04, 0.03, 0.20]).round(3).tolist()
    [0.04, 0.053, 0.053, 0.2]
    """
    p = np.asarray(pvalues, dtype="float64")
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return q
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise ValueError("p-values must lie in [0, 1]")
    vals = p[ok]
    order = np.argsort(vals, kind="stable")
    ranked = vals[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(ranked, 1.0)
    q[ok] = adj
    return q
