"""Small statistical helpers shared by trends, seasons and opportunity (pure numpy).

- :func:`normal_sf` — one-sided upper-tail p-value of a z-score, ``P(Z ≥ z)``.
- :func:`bh_qvalues` — Benjamini–Hochberg adjusted p-values (q-values): calling every test with
  ``q ≤ α`` controls the false discovery rate at ``α`` across the tests (independent or positively
  dependent tests; topics sharing the volume denominator are mildly positively dependent).
- Anscombe count comparisons for :mod:`miner.insights.trends` (``_anscombe_z``, ``_dispersion``,
  ``_shrunk_growth``, ``_best_window``; the model is described in that module's docstring).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["bh_qvalues", "normal_sf"]

_SQRT2 = math.sqrt(2.0)
_ANSCOMBE = 3.0 / 8.0


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


def _anscombe(x):
    return 2.0 * np.sqrt(np.asarray(x, dtype="float64") + _ANSCOMBE)


def _anscombe_z(n, N_n, m, N_m, phi):
    """z for "count n (volume N_n) has the same share as count m (volume N_m)"; NaN if N_m == 0."""
    if N_m <= 0:
        return np.full(np.shape(n), np.nan)
    r = N_n / N_m
    return (_anscombe(n) - np.sqrt(r) * _anscombe(m)) / np.sqrt(phi * (1.0 + r))


def _shrunk_growth(n, N_n, m, N_m, prior):
    if N_m <= 0 or N_n <= 0:
        return np.full(np.shape(n), np.nan)
    expected = m * (N_n / N_m)
    return 100.0 * ((n + prior) / (expected + prior) - 1.0)


def _dispersion(C_base: np.ndarray, N_base: np.ndarray, w: int, min_periods: int) -> np.ndarray:
    """Per-topic over-dispersion φ ≥ 1 from the baseline periods.

    Residuals are taken around each baseline window's own share (not one share for the whole
    baseline), so a genuine level shift between windows — the thing we want to detect — does not
    count as noise; the mean squared Anscombe residual is then corrected for the one share fitted
    per window.
    """
    T = C_base.shape[1]
    if T < min_periods:
        return np.ones(C_base.shape[0])
    ss, dof = np.zeros(C_base.shape[0]), 0
    for hi in range(T, 0, -w):                       # windows aligned to the end of the baseline
        lo = max(hi - w, 0)
        C_w, N_w = C_base[:, lo:hi], N_base[lo:hi]
        ok = N_w > 0
        if ok.sum() < 2:
            continue
        share = C_w[:, ok].sum(axis=1, keepdims=True) / N_w[ok].sum()
        ss += ((_anscombe(C_w[:, ok]) - _anscombe(share * N_w[ok])) ** 2).sum(axis=1)
        dof += int(ok.sum()) - 1
    if dof < min_periods - 1:
        return np.ones(C_base.shape[0])
    return np.maximum(ss / dof, 1.0)


def _best_window(C: np.ndarray, N: np.ndarray, w: int):
    """Highest pooled share over all full windows of w periods: (share, end index exclusive)."""
    T = C.shape[1]
    k = min(w, T)
    cs = np.concatenate([np.zeros((C.shape[0], 1)), C.cumsum(axis=1)], axis=1)
    ns = np.concatenate([[0.0], N.cumsum()])
    win_c = cs[:, k:] - cs[:, :-k]                  # topics × (T-k+1)
    win_n = ns[k:] - ns[:-k]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(win_n > 0, win_c / np.where(win_n > 0, win_n, 1.0), -1.0)
    best = share.argmax(axis=1)                      # earliest on ties
    rows = np.arange(C.shape[0])
    return np.maximum(share[rows, best], 0.0), best + k
