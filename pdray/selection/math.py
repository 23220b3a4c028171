"""The math of Preference Divergence, as pure vectorised functions (paper Eq. 13–15, 18, and
the budget of Eq. 10; the ranking that keeps the λ fraction: :mod:`pdray.selection.ranking`).

Large inputs take exact fast paths (:mod:`pdray.selection.parallel`), bit-identical to the
plain formulas here.

Notation: κ aspects k; a pair z = (k_z, x, y_w, y_l) belongs to D_{k_z}; r̂_k is aspect k's reward
model; Δr̂_k(z) = r̂_k(x, y_w) − r̂_k(x, y_l) its raw gap on z.
"""

from __future__ import annotations

import numpy as np

from pdray.errors import PdrayError
from pdray.selection import parallel as P


def length_adjusted_gap(gap: np.ndarray, dlen: np.ndarray, rho: float,
                        length_debias: str) -> np.ndarray:
    """Eq. 18: Δr̂_k(z) = r̂_k(x, y_w) − r̂_k(x, y_l) − ρ·Δlen(z), Δlen = len(y_w) − len(y_l).

    In the product-of-experts modes (``poe``, ``learned``) the reward model was trained with the
    length term outside it, so the gap is used as is; ``none`` applies no length term either.
    """
    if length_debias == "penalty":
        return np.asarray(gap, dtype=np.float64) - rho * np.asarray(dlen, dtype=np.float64)
    if length_debias in ("poe", "learned", "none"):
        return np.asarray(gap, dtype=np.float64)
    raise ValueError(f"unknown length_debias {length_debias!r}")


def quantile_scale(gap: np.ndarray, own_aspect: np.ndarray, aspect: str, gamma: float) -> float:
    """Eq. 13: q_k = the γ-quantile of |Δr̂_k(z)| over all rows z ∉ D_k (own aspect ≠ k).

    Linear interpolation between order statistics (numpy's default). Raises when q_k = 0 (the
    normalisation of Eq. 14 would divide by zero) or when no row lies outside D_k.
    """
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    outside = np.asarray(own_aspect) != aspect
    if not outside.any():
        raise no_outside_error(aspect)
    q = linear_quantile(np.abs(np.asarray(gap, dtype=np.float64)[outside]), gamma)
    check_q(aspect, q, gamma)
    return q


def no_outside_error(aspect) -> PdrayError:
    return PdrayError(f"aspect {aspect!r}: no pairs outside D_{aspect} to take the "
                      f"γ-quantile of |Δr̂| over (Eq. 13); PD needs at least two aspects")


def check_q(aspect, q: float, gamma: float) -> None:
    if q == 0.0 or not np.isfinite(q):
        raise PdrayError(f"aspect {aspect!r}: q_k = {q} (the {gamma}-quantile of |Δr̂_{aspect}| "
                         "over pairs of other aspects); its reward model gives (almost) no margin, "
                         "so the gaps cannot be normalised (Eq. 14)")


