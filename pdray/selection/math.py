"""The math of Preference Divergence, as pure vectorised functions (paper Eq. 10, 13–15, 18).

Notation: κ aspects k; a pair z = (k_z, x, y_w, y_l) belongs to D_{k_z}; r̂_k is aspect k's reward
model; Δr̂_k(z) = r̂_k(x, y_w) − r̂_k(x, y_l) its raw gap on z.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pdray.errors import PdrayError

# Large inputs go through exact but faster paths: order statistics are found inside a window
# placed from a strided sample (checked by counting, and recomputed in full when the check
# fails), elementwise work runs in cache-sized blocks, and the blocks (and the final sort) are
# shared between threads (numpy releases the GIL). Results are bit-identical to the plain
# numpy formulas; tests/selection/test_scale_paths.py holds them to it.
BLOCK = 1 << 18            # rows per block of the fused kernels (fewer GIL hand-offs)
SAMPLE = 1 << 16           # rows of the strided sample that places a selection window
PARALLEL_MIN = 1 << 18     # below this many rows: no threads, no windows
THREADS: int | None = None  # worker threads for large inputs (None: the CPUs this process may use)
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def n_threads(n: int) -> int:
    """Threads to use for ``n`` rows: 1 below :data:`PARALLEL_MIN`, else :data:`THREADS`."""
    if n < PARALLEL_MIN:
        return 1
    t = THREADS
    if t is None:
        t = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(int(t or 1), 8))


def run_parallel(fn, parts: list) -> list:
    """``[fn(p) for p in parts]``, the first on the calling thread, the rest on a shared pool."""
    global _POOL
    if len(parts) <= 1:
        return [fn(p) for p in parts]
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pdray-select")
    futs = [_POOL.submit(fn, p) for p in parts[1:]]
    first = fn(parts[0])
    return [first] + [f.result() for f in futs]


def split_rows(n: int, parts: int, align: int | None = None) -> list[tuple[int, int]]:
    """``parts`` contiguous row ranges covering ``[0, n)``, cut at multiples of ``align``
    (default :data:`BLOCK`)."""
    align = BLOCK if align is None else align
    step = -(-max(1, -(-n // parts)) // align) * align
    return [(s, min(n, s + step)) for s in range(0, n, step)] or [(0, 0)]


def length_adjusted_gap(gap: np.ndarray, dlen: np.ndarray, rho: float,
                        length_debias: str = "penalty") -> np.ndarray:
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


def _linear_positions(m: int, gamma: float) -> tuple[int, int, float]:
    """numpy's ``method="linear"`` order statistics for m values: (i0, i1, weight)."""
    v = (m - 1) * gamma                      # numpy: (n - 1) * quantiles
    if v >= m - 1:
        return m - 1, m - 1, 0.0
    if v < 0:
        return 0, 0, 0.0
    i0 = int(np.floor(v))
    return i0, i0 + 1, float(v - np.floor(v))


def quantile_from_window(m: int, gamma: float, below: int, window: np.ndarray) -> float | None:
    """``np.quantile(x, gamma)`` for m values x of which ``below`` lie under the values in
    ``window`` (all x in the window's range); None when the window misses the order statistics."""
    i0, i1, t = _linear_positions(m, gamma)
    j0, j1 = i0 - below, i1 - below
    if m <= 0 or j0 < 0 or j1 >= len(window):
        return None
    w = np.partition(window, sorted({j0, j1}))
    a, b = w[j0], w[j1]
    if j0 == j1:
        return float(a)
    # numpy's own interpolation (_lerp), on the two order statistics: v' = (2 − 1)·t = t
    return float(np.quantile(np.array([a, b], dtype=np.float64), t))


def sample_window(sample: np.ndarray, gamma: float) -> tuple[float, float]:
    """A [lo, hi] range likely to hold the γ-quantile, from a sample (NaN entries ignored)."""
    s = np.sort(sample[~np.isnan(sample)])
    ns = len(s)
    if ns == 0:
        return -np.inf, np.inf
    r = gamma * (ns - 1)
    d = 6.0 * np.sqrt(ns * gamma * (1 - gamma)) + 8.0
    lo = s[int(np.floor(r - d))] if r - d >= 0 else -np.inf
    hi = s[int(np.ceil(r + d))] if r + d <= ns - 1 else np.inf
    return float(lo), float(hi)


