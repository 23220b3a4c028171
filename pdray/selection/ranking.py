"""Eq. 10's selection: the k rows with the lowest score, ties broken by ``id``, exactly and
fast on millions of rows (:mod:`pdray.selection.parallel`'s threads and sampled bounds), with
the plain reference it is tested against.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pdray.selection import parallel


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
    T = parallel.n_threads(n)
    if k < n:
        cand = None
        if n >= parallel.PARALLEL_MIN:
            smp = np.sort(score[::max(1, n // parallel.SAMPLE)])
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
    ranges = parallel.split_rows(len(x), threads)
    parts = parallel.run_parallel(lambda r: np.flatnonzero(x[r[0]:r[1]] <= thr) + r[0], ranges)
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
    if threads > 1 and m >= parallel.PARALLEL_MIN:
        smp = np.sort(key[::max(1, m // parallel.SAMPLE)])
        piv = smp[[len(smp) * j // threads for j in range(1, threads)]]
        if threads == 2:
            lt = key < piv[0]
            parts = [key[lt], key[~lt]]
        else:
            bucket = np.searchsorted(piv, key, side="right")
            parts = [key[bucket == j] for j in range(threads)]
        key = np.concatenate(parallel.run_parallel(lambda a: (a.sort(), a)[1], parts))
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
    if isinstance(ids, (pa.Array, pa.ChunkedArray)):
        return np.asarray(ids.take(pa.array(idx)).to_pylist(), dtype=object).astype(str)
    return np.asarray(ids, dtype=object)[idx].astype(str)
