"""The exact fast paths of selection on large inputs: threads, cache-sized blocks and
sample-placed windows for order statistics.

Order statistics are found inside a window placed from a strided sample (checked by counting,
and recomputed in full when the check fails), elementwise work runs in cache-sized blocks, and
the blocks (and the final sort) are shared between threads (numpy releases the GIL). Results
are bit-identical to the plain numpy formulas of :mod:`pdray.selection.math`;
tests/selection/test_scale_paths.py holds them to it (and sets the sizes below small).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

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