def linear_quantile(x: np.ndarray, gamma: float) -> float:
    """``float(np.quantile(x, gamma))`` (linear interpolation), bit for bit.

    Large float inputs: only the values inside a sample-placed window are partitioned; when the
    window misses (or x holds NaN) the full ``np.quantile`` runs instead.
    """
    x = np.asarray(x)
    m = len(x)
    if m < PARALLEL_MIN or x.dtype.kind != "f":
        return float(np.quantile(x, gamma))
    lo, hi = sample_window(x[::max(1, m // SAMPLE)], gamma)
    inside = (x >= lo) & (x <= hi)
    window = x[inside]
    below = int(np.count_nonzero(x < lo))
    above = int(np.count_nonzero(x > hi))
    q = quantile_from_window(m, gamma, below, window) if below + len(window) + above == m else None
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
               rejected_len: np.ndarray | None = None, rho: float = 0.0,
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
    T = n_threads(n) if threads is None else max(1, int(threads))
    penalty = chosen_len is not None
    counts = np.bincount(own, minlength=max(codes) + 1) if n else np.zeros(max(codes) + 1, int)
    m_out = [n - int(counts[c]) for c in codes]

    def adjusted(i, sl):
        if penalty:
            return gaps[i][sl] - rho * np.subtract(chosen_len[sl], rejected_len[sl],
                                                   dtype=np.float64)
        return np.asarray(gaps[i][sl], dtype=np.float64)

    if n >= PARALLEL_MIN:
        sl = slice(None, None, max(1, n // SAMPLE))
        wins = []
        for i in range(K):
            g = np.abs(adjusted(i, sl))
            g[own[sl] == codes[i]] = np.nan
            wins.append(sample_window(g, gamma))
    else:
        wins = [(-np.inf, np.inf)] * K

    def pass1(rows):
        r0, r1 = rows
        tmp, d = np.empty(BLOCK), np.empty(BLOCK)
        out, c1, c2 = (np.empty(BLOCK, bool) for _ in range(3))
        below, nan, parts = [0] * K, [0] * K, [[] for _ in range(K)]
        for s in range(r0, r1, BLOCK):
            e = min(s + BLOCK, r1)
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

    ranges = split_rows(n, T)
    res1 = run_parallel(pass1, ranges)
    q, has_nan = [], []
    for i in range(K):
        if m_out[i] == 0:
            raise no_outside_error(labels[i])
        below = sum(r[0][i] for r in res1)
        has_nan.append(sum(r[1][i] for r in res1) > 0)
        window = np.concatenate([p for r in res1 for p in r[2][i]] or [np.zeros(0)])
        qi = None if has_nan[i] else quantile_from_window(m_out[i], gamma, below, window)
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
        tmp, d, tot, m = np.empty(BLOCK), np.empty(BLOCK), np.empty(BLOCK), np.empty(BLOCK, bool)
        # Σ over k ≠ own(z): t·[own ≠ k] adds ±0.0 where reference code adds 0.0, the same sum
        # (the running total is never −0.0); NaN·0 would not be 0, so NaN columns use where=
        for s in range(r0, r1, BLOCK):
            e = min(s + BLOCK, r1)
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

    run_parallel(pass2, ranges)
    return pd, q


def top_lowest(score: np.ndarray, ids, k: int) -> np.ndarray:
    """Eq. 10: indices of the k rows with the smallest score, ties broken by ``id`` (ascending).

    Deterministic whatever the input order: the rows in (score, id, row) order, the first k.
    The candidates are the rows at or below a sample-placed bound on the k-th smallest score
    (an exact ``np.partition`` when the bound falls short); they are sorted as single uint64
    keys (the score's order-preserving bits, low bits replaced by the candidate's position),
    re-sorted exactly inside the rare runs whose truncated keys collide, and ids are compared
    (on Arrow string buffers, without Python objects) only inside runs of tied scores that
    reach the first k. Same result as :func:`top_lowest_reference`, which NaN scores use.
    """
    score = np.asarray(score, dtype=np.float64)
    n = len(score)
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    if np.isnan(score.min()):
        return top_lowest_reference(score, ids, k)
    T = n_threads(n)
    if k < n:
        cand = None
        if n >= PARALLEL_MIN:
            smp = np.sort(score[::max(1, n // SAMPLE)])
            ns, p = len(smp), k / n
            j = int(np.ceil(p * ns + 6.0 * np.sqrt(ns * p * (1 - p)) + 8.0))
            if j < ns:
                cand = _flatnonzero_le(score, float(smp[j]), T)
                if len(cand) < k:
                    cand = None
        if cand is None:
            thr = np.partition(score, k - 1)[k - 1]
            cand = np.flatnonzero(score <= thr)
    else:
        cand = np.arange(n)
    rows, P, run, vals = _argsort_rows(score, cand, T)
    if len(P):
        # exact ties can only sit inside the runs re-sorted by value
        same = (run[1:] == run[:-1]) & (vals[1:] == vals[:-1])
        if same.any():
            Q, trun = _runs(same)
            Q = P[Q]                                    # positions in ``rows``
            first = np.r_[True, trun[1:] != trun[:-1]]
            live = int(np.count_nonzero(Q[first] < k))  # tied runs that start inside the first k
            keep = trun <= live
            Q, trun = Q[keep], trun[keep]
            if len(Q):
                rows[Q] = rows[Q][_order_by_id(ids, rows[Q], trun)]
    return rows[:k].astype(np.int64, copy=False)


def _flatnonzero_le(x: np.ndarray, thr: float, threads: int) -> np.ndarray:
    ranges = split_rows(len(x), threads)
    parts = run_parallel(lambda r: np.flatnonzero(x[r[0]:r[1]] <= thr) + r[0], ranges)
    return np.concatenate(parts)


def _runs(eq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions inside runs of equal neighbours (``eq[i]``: i and i+1 equal) and their run
    numbers (1, 2, …, in order)."""
    inrun = np.zeros(len(eq) + 1, dtype=bool)
    inrun[:-1] |= eq
    inrun[1:] |= eq
    start = inrun.copy()
    start[1:] &= ~eq
    P = np.flatnonzero(inrun)
    return P, np.cumsum(start)[P]


def _argsort_rows(score: np.ndarray, cand: np.ndarray, threads: int):
    """``cand`` (increasing row numbers) stably sorted by ``score`` (finite), and the positions,
    run numbers and values of the runs whose truncated keys collided (re-sorted exactly by value;
    exact ties can only occur in them).

    One uint64 key per row: the score's order-preserving bits with the low bits replaced by the
    row number, so a plain ``np.sort`` of integers gives (score, row) order except inside runs
    of colliding keys, which are re-sorted by their full scores.
    """
    m = len(cand)
    empty = np.zeros(0, np.intp)
    if m < 2:
        return cand.astype(np.int64), empty, empty, np.zeros(0)
    v = score[cand]
    v += 0.0                                    # −0.0 → +0.0: equal scores, equal keys
    b = v.view(np.uint64)
    key = b ^ (np.negative(b >> np.uint64(63)) | np.uint64(1 << 63))   # order-preserving bits
    nb = max(1, int(cand[-1]).bit_length())
    low = np.uint64((1 << nb) - 1)
    key &= ~low
    key |= cand.astype(np.uint64, copy=False)
    if threads > 1 and m >= PARALLEL_MIN:
        smp = np.sort(key[::max(1, m // SAMPLE)])
        piv = smp[[len(smp) * j // threads for j in range(1, threads)]]
        if threads == 2:
            lt = key < piv[0]
            parts = [key[lt], key[~lt]]
        else:
            bucket = np.searchsorted(piv, key, side="right")
            parts = [key[bucket == j] for j in range(threads)]
        key = np.concatenate(run_parallel(lambda a: (a.sort(), a)[1], parts))
    else:
        key.sort()
    rows = (key & low).astype(np.int64)
    coll = (key[1:] >> np.uint64(nb)) == (key[:-1] >> np.uint64(nb))
    if not coll.any():
        return rows, empty, empty, np.zeros(0)
    P, run = _runs(coll)
    vals = score[rows[P]] + 0.0
    perm = np.lexsort((vals, run))              # stable: equal scores stay in row order
    rows[P] = rows[P][perm]
    return rows, P, run, vals[perm]


def _order_by_id(ids, rows: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Permutation sorting (run, id, row); ids compared as strings (as :func:`_ids_at`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(ids, (pa.Array, pa.ChunkedArray)):
        t = ids.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            sub = ids.take(pa.array(rows))
            if not sub.null_count:
                tab = pa.table({"r": pa.array(run), "id": sub, "i": pa.array(rows)})
                return np.asarray(pc.sort_indices(
                    tab, sort_keys=[("r", "ascending"), ("id", "ascending"), ("i", "ascending")]))
    return np.lexsort((rows, _ids_at(ids, rows), run))


def top_lowest_reference(score: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """:func:`top_lowest` written plainly (a full ``np.partition``, a stable argsort of the
    candidates, one id sort per run of tied scores): the definition the fast path is held to,
    and its fallback for NaN scores."""
    score = np.asarray(score, dtype=np.float64)
    n = len(score)
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    if k < n:
        thr = np.partition(score, k - 1)[k - 1]
        cand = np.flatnonzero(score <= thr)
    else:
        cand = np.arange(n)
    order = cand[np.argsort(score[cand], kind="stable")]
    s = score[order]
    same = np.flatnonzero(s[1:] == s[:-1])          # position i+1 ties with i
    if len(same):
        starts = same[np.r_[True, np.diff(same) > 1]]
        ends = same[np.r_[np.diff(same) > 1, True]] + 2
        for a, b in zip(starts, ends):
            if a >= k:
                break
            seg = order[a:b]
            order[a:b] = seg[np.argsort(_ids_at(ids, seg), kind="stable")]
    return order[:k]


def _ids_at(ids, idx: np.ndarray) -> np.ndarray:
    """``ids[idx]`` as strings, for numpy arrays and Arrow arrays alike (no full conversion)."""
    import pyarrow as pa

    if isinstance(ids, (pa.Array, pa.ChunkedArray)):
        return np.asarray(ids.take(pa.array(idx)).to_pylist(), dtype=object).astype(str)
    return np.asarray(ids, dtype=object)[idx].astype(str)
