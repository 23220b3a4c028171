"""The percentile band of the second seed's selector and its PD hybrids, as pure functions
(METHOD.md, "Second seed", step 4): used by the ``band``, ``lossdiff_irm`` and ``pd_irm``
selectors and by the LossDiff comparison report (:mod:`pdray.lossdiff.hybrid`)."""

from __future__ import annotations

import numpy as np

from pdray.selection.ranking import top_lowest


def percentile_bounds(values, low: float, high: float) -> tuple[float, float]:
    """(P_low, P_high) of ``values`` (fractions in [0, 1]; numpy's linear interpolation; NaN
    for no values). A non-finite value is a ValueError (callers name the row and column)."""
    if not 0 <= low < high <= 1:
        raise ValueError(f"band needs 0 <= low < high <= 1, got {low}, {high}")
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return float("nan"), float("nan")
    if not np.isfinite(v).all():
        raise ValueError(f"band: {int((~np.isfinite(v)).sum())} non-finite value(s)")
    lo, hi = np.quantile(v, [low, high])
    return float(lo), float(hi)


def percentile_band(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Mask of the rows whose value lies inside [P_low, P_high] (inclusive; fractions in
    [0, 1])."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return np.zeros(0, dtype=bool)
    lo, hi = percentile_bounds(v, low, high)
    return (v >= lo) & (v <= hi)


def band_intersection(arrays: list, low: float, high: float) -> np.ndarray:
    """Step 4 of "Second seed" (METHOD.md): the rows inside the [P_low, P_high] band of every
    array (e.g. ``[lossdiff, irm]``: the LossDiff-IRM rule)."""
    n = len(arrays[0])
    mask = np.ones(n, dtype=bool)
    for v in arrays:
        if len(v) != n:
            raise ValueError("band: every score needs one value per row")
        mask &= percentile_band(v, low, high)
    return mask


def band_for_keep_rate(arrays: list, keep_rate: float, tol: float = 1e-6) -> tuple[float, float]:
    """The LossDiff-IRM default band rule: the narrowest symmetric middle band [p, 1 − p], the
    same for every array, whose intersection (:func:`band_intersection`) keeps at least
    ``keep_rate`` of the rows. The keep rate falls as p grows, so p is found by bisection on
    [0, 0.5); ``(0.0, 1.0)`` (every row) when no narrower band keeps enough.

    The second paper reports keeping 50–64 % of the data with a middle band of each score; a
    fixed 20–80 % band keeps at most 60 % and as little as 20 %, depending on how the two scores
    correlate, so the rate, not the band, is what pdray holds fixed by default.
    """
    if not 0 < keep_rate <= 1:
        raise ValueError(f"keep_rate must be in (0, 1], got {keep_rate}")
    if not len(arrays[0]):
        return 0.0, 1.0
    lo, hi = 0.0, 0.5           # keep(lo) >= keep_rate holds; search the largest such p
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if band_intersection(arrays, mid, 1 - mid).mean() >= keep_rate:
            lo = mid
        else:
            hi = mid
    return lo, 1 - lo


def pd_irm_intersect(pd: np.ndarray, irm: np.ndarray, ids, k: int, low: float,
                     high: float) -> np.ndarray:
    """The PD × IRM hybrid, ``intersect``: the k pairs of most negative PD (Eq. 10, ties by
    id) that are also inside IRM's [P_low, P_high] band ("Second seed", step 4). A mask."""
    top = np.zeros(len(pd), dtype=bool)
    top[top_lowest(np.asarray(pd, np.float64), ids, k)] = True
    return top & percentile_band(irm, low, high)


def pd_irm_rank_sum(pd: np.ndarray, irm: np.ndarray, ids, k: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The PD × IRM hybrid, ``rank_sum``: (kept indices, score). Rank 0 = most negative PD;
    rank 0 = IRM closest to its median ("middle of the band" first); keeps the k smallest rank
    sums, ties by id."""
    pd, irm = np.asarray(pd, np.float64), np.asarray(irm, np.float64)
    r_pd = np.argsort(np.argsort(pd, kind="stable"), kind="stable")
    centre = np.abs(irm - np.median(irm)) if len(irm) else irm
    r_irm = np.argsort(np.argsort(centre, kind="stable"), kind="stable")
    s = (r_pd + r_irm).astype(np.float64)
    return top_lowest(s, ids, k), s