def linear_quantile(x: np.ndarray, gamma: float) -> float:
    """``float(np.quantile(x, gamma))`` (linear interpolation), bit for bit.

    Large float inputs: only the values inside a sample-placed window are partitioned; when the
    window misses (or x holds NaN) the full ``np.quantile`` runs instead.
    """
    x = np.asarray(x)
    m = len(x)
    if m < P.PARALLEL_MIN or x.dtype.kind != "f":
        return float(np.quantile(x, gamma))
    lo, hi = P.sample_window(x[::max(1, m // P.SAMPLE)], gamma)
    inside = (x >= lo) & (x <= hi)
    window = x[inside]
    below = int(np.count_nonzero(x < lo))
    above = int(np.count_nonzero(x > hi))
    q = P.quantile_from_window(m, gamma, below, window) if below + len(window) + above == m else None
    return float(np.quantile(x, gamma)) if q is None else q


def normalize_gap(gap: np.ndarray, q: float) -> np.ndarray:
    """Eq. 14: Δr̃_k(z) = clip(Δr̂_k(z) / q_k, −1, 1)."""
    return np.clip(np.asarray(gap, dtype=np.float64) / q, -1.0, 1.0)


def preference_divergence(normalized: dict[str, np.ndarray], own_aspect: np.ndarray,
                          weights: dict[str, float] | None = None) -> np.ndarray:
    """Eq. 15: PD(z) = −Σ_{k' ≠ k_z} w_{k'} · Δr̃_{k'}(z), in [−Σw, Σw] (w = 1: [−(κ−1), κ−1]).

    Negative PD: the other aspects' reward models agree with z's label (consensus); positive:
    they disagree (conflict). ``weights`` default to 1 per aspect.
    """
    own = np.asarray(own_aspect)
    n = len(own)
    total = np.zeros(n, dtype=np.float64)
    for k, g in normalized.items():
        w = 1.0 if weights is None else float(weights.get(k, 1.0))
        total += np.where(own != k, w * g, 0.0)
    return -total


def budget_count(n: int, budget: float) -> int:
    """|D̃| = round(λ·|D|) (half up), at least 0 and at most n."""
    if not 0 < budget <= 1:
        raise ValueError(f"budget λ must be in (0, 1], got {budget}")
    return int(min(n, max(0, np.floor(budget * n + 0.5))))


def pd_columns(gaps: list, own: np.ndarray, codes: list[int], gamma: float, *,
               labels: list, chosen_len: np.ndarray | None = None,
               rejected_len: np.ndarray | None = None, rho: float,
               weights: list[float] | None = None,
               threads: int | None = None) -> tuple[np.ndarray, list[float]]:
    """Eq. 18 → 13 → 14 → 15 fused: (PD per row, q_k per aspect), bit-identical to
    ``length_adjusted_gap`` → ``quantile_scale`` → ``normalize_gap`` → ``preference_divergence``.

    ``gaps[i]``: the raw gap column of aspect i (any real dtype); ``own``: an integer code per
    row; ``codes[i]``: aspect i's code; ``labels[i]``: its name (for errors). With
    ``chosen_len``/``rejected_len`` the penalty term −ρ·Δlen is applied, else none. ``weights``
    are w_k in the order of ``gaps`` (default 1). Two passes over cache-sized blocks, split
    between threads: pass 1 counts |Δr̂_k| below a sample-placed window and keeps the values in
    it (the exact γ-quantile is then a partition of the window alone; a full ``np.quantile``
    when the window misses); pass 2 normalises and sums.
    """
    own = np.asarray(own)
    n, K = len(own), len(gaps)
    T = P.n_threads(n) if threads is None else max(1, int(threads))
    penalty = chosen_len is not None
    counts = np.bincount(own, minlength=max(codes) + 1) if n else np.zeros(max(codes) + 1, int)
    m_out = [n - int(counts[c]) for c in codes]

    def adjusted(i, sl):
        if penalty:
            return gaps[i][sl] - rho * np.subtract(chosen_len[sl], rejected_len[sl],
                                                   dtype=np.float64)
        return np.asarray(gaps[i][sl], dtype=np.float64)

    if n >= P.PARALLEL_MIN:
        sl = slice(None, None, max(1, n // P.SAMPLE))
        wins = []
        for i in range(K):
            g = np.abs(adjusted(i, sl))
            g[own[sl] == codes[i]] = np.nan
            wins.append(P.sample_window(g, gamma))
    else:
        wins = [(-np.inf, np.inf)] * K

    def pass1(rows):
        r0, r1 = rows
        tmp, d = np.empty(P.BLOCK), np.empty(P.BLOCK)
        out, c1, c2 = (np.empty(P.BLOCK, bool) for _ in range(3))
        below, nan, parts = [0] * K, [0] * K, [[] for _ in range(K)]
        for s in range(r0, r1, P.BLOCK):
            e = min(s + P.BLOCK, r1)
            L = e - s
            t, db, ob, o, a, b = tmp[:L], d[:L], own[s:e], out[:L], c1[:L], c2[:L]
            if penalty:
                np.subtract(chosen_len[s:e], rejected_len[s:e], out=db, dtype=np.float64)
                np.multiply(db, rho, out=db)
            for i in range(K):
                if penalty:
                    np.subtract(gaps[i][s:e], db, out=t)
                else:
                    np.copyto(t, gaps[i][s:e])
                np.abs(t, out=t)
                lo, hi = wins[i]
                np.not_equal(ob, codes[i], out=o)       # rows outside D_k (Eq. 13)
                np.less(t, lo, out=a)
                seen = int(np.count_nonzero(a))
                below[i] += int(np.count_nonzero(np.logical_and(a, o, out=a)))
                seen += int(np.count_nonzero(np.greater(t, hi, out=a)))
                np.greater_equal(t, lo, out=a)
                np.logical_and(a, np.less_equal(t, hi, out=b), out=a)
                seen += int(np.count_nonzero(a))
                nan[i] += L - seen                       # NaN anywhere: the plain way, below
                parts[i].append(t[np.logical_and(a, o, out=a)])
        return below, nan, parts

    ranges = P.split_rows(n, T)
    res1 = P.run_parallel(pass1, ranges)
    q, has_nan = [], []
    for i in range(K):
        if m_out[i] == 0:
            raise no_outside_error(labels[i])
        below = sum(r[0][i] for r in res1)
        has_nan.append(sum(r[1][i] for r in res1) > 0)
        window = np.concatenate([p for r in res1 for p in r[2][i]] or [np.zeros(0)])
        qi = None if has_nan[i] else P.quantile_from_window(m_out[i], gamma, below, window)
        if qi is None:                           # the window missed (or NaN): the plain way
            g = adjusted(i, slice(None))
            qi = float(np.quantile(np.abs(g[own != codes[i]]), gamma))
        check_q(labels[i], qi, gamma)
        q.append(qi)
    w = [1.0] * K if weights is None else [float(x) for x in weights]
    has_nan = [h or not np.isfinite(wi) for h, wi in zip(has_nan, w)]
    pd = np.empty(n, dtype=np.float64)

    def pass2(rows):
        r0, r1 = rows
        tmp, d, tot, m = np.empty(P.BLOCK), np.empty(P.BLOCK), np.empty(P.BLOCK), np.empty(P.BLOCK, bool)
        # Σ over k ≠ own(z): t·[own ≠ k] adds ±0.0 where reference code adds 0.0, the same sum
        # (the running total is never −0.0); NaN·0 would not be 0, so NaN columns use where=
        for s in range(r0, r1, P.BLOCK):
            e = min(s + P.BLOCK, r1)
            L = e - s
            t, db, tt, mb, ob = tmp[:L], d[:L], tot[:L], m[:L], own[s:e]
            if penalty:
                np.subtract(chosen_len[s:e], rejected_len[s:e], out=db, dtype=np.float64)
                np.multiply(db, rho, out=db)
            tt.fill(0.0)
            for i in range(K):
                if penalty:
                    np.subtract(gaps[i][s:e], db, out=t)
                else:
                    np.copyto(t, gaps[i][s:e])
                np.divide(t, q[i], out=t)
                np.clip(t, -1.0, 1.0, out=t)
                if w[i] != 1.0:
                    np.multiply(t, w[i], out=t)
                np.not_equal(ob, codes[i], out=mb)
                if has_nan[i]:
                    np.add(tt, t, out=tt, where=mb)
                else:
                    np.multiply(t, mb, out=t)
                    np.add(tt, t, out=tt)
            np.negative(tt, out=pd[s:e])

    P.run_parallel(pass2, ranges)
    return pd, q
