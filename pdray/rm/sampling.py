"""Length-balanced sampling of a sub-preference dataset (paper Eq. 16)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa


def balanced_shares(f_plus: float, tau: float) -> tuple[float, float]:
    """Eq. 16: f̂⁺ = exp(f⁺/τ) / (exp(f⁺/τ) + exp(f⁻/τ)), f̂⁻ = 1 − f̂⁺, with f⁻ = 1 − f⁺.

    Large τ → 50/50; τ → 0 → all weight on the majority side.
    """
    if tau <= 0:
        raise ValueError("tau must be > 0")
    f_minus = 1.0 - f_plus
    a, b = f_plus / tau, f_minus / tau
    m = max(a, b)
    ea, eb = math.exp(a - m), math.exp(b - m)
    hat = ea / (ea + eb)
    return hat, 1.0 - hat


def length_balanced_indices(dlen: np.ndarray, tau: float, sample_ratio: float, seed: int,
                            balanced: bool = True, min_total: int = 0) -> tuple[np.ndarray, dict]:
    """Row indices of the training sample of one D_k, and what was achieved.

    D_k⁺ = rows with len(y_w) ≥ len(y_l), D_k⁻ the rest. Draw p_r·|D_k|·f̂⁺ rows from D_k⁺ and
    p_r·|D_k|·f̂⁻ from D_k⁻ (rounded, capped at what each holds). ``balanced=False``: a uniform
    p_r sample (the no-mitigation ablation A2). ``min_total``: the sample never holds fewer
    than min(|D_k|, min_total) rows — a short side is topped up with random rows of the other
    (``topped_up`` in the stats), so a small D_k is not starved by p_r.
    """
    dlen = np.asarray(dlen)
    n = len(dlen)
    rng = np.random.default_rng(seed)
    plus, minus = np.flatnonzero(dlen >= 0), np.flatnonzero(dlen < 0)
    f_plus = len(plus) / n if n else 0.0
    floor = min(n, int(min_total))
    total = max(int(round(sample_ratio * n)), floor)
    if not balanced:
        idx = np.sort(rng.choice(n, size=min(total, n), replace=False))
        hat_p = f_plus
    else:
        hat_p, hat_m = balanced_shares(f_plus, tau)
        n_plus = min(len(plus), int(round(total * hat_p)))
        n_minus = min(len(minus), int(round(total * hat_m)))
        idx = np.sort(np.concatenate([rng.choice(plus, n_plus, replace=False),
                                      rng.choice(minus, n_minus, replace=False)]))
    topped = 0
    if len(idx) < floor:  # a side ran short of the floor: fill up from the rows not drawn yet
        rest = np.setdiff1d(np.arange(n), idx)
        topped = min(len(rest), floor - len(idx))
        idx = np.sort(np.concatenate([idx, rng.choice(rest, topped, replace=False)]))
    got_plus = int(np.sum(dlen[idx] >= 0)) if len(idx) else 0
    share = got_plus / len(idx) if len(idx) else 0.0
    return idx, {"n": n, "n_plus": len(plus), "n_minus": len(minus), "f_plus": f_plus,
                 "f_hat_plus": hat_p, "target": total, "sampled": len(idx),
                 "sampled_plus": got_plus, "sampled_minus": len(idx) - got_plus,
                 "sampled_plus_share": share, "sampled_minus_share": 1.0 - share if len(idx) else 0.0,
                 "balanced": balanced, "tau": tau, "sample_ratio": sample_ratio, "seed": seed,
                 "min_total": int(min_total), "topped_up": int(topped)}


def length_balanced_sample(pairs: pa.Table, tau: float, sample_ratio: float, seed: int,
                           lengths, balanced: bool = True, min_total: int = 0
                           ) -> tuple[pa.Table, dict]:
    """Eq. 16 on a table of one aspect's pairs D_k: the sampled rows (in their original order)
    and the achieved D⁺/D⁻ shares (see :func:`length_balanced_indices`).

    ``lengths``: Δlen = len(y_w) − len(y_l) per row, in the reward tokenizer's tokens (e.g.
    :func:`pdray.rm.dataset.delta_len`), or the name of a column of ``pairs`` holding it.
    """
    dlen = pairs[lengths].to_numpy() if isinstance(lengths, str) else np.asarray(lengths)
    if len(dlen) != pairs.num_rows:
        raise ValueError(f"lengths has {len(dlen)} values for {pairs.num_rows} pairs")
    idx, stats = length_balanced_indices(dlen, tau, sample_ratio, seed, balanced, min_total)
    return pairs.take(pa.array(idx, type=pa.int64())), stats
